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
use instrument_core::tenant::TenantId;
use opentelemetry::trace::{Span, Tracer};

use crate::metrics::{MetricsService, RequestMetricsLayer};
use crate::protocol::Protocol;
use crate::source::{NoSource, TraceSource};
use crate::tenant::{InvalidHeaderName, Reason, TenantLayer, TenantService};
use crate::trace::{RouteFn, TraceContextLayer, TraceService};

/// What the trace layer of an [`InstrumentLayer`] read from a request, left in its
/// extensions for the two layers below, so that no header is read twice and no route
/// normalized twice. Only layers built together by [`InstrumentBuilder`] use it: they
/// share the tenant header and the route function, so they would read the same.
#[derive(Debug, Clone)]
pub(crate) struct Read {
    pub(crate) protocol: Protocol,
    /// The tenant as [`resolve_tenant`](crate::tenant::resolve_tenant) found it.
    pub(crate) tenant: Result<TenantId, Reason>,
    /// The `http.route` of a plain HTTP request; `None` for gRPC.
    pub(crate) route: Option<Arc<str>>,
}

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
            trace: trace.shares_reads(),
            tenant: self.tenant.under_trace_layer(),
            metrics: metrics.under_trace_layer(),
        }
    }
}

#[cfg(test)]
mod tests {
    use std::convert::Infallible;

    use http::{Request, Response, StatusCode};
    use instrument_core::semconv::HTTP_ROUTE;
    use metrics_util::debugging::DebuggingRecorder;
    use tower::{ServiceBuilder, ServiceExt as _};

    use super::InstrumentLayer;
    use crate::metrics::RequestMetricsLayer;
    use crate::test_support::*;

    async fn ok(_: Request<()>) -> Result<Response<Reply>, Infallible> {
        Ok(Response::new(Reply::text("ok")))
    }

    fn post(path: &str, headers: &[(&str, &str)]) -> Request<()> {
        let mut request = Request::post(path);
        for (name, value) in headers {
            request = request.header(*name, *value);
        }
        request.body(()).unwrap()
    }

    /// The trace layer reads the tenant and the route once for the three layers: all
    /// three follow the builder's tenant header and route function.
    #[test]
    fn the_layers_read_the_builders_tenant_header_and_route() {
        let (tracer, exporter, _provider) = tracer();
        let recorder = DebuggingRecorder::new();
        let layer = InstrumentLayer::builder()
            .tracer(tracer)
            .tenant_header("x-org")
            .unwrap()
            .route(|parts| {
                parts
                    .uri
                    .path()
                    .starts_with("/jobs/")
                    .then(|| "/jobs/:job".to_owned())
            })
            .build();
        let statuses = |requests: Vec<Request<()>>| {
            let layer = layer.clone();
            let mut statuses = Vec::new();
            run(&recorder, async {
                for request in requests {
                    let service = ServiceBuilder::new().layer(layer.clone()).service_fn(ok);
                    let response = service.oneshot(request).await.unwrap();
                    statuses.push(response.status());
                    drain(response.into_body()).await;
                }
            });
            statuses
        };
        let statuses = statuses(vec![
            post("/jobs/nightly-report", &[("x-org", "acme")]),
            post("/jobs/nightly-report", &[("x-tenant-id", "acme")]),
            post(
                "/jobs/nightly-report",
                &[("x-org", "acme"), ("x-org", "globex")],
            ),
            post("/orders/12345", &[("x-org", "acme")]),
        ]);
        assert_eq!(
            statuses,
            [
                StatusCode::OK,
                StatusCode::UNAUTHORIZED,
                StatusCode::BAD_REQUEST,
                StatusCode::OK
            ]
        );

        let spans = spans(&exporter);
        let names: Vec<&str> = spans.iter().map(|span| &*span.name).collect();
        assert_eq!(
            names,
            [
                "POST /jobs/:job",
                "POST /jobs/:job",
                "POST /jobs/:job",
                "POST /orders/{id}"
            ]
        );
        assert_eq!(
            attr_str(&spans[0], HTTP_ROUTE).as_deref(),
            Some("/jobs/:job")
        );
        assert_eq!(attr_str(&spans[0], "tenant.id").as_deref(), Some("acme"));
        assert_eq!(attr_str(&spans[3], "tenant.id").as_deref(), Some("acme"));

        let m = snapshot(&recorder);
        let requests = |route: &str| {
            m.get(&format!(
                "instrument_requests_total{{method=POST,route={route},status=2xx,tenant_id=acme}}"
            ))
            .map(String::as_str)
        };
        assert_eq!(requests("/jobs/:job"), Some("1"));
        assert_eq!(requests("/orders/{id}"), Some("1"));
        let rejected = |reason: &str| {
            m.get(&format!(
                "instrument_tenant_rejections_total{{protocol=http,reason={reason}}}"
            ))
            .map(String::as_str)
        };
        assert_eq!(rejected("missing"), Some("1"));
        assert_eq!(rejected("malformed"), Some("1"));
    }

    /// What the stack read is its own: a metrics layer of its own configuration, inside
    /// the stack, picks its own route.
    #[test]
    fn a_metrics_layer_inside_the_stack_keeps_its_own_route() {
        let recorder = DebuggingRecorder::new();
        run(&recorder, async {
            let service = ServiceBuilder::new()
                .layer(InstrumentLayer::default())
                .layer(RequestMetricsLayer::new().route(|_| Some("/inner".to_owned())))
                .service_fn(ok);
            let request = post("/workflows/wf-1", &[("x-tenant-id", "acme")]);
            let response = service.oneshot(request).await.unwrap();
            assert_eq!(response.status(), StatusCode::OK);
            drain(response.into_body()).await;
        });
        let m = snapshot(&recorder);
        let requests = |route: &str| {
            m.get(&format!(
                "instrument_requests_total{{method=POST,route={route},status=2xx,tenant_id=acme}}"
            ))
            .map(String::as_str)
        };
        assert_eq!(requests("/workflows/wf-1"), Some("1"), "the stack's own");
        assert_eq!(requests("/inner"), Some("1"), "the inner layer's");
    }
}
