//! [`TenantLayer`] and its configuration.

use std::sync::Arc;

use http::HeaderName;
use instrument_core::semconv::{MetricNames, TENANT_HEADER};

use super::service::TenantService;

/// Resolves the tenant of every request and rejects requests without a valid one
/// (see the [module docs](super)).
#[derive(Debug, Clone)]
pub struct TenantLayer {
    pub(crate) config: Arc<TenantConfig>,
}

#[derive(Debug, Clone)]
pub(crate) struct TenantConfig {
    pub(crate) header: HeaderName,
    pub(crate) exempt: Vec<String>,
    pub(crate) rejections_metric: String,
    /// Set under [`InstrumentLayer`](crate::stack::InstrumentLayer): the trace layer
    /// above leaves the tenant it read in the request's [`Read`](crate::stack::Read),
    /// and puts it in the context it polls the request's future in, so there is no
    /// header to read and no context to add here.
    pub(crate) under_trace_layer: bool,
}

/// A header name that is not a valid HTTP header name.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InvalidHeaderName;

impl std::fmt::Display for InvalidHeaderName {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("not a valid HTTP header name (lower-case token characters)")
    }
}

impl std::error::Error for InvalidHeaderName {}

impl Default for TenantLayer {
    fn default() -> Self {
        Self::new()
    }
}

impl TenantLayer {
    /// Tenant from a `TenantId` request extension (set by an auth layer) or the
    /// `x-tenant-id` header / gRPC metadata key; gRPC health checks and reflection exempt.
    pub fn new() -> Self {
        Self {
            config: Arc::new(TenantConfig {
                header: HeaderName::from_static(TENANT_HEADER),
                exempt: vec![
                    "/grpc.health.v1.Health/".to_owned(),
                    "/grpc.reflection.".to_owned(),
                ],
                rejections_metric: MetricNames::default().tenant_rejections_total(),
                under_trace_layer: false,
            }),
        }
    }

    fn config_mut(&mut self) -> &mut TenantConfig {
        Arc::make_mut(&mut self.config)
    }

    /// Reads the tenant from this header (gRPC metadata key) instead of `x-tenant-id`.
    pub fn header(mut self, name: &str) -> Result<Self, InvalidHeaderName> {
        let name = HeaderName::try_from(name).map_err(|_| InvalidHeaderName)?;
        self.config_mut().header = name;
        Ok(self)
    }

    /// Lets requests whose path starts with `prefix` through without a tenant.
    pub fn exempt(mut self, prefix: impl Into<String>) -> Self {
        self.config_mut().exempt.push(prefix.into());
        self
    }

    /// See [`TenantConfig::under_trace_layer`].
    pub(crate) fn under_trace_layer(mut self) -> Self {
        self.config_mut().under_trace_layer = true;
        self
    }

    /// Names the rejection counter after `names`' prefix.
    pub fn metric_names(mut self, names: &MetricNames) -> Self {
        self.config_mut().rejections_metric = names.tenant_rejections_total();
        self
    }
}

impl<S> tower::Layer<S> for TenantLayer {
    type Service = TenantService<S>;

    fn layer(&self, inner: S) -> Self::Service {
        TenantService {
            inner,
            config: Arc::clone(&self.config),
        }
    }
}
