//! The metrics stage: the measurement of one request, from its start until its response
//! body ends or it is dropped, through instrument-core's [`RequestMeasures`]. Used by the
//! request-metrics layer's service and by the
//! [`InstrumentLayer`](crate::stack::InstrumentLayer)'s.

use std::sync::Arc;

use instrument_core::cardinality::status_group;
use instrument_core::measure::{InFlight, RequestLabels, RequestMeasures};
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
            in_flight: metrics.start(label, facts.start),
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

    /// The `status` label and whether the request counts as an error (what the
    /// classifier called a failure).
    fn status(&self, outcome: &Outcome) -> (&'static str, bool) {
        let failed = outcome.failure().is_some();
        match outcome {
            Outcome::Responded {
                http,
                grpc,
                body_failed,
                ..
            } => match (self.protocol, grpc) {
                (_, _) if *body_failed => ("error", true),
                (Protocol::Grpc, Some(code)) => (grpc_code_name(*code), failed),
                _ => (status_group(*http), failed),
            },
            Outcome::Failed(_) => ("error", true),
            Outcome::Cancelled => ("cancelled", false),
        }
    }
}

impl Observe for Measure {
    fn finish(self, outcome: &Outcome) {
        let (status, error) = self.status(outcome);
        let settled = self.names.settle(&self.looked, outcome);
        let (what, which) = settled.labels();
        let tenant = self.tenant.as_ref().map_or(UNKNOWN, TenantId::as_str);
        let labels = match self.protocol {
            Protocol::Grpc => RequestLabels::grpc(what, which, tenant),
            Protocol::Http => RequestLabels::http(what, which, tenant),
        };
        self.in_flight.finish(&self.metrics, &labels, status, error);
    }
}
