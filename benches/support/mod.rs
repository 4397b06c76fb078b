//! What `overhead.rs` (criterion, wall time) and `budgets.rs` (gungraun, instruction
//! counts) both measure: the same stack, the same request, the same exporter.
#![allow(dead_code)] // each benchmark uses its own part

use std::convert::Infallible;
use std::future::Future;
use std::hint::black_box;

use http::{Request, Response};
use http_body_util::BodyExt as _;
use instrument::pipeline::{MissingTenant, RedactingProcessor, TenantProcessor};
use instrument::redact::Redactor;
use instrument::tenant::TenantId;
use instrument::tower::source::{CachedSource, SourceError, StoredTrace, TraceSource};
use instrument::tower::stack::InstrumentLayer;
use metrics::{Key, Label};
use opentelemetry::trace::TracerProvider as _;
use opentelemetry_sdk::error::OTelSdkResult;
use opentelemetry_sdk::trace::{
    ParentBasedSampler, Sampler, SdkTracerProvider, SimpleSpanProcessor, SpanData, SpanExporter,
};
use tower::Service;

/// Drops every span: the figures are the spans' own cost, not an exporter's.
#[derive(Debug)]
pub struct Discard;

impl SpanExporter for Discard {
    fn export(&self, batch: Vec<SpanData>) -> impl Future<Output = OTelSdkResult> + Send {
        drop(batch);
        std::future::ready(Ok(()))
    }
}

/// The stored trace of workflow `wf-1`, sampled.
pub const STORED: &str = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";
/// The caller's context, sampled.
pub const INCOMING: &str = "00-4bf92f3577b34da6a3ce929d0e0e4736-a3ce929d0e0e4736-01";
/// The same two, not sampled.
pub const STORED_UNSAMPLED: &str = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-00";
pub const INCOMING_UNSAMPLED: &str = "00-0af7651916cd43dd8448eb211c80319c-00f067aa0ba902b7-00";

/// A source whose every lookup is answered from the cache in front of it.
pub struct Unreachable;

impl TraceSource for Unreachable {
    type Lookup = std::future::Ready<Result<Option<StoredTrace>, SourceError>>;

    fn lookup(&self, _: &str) -> Self::Lookup {
        std::future::ready(Err("not cached".into()))
    }
}

pub fn source(traceparent: &str) -> CachedSource<Unreachable> {
    let source = CachedSource::new(Unreachable);
    let tenant = TenantId::parse("acme").expect("valid tenant");
    source.insert("wf-1", StoredTrace::new(tenant, Some(traceparent)));
    source
}

/// A task-server call about workflow `wf-1` of tenant `acme`.
pub fn request(traceparent: &str) -> Request<String> {
    Request::post("/workflows/wf-1/tasks")
        .header("traceparent", traceparent)
        .header("x-tenant-id", "acme")
        .header("x-workflow-id", "wf-1")
        .header("content-type", "application/json")
        .header("user-agent", "bench/1.0")
        .body(r#"{"task_type":"charge"}"#.to_owned())
        .expect("valid request")
}

/// The trivial service every stack wraps.
pub async fn handle(request: Request<String>) -> Result<Response<String>, Infallible> {
    Ok(Response::new(black_box(request.into_body())))
}

pub fn bare(
) -> impl Service<Request<String>, Response = Response<String>, Error = Infallible> + Clone {
    tower::service_fn(handle)
}

/// Spans through the pipeline's processors, as `pipeline::init` chains them.
pub fn instrument_provider(sampler: Sampler) -> SdkTracerProvider {
    let processor = TenantProcessor::new(
        MissingTenant::MarkMissing,
        RedactingProcessor::new(Redactor::default(), SimpleSpanProcessor::new(Discard)),
    );
    SdkTracerProvider::builder()
        .with_sampler(ParentBasedSampler::new(sampler))
        .with_span_processor(processor)
        .build()
}

/// The full instrument stack (source with `stored`, spans through `provider`).
pub fn full(
    provider: &SdkTracerProvider,
    stored: &str,
) -> InstrumentLayer<CachedSource<Unreachable>> {
    InstrumentLayer::builder()
        .source(source(stored))
        .tracer(provider.tracer("bench"))
        .build()
}

/// One call of `service` (after `poll_ready`), its response body read to the end.
pub async fn serve_once<S>(service: &mut S, request: Request<String>) -> usize
where
    S: Service<Request<String>>,
    S::Response: IntoBody,
    S::Error: std::fmt::Debug,
{
    std::future::poll_fn(|cx| service.poll_ready(cx))
        .await
        .expect("ready");
    let response = service.call(request).await.expect("response");
    response.read_body().await
}

/// A response whose body the benchmark reads to the end.
pub trait IntoBody {
    fn read_body(self) -> impl Future<Output = usize>;
}

impl<B: http_body::Body> IntoBody for Response<B> {
    async fn read_body(self) -> usize {
        match self.into_body().collect().await {
            Ok(body) => body.to_bytes().len(),
            Err(_) => 0,
        }
    }
}

/// 64 bytes with nothing to mask (the common attribute value).
pub const CLEAN_64B: &str = "order-fulfilment step 3 of 7 completed for queue default-eu-west";

/// The request counter's key for one tenant, route and status (three labels).
pub fn requests_key() -> Key {
    Key::from_parts(
        "instrument_requests_total",
        vec![
            Label::new("tenant_id", "acme"),
            Label::new("route", "/v1/x"),
            Label::new("status", "2xx"),
        ],
    )
}

/// `recorder` for the rest of the program, declared lasting so that the layers and
/// `#[workflow_span]` keep their metric handles for it, as they do for the recorder
/// `pipeline::install_prometheus` installs in a real server.
pub fn lasting<R: metrics::Recorder + 'static>(recorder: R) -> &'static R {
    let recorder: &'static R = Box::leak(Box::new(recorder));
    assert!(instrument::cardinality::keep_handles_for(recorder));
    recorder
}
