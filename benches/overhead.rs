//! What the instrument layers and `#[workflow_span]` cost, beside what a Rust team would
//! otherwise use, in one run (numbers and targets in `benches/README.md`).
//!
//! `request/*` drives a tower `Service<http::Request<_>>` directly on a current-thread
//! runtime, no network: one call, the response body read to the end (which is when the
//! layers finish their spans and metrics). Requests are built outside the timed part
//! (`iter_batched`), so `request/bare`, a trivial service, is the floor.
//!
//! - instrument: each layer alone, then [`InstrumentLayer`] (trace context with a stored
//!   traceparent found through a [`CachedSource`] and an incoming `traceparent` header,
//!   tenant, request metrics, tracking header) exporting through the pipeline's
//!   `TenantProcessor` and `RedactingExporter` to an exporter that drops spans, its
//!   metrics through the label guard into a Prometheus recorder. At 100 % sampling
//!   (`full`) and with a sampled-out parent under `parentbased_traceidratio` 0.01
//!   (`full_sampled_out`), and that under tail bias (`full_sampled_out_tail`).
//! - `alternative`: tower-http's `TraceLayer` whose `make_span` extracts the parent with
//!   opentelemetry's `TraceContextPropagator`, tracing-subscriber, tracing-opentelemetry
//!   and the OTel SDK to the same exporter, and an axum-prometheus-style counter and
//!   histogram (method, endpoint, status) into a plain Prometheus recorder.
//! - `oit`: opentelemetry-instrumentation-tower 0.19's layer (server span, the semantic
//!   conventions' four HTTP server metrics in the SDK's meter provider), the leanest
//!   peer.
//!
//! `handler/*` is a trivial async handler: plain, `#[workflow_span]`,
//! `#[tracing::instrument]` + tracing-opentelemetry, and `#[autometrics]`.
//!
//! `cargo bench --bench overhead` (see `benches/README.md` for the options used).

use std::hint::black_box;

use criterion::{criterion_group, criterion_main, BatchSize, Criterion};
use http::Request;
use instrument::cardinality::LabelGuard;
use instrument::pipeline::prometheus_recorder;
use instrument::semconv::MetricNames;
use instrument::tower::metrics::RequestMetricsLayer;
use instrument::tower::tenant::TenantLayer;
use instrument::tower::trace::TraceLayer;
use metrics::Recorder;
use opentelemetry::trace::TracerProvider as _;
use opentelemetry_sdk::trace::Sampler;
use tower::{Layer, Service};

mod support;
use support::*;

/// Calls `service` once per request built by `make`, reading the response body.
fn bench_service<S>(
    g: &mut criterion::BenchmarkGroup<'_, criterion::measurement::WallTime>,
    name: &str,
    rt: &tokio::runtime::Runtime,
    recorder: &dyn Recorder,
    mut service: S,
    make: impl Fn() -> Request<String>,
) where
    S: Service<Request<String>>,
    S::Response: IntoBody,
    S::Error: std::fmt::Debug,
{
    g.bench_function(name, |b| {
        b.iter_batched(
            &make,
            |request| {
                metrics::with_local_recorder(recorder, || {
                    rt.block_on(serve_once(&mut service, request))
                })
            },
            BatchSize::SmallInput,
        )
    });
}

/// What both request groups record through: the guarded recorder, lasting as a
/// server's (ours), a plain Prometheus recorder (the peers'), and span providers at
/// 100 % and at 1 % sampling.
struct Setup {
    guarded: &'static dyn Recorder,
    plain_recorder: metrics_exporter_prometheus::PrometheusRecorder,
    sampled: opentelemetry_sdk::trace::SdkTracerProvider,
    sampled_out: opentelemetry_sdk::trace::SdkTracerProvider,
}

fn setup() -> Setup {
    let (guarded, _handle) =
        prometheus_recorder(LabelGuard::default(), &MetricNames::default()).expect("recorder");
    Setup {
        guarded: lasting(guarded),
        plain_recorder: metrics_exporter_prometheus::PrometheusBuilder::new().build_recorder(),
        sampled: instrument_provider(Sampler::AlwaysOn),
        sampled_out: instrument_provider(Sampler::TraceIdRatioBased(0.01)),
    }
}

fn request_overhead(c: &mut Criterion) {
    let Setup {
        guarded,
        plain_recorder,
        sampled,
        sampled_out,
    } = setup();
    let _alternative_provider = alternative_subscriber();

    let rt = tokio::runtime::Builder::new_current_thread()
        .build()
        .expect("runtime");
    let with_header = || request(INCOMING);
    let unsampled = || request(INCOMING_UNSAMPLED);

    let mut g = c.benchmark_group("request");
    bench_service(&mut g, "bare", &rt, guarded, bare(), with_header);
    let trace = TraceLayer::new()
        .source(source(STORED))
        .tracer(sampled.tracer("bench"));
    bench_service(
        &mut g,
        "trace_context",
        &rt,
        guarded,
        trace.layer(bare()),
        with_header,
    );
    bench_service(
        &mut g,
        "tenant",
        &rt,
        guarded,
        TenantLayer::new().layer(bare()),
        with_header,
    );
    bench_service(
        &mut g,
        "request_metrics",
        &rt,
        guarded,
        RequestMetricsLayer::new().layer(bare()),
        with_header,
    );
    bench_service(
        &mut g,
        "full",
        &rt,
        guarded,
        full(&sampled, STORED).layer(bare()),
        with_header,
    );
    bench_service(
        &mut g,
        "full_sampled_out",
        &rt,
        guarded,
        full(&sampled_out, STORED_UNSAMPLED).layer(bare()),
        unsampled,
    );
    let alternative = alternative();
    bench_service(
        &mut g,
        "alternative",
        &rt,
        &plain_recorder,
        alternative.clone(),
        with_header,
    );
    bench_service(
        &mut g,
        "alternative_sampled_out",
        &rt,
        &plain_recorder,
        alternative,
        unsampled,
    );
    // The leanest peer: spans and the semantic conventions' HTTP metrics through the
    // SDK's global providers (set here; the handler group sets its own tracer after).
    let _oit_providers = oit_globals();
    bench_service(&mut g, "oit", &rt, &plain_recorder, oit(), with_header);
    bench_service(
        &mut g,
        "oit_sampled_out",
        &rt,
        &plain_recorder,
        oit(),
        unsampled,
    );
    // Last: tail bias, once installed, watches every sampled-out request of the
    // process (the groups after this one make no server spans).
    let tail = instrument_provider_with_tail(Sampler::TraceIdRatioBased(0.01));
    bench_service(
        &mut g,
        "full_sampled_out_tail",
        &rt,
        guarded,
        full(&tail, STORED_UNSAMPLED).layer(bare()),
        unsampled,
    );
    g.finish();
    let _ = tail.shutdown();
    let _ = sampled.shutdown();
    let _ = sampled_out.shutdown();
}

#[autometrics::autometrics]
async fn with_autometrics(task: &Task) -> Result<usize, String> {
    Ok(black_box(task.id.len()))
}

fn handler_overhead(c: &mut Criterion) {
    // `#[workflow_span]` records through the global provider, set up as the pipeline
    // does; `#[tracing::instrument]` through the subscriber installed above.
    opentelemetry::global::set_tracer_provider(instrument_provider(Sampler::AlwaysOn));
    let (guarded, _handle) =
        prometheus_recorder(LabelGuard::default(), &MetricNames::default()).expect("recorder");
    let guarded = lasting(guarded);
    let plain_recorder = metrics_exporter_prometheus::PrometheusBuilder::new().build_recorder();
    let rt = tokio::runtime::Builder::new_current_thread()
        .build()
        .expect("runtime");
    let mut g = c.benchmark_group("handler");
    // A new task (a new id) per call, built outside the timed part.
    let mut n = 0;
    let mut next_task = || {
        n += 1;
        task(n)
    };
    let mut run =
        |name: &str, recorder: &dyn Recorder, f: &dyn Fn(&Task) -> Result<usize, String>| {
            g.bench_function(name, |b| {
                b.iter_batched(
                    &mut next_task,
                    |task| {
                        let out = metrics::with_local_recorder(recorder, || f(&task));
                        (out, task)
                    },
                    BatchSize::SmallInput,
                )
            });
        };
    run("plain", guarded, &|task| rt.block_on(plain(task)));
    run("workflow_span", guarded, &|task| {
        rt.block_on(with_workflow_span(task))
    });
    run("tracing_instrument_otel", &plain_recorder, &|task| {
        rt.block_on(with_tracing_instrument(task))
    });
    run("autometrics", &plain_recorder, &|task| {
        rt.block_on(with_autometrics(task))
    });
    g.finish();
}

/// One outgoing call from a worker's task, the response body read: bare, through the
/// client layer (sampled, and under an unsampled workflow at 1 %), and the usual
/// tracing span + propagator.
fn client_overhead(c: &mut Criterion) {
    let Setup {
        guarded,
        plain_recorder,
        sampled,
        sampled_out,
    } = setup();
    let rt = tokio::runtime::Builder::new_current_thread()
        .build()
        .expect("runtime");
    let under = |stored| task_context(stored);
    let mut g = c.benchmark_group("client");
    let bare_under = Under {
        inner: bare(),
        cx: under(STORED),
    };
    bench_service(&mut g, "bare", &rt, guarded, bare_under, client_request);
    let client = Under {
        inner: instrument_client(&sampled),
        cx: under(STORED),
    };
    bench_service(&mut g, "sampled", &rt, guarded, client, client_request);
    let client = Under {
        inner: instrument_client(&sampled_out),
        cx: under(STORED_UNSAMPLED),
    };
    bench_service(&mut g, "sampled_out", &rt, guarded, client, client_request);
    let usual = Under {
        inner: UsualClient(bare()),
        cx: under(STORED),
    };
    bench_service(&mut g, "usual", &rt, &plain_recorder, usual, client_request);
    let usual = Under {
        inner: UsualClient(bare()),
        cx: under(STORED_UNSAMPLED),
    };
    bench_service(
        &mut g,
        "usual_sampled_out",
        &rt,
        &plain_recorder,
        usual,
        client_request,
    );
    g.finish();
}

criterion_group!(benches, request_overhead, handler_overhead, client_overhead);
criterion_main!(benches);
