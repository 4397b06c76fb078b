//! Client spans for outgoing requests: [`ClientLayer`], for tonic channels and hyper
//! (or any `http`-based) clients.
//!
//! For every request it sends, the layer
//! - starts a client span (`SpanKind::Client`) under the current context: for gRPC
//!   named `package.Service/Method` with the RPC conventions' attributes, for HTTP
//!   named by the method with `http.request.method`, `url.full` (redacted, at most
//!   2 KiB) and `server.address` / `server.port` (from the request's URI or `Host`;
//!   build a tonic client with `with_origin(service, uri)` so its requests carry the
//!   server's address: `new(service)` sends only the path);
//! - writes `traceparent`, `tracestate` and `baggage` from the span's context (the
//!   toolkit's W3C rules, see
//!   [`inject_outgoing`]), so the callee
//!   continues the trace, sampled or not;
//! - forwards the context's tenant as `x-tenant-id`, unless the request carries that
//!   header already ([`forward_tenant(false)`](ClientLayer::forward_tenant) for calls
//!   to third parties);
//! - ends the span when the response body ends: the gRPC status from the trailers (or a
//!   trailers-only response), the HTTP status from the head. For a client, an HTTP
//!   status of 400 or more and any gRPC status but `OK` is a failure (`error.type`,
//!   span status error);
//! - records the call's duration (`http_client_request_duration_seconds` or
//!   `rpc_client_call_duration_seconds`, see
//!   [`ClientMeasures`]);
//! - when the caller drops the call before its end, ends the span with
//!   `instrument.cancelled=true` and counts the call as `error_type="cancelled"`.
//!
//! A span that is not sampled costs no attributes: the context is still injected (with
//! the sampled flag off) and the metric still recorded. Under an unsampled parent, with
//! a tracer whose sampler follows the parent (the provider `pipeline::init` installed
//! with a parent-based sampler, or one given with
//! [`parent_based_tracer`](ClientLayer::parent_based_tracer) or
//! [`tracer_sampled_by`](ClientLayer::tracer_sampled_by)), the layer starts no span at
//! all: it sends the context of the span the tracer would have dropped.
//!
//! Put the layer inside a retry layer, so each attempt is its own span:
//!
//! ```
//! use instrument_tower::client::ClientLayer;
//! use tower::ServiceBuilder;
//!
//! # fn wrap<S>(channel: S) -> instrument_tower::client::Client<S> {
//! // `channel` is a tonic `Channel`, a hyper client, ...
//! let client = ServiceBuilder::new()
//!     // .retry(policy)            // outside: one span per attempt
//!     .layer(ClientLayer::new())
//!     .service(channel);
//! # client }
//! ```
//!
//! Where a layer cannot be used (a tonic interceptor), call
//! [`inject_outgoing`] with the current
//! context: the trace context and tenant go out, without a client span.

use std::borrow::Cow;
use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{ready, Context as TaskContext, Poll};
use std::time::Instant;

use http::uri::{Authority, Scheme};
use http::{HeaderName, HeaderValue, Request, Response};
use http_body::Body;
use instrument_core::context::{
    child_context, inject_outgoing, TRACEPARENT_HEADER, TRACESTATE_HEADER,
};
use instrument_core::measure::{ClientLabels, ClientMeasures, Ended};
use instrument_core::redact::Redactor;
use instrument_core::semconv::{
    MetricNames, RpcConventions, CANCELLED, ERROR_TYPE, HTTP_REQUEST_METHOD,
    HTTP_REQUEST_METHOD_ORIGINAL, HTTP_RESPONSE_STATUS_CODE, MAX_ERROR_LEN, MAX_ORIGINAL_LEN,
    OTHER, RPC_GRPC_STATUS_CODE, RPC_METHOD, RPC_RESPONSE_STATUS_CODE, RPC_SERVICE, RPC_SYSTEM,
    RPC_SYSTEM_NAME, SERVER_ADDRESS, SERVER_PORT, TENANT_HEADER, URL_FULL,
};
use instrument_core::tenant::tenant_from;
use opentelemetry::trace::{Span as _, SpanKind, Status, TraceContextExt as _, Tracer as _};
use opentelemetry::{Context, KeyValue};
use pin_project::{pin_project, pinned_drop};
use tower::{Layer, Service};
use tower_http::classify::{NeverClassifyEos, ServerErrorsFailureClass};

use crate::body::{Head, Observe, Outcome};
use crate::classify::Verdict;
use crate::names::cut;
use crate::protocol::{grpc_code_name, grpc_service_method, Protocol};
use crate::request::{method_label, TRACEPARENT, TRACESTATE};
use crate::trace::later_attributes;
use crate::tracer::LayerTracer;

/// The longest `url.full` recorded, in bytes.
const MAX_URL_LEN: usize = 2048;

/// The client layer (see the [module docs](self)).
#[derive(Clone)]
pub struct ClientLayer {
    config: Arc<ClientConfig>,
}

#[derive(Clone)]
struct ClientConfig {
    tracer: LayerTracer,
    forward_tenant: bool,
    tenant_header: HeaderName,
    measures: Option<ClientMeasures>,
    redactor: Option<Redactor>,
    rpc: Option<RpcConventions>,
}

impl fmt::Debug for ClientLayer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ClientLayer")
            .field("forward_tenant", &self.config.forward_tenant)
            .field("tenant_header", &self.config.tenant_header)
            .field("metrics", &self.config.measures.is_some())
            .finish_non_exhaustive()
    }
}

impl Default for ClientLayer {
    fn default() -> Self {
        Self::new()
    }
}

impl ClientLayer {
    /// Client spans from the global tracer provider, the tenant forwarded as
    /// `x-tenant-id`, durations under the process-wide
    /// [`MetricNames`](MetricNames::global), the process-wide redactor.
    pub fn new() -> Self {
        Self {
            config: Arc::new(ClientConfig {
                tracer: LayerTracer::default(),
                forward_tenant: true,
                tenant_header: HeaderName::from_static(TENANT_HEADER),
                measures: Some(ClientMeasures::new(MetricNames::global())),
                redactor: None,
                rpc: None,
            }),
        }
    }

    fn config_mut(&mut self) -> &mut ClientConfig {
        Arc::make_mut(&mut self.config)
    }

    /// Starts the spans with `tracer` instead of the global provider's.
    pub fn tracer<T>(mut self, tracer: T) -> Self
    where
        T: opentelemetry::trace::Tracer + Send + Sync + 'static,
        T::Span: opentelemetry::trace::Span + Send + Sync + 'static,
    {
        self.config_mut().tracer = LayerTracer::of(tracer);
        self
    }

    /// Starts the spans with `tracer`, whose sampler drops every span whose parent was
    /// not sampled (OpenTelemetry's parent-based samplers): under such a parent the
    /// layer starts no span, only the context the callee is sent (its ids and the
    /// parent's flags), without asking the tracer. Only the SDK's own tracer is taken at
    /// its word. The provider `pipeline::init` installed needs no call: the layer knows
    /// its sampler. See
    /// [`TraceLayer::parent_based_tracer`](crate::trace::TraceLayer::parent_based_tracer).
    pub fn parent_based_tracer<T>(mut self, tracer: T) -> Self
    where
        T: opentelemetry::trace::Tracer + Send + Sync + 'static,
        T::Span: opentelemetry::trace::Span + Send + Sync + 'static,
    {
        self.config_mut().tracer = LayerTracer::of_parent_based(tracer);
        self
    }

    /// Starts the spans with the SDK's `tracer`, whose provider samples by `sampler`:
    /// the shortcuts of [`parent_based_tracer`](Self::parent_based_tracer) when the
    /// sampler follows its parent, and a root call's attributes given to its span as it
    /// starts when every root is sampled. See
    /// [`TraceLayer::tracer_sampled_by`](crate::trace::TraceLayer::tracer_sampled_by).
    ///
    /// ```
    /// use instrument_core::pipeline::SamplerConfig;
    /// use instrument_tower::client::ClientLayer;
    /// use opentelemetry::trace::TracerProvider as _;
    /// use opentelemetry_sdk::trace::SdkTracerProvider;
    ///
    /// let sampler = SamplerConfig::ParentBasedTraceIdRatio(0.01);
    /// let provider = SdkTracerProvider::builder()
    ///     .with_sampler(sampler.sampler())
    ///     .build();
    /// let layer = ClientLayer::new().tracer_sampled_by(provider.tracer("client"), sampler);
    /// # let _ = layer;
    /// ```
    #[cfg(feature = "sdk")]
    pub fn tracer_sampled_by(
        mut self,
        tracer: opentelemetry_sdk::trace::SdkTracer,
        sampler: instrument_core::pipeline::SamplerConfig,
    ) -> Self {
        self.config_mut().tracer = LayerTracer::sampled_by(tracer, sampler);
        self
    }

    /// Whether the context's tenant goes out as the tenant header (default `true`).
    /// Turn it off for calls to third parties.
    pub fn forward_tenant(mut self, forward: bool) -> Self {
        self.config_mut().forward_tenant = forward;
        self
    }

    /// The header the tenant is forwarded in (default `x-tenant-id`).
    pub fn tenant_header(mut self, name: HeaderName) -> Self {
        self.config_mut().tenant_header = name;
        self
    }

    /// Names the duration metrics after `names`.
    pub fn metric_names(mut self, names: &MetricNames) -> Self {
        self.config_mut().measures = Some(ClientMeasures::new(names));
        self
    }

    /// Renamed [`metric_names`](Self::metric_names), as on every builder.
    #[deprecated(since = "0.1.0", note = "renamed `metric_names`")]
    pub fn names(self, names: &MetricNames) -> Self {
        self.metric_names(names)
    }

    /// Records no metrics, spans only.
    pub fn without_metrics(mut self) -> Self {
        self.config_mut().measures = None;
        self
    }

    /// Redacts `url.full` and error texts with `redactor` instead of the process-wide one.
    pub fn redactor(mut self, redactor: Redactor) -> Self {
        self.config_mut().redactor = Some(redactor);
        self
    }

    /// Which RPC conventions gRPC spans follow (default: as
    /// `OTEL_SEMCONV_STABILITY_OPT_IN` says, see [`RpcConventions::global`]).
    pub fn rpc_conventions(mut self, rpc: RpcConventions) -> Self {
        self.config_mut().rpc = Some(rpc);
        self
    }
}

impl ClientConfig {
    fn tracer(&self) -> &LayerTracer {
        self.tracer.get()
    }

    fn redactor(&self) -> &Redactor {
        self.redactor
            .as_ref()
            .unwrap_or_else(|| instrument_core::redact::global())
    }
}

impl<S> Layer<S> for ClientLayer {
    type Service = Client<S>;

    fn layer(&self, inner: S) -> Client<S> {
        Client {
            inner,
            config: Arc::clone(&self.config),
        }
    }
}

/// The service [`ClientLayer`] builds.
#[derive(Clone)]
pub struct Client<S> {
    inner: S,
    config: Arc<ClientConfig>,
}

inner_service_accessors!(Client<S>);

/// The response body of [`Client`]: the inner body, which ends the client span when it
/// ends.
pub type ResponseBody<B> =
    crate::body::ResponseBody<B, CallEnd, NeverClassifyEos<ServerErrorsFailureClass>>;

impl<S, ReqB, ResB> Service<Request<ReqB>> for Client<S>
where
    S: Service<Request<ReqB>, Response = Response<ResB>>,
    S::Error: fmt::Display,
    ResB: Body,
{
    type Response = Response<ResponseBody<ResB>>;
    type Error = S::Error;
    type Future = ResponseFuture<S::Future>;

    fn poll_ready(&mut self, cx: &mut TaskContext<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, mut request: Request<ReqB>) -> Self::Future {
        let end = CallEnd::start(&self.config, &mut request);
        ResponseFuture {
            inner: self.inner.call(request),
            end: Some(end),
        }
    }
}

/// The future of [`Client`]: the inner future; dropped before the response, it ends
/// the span as cancelled.
#[pin_project(PinnedDrop)]
pub struct ResponseFuture<F> {
    #[pin]
    inner: F,
    end: Option<CallEnd>,
}

impl<F> fmt::Debug for ResponseFuture<F> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ResponseFuture")
            .field("finished", &self.end.is_none())
            .finish_non_exhaustive()
    }
}

impl<F, B, E> Future for ResponseFuture<F>
where
    F: Future<Output = Result<Response<B>, E>>,
    E: fmt::Display,
    B: Body,
{
    type Output = Result<Response<ResponseBody<B>>, E>;

    fn poll(self: Pin<&mut Self>, cx: &mut TaskContext<'_>) -> Poll<Self::Output> {
        let this = self.project();
        let result = ready!(this.inner.poll(cx));
        let Some(end) = this.end.take() else {
            // Polled after completion: pass the inner future's answer on, unobserved.
            return Poll::Ready(result.map(ResponseBody::unobserved));
        };
        Poll::Ready(match result {
            Ok(response) => {
                let head = Head::of(end.protocol, &response);
                Ok(ResponseBody::wrap(
                    response,
                    head,
                    Verdict::Decided(None),
                    end,
                ))
            }
            Err(error) => {
                end.finish(&Outcome::Failed(error.to_string()));
                Err(error)
            }
        })
    }
}

#[pinned_drop]
impl<F> PinnedDrop for ResponseFuture<F> {
    fn drop(self: Pin<&mut Self>) {
        if let Some(end) = self.project().end.take() {
            end.finish(&Outcome::Cancelled);
        }
    }
}

/// One outgoing call being watched: its span, and what its metric is labelled with.
/// Told once how the call ended.
pub struct CallEnd {
    cx: Context,
    protocol: Protocol,
    started: Instant,
    config: Arc<ClientConfig>,
    rpc: RpcConventions,
    target: Target,
    address: Option<Authority>,
    port: Option<u16>,
}

/// What a call is for: the HTTP method label, or the gRPC path (`None` when it does not
/// have the `/package.Service/Method` shape).
#[derive(Debug, Clone)]
enum Target {
    Http(&'static str),
    Grpc(Option<http::uri::PathAndQuery>),
}

impl Target {
    /// gRPC service and method, `_OTHER` for a path of another shape.
    fn service_method(&self) -> (&str, &str) {
        match self {
            Self::Grpc(Some(path)) => grpc_service_method(path.path()).unwrap_or((OTHER, OTHER)),
            Self::Grpc(None) => (OTHER, OTHER),
            Self::Http(method) => (method, ""),
        }
    }
}

impl fmt::Debug for CallEnd {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("CallEnd")
            .field("protocol", &self.protocol)
            .field("target", &self.target)
            .finish_non_exhaustive()
    }
}

impl CallEnd {
    /// Starts the span of `request` under the current context and writes the outgoing
    /// headers.
    fn start<B>(config: &Arc<ClientConfig>, request: &mut Request<B>) -> Self {
        let started = Instant::now();
        let protocol = Protocol::of(request);
        let parent = Context::current();
        let rpc = config.rpc.unwrap_or_else(RpcConventions::global);
        let address = request.uri().authority().cloned().or_else(|| {
            request
                .headers()
                .get(http::header::HOST)
                .and_then(|host| host.to_str().ok())
                .and_then(|host| host.parse().ok())
        });
        // The scheme's port when the authority names none; nothing without an authority
        // (a tonic client built without `with_origin` sends only the path).
        let https = request.uri().scheme() == Some(&Scheme::HTTPS);
        let port = address
            .as_ref()
            .map(|a| a.port_u16().unwrap_or(if https { 443 } else { 80 }));
        // gRPC's service and method, read once: the span name (when a span is started)
        // is made from them; the target keeps the path for the metric's labels.
        let grpc = (protocol == Protocol::Grpc)
            .then(|| grpc_service_method(request.uri().path()))
            .flatten();
        let target = match protocol {
            Protocol::Grpc => {
                Target::Grpc(grpc.and_then(|_| request.uri().path_and_query().cloned()))
            }
            Protocol::Http => Target::Http(method_label(request.method())),
        };
        let tracer = config.tracer();
        let cx = match unsampled_context(tracer, &parent) {
            Some(cx) => cx,
            None => {
                let name: Cow<'static, str> = match (&target, grpc) {
                    (Target::Grpc(_), Some((service, method))) => {
                        Cow::Owned(format!("{service}/{method}"))
                    }
                    (Target::Grpc(_), None) => Cow::Borrowed(OTHER),
                    (Target::Http(method), _) => {
                        Cow::Borrowed(if *method == OTHER { "HTTP" } else { method })
                    }
                };
                let attributes = || {
                    start_attributes(
                        config,
                        rpc,
                        protocol,
                        request,
                        grpc.unwrap_or_else(|| target.service_method()),
                        address.as_ref(),
                        port,
                    )
                };
                // As a server span's (`trace::span::start`): under a sampled parent the
                // span is almost surely recorded, and so is a root under a sampler known
                // to sample every root; its attributes go to the builder, in the vector
                // the span keeps. Otherwise they are made once the sampler chose to
                // record it.
                let likely_recorded = {
                    let span = parent.span();
                    let sc = span.span_context();
                    if sc.is_valid() {
                        sc.is_sampled()
                    } else {
                        tracer.samples_roots()
                    }
                };
                let mut builder = tracer.span_builder(name).with_kind(SpanKind::Client);
                if likely_recorded {
                    builder = builder.with_attributes(attributes());
                }
                let mut span = tracer.build_with_context(builder, &parent);
                if !likely_recorded && span.is_recording() {
                    span.set_attributes(attributes());
                }
                child_context(&parent, span)
            }
        };
        let headers = request.headers_mut();
        let forward = config.forward_tenant && !headers.contains_key(&config.tenant_header);
        // The layer owns the trace context: a caller's stale `tracestate` must not ride
        // along with the new `traceparent`.
        headers.remove(TRACEPARENT);
        headers.remove(TRACESTATE);
        inject_outgoing(&cx, false, |name, value| {
            if let Ok(value) = HeaderValue::from_str(value) {
                // The two written on every call as the constants they are: a name given
                // as text is checked byte by byte on each insert.
                let name = match name {
                    TRACEPARENT_HEADER => TRACEPARENT,
                    TRACESTATE_HEADER => TRACESTATE,
                    other => HeaderName::from_static(other),
                };
                headers.insert(name, value);
            }
        });
        if forward {
            if let Some(tenant) = tenant_from(&parent) {
                if let Ok(value) = HeaderValue::from_str(tenant.as_str()) {
                    headers.insert(config.tenant_header.clone(), value);
                }
            }
        }
        Self {
            cx,
            protocol,
            started,
            config: Arc::clone(config),
            rpc,
            target,
            address,
            port,
        }
    }
}

/// Under an unsampled `parent`, with a tracer known to drop every span such a parent
/// has, the context of the span it would drop (its ids and flags, which the callee is
/// sent), made without asking it: no span name, builder or sampler call. `None` when the
/// tracer must be asked: a sampled parent, a root, a tracer that may record the span, or
/// tail bias installed (its sampler records the children of a watched request).
#[cfg(feature = "sdk")]
fn unsampled_context(tracer: &LayerTracer, parent: &Context) -> Option<Context> {
    let span = parent.span();
    let sc = span.span_context();
    let skip = sc.is_valid()
        && !sc.is_sampled()
        && tracer.drops_unsampled_children()
        && instrument_core::sampling::installed_tail_bias().is_none();
    skip.then(|| {
        parent.with_remote_span_context(instrument_core::context::unsampled_child(
            sc,
            LayerTracer::new_span_id(),
        ))
    })
}

/// Without the SDK no tracer is known to drop spans: it is always asked.
#[cfg(not(feature = "sdk"))]
fn unsampled_context(_: &LayerTracer, _: &Context) -> Option<Context> {
    None
}

/// The attributes a recorded client span starts with.
fn start_attributes<B>(
    config: &ClientConfig,
    rpc: RpcConventions,
    protocol: Protocol,
    request: &Request<B>,
    // gRPC's service and method; an HTTP request's method label and "".
    (first, second): (&str, &str),
    address: Option<&Authority>,
    port: Option<u16>,
) -> Vec<KeyValue> {
    // What the span starts with, at most, and what its end usually adds (the span keeps
    // this vector until it is exported).
    let named = match protocol {
        // `rpc.system`, `rpc.service`, `rpc.method` (older conventions);
        // `rpc.system.name` and, alone, `rpc.method` (current).
        Protocol::Grpc => match (rpc.old(), rpc.current()) {
            (true, true) => 4,
            (true, false) => 3,
            (false, true) => 2,
            (false, false) => 0,
        },
        // `http.request.method` (and `_original`), `url.full`.
        Protocol::Http => 3,
    };
    let mut attributes = Vec::with_capacity(named + 2 + later_attributes(protocol, rpc));
    match protocol {
        Protocol::Grpc => {
            if rpc.old() {
                attributes.push(KeyValue::new(RPC_SYSTEM, "grpc"));
                attributes.push(KeyValue::new(RPC_SERVICE, first.to_owned()));
                attributes.push(KeyValue::new(RPC_METHOD, second.to_owned()));
            }
            if rpc.current() {
                attributes.push(KeyValue::new(RPC_SYSTEM_NAME, "grpc"));
                if !rpc.old() {
                    let method = if second == OTHER {
                        OTHER.to_owned()
                    } else {
                        format!("{first}/{second}")
                    };
                    attributes.push(KeyValue::new(RPC_METHOD, method));
                }
            }
        }
        Protocol::Http => {
            attributes.push(KeyValue::new(HTTP_REQUEST_METHOD, first.to_owned()));
            if first == OTHER {
                let mut original = request.method().as_str().to_owned();
                cut(&mut original, MAX_ORIGINAL_LEN);
                attributes.push(KeyValue::new(HTTP_REQUEST_METHOD_ORIGINAL, original));
            }
            // Without credentials (`user:password@`), as the conventions say.
            let uri = request.uri();
            let scheme = uri.scheme_str().unwrap_or("http");
            let host = address.map_or("", Authority::host);
            let path = uri.path_and_query().map_or("/", |p| p.as_str());
            let full = match port {
                Some(port) => format!("{scheme}://{host}:{port}{path}"),
                None => path.to_owned(),
            };
            let mut clean = config
                .redactor()
                .redact_attribute(URL_FULL, &full)
                .into_owned();
            cut(&mut clean, MAX_URL_LEN);
            attributes.push(KeyValue::new(URL_FULL, clean));
        }
    }
    if let Some(address) = address {
        let mut host = address.host().to_owned();
        cut(&mut host, MAX_ORIGINAL_LEN);
        attributes.push(KeyValue::new(SERVER_ADDRESS, host));
    }
    if let Some(port) = port {
        attributes.push(KeyValue::new(SERVER_PORT, i64::from(port)));
    }
    attributes
}

impl Observe for CallEnd {
    fn finish(self, outcome: &Outcome) {
        let seconds = self.started.elapsed().as_secs_f64();
        let span = self.cx.span();
        // What ended the call; for gRPC, the status number beside its name.
        let (ended, grpc_number, failure) = match outcome {
            Outcome::Responded {
                http,
                grpc,
                cancelled,
                body_failed,
                ..
            } => {
                if *cancelled {
                    span.set_attribute(KeyValue::new(CANCELLED, true));
                }
                match grpc {
                    _ if *body_failed => (Ended::Failed, None, Some("the response body failed")),
                    Some(code) => (Ended::Grpc(grpc_code_name(*code)), Some(*code), None),
                    None => (Ended::Http(*http), None, None),
                }
            }
            Outcome::Failed(text) => (Ended::Failed, None, Some(text.as_str())),
            Outcome::Cancelled => {
                span.set_attribute(KeyValue::new(CANCELLED, true));
                (Ended::Cancelled, None, None)
            }
        };
        if span.is_recording() {
            let mut attributes = Vec::with_capacity(3);
            match ended {
                Ended::Grpc(name) => {
                    if let Some(code) = grpc_number {
                        if self.rpc.old() {
                            attributes.push(KeyValue::new(RPC_GRPC_STATUS_CODE, i64::from(code)));
                        }
                        if self.rpc.current() {
                            attributes.push(KeyValue::new(RPC_RESPONSE_STATUS_CODE, name));
                        }
                    }
                    if name != "OK" {
                        attributes.push(KeyValue::new(ERROR_TYPE, name));
                        span.set_status(Status::error(""));
                    }
                }
                Ended::Http(code) => {
                    attributes.push(KeyValue::new(HTTP_RESPONSE_STATUS_CODE, i64::from(code)));
                    if code >= 400 {
                        attributes.push(KeyValue::new(ERROR_TYPE, code.to_string()));
                        span.set_status(Status::error(""));
                    }
                }
                Ended::Failed | Ended::Cancelled => {}
            }
            if let Some(text) = failure {
                attributes.push(KeyValue::new(ERROR_TYPE, OTHER));
                let mut text = self.config.redactor().error_text(text);
                cut(&mut text, MAX_ERROR_LEN);
                span.set_status(Status::error(text));
            }
            span.set_attributes(attributes);
        }
        span.end();
        if let Some(measures) = &self.config.measures {
            let address = self.address.as_ref().map_or("", Authority::host);
            let (first, second) = self.target.service_method();
            let labels = match self.protocol {
                Protocol::Grpc => ClientLabels::grpc(first, second, address, self.port),
                Protocol::Http => ClientLabels::http(first, address, self.port),
            };
            measures.record(&labels, ended, seconds);
        }
    }
}

#[cfg(test)]
mod tests;
