//! [`RequestMetricsLayer`] and its configuration.

use std::borrow::Cow;
use std::fmt;
use std::sync::Arc;

use http::request::Parts;

use instrument_core::semconv::MetricNames;

use super::measure::MeasureConfig;
use super::service::RequestMetrics;
use crate::classify::DefaultClassifier;
use crate::names::Names;
use crate::request::{DefaultRoute, Route, RouteFn};
use instrument_core::measure::RequestMeasures;

/// Records request count, duration, errors and in-flight requests (see the
/// [module docs](super)).
///
/// Type parameters, each set by one builder method: the classifier `C`
/// ([`classifier`](Self::classifier)), the route `R` ([`route`](Self::route)) and the
/// filter `F` ([`filter`](Self::filter)).
pub struct RequestMetricsLayer<C = DefaultClassifier, R = DefaultRoute, F = ()> {
    pub(crate) config: Arc<LayerConfig<R, F>>,
    pub(crate) classifier: C,
}

/// What the services of one [`RequestMetricsLayer`] share.
pub(crate) struct LayerConfig<R, F> {
    /// The metrics and the targets the server recognised.
    pub(crate) measure: Arc<MeasureConfig>,
    pub(crate) route: R,
    pub(crate) filter: F,
}

impl<C: Clone, R, F> Clone for RequestMetricsLayer<C, R, F> {
    fn clone(&self) -> Self {
        Self {
            config: Arc::clone(&self.config),
            classifier: self.classifier.clone(),
        }
    }
}

impl<C, R, F> fmt::Debug for RequestMetricsLayer<C, R, F> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RequestMetricsLayer")
            .field("metrics", &self.config.measure)
            .finish_non_exhaustive()
    }
}

impl Default for RequestMetricsLayer {
    fn default() -> Self {
        Self::new()
    }
}

impl RequestMetricsLayer {
    /// Metrics named after the process-wide [`MetricNames`](MetricNames::global)
    /// (`http_server_request_duration_seconds`, ... by default), the default
    /// classifier, routes from the framework ([`DefaultRoute`](crate::request::DefaultRoute)).
    pub fn new() -> Self {
        Self::with_names(MetricNames::global())
    }

    /// Metrics named after `names`: `RequestMetricsLayer::new().metric_names(&names)`.
    #[deprecated(
        since = "0.1.0",
        note = "use `RequestMetricsLayer::new().metric_names(&names)`"
    )]
    pub fn named(names: &MetricNames) -> Self {
        Self::with_names(names)
    }

    fn with_names(names: &MetricNames) -> Self {
        Self {
            config: Arc::new(LayerConfig {
                measure: Arc::new(MeasureConfig {
                    metrics: Arc::new(RequestMeasures::new(names)),
                    names: Names::default(),
                }),
                route: DefaultRoute,
                filter: (),
            }),
            classifier: DefaultClassifier::default(),
        }
    }
}

impl<C, R: Clone, F: Clone> RequestMetricsLayer<C, R, F> {
    fn rebuilt<R2, F2>(
        self,
        route: impl FnOnce(R) -> R2,
        filter: impl FnOnce(F) -> F2,
    ) -> RequestMetricsLayer<C, R2, F2> {
        let LayerConfig {
            measure,
            route: r,
            filter: f,
        } = Arc::unwrap_or_clone(self.config);
        RequestMetricsLayer {
            config: Arc::new(LayerConfig {
                measure,
                route: route(r),
                filter: filter(f),
            }),
            classifier: self.classifier,
        }
    }

    /// Decides which responses count as errors with `classifier` (see
    /// [`classify`](crate::classify)).
    pub fn classifier<C2>(self, classifier: C2) -> RequestMetricsLayer<C2, R, F> {
        RequestMetricsLayer {
            config: self.config,
            classifier,
        }
    }

    /// Picks the HTTP route for span names and metric labels with `route`, a function
    /// of the request's head returning the route template (`&'static str` or `String`),
    /// `None` for a request without one:
    /// `.route(|parts| parts.uri.path().starts_with("/jobs/").then_some("/jobs/{job}"))`.
    /// A [`Route`](crate::request::Route) type ([`NormalizedPath`](crate::request::NormalizedPath),
    /// axum's [`MatchedPath`](crate::request)) goes to [`route_with`](Self::route_with).
    pub fn route<H, O>(self, route: H) -> RequestMetricsLayer<C, RouteFn<H, O>, F>
    where
        H: Fn(&Parts) -> Option<O> + Send + Sync + 'static,
        O: Into<Cow<'static, str>> + 'static,
    {
        self.route_with(RouteFn::new(route))
    }

    /// Picks the `route` label of plain HTTP requests with a
    /// [`Route`](crate::request::Route) type.
    pub fn route_with<R2: Route>(self, route: R2) -> RequestMetricsLayer<C, R2, F> {
        self.rebuilt(|_| route, |f| f)
    }

    /// Leaves the requests `filter` skips unmeasured (see
    /// [`Filter`](crate::request::Filter)).
    pub fn filter<F2>(self, filter: F2) -> RequestMetricsLayer<C, R, F2>
    where
        F2: Fn(&Parts) -> bool + Send + Sync + 'static,
    {
        self.rebuilt(|r| r, |_| filter)
    }
}

impl<R: Clone, F: Clone> Clone for LayerConfig<R, F> {
    fn clone(&self) -> Self {
        Self {
            measure: Arc::clone(&self.measure),
            route: self.route.clone(),
            filter: self.filter.clone(),
        }
    }
}

impl<C, R: Clone, F: Clone> RequestMetricsLayer<C, R, F> {
    /// Names every metric after `names` (their scheme and prefix) instead of the
    /// process-wide names.
    pub fn metric_names(mut self, names: &MetricNames) -> Self {
        let config = Arc::make_mut(&mut self.config);
        Arc::make_mut(&mut config.measure).metrics = Arc::new(RequestMeasures::new(names));
        self
    }

    /// See [`TraceLayer::grpc_methods`](crate::trace::TraceLayer::grpc_methods).
    pub fn grpc_methods<M: Into<String>>(mut self, methods: impl IntoIterator<Item = M>) -> Self {
        let config = Arc::make_mut(&mut self.config);
        Arc::make_mut(&mut config.measure).names =
            Names::listed(methods.into_iter().map(Into::into));
        self
    }
}

impl<S, C: Clone, R, F> tower::Layer<S> for RequestMetricsLayer<C, R, F> {
    type Service = RequestMetrics<S, C, R, F>;

    fn layer(&self, inner: S) -> Self::Service {
        RequestMetrics {
            inner,
            config: Arc::clone(&self.config),
            classifier: self.classifier.clone(),
        }
    }
}
