//! A worker of the example workflow server: polls a task queue, runs each workflow
//! inside the workflow's trace, calls a downstream HTTP service (started here, on
//! 127.0.0.1) through the client layer, and reports its execution spans through the
//! server's span proxy (`ReportExecutionSpans`): the worker needs no collector.
//!
//! ```text
//! cargo run --example workflow_server &
//! cargo run --example worker -- [--server http://127.0.0.1:50051] [--tenant acme] [--queue main]
//! ```
//!
//! The downstream service's own spans go where the pipeline says
//! (`OTEL_EXPORTER_OTLP_ENDPOINT`, else printed as trees). SIGINT or SIGTERM stops the
//! worker after the workflow in hand.

use std::time::Duration;

use instrument::pipeline::init_from_env;
use instrument::tenant::TenantId;
use instrument_examples::worker::{serve_downstream, Worker};

const USAGE: &str = "usage: worker [--server URL] [--tenant ID] [--queue NAME]";

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error + Send + Sync>> {
    let (mut server, mut tenant, mut queue) = (
        "http://127.0.0.1:50051".to_owned(),
        "acme".to_owned(),
        "main".to_owned(),
    );
    let mut args = std::env::args().skip(1);
    while let Some(flag) = args.next() {
        let value = args.next();
        match (flag.as_str(), value) {
            ("--server", Some(v)) => server = v,
            ("--tenant", Some(v)) => tenant = v,
            ("--queue", Some(v)) => queue = v,
            _ => {
                eprintln!("{USAGE}");
                std::process::exit(2);
            }
        }
    }
    let telemetry = init_from_env()?;
    let tenant = TenantId::parse(&tenant)?;
    let downstream = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let downstream_addr = downstream.local_addr()?;
    tokio::spawn(serve_downstream(downstream));
    let channel = tonic::transport::Channel::from_shared(server.clone())?.connect_lazy();
    let worker = Worker::new(
        channel.clone(),
        channel,
        downstream_addr,
        tenant,
        &queue,
        "worker-1",
    )?;
    eprintln!("worker polling {server} (queue {queue}), downstream service on {downstream_addr}");
    worker
        .run(Duration::from_millis(500), instrument_examples::signal())
        .await;
    // Let the last reports go out before the runtime stops.
    tokio::time::sleep(Duration::from_millis(300)).await;
    telemetry.shutdown()?;
    Ok(())
}
