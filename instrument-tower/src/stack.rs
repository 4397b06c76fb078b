//! [`InstrumentLayer`]: the trace-context, tenant and request-metrics layers stacked in
//! the order they need.
//!
//! Outermost first:
//! 1. [`TraceContextLayer`]: the server span exists before anything can refuse the
//!    request, so refusals are recorded on it; it finds the stored trace the tenant
//!    layer checks.
//! 2. [`TenantLayer`]: refuses requests without a valid tenant, or for another
//!    tenant's workflow, and puts the tenant in the extensions and the context.
//! 3. [`RequestMetricsLayer`]: labels its metrics with the accepted tenant.
//!
//! The same order suits tonic (`Server::builder().layer(...)`) and a plain HTTP
//! `tower::ServiceBuilder`. Each layer can also be used alone.
//!
//! ```
//! use http::{Request, Response, StatusCode};
//! use instrument_tower::stack::InstrumentLayer;
//! use tower::{ServiceBuilder, ServiceExt as _};
//!
//! # #[tokio::main(flavor = "current_thread")] async fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let layer = InstrumentLayer::builder()
//!     .record_headers(["user-agent", "authorization"])?
//!     .build();
//! let service = ServiceBuilder::new()
//!     .layer(layer)
//!     .service_fn(|_: Request<()>| async { Ok::<_, std::convert::Infallible>(Response::new(String::new())) });
//! let request = Request::builder().uri("/workflows").header("x-tenant-id", "acme").body(())?;
//! let response = service.oneshot(request).await?;
//! assert_eq!(response.status(), StatusCode::OK);
//! # Ok(()) }
//! ```

use std::sync::Arc;

use http::request::Parts;
use instrument_core::context::ParentPolicy;
use instrument_core::redact::Redactor;
use instrument_core::semconv::MetricNames;
use opentelemetry::trace::{Span, Tracer};

use crate::metrics::{MetricsService, RequestMetricsLayer};
use crate::source::{NoSource, TraceSource};
use crate::tenant::{InvalidHeaderName, TenantLayer, TenantService};
use crate::trace::{RouteFn, TraceContextLayer, TraceService};

/// The three layers in order (see the [module docs](self)).
#[derive(Debug)]
pub struct InstrumentLayer<Src = NoSource> {
    trace: TraceContextLayer<Src>,
    tenant: TenantLayer,
    metrics: RequestMetricsLayer,
}

impl<Src> Clone for InstrumentLayer<Src> {
    fn clone(&self) -> Self {
        Self {
            trace: self.trace.clone(),
            tenant: self.tenant.clone(),
            metrics: self.metrics.clone(),
        }
    }
}

impl InstrumentLayer {
    /// A builder with the defaults of each layer.
    pub fn builder() -> InstrumentBuilder {
        InstrumentBuilder {
            trace: TraceContextLayer::new(),
            tenant: TenantLayer::new(),
            metrics: RequestMetricsLayer::new(),
            route: None,
        }
    }
}

impl Default for InstrumentLayer {
    fn default() -> Self {
        Self::builder().build()
    }
}

impl<S, Src> tower::Layer<S> for InstrumentLayer<Src> {
    type Service = TraceService<TenantService<MetricsService<S>>, Src>;

    fn layer(&self, inner: S) -> Self::Service {
        self.trace
            .layer(self.tenant.layer(self.metrics.layer(inner)))
    }
}

/// Configures an [`InstrumentLayer`]; settings shared by several layers (tenant
/// header, route, metric names) are set once here.
pub struct InstrumentBuilder<Src = NoSource> {
    trace: TraceContextLayer<Src>,
    tenant: TenantLayer,
    metrics: RequestMetricsLayer,
    route: Option<Arc<RouteFn>>,
}

impl<Src> std::fmt::Debug for InstrumentBuilder<Src> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("InstrumentBuilder")
            .field("trace", &self.trace)
            .field("tenant", &self.tenant)
            .field("metrics", &self.metrics)
            .finish_non_exhaustive()
    }
}

impl<Src> InstrumentBuilder<Src> {
    /// Restores each request's parent from the trace `source` finds for it, and refuses
    /// requests for another tenant's workflow.
    pub fn source<S: TraceSource>(self, source: S) -> InstrumentBuilder<S> {
        InstrumentBuilder {
            trace: self.trace.source(source),
            tenant: self.tenant,
            metrics: self.metrics,
            route: self.route,
        }
    }

    /// See [`TraceContextLayer::parent_policy`].
    pub fn parent_policy(mut self, policy: ParentPolicy) -> Self {
        self.trace = self.trace.parent_policy(policy);
        self
    }

    /// See [`TraceContextLayer::tracer`].
    pub fn tracer<T>(mut self, tracer: T) -> Self
    where
        T: Tracer + Send + Sync + 'static,
        T::Span: Span + Send + Sync + 'static,
    {
        self.trace = self.trace.tracer(tracer);
        self
    }

    /// See [`TraceContextLayer::tracking_header`].
    pub fn tracking_header(mut self, name: Option<&str>) -> Result<Self, InvalidHeaderName> {
        self.trace = self.trace.tracking_header(name)?;
        Ok(self)
    }

    /// The header (gRPC metadata key) carrying the tenant, for every layer.
    pub fn tenant_header(mut self, name: &str) -> Result<Self, InvalidHeaderName> {
        self.trace = self.trace.tenant_header(name)?;
        self.tenant = self.tenant.header(name)?;
        Ok(self)
    }

    /// See [`TenantLayer::exempt`].
    pub fn exempt(mut self, prefix: impl Into<String>) -> Self {
        self.tenant = self.tenant.exempt(prefix);
        self
    }

    /// Names every metric after `names`' prefix.
    pub fn metric_names(mut self, names: &MetricNames) -> Self {
        self.tenant = self.tenant.metric_names(names);
        self.metrics = RequestMetricsLayer::named(names);
        self
    }

    /// Picks the HTTP route for span names and metric labels (see
    /// [`TraceContextLayer::route`]).
    pub fn route(
        mut self,
        route: impl Fn(&Parts) -> Option<String> + Send + Sync + 'static,
    ) -> Self {
        self.route = Some(Arc::new(route));
        self
    }

    /// See [`TraceContextLayer::record_headers`].
    pub fn record_headers<'a>(
        mut self,
        names: impl IntoIterator<Item = &'a str>,
    ) -> Result<Self, InvalidHeaderName> {
        self.trace = self.trace.record_headers(names)?;
        Ok(self)
    }

    /// See [`TraceContextLayer::redactor`].
    pub fn redactor(mut self, redactor: Redactor) -> Self {
        self.trace = self.trace.redactor(redactor);
        self
    }

    /// The stacked layer.
    pub fn build(self) -> InstrumentLayer<Src> {
        let (trace, metrics) = match self.route {
            Some(route) => (
                self.trace.with_route(Arc::clone(&route)),
                self.metrics.with_route(Some(route)),
            ),
            None => (self.trace, self.metrics),
        };
        InstrumentLayer {
            trace,
            tenant: self.tenant.under_trace_layer(),
            metrics,
        }
    }
}
