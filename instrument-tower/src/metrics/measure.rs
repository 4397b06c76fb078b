//! The metrics stage: the measurement of one request, from its start until its response
//! body ends or it is dropped, through instrument-core's [`RequestMeasures`]. Used by the
//! request-metrics layer's service and by the
//! [`InstrumentLayer`](crate::stack::InstrumentLayer)'s.

use std::sync::Arc;

use instrument_core::measure::{Ended, InFlight, RequestLabels, RequestMeasures};
use instrument_core::tenant::TenantId;

use crate::body::{Observe, Outcome};
use crate::names::{Looked, Names, Settled};
use crate::protocol::{grpc_code_name, Protocol};
use crate::request::RequestFacts;

pub use instrument_core::measure::{
    LABEL_METHOD, LABEL_ROUTE, LABEL_RPC_METHOD, LABEL_RPC_SERVICE,
};

/// Label value of a tenant that is not known (a path exempt from the tenant check, a
/// request without a `TenantId` extension under the metrics layer alone).
pub const UNKNOWN: &str = "unknown";

/// What the services of one request-metrics stage share: the metrics and the targets
/// the server recognised.
#[derive(Debug, Clone)]
pub(crate) struct MeasureConfig {
    pub(crate) metrics: Arc<RequestMeasures>,
    pub(crate) names: Names,
}

/// The measurement of one request (an opaque part of the layers' response body types).
/// It is in the in-flight gauge from its start until it finishes or is dropped.
pub struct Measure {
    config: Arc<MeasureConfig>,
    looked: Looked,
    metered: Metered,
}

impl std::fmt::Debug for Measure {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Measure")
            .field("metered", &self.metered)
            .finish_non_exhaustive()
    }
}

impl Measure {
    /// Starts measuring the request of `facts` (for what `looked` says), labelled with
    /// the admitted `tenant`.
    pub(crate) fn start(
        config: Arc<MeasureConfig>,
        facts: &RequestFacts<'_>,
        tenant: Option<&TenantId>,
        looked: Looked,
    ) -> Self {
        Self {
            metered: Metered::start(&config.metrics, facts, tenant, &looked),
            config,
            looked,
        }
    }

    /// The protocol of the request measured.
    pub(crate) fn protocol(&self) -> Protocol {
        self.metered.protocol
    }
}

impl Observe for Measure {
    fn finish(self, outcome: &Outcome) {
        let settled = self.config.names.settle(&self.looked, outcome);
        self.metered.finish(&self.config.metrics, settled, outcome);
    }
}

/// What one request's measurement holds of its own: its place in the in-flight gauge,
/// its tenant and protocol. The metrics and names it is recorded with are the stage's
/// ([`Measure`], or the [`InstrumentLayer`](crate::stack::InstrumentLayer)'s record).
#[derive(Debug)]
pub(crate) struct Metered {
    in_flight: InFlight,
    tenant: Option<TenantId>,
    protocol: Protocol,
}

impl Metered {
    /// Starts measuring the request of `facts` for what `looked` says, labelled with
    /// the admitted `tenant`. Its handles are found now for the labels it will most
    /// likely end with (its target as named now), so that its end finds them at hand.
    pub(crate) fn start(
        metrics: &RequestMeasures,
        facts: &RequestFacts<'_>,
        tenant: Option<&TenantId>,
        looked: &Looked,
    ) -> Self {
        let label = tenant.map_or(UNKNOWN, TenantId::as_str);
        let labels = labels(facts.protocol, Names::unanswered(looked), label);
        Self {
            in_flight: metrics.start_labelled(&labels, facts.start),
            tenant: tenant.cloned(),
            protocol: facts.protocol,
        }
    }

    /// How the request ended and whether it counts as an error (what the classifier
    /// called a failure).
    fn ended(&self, outcome: &Outcome) -> (Ended, bool) {
        let failed = outcome.failure().is_some();
        match outcome {
            Outcome::Responded {
                http,
                grpc,
                body_failed,
                ..
            } => match (self.protocol, grpc) {
                (_, _) if *body_failed => (Ended::Failed, true),
                (Protocol::Grpc, Some(code)) => (Ended::Grpc(grpc_code_name(*code)), failed),
                _ => (Ended::Http(*http), failed),
            },
            Outcome::Failed(_) => (Ended::Failed, true),
            Outcome::Cancelled => (Ended::Cancelled, false),
        }
    }

    /// Records the request, for what `settled` says it was, ended with `outcome`.
    pub(crate) fn finish(self, metrics: &RequestMeasures, settled: Settled<'_>, outcome: &Outcome) {
        let (ended, error) = self.ended(outcome);
        let tenant = self.tenant.as_ref().map_or(UNKNOWN, TenantId::as_str);
        let labels = labels(self.protocol, settled, tenant);
        self.in_flight.finish(metrics, &labels, ended, error);
    }
}

/// The metric labels of a request over `protocol` that `settled` says what it was for.
fn labels<'a>(protocol: Protocol, settled: Settled<'a>, tenant: &'a str) -> RequestLabels<'a> {
    let (what, which) = settled.labels();
    match protocol {
        Protocol::Grpc => RequestLabels::grpc(what, which, tenant),
        Protocol::Http => RequestLabels::http(what, which, tenant),
    }
}
