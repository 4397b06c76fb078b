//! The metrics stage: the measurement of one request, from its start until its response
//! body ends or it is dropped, through instrument-core's [`RequestMeasures`]. Used by the
//! request-metrics layer's service and by the
//! [`InstrumentLayer`](crate::stack::InstrumentLayer)'s.

use std::sync::Arc;

use instrument_core::measure::{Ended, InFlight, RequestLabels, RequestMeasures, Served};
use instrument_core::tenant::TenantId;

use crate::body::{Observe, Outcome};
use crate::names::{Looked, Names};
use crate::protocol::{grpc_code_name, Protocol};
use crate::request::RequestFacts;

pub use instrument_core::measure::{
    LABEL_METHOD, LABEL_ROUTE, LABEL_RPC_METHOD, LABEL_RPC_SERVICE,
};

/// Label value of a tenant that is not known (a path exempt from the tenant check, a
/// request without a `TenantId` extension under the metrics layer alone).
pub const UNKNOWN: &str = "unknown";

/// The measurement of one request (an opaque part of the layers' response body types).
/// It is in the in-flight gauge from its start until it finishes or is dropped.
pub struct Measure {
    metrics: Arc<RequestMeasures>,
    protocol: Protocol,
    in_flight: InFlight,
    tenant: Option<TenantId>,
    names: Names,
    looked: Looked,
}

impl std::fmt::Debug for Measure {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Measure")
            .field("protocol", &self.protocol)
            .field("in_flight", &self.in_flight)
            .finish_non_exhaustive()
    }
}

impl Measure {
    /// Starts measuring the request of `facts` (for what `looked` says, from `names`),
    /// labelled with the admitted `tenant`.
    pub(crate) fn start(
        metrics: &Arc<RequestMeasures>,
        facts: &RequestFacts<'_>,
        tenant: Option<&TenantId>,
        names: &Names,
        looked: Looked,
    ) -> Self {
        let label = tenant.map_or(UNKNOWN, TenantId::as_str);
        Self {
            in_flight: metrics.start(served(facts.protocol), label, facts.start),
            metrics: Arc::clone(metrics),
            protocol: facts.protocol,
            tenant: tenant.cloned(),
            names: names.clone(),
            looked,
        }
    }

    /// The protocol of the request measured.
    pub(crate) fn protocol(&self) -> Protocol {
        self.protocol
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
}

fn served(protocol: Protocol) -> Served {
    match protocol {
        Protocol::Grpc => Served::Grpc,
        Protocol::Http => Served::Http,
    }
}

impl Observe for Measure {
    fn finish(self, outcome: &Outcome) {
        let (ended, error) = self.ended(outcome);
        let settled = self.names.settle(&self.looked, outcome);
        let (what, which) = settled.labels();
        let tenant = self.tenant.as_ref().map_or(UNKNOWN, TenantId::as_str);
        let labels = match self.protocol {
            Protocol::Grpc => RequestLabels::grpc(what, which, tenant),
            Protocol::Http => RequestLabels::http(what, which, tenant),
        };
        self.in_flight.finish(&self.metrics, &labels, ended, error);
    }
}
