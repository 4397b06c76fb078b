//! The metrics stage: the measurement of one request, from its start until its response
//! body ends or it is dropped. Used by [`RequestMetrics`](super::RequestMetrics) and by
//! the [`InstrumentLayer`](crate::stack::InstrumentLayer)'s service.

use std::sync::Arc;

use instrument_core::cardinality::status_group;
use instrument_core::semconv::MetricNames;
use instrument_core::tenant::TenantId;
use metrics::SharedString;

use super::handles::{HandleCache, Handles, LabelValues};
use crate::body::{Observe, Outcome};
use crate::protocol::{grpc_code_name, Protocol};
use crate::request::{RequestFacts, Target};

/// Label of the gRPC service (`package.Service`).
pub const LABEL_RPC_SERVICE: &str = "rpc_service";
/// Label of the gRPC method.
pub const LABEL_RPC_METHOD: &str = "rpc_method";
/// Label of the HTTP method.
pub const LABEL_METHOD: &str = "method";
/// Label of the HTTP route.
pub const LABEL_ROUTE: &str = "route";
/// Label value of a route or tenant that is not known.
pub const UNKNOWN: &str = "unknown";

/// The metrics stage's names and kept handles.
pub(crate) struct MetricsConfig {
    pub(crate) requests: SharedString,
    pub(crate) duration: SharedString,
    pub(crate) errors: SharedString,
    pub(crate) in_flight: SharedString,
    /// Handles per label set, shared by the services of one layer.
    pub(crate) handles: HandleCache,
}

impl std::fmt::Debug for MetricsConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MetricsConfig")
            .field("requests", &self.requests)
            .finish_non_exhaustive()
    }
}

impl MetricsConfig {
    /// Metrics named after `names`.
    pub(crate) fn named(names: &MetricNames) -> Self {
        Self {
            requests: shared(&names.requests_total()),
            duration: shared(&names.request_duration()),
            errors: shared(&names.request_errors_total()),
            in_flight: shared(&names.requests_in_flight()),
            handles: HandleCache::default(),
        }
    }
}

/// A name or label value that is cheap to clone (a reference count, not a copy).
pub(crate) fn shared(value: &str) -> SharedString {
    SharedString::from(Arc::<str>::from(value))
}

/// The measurement of one request (an opaque part of the layers' response body types).
/// It is in the in-flight gauge from its start until it finishes or is dropped.
pub struct Measure {
    config: Arc<MetricsConfig>,
    protocol: Protocol,
    handles: Arc<Handles>,
    start: std::time::Instant,
}

impl std::fmt::Debug for Measure {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Measure")
            .field("protocol", &self.protocol)
            .field("handles", &self.handles)
            .finish_non_exhaustive()
    }
}

impl Measure {
    /// Starts measuring the request of `facts`, labelled with the admitted `tenant`.
    pub(crate) fn start(
        config: &Arc<MetricsConfig>,
        facts: &RequestFacts<'_>,
        tenant: Option<&TenantId>,
    ) -> Self {
        let (names, values) = match &facts.target {
            Target::Grpc(target) => (
                (LABEL_RPC_SERVICE, LABEL_RPC_METHOD),
                target.unwrap_or((UNKNOWN, UNKNOWN)),
            ),
            Target::Http(route) => (
                (LABEL_METHOD, LABEL_ROUTE),
                (facts.method, route.as_deref().unwrap_or(UNKNOWN)),
            ),
        };
        let values = LabelValues {
            names,
            values,
            tenant: tenant.map_or(UNKNOWN, TenantId::as_str),
        };
        let handles = config.handles.get(config, &values);
        handles.in_flight.increment(1.0);
        Self {
            config: Arc::clone(config),
            protocol: facts.protocol,
            handles,
            start: facts.start,
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
        self.handles.in_flight.decrement(1.0);
        let seconds = self.start.elapsed().as_secs_f64();
        self.handles.record(&self.config, status, error, seconds);
    }
}
