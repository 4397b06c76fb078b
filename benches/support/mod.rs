//! What `overhead.rs` (criterion, wall time) and `budgets.rs` (gungraun, instruction
//! counts) both measure: the same stack, the same request, the same exporter.
#![allow(dead_code)] // each benchmark uses its own part

mod usual_stack;

use std::convert::Infallible;
use std::future::Future;
use std::hint::black_box;

use http::{Request, Response};
use http_body_util::BodyExt as _;
use instrument::pipeline::{MissingTenant, RedactingExporter, TenantExporter, TenantProcessor};
use instrument::redact;
use instrument::tenant::TenantId;
use instrument::tower::source::{CachedSource, SourceError, StoredTrace, TraceSource};
use instrument::tower::stack::InstrumentLayer;
use instrument::workflow_span;
use metrics::{Key, Label};
use opentelemetry::propagation::TextMapPropagator as _;
use opentelemetry::trace::TracerProvider as _;
use opentelemetry_sdk::error::OTelSdkResult;
use opentelemetry_sdk::propagation::TraceContextPropagator;
use opentelemetry_sdk::trace::{
    ParentBasedSampler, Sampler, SdkTracerProvider, SimpleSpanProcessor, SpanData, SpanExporter,
};
use tower::Service;
use tracing_opentelemetry::OpenTelemetrySpanExt as _;
use tracing_subscriber::layer::SubscriberExt as _;
use usual_stack::{Headers, PrometheusMetrics};

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
        // As every HTTP/1.1 request carries (an HTTP/2 one carries `:authority`).
        .header("host", "workflows.internal:8080")
        // The connection's other end, as hyper, tonic (`TcpConnectInfo`) and axum
        // (`ConnectInfo`) put it in every request's extensions.
        .extension(std::net::SocketAddr::from(([10, 1, 2, 3], 48_512)))
        .body(r#"{"task_type":"charge"}"#.to_owned())
        .expect("valid request")
}

/// [`request`] from a caller that sent no trace context, about no stored workflow: the
/// request starts a trace (the root path of a service at the edge).
pub fn root_request() -> Request<String> {
    let mut request = request(INCOMING);
    request.headers_mut().remove("traceparent");
    request.headers_mut().remove("x-workflow-id");
    request
}

/// The trivial service every stack wraps. It answers as real handlers do, with a
/// `content-type` (tonic's `application/grpc`, axum's `text/plain` for a `String`), so
/// a layer adding a response header finds the header map made, as it does in a server.
pub async fn handle(request: Request<String>) -> Result<Response<String>, Infallible> {
    let mut response = Response::new(black_box(request.into_body()));
    response.headers_mut().insert(
        http::header::CONTENT_TYPE,
        http::HeaderValue::from_static("application/json"),
    );
    Ok(response)
}

pub fn bare(
) -> impl Service<Request<String>, Response = Response<String>, Error = Infallible> + Clone {
    tower::service_fn(handle)
}

/// Spans through the pipeline's processors, as `pipeline::init` chains them (its
/// redactor the process-wide one, as `#[workflow_span]`'s is), exported on the calling
/// thread so that what the export does is counted with the request: the tenant check
/// and the redaction `pipeline::init` runs on its batch's thread.
pub fn instrument_provider(sampler: Sampler) -> SdkTracerProvider {
    let processor = TenantProcessor::stamping(export());
    SdkTracerProvider::builder()
        .with_sampler(ParentBasedSampler::new(sampler))
        .with_span_processor(processor)
        .build()
}

/// The pipeline's export (the tenant checked, then redaction), on the calling thread.
fn export() -> SimpleSpanProcessor<TenantExporter<RedactingExporter<Discard>>> {
    SimpleSpanProcessor::new(TenantExporter::new(
        MissingTenant::MarkMissing,
        RedactingExporter::new(redact::global().clone(), Discard),
    ))
}

/// [`instrument_provider`] with tail bias (failed or slower than a second), installed
/// for the layers, as `pipeline::init` sets it up when `INSTRUMENT_TAIL_*` ask for it.
pub fn instrument_provider_with_tail(sampler: Sampler) -> SdkTracerProvider {
    let tail = instrument::sampling::TailBias::default()
        .errors(true)
        .slow(std::time::Duration::from_secs(1))
        .start();
    let processor = TenantProcessor::stamping(tail.processor(export()));
    let provider = SdkTracerProvider::builder()
        .with_sampler(tail.sampler(ParentBasedSampler::new(sampler)))
        .with_id_generator(instrument::pipeline::PresetIdGenerator::default())
        .with_span_processor(processor)
        .build();
    tail.install();
    provider
}

/// The full instrument stack (source with `stored`, spans through `provider`, whose
/// sampler is parent-based, as `instrument_provider` makes it and `pipeline::init`
/// installs it).
pub fn full(
    provider: &SdkTracerProvider,
    stored: &str,
) -> InstrumentLayer<CachedSource<Unreachable>> {
    InstrumentLayer::builder()
        .source(source(stored))
        .parent_based_tracer(provider.tracer("bench"))
        .build()
}

/// [`full`], its tracer's sampler told as `pipeline::init`'s provider tells it: the
/// SDK's default, parent-based, every root sampled (`provider` samples so).
pub fn full_sampling_roots(
    provider: &SdkTracerProvider,
    stored: &str,
) -> InstrumentLayer<CachedSource<Unreachable>> {
    InstrumentLayer::builder()
        .source(source(stored))
        .tracer_sampled_by(
            provider.tracer("bench"),
            instrument::pipeline::SamplerConfig::ParentBasedAlwaysOn,
        )
        .build()
}

/// The SDK as teams set it up: its own sampler, no processors of ours.
fn plain_provider() -> SdkTracerProvider {
    SdkTracerProvider::builder()
        .with_simple_exporter(Discard)
        .build()
}

/// What teams use today: tower-http's `TraceLayer` whose `make_span` extracts the
/// parent with opentelemetry's `TraceContextPropagator` (spans through a global
/// tracing subscriber with tracing-opentelemetry, see [`alternative_subscriber`]), and
/// axum-prometheus's counter and histogram.
pub fn alternative(
) -> impl Service<Request<String>, Response = Response<impl http_body::Body>, Error = Infallible> + Clone
{
    tower::ServiceBuilder::new()
        .layer(
            tower_http::trace::TraceLayer::new_for_http().make_span_with(
                |request: &Request<String>| {
                    let parent = TraceContextPropagator::new().extract(&Headers(request.headers()));
                    let span = tracing::info_span!(
                        "request",
                        http.request.method = %request.method(),
                        url.path = %request.uri().path(),
                    );
                    let _ = span.set_parent(parent);
                    span
                },
            ),
        )
        .layer_fn(PrometheusMetrics)
        .service(bare())
}

/// opentelemetry-instrumentation-tower 0.19's server layer (span and the four HTTP
/// server metrics of the semantic conventions) over [`handle`], through the global
/// providers [`oit_globals`] sets.
pub fn oit(
) -> impl Service<Request<String>, Response = Response<String>, Error = Infallible> + Clone {
    use tower::Layer as _;
    opentelemetry_instrumentation_tower::http::server::LayerBuilder::builder()
        .build()
        .expect("default layer")
        .layer(tower::service_fn(handle))
}

/// The global tracer provider (the SDK to [`Discard`]), meter provider (aggregating,
/// exported every 60 s into nothing) and W3C propagator that
/// opentelemetry-instrumentation-tower reads. Returns the providers (keep them alive).
pub fn oit_globals() -> (
    SdkTracerProvider,
    opentelemetry_sdk::metrics::SdkMeterProvider,
) {
    opentelemetry::global::set_text_map_propagator(TraceContextPropagator::new());
    let tracer = plain_provider();
    opentelemetry::global::set_tracer_provider(tracer.clone());
    let meter = opentelemetry_sdk::metrics::SdkMeterProvider::builder()
        .with_reader(opentelemetry_sdk::metrics::PeriodicReader::builder(DiscardMetrics).build())
        .build();
    opentelemetry::global::set_meter_provider(meter.clone());
    (tracer, meter)
}

/// Drops every metric export.
#[derive(Debug)]
struct DiscardMetrics;

impl opentelemetry_sdk::metrics::exporter::PushMetricExporter for DiscardMetrics {
    fn export(
        &self,
        _: &opentelemetry_sdk::metrics::data::ResourceMetrics,
    ) -> impl Future<Output = OTelSdkResult> + Send {
        std::future::ready(Ok(()))
    }

    fn force_flush(&self) -> OTelSdkResult {
        Ok(())
    }

    fn shutdown_with_timeout(&self, _: std::time::Duration) -> OTelSdkResult {
        Ok(())
    }

    fn temporality(&self) -> opentelemetry_sdk::metrics::Temporality {
        opentelemetry_sdk::metrics::Temporality::Cumulative
    }
}

/// Installs the alternative's global subscriber: tracing-opentelemetry over the SDK
/// as [`plain_provider`] sets it up. Returns the provider (keep it alive).
pub fn alternative_subscriber() -> SdkTracerProvider {
    let provider = plain_provider();
    let subscriber = tracing_subscriber::registry()
        .with(tracing_opentelemetry::layer().with_tracer(provider.tracer("alternative")));
    tracing::subscriber::set_global_default(subscriber).expect("one subscriber");
    provider
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

/// What a task handler is called with.
pub struct Task {
    pub tenant: String,
    pub id: String,
}

/// The `n`th task the handler benchmarks call with: each has an id of its own, as a
/// real task does, so an id is scanned by the redactor once per call, not found in
/// its memo of clean values. (Eight varying hex digits after an `e`: never the
/// nine-digit run a card or SSN check starts from.)
pub fn task(n: u32) -> Task {
    Task {
        tenant: "acme".into(),
        id: format!("task-5f0c2a9e{:08x}", n.wrapping_mul(0x9e37_79b9)),
    }
}

pub async fn plain(task: &Task) -> Result<usize, String> {
    Ok(black_box(task.id.len()))
}

#[workflow_span(kind = "task", tenant = task.tenant, id = task.id)]
pub async fn with_workflow_span(task: &Task) -> Result<usize, String> {
    Ok(black_box(task.id.len()))
}

#[tracing::instrument(skip_all, fields(tenant.id = %task.tenant, task.id = %task.id))]
pub async fn with_tracing_instrument(task: &Task) -> Result<usize, String> {
    Ok(black_box(task.id.len()))
}

/// 64 bytes with nothing to mask (the common attribute value).
pub const CLEAN_64B: &str = "order-fulfilment step 3 of 7 completed for queue default-eu-west";
/// Another clean 64-byte value, to warm a redactor without remembering `CLEAN_64B`.
pub const CLEAN_64B_OTHER: &str =
    "order-fulfilment step 4 of 7 completed for queue default-us-east";

/// `n` different clean 64-byte values shaped like [`CLEAN_64B`] (its last four
/// letters varied): cycled through, each is scanned as if seen for the first time,
/// since the redactor's memo of clean values holds far fewer.
pub fn clean_64b_values(n: usize) -> Vec<String> {
    (0..n)
        .map(|i| {
            let tail: String = (0..4)
                .map(|d| char::from(b'a' + (i / 26usize.pow(d) % 26) as u8))
                .collect();
            format!("{}{tail}", &CLEAN_64B[..60])
        })
        .collect()
}

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

// --- Outgoing calls -------------------------------------------------------------------

/// An outgoing call a worker makes to another service of its own.
pub fn client_request() -> Request<String> {
    Request::post("http://billing.internal:8080/charges")
        .header("content-type", "application/json")
        .body(r#"{"amount":42}"#.to_owned())
        .expect("valid request")
}

/// The context a worker's call is made in: a task of tenant acme in the workflow's
/// trace (`STORED`, or `STORED_UNSAMPLED`).
pub fn task_context(stored: &str) -> opentelemetry::Context {
    let tenant = TenantId::parse("acme").expect("valid tenant");
    instrument::tenant::with_tenant(
        &instrument::context::restore(Some(stored)).to_context(),
        tenant,
    )
}

/// `inner` called with `cx` as the current context (where a client layer reads its
/// parent and tenant).
#[derive(Clone)]
pub struct Under<S> {
    pub inner: S,
    pub cx: opentelemetry::Context,
}

impl<S: Service<R>, R> Service<R> for Under<S> {
    type Response = S::Response;
    type Error = S::Error;
    type Future = S::Future;

    fn poll_ready(
        &mut self,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Result<(), S::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, request: R) -> S::Future {
        let _attached = self.cx.clone().attach();
        self.inner.call(request)
    }
}

/// The instrument client layer over the trivial service, spans through `provider`.
pub fn instrument_client(
    provider: &SdkTracerProvider,
) -> instrument::tower::client::Client<
    impl Service<Request<String>, Response = Response<String>, Error = Infallible> + Clone,
> {
    use tower::Layer as _;
    instrument::tower::client::ClientLayer::new()
        .parent_based_tracer(provider.tracer("bench"))
        .layer(bare())
}

/// How teams instrument an outgoing call today (reqwest-tracing's way): a tracing span
/// (`otel.kind = client`, method, URL) through tracing-opentelemetry, the context
/// injected with opentelemetry's `TraceContextPropagator`, the call's future
/// instrumented with the span.
#[derive(Clone)]
pub struct UsualClient<S>(pub S);

struct HeaderInjector<'a>(&'a mut http::HeaderMap);

impl opentelemetry::propagation::Injector for HeaderInjector<'_> {
    fn set(&mut self, key: &str, value: String) {
        if let (Ok(name), Ok(value)) = (
            http::HeaderName::from_bytes(key.as_bytes()),
            http::HeaderValue::from_str(&value),
        ) {
            self.0.insert(name, value);
        }
    }
}

impl<S> Service<Request<String>> for UsualClient<S>
where
    S: Service<Request<String>>,
    S::Future: 'static,
{
    type Response = S::Response;
    type Error = S::Error;
    type Future = std::pin::Pin<Box<dyn Future<Output = Result<S::Response, S::Error>>>>;

    fn poll_ready(
        &mut self,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Result<(), S::Error>> {
        self.0.poll_ready(cx)
    }

    fn call(&mut self, mut request: Request<String>) -> Self::Future {
        use tracing::Instrument as _;
        let method = request.method().clone();
        let span = tracing::info_span!(
            "HTTP request",
            otel.kind = "client",
            otel.name = %method,
            http.request.method = %method,
            url.full = %request.uri(),
            http.response.status_code = tracing::field::Empty,
        );
        let cx = span.context();
        TraceContextPropagator::new()
            .inject_context(&cx, &mut HeaderInjector(request.headers_mut()));
        let call = self.0.call(request);
        Box::pin(call.instrument(span))
    }
}
