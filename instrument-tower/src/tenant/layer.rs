//! [`TenantLayer`] and its configuration.

use std::sync::Arc;

use http::HeaderName;
use instrument_core::semconv::MetricNames;
use metrics::SharedString;

use super::check::TenantRules;
use super::service::Tenant;

/// Resolves the tenant of every request and rejects requests without a valid one
/// (see the [module docs](super)).
#[derive(Debug, Clone, Default)]
pub struct TenantLayer {
    pub(crate) rules: Arc<TenantRules>,
}

impl TenantLayer {
    /// Tenant from a `TenantId` request extension (set by an auth layer) or the
    /// `x-tenant-id` header / gRPC metadata key; gRPC health checks and reflection
    /// exempt; the rejection counter named after the process-wide
    /// [`MetricNames`](MetricNames::global).
    pub fn new() -> Self {
        Self::default()
    }

    fn rules_mut(&mut self) -> &mut TenantRules {
        Arc::make_mut(&mut self.rules)
    }

    /// Reads the tenant from this header (gRPC metadata key) instead of `x-tenant-id`.
    ///
    /// A header is what any client can write: with it, a client can present any valid
    /// tenant id. Prefer a tenant taken from authentication (an auth layer putting a
    /// [`TenantId`](instrument_core::tenant::TenantId) in the request's extensions,
    /// which wins over the header).
    pub fn tenant_header(mut self, name: HeaderName) -> Self {
        self.rules_mut().header = name;
        self
    }

    /// Renamed [`tenant_header`](Self::tenant_header), as on every builder.
    #[deprecated(since = "0.1.0", note = "renamed `tenant_header`")]
    pub fn header(self, name: HeaderName) -> Self {
        self.tenant_header(name)
    }

    /// Lets requests whose path starts with `prefix` through without a tenant.
    pub fn exempt(mut self, prefix: impl Into<String>) -> Self {
        self.rules_mut().exempt.push(prefix.into());
        self
    }

    /// Names the rejection counter after `names`' prefix.
    pub fn metric_names(mut self, names: &MetricNames) -> Self {
        self.rules_mut().rejections = SharedString::from(names.tenant_rejections_total());
        self
    }
}

impl<S> tower::Layer<S> for TenantLayer {
    type Service = Tenant<S>;

    fn layer(&self, inner: S) -> Self::Service {
        Tenant {
            inner,
            rules: Arc::clone(&self.rules),
        }
    }
}
