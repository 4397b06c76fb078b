//! [`InstrumentLayer`] and its builder.

use std::borrow::Cow;
use std::fmt;
use std::sync::Arc;

use http::request::Parts;
use http::HeaderName;
use instrument_core::context::ParentPolicy;
use instrument_core::redact::Redactor;
use instrument_core::semconv::{MetricNames, TENANT_HEADER};
use metrics::SharedString;
use opentelemetry::trace::{Span, Tracer};

use super::service::Instrument;
use crate::classify::DefaultClassifier;
use crate::request::{DefaultRoute, Reading, Route, RouteFn};
use crate::source::{NoSource, TraceSource};
use crate::tenant::check::TenantRules;
use crate::trace::span::SpanConfig;
use instrument_core::measure::RequestMeasures;

/// The three stages in one service (see the [module docs](super)).
pub struct InstrumentLayer<Src = NoSource, C = DefaultClassifier, R = DefaultRoute, F = ()> {
    pub(crate) config: Arc<StackConfig<R, F>>,
    pub(crate) source: Arc<Src>,
    pub(crate) classifier: C,
}

/// What the services of one [`InstrumentLayer`] share: how requests are read and
/// filtered, and each stage's configuration.
pub(crate) struct StackConfig<R, F> {
    pub(crate) reading: Reading<R>,
    pub(crate) filter: F,
    /// Shared with each request until its response ends.
    pub(crate) stages: Arc<Stages>,
}

/// Each stage's configuration: what a request needs from its start to its end.
#[derive(Debug)]
pub(crate) struct Stages {
    pub(crate) span: SpanConfig,
    pub(crate) tenant: TenantRules,
    pub(crate) metrics: RequestMeasures,
}

impl<Src, C: Clone, R, F> Clone for InstrumentLayer<Src, C, R, F> {
    fn clone(&self) -> Self {
        Self {
            config: Arc::clone(&self.config),
            source: Arc::clone(&self.source),
            classifier: self.classifier.clone(),
        }
    }
}

impl<Src, C, R, F> fmt::Debug for InstrumentLayer<Src, C, R, F> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("InstrumentLayer")
            .field("stages", &self.config.stages)
            .finish_non_exhaustive()
    }
}

impl InstrumentLayer {
    /// A builder with the defaults of each stage.
    pub fn builder() -> InstrumentBuilder {
        InstrumentBuilder {
            source: NoSource,
            classifier: DefaultClassifier::default(),
            route: DefaultRoute,
            filter: (),
            tenant_header: HeaderName::from_static(TENANT_HEADER),
            span: SpanConfig::default(),
            tenant: TenantRules::default(),
            names: None,
        }
    }
}

impl Default for InstrumentLayer {
    fn default() -> Self {
        Self::builder().build()
    }
}

impl<S, Src, C: Clone, R, F> tower::Layer<S> for InstrumentLayer<Src, C, R, F> {
    type Service = Instrument<S, Src, C, R, F>;

    fn layer(&self, inner: S) -> Self::Service {
        Instrument {
            inner,
            config: Arc::clone(&self.config),
            source: Arc::clone(&self.source),
            classifier: self.classifier.clone(),
        }
    }
}

/// Configures an [`InstrumentLayer`]; what several stages share (tenant header, route,
/// classifier, filter, metric names) is set once here.
pub struct InstrumentBuilder<Src = NoSource, C = DefaultClassifier, R = DefaultRoute, F = ()> {
    source: Src,
    classifier: C,
    route: R,
    filter: F,
    tenant_header: HeaderName,
    span: SpanConfig,
    tenant: TenantRules,
    /// `None`: the process-wide names when built.
    names: Option<MetricNames>,
}

impl<Src, C, R, F> fmt::Debug for InstrumentBuilder<Src, C, R, F> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("InstrumentBuilder")
            .field("tenant_header", &self.tenant_header)
            .field("span", &self.span)
            .field("tenant", &self.tenant)
            .finish_non_exhaustive()
    }
}

impl<Src, C, R, F> InstrumentBuilder<Src, C, R, F> {
    /// Restores each request's parent from the trace `source` finds for it, and refuses
    /// requests for another tenant's workflow.
    pub fn source<S2: TraceSource>(self, source: S2) -> InstrumentBuilder<S2, C, R, F> {
        InstrumentBuilder {
            source,
            classifier: self.classifier,
            route: self.route,
            filter: self.filter,
            tenant_header: self.tenant_header,
            span: self.span,
            tenant: self.tenant,
            names: self.names,
        }
    }

    /// Decides which responses are failures, for the span and the error metric alike
    /// (see [`classify`](crate::classify)).
    pub fn classifier<C2>(self, classifier: C2) -> InstrumentBuilder<Src, C2, R, F> {
        InstrumentBuilder {
            source: self.source,
            classifier,
            route: self.route,
            filter: self.filter,
            tenant_header: self.tenant_header,
            span: self.span,
            tenant: self.tenant,
            names: self.names,
        }
    }

    /// Picks the HTTP route for span names and metric labels with `route`, a function
    /// of the request's head returning the route template (`&'static str` or `String`),
    /// `None` for a request without one:
    /// `.route(|parts| parts.uri.path().starts_with("/jobs/").then_some("/jobs/{job}"))`.
    /// A [`Route`](crate::request::Route) type ([`NormalizedPath`](crate::request::NormalizedPath),
    /// axum's [`MatchedPath`](crate::request)) goes to [`route_with`](Self::route_with).
    pub fn route<H, O>(self, route: H) -> InstrumentBuilder<Src, C, RouteFn<H, O>, F>
    where
        H: Fn(&Parts) -> Option<O> + Send + Sync + 'static,
        O: Into<Cow<'static, str>> + 'static,
    {
        self.route_with(RouteFn::new(route))
    }

    /// Picks the HTTP route for span names and metric labels with a
    /// [`Route`](crate::request::Route) type.
    pub fn route_with<R2: Route>(self, route: R2) -> InstrumentBuilder<Src, C, R2, F> {
        InstrumentBuilder {
            source: self.source,
            classifier: self.classifier,
            route,
            filter: self.filter,
            tenant_header: self.tenant_header,
            span: self.span,
            tenant: self.tenant,
            names: self.names,
        }
    }

    /// Leaves the requests `filter` skips alone: no span, no tenant check, no metrics
    /// (`.filter(|parts| parts.uri.path() == "/health")`; see
    /// [`Filter`](crate::request::Filter)). To skip only the tenant check, see
    /// [`exempt`](Self::exempt).
    pub fn filter<F2>(self, filter: F2) -> InstrumentBuilder<Src, C, R, F2>
    where
        F2: Fn(&Parts) -> bool + Send + Sync + 'static,
    {
        InstrumentBuilder {
            source: self.source,
            classifier: self.classifier,
            route: self.route,
            filter,
            tenant_header: self.tenant_header,
            span: self.span,
            tenant: self.tenant,
            names: self.names,
        }
    }

    /// See [`TraceLayer::parent_policy`](crate::trace::TraceLayer::parent_policy).
    pub fn parent_policy(mut self, policy: ParentPolicy) -> Self {
        self.span.policy = policy;
        self
    }

    /// See [`TraceLayer::tracer`](crate::trace::TraceLayer::tracer).
    pub fn tracer<T>(mut self, tracer: T) -> Self
    where
        T: Tracer + Send + Sync + 'static,
        T::Span: Span + Send + Sync + 'static,
    {
        self.span.tracer = crate::tracer::LayerTracer::of(tracer);
        self
    }

    /// See [`TraceLayer::parent_based_tracer`](crate::trace::TraceLayer::parent_based_tracer).
    pub fn parent_based_tracer<T>(mut self, tracer: T) -> Self
    where
        T: Tracer + Send + Sync + 'static,
        T::Span: Span + Send + Sync + 'static,
    {
        self.span.tracer = crate::tracer::LayerTracer::of_parent_based(tracer);
        self
    }

    /// See [`TraceLayer::tracer_sampled_by`](crate::trace::TraceLayer::tracer_sampled_by).
    #[cfg(feature = "sdk")]
    pub fn tracer_sampled_by(
        mut self,
        tracer: opentelemetry_sdk::trace::SdkTracer,
        sampler: instrument_core::pipeline::SamplerConfig,
    ) -> Self {
        self.span.tracer = crate::tracer::LayerTracer::sampled_by(tracer, sampler);
        self
    }

    /// See [`TraceLayer::behind_trusted_proxy`](crate::trace::TraceLayer::behind_trusted_proxy).
    pub fn behind_trusted_proxy(mut self) -> Self {
        self.span.behind_proxy = true;
        self
    }

    /// Counts the messages of gRPC responses as they stream (off by default: the
    /// conventions mark these metrics as in development, and a stream's every message
    /// is then read): each message's size in `rpc_server_response_size_bytes`, the
    /// count per call in `rpc_server_responses_per_rpc`, and an `rpc.message` event on
    /// the call's span for each of the first
    /// [`MAX_MESSAGE_EVENTS`](crate::messages::MAX_MESSAGE_EVENTS) messages (the rest are
    /// counted in `instrument.rpc.message_events.dropped`). See [`messages`](crate::messages).
    pub fn record_messages(mut self) -> Self {
        self.span.record_messages = true;
        self
    }

    /// The response header carrying the trace id (default `x-tracking-id`).
    pub fn tracking_header(mut self, name: HeaderName) -> Self {
        self.span.tracking = Some(name);
        self
    }

    /// No tracking header on responses. Over HTTP/2 the header costs about 3,000
    /// instructions a response (2026-12, a tonic server), three quarters of them in
    /// h2's HPACK coding of a value new on every response: turn it off when nothing
    /// reads it.
    pub fn no_tracking_header(mut self) -> Self {
        self.span.tracking = None;
        self
    }

    /// The header (gRPC metadata key) carrying the tenant (default `x-tenant-id`). See
    /// [`TenantLayer::tenant_header`](crate::tenant::TenantLayer::tenant_header) on what a header can
    /// be trusted with.
    pub fn tenant_header(mut self, name: HeaderName) -> Self {
        self.tenant_header = name;
        self
    }

    /// See [`TenantLayer::exempt`](crate::tenant::TenantLayer::exempt).
    pub fn exempt(mut self, prefix: impl Into<String>) -> Self {
        self.tenant.exempt.push(prefix.into());
        self
    }

    /// Names every metric after `names` instead of the process-wide names.
    pub fn metric_names(mut self, names: &MetricNames) -> Self {
        self.names = Some(names.clone());
        self
    }

    /// See [`TraceLayer::record_headers`](crate::trace::TraceLayer::record_headers).
    pub fn record_headers(mut self, names: impl IntoIterator<Item = HeaderName>) -> Self {
        self.span.record_headers(names);
        self
    }

    /// See [`TraceLayer::redactor`](crate::trace::TraceLayer::redactor).
    pub fn redactor(mut self, redactor: Redactor) -> Self {
        self.span.set_redactor(redactor);
        self
    }

    /// See [`TraceLayer::rpc_conventions`](crate::trace::TraceLayer::rpc_conventions).
    pub fn rpc_conventions(mut self, rpc: instrument_core::semconv::RpcConventions) -> Self {
        self.span.names = self.span.names.with_rpc(rpc);
        self
    }

    /// See [`TraceLayer::grpc_methods`](crate::trace::TraceLayer::grpc_methods).
    pub fn grpc_methods<M: Into<String>>(mut self, methods: impl IntoIterator<Item = M>) -> Self {
        self.span.names = self
            .span
            .names
            .relisted(methods.into_iter().map(Into::into));
        self
    }

    /// The layer.
    pub fn build(self) -> InstrumentLayer<Src, C, R, F> {
        let names = self.names.as_ref().unwrap_or_else(|| MetricNames::global());
        let mut tenant = self.tenant;
        tenant.header = self.tenant_header.clone();
        tenant.rejections = SharedString::from(names.tenant_rejections_total());
        InstrumentLayer {
            config: Arc::new(StackConfig {
                reading: Reading {
                    tenant_header: self.tenant_header,
                    route: self.route,
                },
                filter: self.filter,
                stages: Arc::new(Stages {
                    span: self.span,
                    tenant,
                    metrics: RequestMeasures::new(names),
                }),
            }),
            source: Arc::new(self.source),
            classifier: self.classifier,
        }
    }
}
