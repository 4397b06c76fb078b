//! [`RequestMetricsLayer`] and its service.

use std::borrow::Cow;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Instant;

use http::request::Parts;
use http::{Request, Response};
use instrument_core::cardinality::normalize_route;
use instrument_core::semconv::MetricNames;
use instrument_core::tenant::TenantId;
use metrics::SharedString;

use super::future::{Measure, MetricsFuture};
use super::handles::{HandleCache, LabelValues};
use crate::protocol::{grpc_service_method, Protocol};
use crate::stack::Read;
use crate::trace::{method_label, RouteFn};

/// Label of the gRPC service (`package.Service`).
pub const LABEL_RPC_SERVICE: &str = "rpc_service";
/// Label of the gRPC method.
pub const LABEL_RPC_METHOD: &str = "rpc_method";
/// Label of the HTTP method.
pub const LABEL_METHOD: &str = "method";
/// Label of the HTTP route.
pub const LABEL_ROUTE: &str = "route";
/// Label value of a route or tenant that is not known.
pub const UNKNOWN: &str = "unknown";

/// Records request count, duration, errors and in-flight requests (see the
/// [module docs](super)).
#[derive(Clone)]
pub struct RequestMetricsLayer {
    pub(crate) config: Arc<MetricsConfig>,
}

impl std::fmt::Debug for RequestMetricsLayer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RequestMetricsLayer")
            .field("requests", &self.config.requests)
            .finish_non_exhaustive()
    }
}

#[derive(Clone)]
pub(crate) struct MetricsConfig {
    pub(crate) requests: SharedString,
    pub(crate) duration: SharedString,
    pub(crate) errors: SharedString,
    pub(crate) in_flight: SharedString,
    pub(crate) route: Option<Arc<RouteFn>>,
    /// Set under [`InstrumentLayer`](crate::stack::InstrumentLayer): the protocol and
    /// route come from the trace layer's [`Read`], computed with the same route function.
    pub(crate) under_trace_layer: bool,
    /// Handles per label set, shared by the layer's services.
    pub(crate) handles: Arc<HandleCache>,
}

impl Default for RequestMetricsLayer {
    fn default() -> Self {
        Self::new()
    }
}

impl RequestMetricsLayer {
    /// Metrics named with the default prefix (`instrument_requests_total`, ...).
    pub fn new() -> Self {
        Self::named(&MetricNames::default())
    }

    /// Metrics named after `names`' prefix.
    pub fn named(names: &MetricNames) -> Self {
        Self {
            config: Arc::new(MetricsConfig {
                requests: shared(&names.requests_total()),
                duration: shared(&names.request_duration()),
                errors: shared(&names.request_errors_total()),
                in_flight: shared(&names.requests_in_flight()),
                route: None,
                under_trace_layer: false,
                handles: Arc::default(),
            }),
        }
    }

    /// Picks the `route` label of plain HTTP requests (`None`: the normalized path).
    pub fn route(
        mut self,
        route: impl Fn(&Parts) -> Option<String> + Send + Sync + 'static,
    ) -> Self {
        Arc::make_mut(&mut self.config).route = Some(Arc::new(route));
        self
    }

    pub(crate) fn with_route(mut self, route: Option<Arc<RouteFn>>) -> Self {
        Arc::make_mut(&mut self.config).route = route;
        self
    }

    /// See [`MetricsConfig::under_trace_layer`].
    pub(crate) fn under_trace_layer(mut self) -> Self {
        Arc::make_mut(&mut self.config).under_trace_layer = true;
        self
    }
}

impl<S> tower::Layer<S> for RequestMetricsLayer {
    type Service = MetricsService<S>;

    fn layer(&self, inner: S) -> Self::Service {
        MetricsService {
            inner,
            config: Arc::clone(&self.config),
        }
    }
}

/// The request-metrics layer's service (see [`RequestMetricsLayer`]).
#[derive(Clone)]
pub struct MetricsService<S> {
    inner: S,
    config: Arc<MetricsConfig>,
}

impl<S: std::fmt::Debug> std::fmt::Debug for MetricsService<S> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MetricsService")
            .field("inner", &self.inner)
            .finish_non_exhaustive()
    }
}

impl<S, ReqBody, ResBody> tower::Service<Request<ReqBody>> for MetricsService<S>
where
    S: tower::Service<Request<ReqBody>, Response = Response<ResBody>>,
    ResBody: http_body::Body,
{
    type Response = Response<crate::body::ObservedBody<ResBody, Measure>>;
    type Error = S::Error;
    type Future = MetricsFuture<S::Future>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, request: Request<ReqBody>) -> Self::Future {
        let start = Instant::now();
        let (parts, body) = request.into_parts();
        let read = match self.config.under_trace_layer {
            true => parts.extensions.get::<Read>(),
            false => None,
        };
        let protocol = read.map_or_else(
            || Protocol::of_headers(&parts.headers),
            |read| read.protocol,
        );
        let route;
        let (names, values) = match protocol {
            Protocol::Grpc => (
                (LABEL_RPC_SERVICE, LABEL_RPC_METHOD),
                grpc_service_method(parts.uri.path()).unwrap_or((UNKNOWN, UNKNOWN)),
            ),
            Protocol::Http => {
                route = match read.and_then(|read| read.route.as_deref()) {
                    Some(route) => Cow::Borrowed(route),
                    None => match self.config.route.as_ref().and_then(|route| route(&parts)) {
                        Some(route) => Cow::Owned(route),
                        None => normalize_route(parts.uri.path()),
                    },
                };
                (
                    (LABEL_METHOD, LABEL_ROUTE),
                    (method_label(&parts.method), &*route),
                )
            }
        };
        let tenant = parts
            .extensions
            .get::<TenantId>()
            .map_or(UNKNOWN, TenantId::as_str);
        let values = LabelValues {
            names,
            values,
            tenant,
        };
        let handles = self.config.handles.get(&self.config, &values);
        let measure = Measure::start(Arc::clone(&self.config), protocol, handles, start);
        MetricsFuture::new(self.inner.call(Request::from_parts(parts, body)), measure)
    }
}

/// A name or label value that is cheap to clone (a reference count, not a copy).
pub(super) fn shared(value: &str) -> SharedString {
    SharedString::from(Arc::<str>::from(value))
}
