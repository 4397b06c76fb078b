//! The tenant stage: which tenant a request is admitted as, and how a refusal is
//! answered and counted. Used by [`Tenant`](super::Tenant) and by the
//! [`InstrumentLayer`](crate::stack::InstrumentLayer)'s service.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};

use http::{HeaderName, Response, StatusCode};
use instrument_core::semconv::{
    MetricNames, LABEL_PROTOCOL, LABEL_REASON, TENANT_HEADER, TENANT_REJECTED,
};
use instrument_core::tenant::{TenantId, MAX_TENANT_ID_LEN};
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
    /// The refusal warnings written, at most one per [`WARN_EVERY`].
    pub(crate) warnings: Arc<RateLimit>,
}

/// How often the tenant check writes its refusal warning at most; the refusals in
/// between are counted in the next one (and each is in the rejection counter and on
/// its span), so a client sending no tenant at a high rate cannot flood the log.
pub(crate) const WARN_EVERY: Duration = Duration::from_secs(10);

/// A warning let through at most once per period; how many were held back since.
#[derive(Debug, Default)]
pub(crate) struct RateLimit {
    /// Milliseconds since [`epoch`] of the last one let through, plus one (0: none yet).
    last: AtomicU64,
    held: AtomicU64,
}

impl RateLimit {
    /// `Some(held back since the last)` when a warning may be written now.
    pub(crate) fn admit(&self, every: Duration) -> Option<u64> {
        let now = u64::try_from(epoch().elapsed().as_millis()).unwrap_or(u64::MAX - 1) + 1;
        let last = self.last.load(Ordering::Relaxed);
        let every = u64::try_from(every.as_millis()).unwrap_or(u64::MAX);
        if last != 0 && now.saturating_sub(last) < every
            || self
                .last
                .compare_exchange(last, now, Ordering::Relaxed, Ordering::Relaxed)
                .is_err()
        {
            self.held.fetch_add(1, Ordering::Relaxed);
            return None;
        }
        Some(self.held.swap(0, Ordering::Relaxed))
    }
}

fn epoch() -> Instant {
    static EPOCH: OnceLock<Instant> = OnceLock::new();
    *EPOCH.get_or_init(Instant::now)
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
            warnings: Arc::default(),
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
    /// protocol, an event on the request's span (`cx`), a warning (at most one per
    /// [`WARN_EVERY`]), and a response in the request's protocol saying what to send,
    /// with, for HTTP, the text of its body. No request data in any of them.
    pub(crate) fn refuse<B: Default>(
        &self,
        problem: TenantProblem,
        protocol: Protocol,
        cx: &Context,
    ) -> (Response<B>, String) {
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
        if let Some(held) = self.warnings.admit(WARN_EVERY) {
            // With the request's trace id in the log line.
            let _attached = cx.clone().attach();
            tracing::warn!(
                reason = problem.label(),
                protocol = protocol.label(),
                header = self.header.as_str(),
                refused_since_last_warning = held,
                "request refused by the tenant check (one warning per {}s at most; every \
                 refusal is counted in {})",
                WARN_EVERY.as_secs(),
                self.rejections,
            );
        }
        let refusal = refusal(problem, &self.header, protocol);
        let mut response: Response<B> = refusal.response(protocol);
        response.extensions_mut().insert(RefusedByCheck);
        let body = match protocol {
            Protocol::Http => refusal.message + "\n",
            Protocol::Grpc => String::new(),
        };
        (response, body)
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

/// What a refusal says: the problem and what to send instead, naming the tenant
/// `header` (gRPC calls headers metadata).
fn refusal(problem: TenantProblem, header: &HeaderName, protocol: Protocol) -> Refusal {
    let carrier = match protocol {
        Protocol::Http => "header",
        Protocol::Grpc => "metadata",
    };
    match problem {
        TenantProblem::Missing => Refusal {
            http: StatusCode::UNAUTHORIZED,
            grpc: 16, // UNAUTHENTICATED
            message: format!(
                "a tenant is required: send the tenant id in the `{header}` {carrier}"
            ),
        },
        TenantProblem::Malformed => Refusal {
            http: StatusCode::BAD_REQUEST,
            grpc: 3, // INVALID_ARGUMENT
            message: format!(
                "the tenant id is not valid: send one `{header}` {carrier} of 1 to {} \
                 characters from A-Z a-z 0-9 . _ : -",
                MAX_TENANT_ID_LEN
            ),
        },
        // Says neither which tenant owns the workflow nor that the id exists.
        TenantProblem::OtherTenant => Refusal {
            http: StatusCode::FORBIDDEN,
            grpc: 7, // PERMISSION_DENIED
            message: "the workflow is not accessible to this tenant".to_owned(),
        },
    }
}
