//! [`TraceLayer`] and its configuration.

use std::borrow::Cow;
use std::fmt;
use std::sync::Arc;

use http::request::Parts;
use http::HeaderName;
use instrument_core::context::ParentPolicy;
use instrument_core::redact::Redactor;
use instrument_core::semconv::TENANT_HEADER;
use opentelemetry::trace::{Span, Tracer};

use super::service::Trace;
use super::span::SpanConfig;
use crate::classify::DefaultClassifier;
use crate::request::{DefaultRoute, Reading, Route, RouteFn};
use crate::source::{NoSource, TraceSource};

/// One server span per request, its parent restored from the stored trace and the
/// caller's headers (see the [module docs](super)).
///
/// Type parameters, each set by one builder method: the trace source `Src`
/// ([`source`](Self::source)), the classifier `C` ([`classifier`](Self::classifier)),
/// the route `R` ([`route`](Self::route)) and the filter `F` ([`filter`](Self::filter)).
pub struct TraceLayer<Src = NoSource, C = DefaultClassifier, R = DefaultRoute, F = ()> {
    pub(crate) config: Arc<TraceConfig<R, F>>,
    pub(crate) source: Arc<Src>,
    pub(crate) classifier: C,
}

/// What the services of one [`TraceLayer`] share.
pub(crate) struct TraceConfig<R, F> {
    /// Shared with each request's span until it ends.
    pub(crate) span: Arc<SpanConfig>,
    pub(crate) reading: Reading<R>,
    pub(crate) filter: F,
}

impl<Src, C: Clone, R, F> Clone for TraceLayer<Src, C, R, F> {
    fn clone(&self) -> Self {
        Self {
            config: Arc::clone(&self.config),
            source: Arc::clone(&self.source),
            classifier: self.classifier.clone(),
        }
    }
}

impl<Src, C, R, F> fmt::Debug for TraceLayer<Src, C, R, F> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TraceLayer")
            .field("span", &self.config.span)
            .field("tenant_header", &self.config.reading.tenant_header)
            .finish_non_exhaustive()
    }
}

impl Default for TraceLayer {
    fn default() -> Self {
        Self::new()
    }
}

impl TraceLayer {
    /// Server spans from the global tracer provider, no stored traces, the default
    /// parent policy and classifier, routes from the framework ([`DefaultRoute`](crate::request::DefaultRoute)),
    /// `x-tracking-id` on every response, no headers recorded.
    pub fn new() -> Self {
        Self {
            config: Arc::new(TraceConfig {
                span: Arc::new(SpanConfig::default()),
                reading: Reading {
                    tenant_header: HeaderName::from_static(TENANT_HEADER),
                    route: DefaultRoute,
                },
                filter: (),
            }),
            source: Arc::new(NoSource),
            classifier: DefaultClassifier::default(),
        }
    }
}

impl<Src, C, R: Clone, F: Clone> TraceLayer<Src, C, R, F> {
    fn config_mut(&mut self) -> &mut TraceConfig<R, F> {
        Arc::make_mut(&mut self.config)
    }

    fn span_mut(&mut self) -> &mut SpanConfig {
        Arc::make_mut(&mut self.config_mut().span)
    }

    /// Restores each request's parent from the trace `source` finds for it (usually a
    /// [`CachedSource`](crate::source::CachedSource)).
    pub fn source<S: TraceSource>(self, source: S) -> TraceLayer<S, C, R, F> {
        TraceLayer {
            config: self.config,
            source: Arc::new(source),
            classifier: self.classifier,
        }
    }

    /// Decides which responses are failures with `classifier` (see
    /// [`classify`](crate::classify)).
    pub fn classifier<C2>(self, classifier: C2) -> TraceLayer<Src, C2, R, F> {
        TraceLayer {
            config: self.config,
            source: self.source,
            classifier,
        }
    }

    /// Picks the HTTP route for span names and metric labels with `route`, a function
    /// of the request's head returning the route template (`&'static str` or `String`),
    /// `None` for a request without one:
    /// `.route(|parts| parts.uri.path().starts_with("/jobs/").then_some("/jobs/{job}"))`.
    /// A [`Route`](crate::request::Route) type ([`NormalizedPath`](crate::request::NormalizedPath),
    /// axum's [`MatchedPath`](crate::request)) goes to [`route_with`](Self::route_with).
    pub fn route<H, O>(self, route: H) -> TraceLayer<Src, C, RouteFn<H, O>, F>
    where
        H: Fn(&Parts) -> Option<O> + Send + Sync + 'static,
        O: Into<Cow<'static, str>> + 'static,
    {
        self.route_with(RouteFn::new(route))
    }

    /// Picks `http.route` for plain HTTP requests with a
    /// [`Route`](crate::request::Route) type.
    pub fn route_with<R2: Route>(self, route: R2) -> TraceLayer<Src, C, R2, F> {
        let config = Arc::unwrap_or_clone(self.config);
        TraceLayer {
            config: Arc::new(TraceConfig {
                span: config.span,
                reading: Reading {
                    tenant_header: config.reading.tenant_header,
                    route,
                },
                filter: config.filter,
            }),
            source: self.source,
            classifier: self.classifier,
        }
    }

    /// Leaves the requests `filter` skips alone (see [`Filter`](crate::request::Filter)).
    pub fn filter<F2>(self, filter: F2) -> TraceLayer<Src, C, R, F2>
    where
        F2: Fn(&Parts) -> bool + Send + Sync + 'static,
    {
        let config = Arc::unwrap_or_clone(self.config);
        TraceLayer {
            config: Arc::new(TraceConfig {
                span: config.span,
                reading: config.reading,
                filter,
            }),
            source: self.source,
            classifier: self.classifier,
        }
    }

    /// How the stored and the caller's contexts combine (default: stored parent,
    /// caller's span as a link).
    pub fn parent_policy(mut self, policy: ParentPolicy) -> Self {
        self.span_mut().policy = policy;
        self
    }

    /// Starts spans with the SDK's `tracer`, whose provider samples by `sampler` (best
    /// built from the same value:
    /// [`SamplerConfig::sampler`](instrument_core::pipeline::SamplerConfig::sampler)): the layer then takes the shortcuts it takes with the
    /// provider `pipeline::init` installed. Under a sampler that
    /// [follows its parent](instrument_core::pipeline::SamplerConfig::follows_parent), no
    /// span is started under an unsampled parent (as
    /// [`parent_based_tracer`](Self::parent_based_tracer)); under one that
    /// [samples every root](instrument_core::pipeline::SamplerConfig::samples_roots), a
    /// root's attributes go to its span as it starts, in the vector the span keeps,
    /// rather than one by one once the sampler decided (a sampled root request: about
    /// 1,800 instructions and three allocations less).
    ///
    /// `sampler` is taken at its word: given one the provider does not use, the layer
    /// may start no span where the provider would have sampled one.
    ///
    /// ```
    /// use instrument_core::pipeline::SamplerConfig;
    /// use instrument_tower::trace::TraceLayer;
    /// use opentelemetry::trace::TracerProvider as _;
    /// use opentelemetry_sdk::trace::SdkTracerProvider;
    ///
    /// // The SDK's default sampler: parent-based, every root sampled.
    /// let sampler = SamplerConfig::ParentBasedAlwaysOn;
    /// let provider = SdkTracerProvider::builder()
    ///     .with_sampler(sampler.sampler())
    ///     .build();
    /// let layer = TraceLayer::new().tracer_sampled_by(provider.tracer("server"), sampler);
    /// # let _ = layer;
    /// ```
    #[cfg(feature = "sdk")]
    pub fn tracer_sampled_by(
        mut self,
        tracer: opentelemetry_sdk::trace::SdkTracer,
        sampler: instrument_core::pipeline::SamplerConfig,
    ) -> Self {
        self.span_mut().tracer = crate::tracer::LayerTracer::sampled_by(tracer, sampler);
        self
    }

    /// Starts spans with `tracer` instead of the global tracer provider's.
    pub fn tracer<T>(mut self, tracer: T) -> Self
    where
        T: Tracer + Send + Sync + 'static,
        T::Span: Span + Send + Sync + 'static,
    {
        self.span_mut().tracer = crate::tracer::LayerTracer::of(tracer);
        self
    }

    /// Starts spans with `tracer`, whose sampler drops every span whose parent was not
    /// sampled (OpenTelemetry's parent-based samplers, `OTEL_TRACES_SAMPLER=parentbased_*`,
    /// with their defaults). Under such a parent the layer then starts no span at all: the
    /// request continues in the context of the span the tracer would have dropped (its
    /// ids and flags, which downstream calls propagate), made without the tracer, for
    /// about a third of the sampled-out path's cost (`full_stack_request/sampled_out`).
    /// Only the SDK's own tracer is taken at its word; any other is asked for every span,
    /// as with [`tracer`](Self::tracer).
    ///
    /// The provider `pipeline::init` installs needs neither call: a layer that uses it
    /// knows its sampler.
    ///
    /// ```
    /// use instrument_tower::trace::TraceLayer;
    /// use opentelemetry::trace::TracerProvider as _;
    /// use opentelemetry_sdk::trace::{ParentBasedSampler, Sampler, SdkTracerProvider};
    ///
    /// let provider = SdkTracerProvider::builder()
    ///     .with_sampler(ParentBasedSampler::new(Sampler::TraceIdRatioBased(0.01)))
    ///     .build();
    /// let layer = TraceLayer::new().parent_based_tracer(provider.tracer("server"));
    /// # let _ = layer;
    /// ```
    pub fn parent_based_tracer<T>(mut self, tracer: T) -> Self
    where
        T: Tracer + Send + Sync + 'static,
        T::Span: Span + Send + Sync + 'static,
    {
        self.span_mut().tracer = crate::tracer::LayerTracer::of_parent_based(tracer);
        self
    }

    /// The server sits behind a proxy that sets `Forwarded` (RFC 7239) or
    /// `X-Forwarded-For`, replacing whatever a client sent: an HTTP span's
    /// `client.address` is then the client the proxy names rather than the proxy. Off by
    /// default: without a proxy that overwrites them, these headers are whatever the
    /// client wrote, and an address from them would be the client's claim.
    /// `network.peer.address` is always the connection's other end.
    pub fn behind_trusted_proxy(mut self) -> Self {
        self.span_mut().behind_proxy = true;
        self
    }

    /// The response header carrying the trace id (default `x-tracking-id`).
    pub fn tracking_header(mut self, name: HeaderName) -> Self {
        self.span_mut().tracking = Some(name);
        self
    }

    /// No tracking header on responses. Over HTTP/2 the header costs about 3,000
    /// instructions a response (2026-12, a tonic server), three quarters of them in
    /// h2's HPACK coding of a value new on every response: turn it off when nothing
    /// reads it.
    pub fn no_tracking_header(mut self) -> Self {
        self.span_mut().tracking = None;
        self
    }

    /// The header the tenant is read from (as the tenant layer's), to keep another
    /// tenant's stored trace out of the request's span. Default `x-tenant-id`.
    pub fn tenant_header(mut self, name: HeaderName) -> Self {
        self.config_mut().reading.tenant_header = name;
        self
    }

    /// Records these request headers on the span as `http.request.header.<name>`, each
    /// value through the redactor. A value marked sensitive (tower-http's
    /// `SetSensitiveRequestHeadersLayer`) and `authorization`, `cookie`, `x-api-key`
    /// and the like are never recorded in clear, whatever the redaction policy says.
    pub fn record_headers(mut self, names: impl IntoIterator<Item = HeaderName>) -> Self {
        self.span_mut().record_headers(names);
        self
    }

    /// The gRPC methods the server declares (`package.Service/Method`, as tonic's
    /// generated `SERVICE_NAME` and the method's name make it). Only these then name
    /// spans and label metrics; any other is `_OTHER` (see the
    /// [names rule](crate#what-a-client-can-put-in-a-label)). Without a list, a method
    /// counts once the server answered it with anything but `UNIMPLEMENTED`, so a
    /// method whose handler answers `UNIMPLEMENTED` on purpose is `_OTHER` unless listed.
    ///
    /// ```
    /// use instrument_tower::trace::TraceLayer;
    ///
    /// let layer = TraceLayer::new().grpc_methods([
    ///     "instrument.example.v1.WorkflowService/StartWorkflow",
    ///     "instrument.example.v1.WorkflowService/SubmitTask",
    /// ]);
    /// # let _ = layer;
    /// ```
    pub fn grpc_methods<M: Into<String>>(mut self, methods: impl IntoIterator<Item = M>) -> Self {
        let span = self.span_mut();
        span.names = span.names.relisted(methods.into_iter().map(Into::into));
        self
    }

    /// Which RPC conventions gRPC spans follow; by default what
    /// `OTEL_SEMCONV_STABILITY_OPT_IN` says (see
    /// [`RpcConventions`](instrument_core::semconv::RpcConventions)).
    ///
    /// ```
    /// use instrument_core::semconv::RpcConventions;
    /// use instrument_tower::trace::TraceLayer;
    ///
    /// let layer = TraceLayer::new().rpc_conventions(RpcConventions::Current);
    /// # let _ = layer;
    /// ```
    pub fn rpc_conventions(mut self, rpc: instrument_core::semconv::RpcConventions) -> Self {
        let span = self.span_mut();
        span.names = span.names.with_rpc(rpc);
        self
    }

    /// Redacts recorded headers and error texts with `redactor`. Otherwise the
    /// process-wide redactor ([`redact::global`](instrument_core::redact::global)) does:
    /// the policy `pipeline::init` installed, as for `#[workflow_span]`.
    pub fn redactor(mut self, redactor: Redactor) -> Self {
        self.span_mut().set_redactor(redactor);
        self
    }
}

impl<R: Clone, F: Clone> Clone for TraceConfig<R, F> {
    fn clone(&self) -> Self {
        Self {
            span: self.span.clone(),
            reading: self.reading.clone(),
            filter: self.filter.clone(),
        }
    }
}

impl<S, Src, C: Clone, R, F> tower::Layer<S> for TraceLayer<Src, C, R, F> {
    type Service = Trace<S, Src, C, R, F>;

    fn layer(&self, inner: S) -> Self::Service {
        Trace {
            inner,
            config: Arc::clone(&self.config),
            source: Arc::clone(&self.source),
            classifier: self.classifier.clone(),
        }
    }
}
