//! An axum service wired with the toolkit, as the README's "Wire it in" shows: route
//! templates from axum's `MatchedPath`, tenants required, `/health` and `/metrics` left
//! alone, an outgoing call continuing the trace, one `#[workflow_span]`.
//!
//! ```sh
//! cargo run --example axum_service                 # trace trees on stdout
//! curl -i -H 'x-tenant-id: acme' localhost:3000/users/42
//! curl -i -H 'x-tenant-id: acme' -d '{"sku":"book","card":"4111 1111 1111 1111"}' \
//!      -H 'content-type: application/json' localhost:3000/orders
//! curl -i localhost:3000/users/42                  # 401: says which header to send
//! curl localhost:3000/metrics
//! ```
//!
//! `ADDR` picks the address (default `127.0.0.1:3000`); the `OTEL_*` variables send
//! spans to a collector instead of stdout.

use std::net::SocketAddr;

use instrument::cardinality::LabelGuard;
use instrument::pipeline::{init_from_env, install_prometheus};
use instrument::semconv::MetricNames;
use instrument_examples::axum_service::{shop, stock, Shop};
use tokio::net::TcpListener;

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let telemetry = init_from_env()?;
    let metrics = install_prometheus(LabelGuard::default(), &MetricNames::default())?;

    let stock_listener = TcpListener::bind("127.0.0.1:0").await?;
    let stock_addr = stock_listener.local_addr()?;
    let stock_service = stock().into_make_service_with_connect_info::<SocketAddr>();
    tokio::spawn(async move { axum::serve(stock_listener, stock_service).await });

    let addr = std::env::var("ADDR").unwrap_or_else(|_| "127.0.0.1:3000".to_owned());
    let listener = TcpListener::bind(&addr).await?;
    println!("listening on http://{}", listener.local_addr()?);
    let app = shop(Shop::new(stock_addr, Some(metrics)));
    axum::serve(
        listener,
        app.into_make_service_with_connect_info::<SocketAddr>(),
    )
    .with_graceful_shutdown(instrument_examples::signal())
    .await?;

    tokio::task::spawn_blocking(move || telemetry.shutdown()).await??;
    Ok(())
}
