//! The "test service" of the W3C Trace Context test suite (see
//! `instrument_examples::w3c`).
//!
//! ```text
//! cargo run --example w3c_test_service -- [--addr 127.0.0.1:5000]
//! # in a clone of https://github.com/w3c/trace-context:
//! STRICT_LEVEL=2 SPEC_LEVEL=2 python3 test/test.py http://127.0.0.1:5000/test
//! ```

use std::net::SocketAddr;

use instrument_examples::w3c::serve;

fn parse_addr() -> Result<SocketAddr, String> {
    const USAGE: &str = "usage: w3c_test_service [--addr HOST:PORT]";
    let mut addr = SocketAddr::from(([127, 0, 0, 1], 5000));
    let mut args = std::env::args().skip(1);
    while let Some(flag) = args.next() {
        match flag.as_str() {
            "--addr" => {
                let value = args
                    .next()
                    .ok_or(format!("--addr needs a value\n{USAGE}"))?;
                addr = value.parse().map_err(|e| format!("--addr: {e}"))?;
            }
            "-h" | "--help" => return Err(USAGE.to_owned()),
            other => return Err(format!("unknown argument {other:?}\n{USAGE}")),
        }
    }
    Ok(addr)
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let addr = match parse_addr() {
        Ok(addr) => addr,
        Err(e) => {
            eprintln!("{e}");
            std::process::exit(2)
        }
    };
    let telemetry = instrument::pipeline::init_from_env()?;
    let listener = tokio::net::TcpListener::bind(addr).await?;
    eprintln!(
        "W3C trace-context test service on http://{}/test",
        listener.local_addr()?
    );
    serve(listener, async {
        let _ = tokio::signal::ctrl_c().await;
    })
    .await;
    telemetry.shutdown()?;
    Ok(())
}
