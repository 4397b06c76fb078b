//! The cost of `#[workflow_span]` on a trivial async handler, beside the same handler
//! plain and with `#[tracing::instrument]` + tracing-opentelemetry, in one run.
//!
//! All three export through the same SDK provider (100 % sampling, a simple processor)
//! to an exporter that drops the spans, with a Prometheus recorder installed, so the
//! figures are the spans' and metrics' own cost. `cargo bench --bench workflow_span`.

use std::hint::black_box;

use criterion::{criterion_group, criterion_main, Criterion};
use instrument::workflow_span;
use opentelemetry::trace::TracerProvider as _;
use opentelemetry_sdk::error::OTelSdkResult;
use opentelemetry_sdk::trace::{SdkTracerProvider, SpanData, SpanExporter};
use tracing_subscriber::layer::SubscriberExt as _;

/// Drops every span.
#[derive(Debug)]
struct Discard;

impl SpanExporter for Discard {
    fn export(
        &self,
        batch: Vec<SpanData>,
    ) -> impl std::future::Future<Output = OTelSdkResult> + Send {
        drop(batch);
        std::future::ready(Ok(()))
    }
}

struct Request {
    tenant: String,
    id: String,
}

async fn plain(req: &Request) -> Result<usize, String> {
    Ok(black_box(req.id.len()))
}

#[workflow_span(kind = "task", tenant = req.tenant, id = req.id)]
async fn with_workflow_span(req: &Request) -> Result<usize, String> {
    Ok(black_box(req.id.len()))
}

#[tracing::instrument(skip_all, fields(tenant.id = %req.tenant, task.id = %req.id))]
async fn with_tracing_instrument(req: &Request) -> Result<usize, String> {
    Ok(black_box(req.id.len()))
}

fn handler(c: &mut Criterion) {
    let provider = SdkTracerProvider::builder()
        .with_simple_exporter(Discard)
        .build();
    opentelemetry::global::set_tracer_provider(provider.clone());
    let subscriber = tracing_subscriber::registry()
        .with(tracing_opentelemetry::layer().with_tracer(provider.tracer("bench")));
    tracing::subscriber::set_global_default(subscriber).expect("one subscriber");
    let recorder = metrics_exporter_prometheus::PrometheusBuilder::new().build_recorder();
    metrics::set_global_recorder(recorder).expect("one recorder");

    let rt = tokio::runtime::Builder::new_current_thread()
        .build()
        .expect("runtime");
    let req = Request {
        tenant: "acme".into(),
        id: "task-5f0c2a9e8d1b4c37".into(),
    };
    let mut g = c.benchmark_group("handler");
    g.bench_function("plain", |b| b.iter(|| rt.block_on(plain(&req))));
    g.bench_function("workflow_span", |b| {
        b.iter(|| rt.block_on(with_workflow_span(&req)))
    });
    g.bench_function("tracing_instrument_otel", |b| {
        b.iter(|| rt.block_on(with_tracing_instrument(&req)))
    });
    g.finish();
}

criterion_group!(benches, handler);
criterion_main!(benches);
