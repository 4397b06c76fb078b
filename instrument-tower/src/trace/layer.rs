//! [`TraceContextLayer`] and its configuration.

use std::fmt;
use std::sync::{Arc, OnceLock};

use http::request::Parts;
use http::HeaderName;
use instrument_core::context::ParentPolicy;
use instrument_core::redact::Redactor;
use instrument_core::semconv::{HTTP_REQUEST_HEADER_PREFIX, TENANT_HEADER, TRACKING_HEADER};
use opentelemetry::global::BoxedTracer;
use opentelemetry::trace::{Span, Tracer};
use opentelemetry::Key;

use super::service::TraceService;
use crate::source::{NoSource, TraceSource};
use crate::tenant::InvalidHeaderName;

/// Picks the `http.route` of a plain HTTP request (`None`: the normalized path).
pub type RouteFn = dyn Fn(&Parts) -> Option<String> + Send + Sync;

/// Name of the instrumentation scope of the server spans.
pub const SCOPE: &str = "instrument-tower";

/// One server span per request, its parent restored from the stored trace and the
/// caller's headers (see the [module docs](super)).
pub struct TraceContextLayer<Src = NoSource> {
    pub(crate) config: Arc<TraceConfig>,
    pub(crate) source: Arc<Src>,
}

impl<Src> Clone for TraceContextLayer<Src> {
    fn clone(&self) -> Self {
        Self {
            config: Arc::clone(&self.config),
            source: Arc::clone(&self.source),
        }
    }
}

impl<Src> fmt::Debug for TraceContextLayer<Src> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TraceContextLayer")
            .field("config", &self.config)
            .finish_non_exhaustive()
    }
}

#[derive(Clone)]
pub(crate) struct TraceConfig {
    /// Set by [`TraceContextLayer::tracer`]; else the global tracer at the first request.
    pub(crate) tracer: Arc<OnceLock<BoxedTracer>>,
    pub(crate) policy: ParentPolicy,
    pub(crate) tracking: Option<HeaderName>,
    pub(crate) tenant_header: HeaderName,
    pub(crate) route: Option<Arc<RouteFn>>,
    /// Headers recorded on the span, with their attribute keys.
    pub(crate) headers: Vec<(HeaderName, Key)>,
    /// Set by [`TraceContextLayer::redactor`]; else the process-wide one.
    pub(crate) redactor: Option<Redactor>,
    /// Set under [`InstrumentLayer`](crate::stack::InstrumentLayer): leave what was
    /// read in a [`Read`](crate::stack::Read) for the layers below.
    pub(crate) shares_reads: bool,
}

impl fmt::Debug for TraceConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TraceConfig")
            .field("policy", &self.policy)
            .field("tracking", &self.tracking)
            .field("tenant_header", &self.tenant_header)
            .field("route", &self.route.as_ref().map(|_| "custom"))
            .field("headers", &self.headers)
            .finish_non_exhaustive()
    }
}

impl TraceConfig {
    pub(crate) fn redactor(&self) -> &Redactor {
        match &self.redactor {
            Some(redactor) => redactor,
            None => instrument_core::redact::global(),
        }
    }

    pub(crate) fn tracer(&self) -> &BoxedTracer {
        self.tracer
            .get_or_init(|| opentelemetry::global::tracer(SCOPE))
    }
}

impl Default for TraceContextLayer {
    fn default() -> Self {
        Self::new()
    }
}

impl TraceContextLayer {
    /// Server spans from the global tracer provider, no stored traces, the default
    /// parent policy, `x-tracking-id` on every response, no headers recorded.
    pub fn new() -> Self {
        Self {
            config: Arc::new(TraceConfig {
                tracer: Arc::new(OnceLock::new()),
                policy: ParentPolicy::default(),
                tracking: Some(HeaderName::from_static(TRACKING_HEADER)),
                tenant_header: HeaderName::from_static(TENANT_HEADER),
                route: None,
                headers: Vec::new(),
                redactor: None,
                shares_reads: false,
            }),
            source: Arc::new(NoSource),
        }
    }
}

impl<Src> TraceContextLayer<Src> {
    fn config_mut(&mut self) -> &mut TraceConfig {
        Arc::make_mut(&mut self.config)
    }

    /// Restores each request's parent from the trace `source` finds for it (usually a
    /// [`CachedSource`](crate::source::CachedSource)).
    pub fn source<S: TraceSource>(self, source: S) -> TraceContextLayer<S> {
        TraceContextLayer {
            config: self.config,
            source: Arc::new(source),
        }
    }

    /// How the stored and the caller's contexts combine (default: stored parent,
    /// caller's span as a link).
    pub fn parent_policy(mut self, policy: ParentPolicy) -> Self {
        self.config_mut().policy = policy;
        self
    }

    /// Starts spans with `tracer` instead of the global tracer provider's.
    pub fn tracer<T>(mut self, tracer: T) -> Self
    where
        T: Tracer + Send + Sync + 'static,
        T::Span: Span + Send + Sync + 'static,
    {
        let lock = OnceLock::new();
        let _ = lock.set(BoxedTracer::new(Box::new(tracer)));
        self.config_mut().tracer = Arc::new(lock);
        self
    }

    /// The response header carrying the trace id (`None`: no header). Default
    /// `x-tracking-id`.
    pub fn tracking_header(mut self, name: Option<&str>) -> Result<Self, InvalidHeaderName> {
        let name = name
            .map(|n| HeaderName::try_from(n).map_err(|_| InvalidHeaderName))
            .transpose()?;
        self.config_mut().tracking = name;
        Ok(self)
    }

    /// The header the tenant is read from (as the tenant layer's), to keep another
    /// tenant's stored trace out of the request's span. Default `x-tenant-id`.
    pub fn tenant_header(mut self, name: &str) -> Result<Self, InvalidHeaderName> {
        self.config_mut().tenant_header =
            HeaderName::try_from(name).map_err(|_| InvalidHeaderName)?;
        Ok(self)
    }

    /// Picks `http.route` for plain HTTP requests (a router's matched path, say); when
    /// it returns `None` the path is normalized with
    /// [`normalize_route`](instrument_core::cardinality::normalize_route).
    pub fn route(
        mut self,
        route: impl Fn(&Parts) -> Option<String> + Send + Sync + 'static,
    ) -> Self {
        self.config_mut().route = Some(Arc::new(route));
        self
    }

    pub(crate) fn with_route(mut self, route: Arc<RouteFn>) -> Self {
        self.config_mut().route = Some(route);
        self
    }

    /// See [`TraceConfig::shares_reads`].
    pub(crate) fn shares_reads(mut self) -> Self {
        self.config_mut().shares_reads = true;
        self
    }

    /// Records these request headers on the span as `http.request.header.<name>`, each
    /// value through the redactor. `authorization`, `cookie`, `x-api-key` and the like
    /// are never recorded in clear, whatever the redaction policy says.
    pub fn record_headers<'a>(
        mut self,
        names: impl IntoIterator<Item = &'a str>,
    ) -> Result<Self, InvalidHeaderName> {
        let mut headers = Vec::new();
        for name in names {
            let name = HeaderName::try_from(name).map_err(|_| InvalidHeaderName)?;
            let key = Key::from(format!("{HTTP_REQUEST_HEADER_PREFIX}{}", name.as_str()));
            headers.push((name, key));
        }
        self.config_mut().headers = headers;
        Ok(self)
    }

    /// Redacts recorded headers and error texts with `redactor`. Otherwise the
    /// process-wide redactor ([`redact::global`](instrument_core::redact::global)) does:
    /// the policy `pipeline::init` installed, as for `#[workflow_span]`.
    pub fn redactor(mut self, redactor: Redactor) -> Self {
        self.config_mut().redactor = Some(redactor);
        self
    }
}

impl<S, Src> tower::Layer<S> for TraceContextLayer<Src> {
    type Service = TraceService<S, Src>;

    fn layer(&self, inner: S) -> Self::Service {
        TraceService {
            inner,
            config: Arc::clone(&self.config),
            source: Arc::clone(&self.source),
        }
    }
}
