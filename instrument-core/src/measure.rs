//! Request metrics: count, duration, errors and requests in flight, with their handles
//! registered once per label set.
//!
//! Registering a metric (`counter!(name, labels)`) builds a `metrics::Key`, hashes it,
//! and looks it up in the recorder (and, behind a
//! [`GuardedRecorder`](crate::cardinality::GuardedRecorder), in the label guard): a few
//! hundred nanoseconds per metric, four metrics per request. The handles stay valid,
//! so [`RequestMeasures`] keeps them per label set, and each request after the first
//! costs one hash and one map read. They are kept only under a recorder that lives for
//! the rest of the program (the one `pipeline::install_prometheus` installs, or one
//! declared with [`keep_handles_for`](crate::cardinality::keep_handles_for)), for at
//! most [`MAX_LABEL_SETS`] label sets; under any other recorder (a test's local one)
//! each request registers its metrics: correct, slower.
//!
//! A request is in the in-flight gauge from its start, labelled by its tenant only;
//! what it was for (gRPC method, HTTP route) labels the counters and the histogram when
//! it ends, because only then is it known whether the server recognised it (a client
//! chooses the path it sends; see `instrument-tower`'s docs on what labels a client
//! can influence).
//!
//! The request-metrics layer of `instrument-tower` records through it; a server of
//! another kind can too:
//!
//! ```
//! use instrument_core::measure::{RequestLabels, RequestMeasures};
//! use instrument_core::semconv::MetricNames;
//!
//! let metrics = RequestMeasures::new(&MetricNames::default());
//! let request = metrics.start("acme", std::time::Instant::now());
//! // ... the request is served ...
//! let labels = RequestLabels::http("GET", "/workflows/{id}", "acme");
//! request.finish(&metrics, &labels, "2xx", false);
//! ```

use std::sync::{Arc, OnceLock, RwLock};
use std::time::Instant;

use metrics::{Counter, Gauge, Histogram, Label, SharedString};

use crate::cardinality::KeptHandles;
use crate::semconv::{MetricNames, LABEL_STATUS, LABEL_TENANT_ID};

/// Label of the gRPC service (`package.Service`).
pub const LABEL_RPC_SERVICE: &str = "rpc_service";
/// Label of the gRPC method.
pub const LABEL_RPC_METHOD: &str = "rpc_method";
/// Label of the HTTP method.
pub const LABEL_METHOD: &str = "method";
/// Label of the HTTP route.
pub const LABEL_ROUTE: &str = "route";

/// The request metrics of one server: their names, and the handles kept per label set.
pub struct RequestMeasures {
    requests: SharedString,
    duration: SharedString,
    errors: SharedString,
    in_flight: SharedString,
    kept: KeptHandles<Handles>,
    kept_in_flight: KeptHandles<InFlightHandle>,
}

impl std::fmt::Debug for RequestMeasures {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RequestMeasures")
            .field("requests", &self.requests)
            .field("kept", &self.kept)
            .finish_non_exhaustive()
    }
}

/// A name or label value that is cheap to clone (a reference count, not a copy).
fn shared(value: &str) -> SharedString {
    SharedString::from(Arc::<str>::from(value))
}

impl RequestMeasures {
    /// Metrics named after `names` (`<prefix>_requests_total`, ...).
    pub fn new(names: &MetricNames) -> Self {
        Self {
            requests: shared(&names.requests_total()),
            duration: shared(&names.request_duration()),
            errors: shared(&names.request_errors_total()),
            in_flight: shared(&names.requests_in_flight()),
            kept: KeptHandles::new(MAX_LABEL_SETS),
            kept_in_flight: KeptHandles::new(MAX_LABEL_SETS),
        }
    }

    /// A request of `tenant` starts: it counts in flight until its [`InFlight`] is
    /// finished or dropped; its duration is measured from `started`.
    pub fn start(&self, tenant: &str, started: Instant) -> InFlight {
        let gauge = self.kept_in_flight.get(
            tenant,
            |kept| kept.tenant.value() == tenant,
            || InFlightHandle::register(self, tenant),
        );
        gauge.gauge.increment(1.0);
        InFlight {
            gauge,
            started,
            finished: false,
        }
    }
}

/// The in-flight gauge of one tenant.
struct InFlightHandle {
    tenant: Label,
    gauge: Gauge,
}

impl std::fmt::Debug for InFlightHandle {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("InFlightHandle")
            .field("tenant", &self.tenant)
            .finish_non_exhaustive()
    }
}

impl InFlightHandle {
    fn register(config: &RequestMeasures, tenant: &str) -> Self {
        let tenant = Label::new(LABEL_TENANT_ID, shared(tenant));
        Self {
            gauge: metrics::gauge!(config.in_flight.clone(), vec![tenant.clone()]),
            tenant,
        }
    }
}

/// A request being measured (see [`RequestMeasures::start`]). Dropped unfinished, it
/// leaves the in-flight gauge without being counted.
#[derive(Debug)]
pub struct InFlight {
    gauge: Arc<InFlightHandle>,
    started: Instant,
    finished: bool,
}

impl InFlight {
    /// The request, what `labels` say it was for, ended with `status` (a label from a
    /// closed set: a gRPC code name, an HTTP status class, `error`, `cancelled`);
    /// `error` says whether it counts as one.
    pub fn finish(
        mut self,
        metrics: &RequestMeasures,
        labels: &RequestLabels<'_>,
        status: &'static str,
        error: bool,
    ) {
        self.finished = true;
        self.gauge.gauge.decrement(1.0);
        let seconds = self.started.elapsed().as_secs_f64();
        let handles = metrics.kept.get(
            labels,
            |kept| kept.matches(labels),
            || Handles::register(labels),
        );
        handles.record(metrics, status, error, seconds);
    }
}

impl Drop for InFlight {
    fn drop(&mut self) {
        if !self.finished {
            self.gauge.gauge.decrement(1.0);
        }
    }
}

/// Label sets a [`RequestMeasures`] keeps handles for; past that, each request
/// registers its metrics (the label guard still caps what reaches the recorder).
pub const MAX_LABEL_SETS: usize = 4096;

/// The labels of one request, borrowed from it: what it is for (gRPC service and
/// method, or HTTP method and route) and its tenant.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct RequestLabels<'a> {
    /// `(rpc_service, rpc_method)` or `(method, route)` label names.
    names: (&'static str, &'static str),
    /// Their values.
    values: (&'a str, &'a str),
    tenant: &'a str,
}

impl<'a> RequestLabels<'a> {
    /// The labels of a gRPC call of `service`'s `method` by `tenant`.
    pub fn grpc(service: &'a str, method: &'a str, tenant: &'a str) -> Self {
        Self {
            names: (LABEL_RPC_SERVICE, LABEL_RPC_METHOD),
            values: (service, method),
            tenant,
        }
    }

    /// The labels of an HTTP request: `method` (`GET`, ...) to `route` by `tenant`.
    pub fn http(method: &'a str, route: &'a str, tenant: &'a str) -> Self {
        Self {
            names: (LABEL_METHOD, LABEL_ROUTE),
            values: (method, route),
            tenant,
        }
    }
}

impl RequestLabels<'_> {
    fn labels(&self) -> Vec<Label> {
        vec![
            Label::new(self.names.0, shared(self.values.0)),
            Label::new(self.names.1, shared(self.values.1)),
            Label::new(LABEL_TENANT_ID, shared(self.tenant)),
        ]
    }
}

/// The metrics of one label set.
struct Handles {
    /// The label set (as [`RequestLabels::labels`] makes it), without `status`.
    labels: Vec<Label>,
    /// Per `status` label: requests, duration, errors (for an error status).
    by_status: RwLock<Vec<StatusHandles>>,
}

/// The metrics of one label set and status.
struct StatusHandles {
    status: &'static str,
    /// The labels, `status` included.
    labels: Vec<Label>,
    requests: Counter,
    duration: Histogram,
    /// Registered on the first error with this status (a classifier may call one
    /// response of a status class a failure and another not).
    errors: OnceLock<Counter>,
}

impl StatusHandles {
    fn record(&self, config: &RequestMeasures, error: bool, seconds: f64) {
        if error {
            self.errors
                .get_or_init(|| metrics::counter!(config.errors.clone(), self.labels.clone()))
                .increment(1);
        }
        self.duration.record(seconds);
        self.requests.increment(1);
    }
}

impl std::fmt::Debug for Handles {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Handles")
            .field("labels", &self.labels)
            .finish_non_exhaustive()
    }
}

impl Handles {
    fn register(values: &RequestLabels<'_>) -> Self {
        Self {
            labels: values.labels(),
            by_status: RwLock::new(Vec::new()),
        }
    }

    fn matches(&self, values: &RequestLabels<'_>) -> bool {
        let [first, second, tenant] = &self.labels[..] else {
            return false;
        };
        (first.key(), first.value()) == (values.names.0, values.values.0)
            && (second.key(), second.value()) == (values.names.1, values.values.1)
            && tenant.value() == values.tenant
    }

    /// Records one finished request with `status` (its handles registered on first
    /// use); `error` says whether the classifier called it a failure.
    fn record(&self, config: &RequestMeasures, status: &'static str, error: bool, seconds: f64) {
        let read = self.by_status.read().unwrap_or_else(|e| e.into_inner());
        if let Some(found) = read.iter().find(|h| h.status == status) {
            found.record(config, error, seconds);
            return;
        }
        drop(read);
        let handles = self.register_status(config, status);
        handles.record(config, error, seconds);
        let mut write = self.by_status.write().unwrap_or_else(|e| e.into_inner());
        if !write.iter().any(|h| h.status == status) {
            write.push(handles);
        }
    }

    fn register_status(&self, config: &RequestMeasures, status: &'static str) -> StatusHandles {
        let mut labels = self.labels.clone();
        labels.push(Label::new(LABEL_STATUS, status));
        StatusHandles {
            status,
            requests: metrics::counter!(config.requests.clone(), labels.clone()),
            duration: metrics::histogram!(config.duration.clone(), labels.clone()),
            errors: OnceLock::new(),
            labels,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Kept handles are found by a 64-bit hash; `matches` is what tells a colliding
    /// label set apart, so each label, name and value, must count.
    #[test]
    fn handles_match_only_their_own_label_set() {
        let own = RequestLabels {
            names: ("method", "route"),
            values: ("GET", "/jobs"),
            tenant: "acme",
        };
        let handles = Handles::register(&own);
        assert!(handles.matches(&own));
        for other in [
            RequestLabels {
                names: ("rpc_service", "route"),
                ..own
            },
            RequestLabels {
                names: ("method", "rpc_method"),
                ..own
            },
            RequestLabels {
                values: ("POST", "/jobs"),
                ..own
            },
            RequestLabels {
                values: ("GET", "/jobs/{id}"),
                ..own
            },
            RequestLabels {
                tenant: "globex",
                ..own
            },
        ] {
            assert!(!handles.matches(&other), "{other:?}");
        }
    }
}
