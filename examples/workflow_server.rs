//! A tonic workflow server instrumented with the instrument layers.
//!
//! ```text
//! cargo run --example workflow_server -- [--db PATH] [--addr 127.0.0.1:50051] [--metrics-addr 127.0.0.1:9464]
//! ```
//!
//! RPCs (`proto/workflow.proto` of this crate): `StartWorkflow`, `PollWorkflow`,
//! `SubmitTask`, `CompleteTask`, `FailTask`, `CompleteWorkflow`, `FailWorkflow` and the
//! server stream `WatchWorkflow`; the tenant goes in `x-tenant-id` metadata, the
//! workflow of a workflow-scoped call in `x-workflow-id`.
//!
//! Workflows and tasks are stored with their traceparent in SQLite, so a workflow
//! started before a restart completes in the same trace after it. Spans go to the
//! collector at `OTEL_EXPORTER_OTLP_ENDPOINT` when set (any `OTEL_*` variable the
//! pipeline reads), else are printed as trees; `/metrics` is served on
//! `--metrics-addr`, or, with `OTEL_METRICS_EXPORTER=otlp`, metrics are pushed to the
//! collector instead. SIGINT or SIGTERM stops accepting,
//! finishes the requests in flight and flushes telemetry before exiting.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;

use instrument::cardinality::LabelGuard;
use instrument::pipeline::{
    init_from_env, install_otlp_metrics, install_prometheus, serve_metrics, MetricsConfig,
    PipelineConfig,
};
use instrument::semconv::MetricNames;

struct Args {
    db: PathBuf,
    addr: SocketAddr,
    metrics_addr: SocketAddr,
}

const USAGE: &str =
    "usage: workflow_server [--db PATH] [--addr HOST:PORT] [--metrics-addr HOST:PORT]";

fn parse_args() -> Result<Args, String> {
    let mut args = Args {
        db: std::env::temp_dir().join("instrument-workflows.sqlite3"),
        addr: SocketAddr::from(([127, 0, 0, 1], 50051)),
        metrics_addr: SocketAddr::from(([127, 0, 0, 1], 9464)),
    };
    let mut it = std::env::args().skip(1);
    while let Some(flag) = it.next() {
        let mut value = || {
            it.next()
                .ok_or_else(|| format!("{flag} needs a value\n{USAGE}"))
        };
        match flag.as_str() {
            "--db" => args.db = PathBuf::from(value()?),
            "--addr" => args.addr = value()?.parse().map_err(|e| format!("--addr: {e}"))?,
            "--metrics-addr" => {
                args.metrics_addr = value()?
                    .parse()
                    .map_err(|e| format!("--metrics-addr: {e}"))?
            }
            "-h" | "--help" => return Err(USAGE.to_owned()),
            other => return Err(format!("unknown argument {other:?}\n{USAGE}")),
        }
    }
    Ok(args)
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args = match parse_args() {
        Ok(args) => args,
        Err(e) => {
            eprintln!("{e}");
            std::process::exit(2)
        }
    };
    let telemetry = init_from_env()?;
    // Metrics: pushed over OTLP when OTEL_METRICS_EXPORTER=otlp, else scraped from
    // /metrics (the problems of the environment were logged by init_from_env).
    let (config, _) = PipelineConfig::from_env_lenient();
    let (guard, names) = (LabelGuard::default(), MetricNames::default());
    let (otlp_metrics, handle) = match &config.metrics {
        MetricsConfig::Otlp(_) => (Some(install_otlp_metrics(guard, &names, &config)?), None),
        _ => (None, Some(install_prometheus(guard, &names)?)),
    };
    let store = Arc::new(instrument_examples::workflow::Store::open(&args.db)?);
    // Stuck work: what is pending or running, by age, from the store every 15 s.
    let _outstanding = instrument_examples::workflow::watch_outstanding(
        &store,
        std::time::Duration::from_secs(15),
    );

    let listener = tokio::net::TcpListener::bind(args.addr).await?;
    let metrics_listener = tokio::net::TcpListener::bind(args.metrics_addr).await?;
    let metrics_at = match &handle {
        Some(_) => format!("http://{}/metrics", metrics_listener.local_addr()?),
        None => "OTLP".to_owned(),
    };
    eprintln!(
        "workflow server on {}, metrics on {metrics_at}, database {}",
        listener.local_addr()?,
        args.db.display()
    );

    let (stop, stopped) = tokio::sync::watch::channel(false);
    let metrics = tokio::spawn({
        let mut stopped = stopped.clone();
        async move {
            let shutdown = async move {
                let _ = stopped.wait_for(|s| *s).await;
            };
            match handle {
                Some(handle) => {
                    serve_metrics(metrics_listener, handle, "/metrics", None, shutdown).await
                }
                None => Ok(()),
            }
        }
    });
    let served = instrument_examples::workflow::serve(listener, store, async move {
        instrument_examples::signal().await;
        eprintln!("stopping: finishing requests in flight");
        let _ = stop.send(true);
    })
    .await;
    let _ = metrics.await;
    // Flush spans and metrics whatever happened to the server.
    if let Some(otlp_metrics) = otlp_metrics {
        if let Err(e) = otlp_metrics.shutdown() {
            eprintln!("{e}");
        }
    }
    let flushed = telemetry.shutdown();
    served?;
    flushed?;
    Ok(())
}
