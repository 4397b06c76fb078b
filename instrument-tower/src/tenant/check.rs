//! The tenant stage: which tenant a request is admitted as, and how a refusal is
//! answered and counted. Used by [`Tenant`](super::Tenant) and by the
//! [`InstrumentLayer`](crate::stack::InstrumentLayer)'s service.

use http::{HeaderName, Response, StatusCode};
use instrument_core::semconv::{
    MetricNames, LABEL_PROTOCOL, LABEL_REASON, TENANT_HEADER, TENANT_REJECTED,
};
use instrument_core::tenant::TenantId;
use metrics::SharedString;
use opentelemetry::trace::TraceContextExt as _;
use opentelemetry::{Context, KeyValue};

use crate::protocol::{Protocol, Refusal};
use crate::request::TenantProblem;
use crate::source::StoredTrace;
use crate::trace::span::RefusedByCheck;

/// What the tenant stage is configured with.
#[derive(Debug, Clone)]
pub(crate) struct TenantRules {
    pub(crate) header: HeaderName,
    /// Path prefixes let through without a tenant.
    pub(crate) exempt: Vec<String>,
    pub(crate) rejections: SharedString,
}

impl Default for TenantRules {
    fn default() -> Self {
        Self {
            header: HeaderName::from_static(TENANT_HEADER),
            exempt: vec![
                "/grpc.health.v1.Health/".to_owned(),
                "/grpc.reflection.".to_owned(),
            ],
            rejections: SharedString::from(MetricNames::global().tenant_rejections_total()),
        }
    }
}

impl TenantRules {
    /// Whether requests to `path` need no tenant.
    pub(crate) fn is_exempt(&self, path: &str) -> bool {
        self.exempt
            .iter()
            .any(|prefix| path.starts_with(prefix.as_str()))
    }

    /// Counts, records and answers a refusal: the rejection counter by reason and
    /// protocol, an event on the request's span (`cx`), a warning, and a response in
    /// the request's protocol. No request data in any of them.
    pub(crate) fn refuse<B: Default>(
        &self,
        problem: TenantProblem,
        protocol: Protocol,
        cx: &Context,
    ) -> Response<B> {
        metrics::counter!(
            self.rejections.clone(),
            LABEL_REASON => problem.label(),
            LABEL_PROTOCOL => protocol.label(),
        )
        .increment(1);
        let span = cx.span();
        span.set_attribute(KeyValue::new(TENANT_REJECTED, problem.label()));
        span.add_event(
            "tenant.rejected",
            vec![
                KeyValue::new(LABEL_REASON, problem.label()),
                KeyValue::new(LABEL_PROTOCOL, protocol.label()),
            ],
        );
        tracing::warn!(
            reason = problem.label(),
            protocol = protocol.label(),
            "request refused by the tenant check"
        );
        let mut response: Response<B> = refusal(problem).response(protocol);
        response.extensions_mut().insert(RefusedByCheck);
        response
    }
}

/// The tenant a request is admitted as: the one `found` (see
/// [`RequestFacts::tenant`](crate::request::RequestFacts)), when the workflow it is
/// about (`stored`, found by the trace layer) is that tenant's.
pub(crate) fn admit(
    found: &Result<TenantId, TenantProblem>,
    stored: Option<&StoredTrace>,
) -> Result<TenantId, TenantProblem> {
    let tenant = found.clone()?;
    match stored {
        Some(stored) if stored.tenant() != &tenant => Err(TenantProblem::OtherTenant),
        _ => Ok(tenant),
    }
}

fn refusal(problem: TenantProblem) -> Refusal {
    match problem {
        TenantProblem::Missing => Refusal {
            http: StatusCode::UNAUTHORIZED,
            grpc: 16, // UNAUTHENTICATED
            message: "a tenant is required",
        },
        TenantProblem::Malformed => Refusal {
            http: StatusCode::BAD_REQUEST,
            grpc: 3, // INVALID_ARGUMENT
            message: "the tenant id is not valid",
        },
        // Says neither which tenant owns the workflow nor that the id exists.
        TenantProblem::OtherTenant => Refusal {
            http: StatusCode::FORBIDDEN,
            grpc: 7, // PERMISSION_DENIED
            message: "the workflow is not accessible to this tenant",
        },
    }
}
