//! [`RequestMeasures`]: the metrics of the requests a server serves.

use std::sync::{Arc, OnceLock};
use std::time::Instant;

use metrics::{Counter, Gauge, Histogram, Label, SharedString};

use super::{
    shared, Ended, Served, LABEL_METHOD, LABEL_ROUTE, LABEL_RPC_METHOD, LABEL_RPC_SERVICE,
};
use crate::cardinality::KeptHandles;
use crate::semconv::{
    MetricNames, MetricScheme, LABEL_ERROR_TYPE, LABEL_HTTP_REQUEST_METHOD, LABEL_HTTP_ROUTE,
    LABEL_RPC_METHOD_FULL, LABEL_RPC_SYSTEM_NAME, LABEL_STATUS, LABEL_TENANT_ID, OTHER,
};

/// The names of one protocol's request metrics.
#[derive(Debug)]
struct ProtocolNames {
    duration: SharedString,
    in_flight: SharedString,
}

/// The request metrics of one server: their names, and the handles kept per label set.
pub struct RequestMeasures {
    scheme: MetricScheme,
    http: ProtocolNames,
    grpc: ProtocolNames,
    /// Prefixed scheme only.
    requests: Option<SharedString>,
    /// Prefixed scheme only.
    errors: Option<SharedString>,
    kept: KeptHandles<Handles>,
    kept_in_flight: KeptHandles<InFlightHandle>,
}

impl std::fmt::Debug for RequestMeasures {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RequestMeasures")
            .field("scheme", &self.scheme)
            .field("http", &self.http)
            .field("grpc", &self.grpc)
            .field("kept", &self.kept)
            .finish_non_exhaustive()
    }
}

impl RequestMeasures {
    /// Metrics named after `names` (see [`MetricScheme`]).
    pub fn new(names: &MetricNames) -> Self {
        Self {
            scheme: names.scheme(),
            http: ProtocolNames {
                duration: shared(&names.http_duration()),
                in_flight: shared(&names.http_in_flight()),
            },
            grpc: ProtocolNames {
                duration: shared(&names.rpc_duration()),
                in_flight: shared(&names.rpc_in_flight()),
            },
            requests: names.requests_total().as_deref().map(shared),
            errors: names.request_errors_total().as_deref().map(shared),
            kept: KeptHandles::new(MAX_LABEL_SETS),
            kept_in_flight: KeptHandles::new(MAX_LABEL_SETS),
        }
    }

    fn names(&self, served: Served) -> &ProtocolNames {
        match served {
            Served::Http => &self.http,
            Served::Grpc => &self.grpc,
        }
    }

    /// A request of `tenant` over `served` starts: it counts in flight until its
    /// [`InFlight`] is finished or dropped; its duration is measured from `started`.
    pub fn start(&self, served: Served, tenant: &str, started: Instant) -> InFlight {
        let gauge = self.kept_in_flight.get(
            &(served, tenant),
            |kept| kept.served == served && kept.tenant.value() == tenant,
            || InFlightHandle::register(self, served, tenant),
        );
        gauge.gauge.increment(1.0);
        InFlight {
            gauge: Gauged::Alone(gauge),
            started,
            finished: false,
        }
    }

    /// [`start`](Self::start) for a request expected to end with `labels` (its tenant
    /// among them): the handles of both its start and its end are found with one
    /// lookup, and [`InFlight::finish`] with the same labels needs none.
    pub fn start_labelled(&self, labels: &RequestLabels<'_>, started: Instant) -> InFlight {
        let handles = self.handles(labels);
        handles.in_flight.increment(1.0);
        InFlight {
            gauge: Gauged::With(handles),
            started,
            finished: false,
        }
    }

    /// The handles of `labels` (kept, or registered now).
    fn handles(&self, labels: &RequestLabels<'_>) -> Arc<Handles> {
        self.kept.get(
            labels,
            |kept| kept.matches(labels),
            || Handles::register(self, labels),
        )
    }
}

/// The in-flight gauge of one protocol and tenant.
struct InFlightHandle {
    served: Served,
    tenant: Label,
    gauge: Gauge,
}

impl std::fmt::Debug for InFlightHandle {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("InFlightHandle")
            .field("served", &self.served)
            .field("tenant", &self.tenant)
            .finish_non_exhaustive()
    }
}

impl InFlightHandle {
    fn register(config: &RequestMeasures, served: Served, tenant: &str) -> Self {
        let tenant = Label::new(LABEL_TENANT_ID, shared(tenant));
        let name = config.names(served).in_flight.clone();
        Self {
            gauge: metrics::gauge!(name, vec![tenant.clone()]),
            served,
            tenant,
        }
    }
}

/// A request being measured (see [`RequestMeasures::start`]). Dropped unfinished, it
/// leaves the in-flight gauge without being counted.
#[derive(Debug)]
pub struct InFlight {
    gauge: Gauged,
    started: Instant,
    finished: bool,
}

/// Where a request in flight is counted.
#[derive(Debug)]
enum Gauged {
    /// The in-flight gauge of its tenant alone ([`RequestMeasures::start`]).
    Alone(Arc<InFlightHandle>),
    /// The handles of the labels it was expected to end with, that gauge among them
    /// ([`RequestMeasures::start_labelled`]).
    With(Arc<Handles>),
}

impl Gauged {
    fn gauge(&self) -> &Gauge {
        match self {
            Self::Alone(handle) => &handle.gauge,
            Self::With(handles) => &handles.in_flight,
        }
    }
}

impl InFlight {
    /// The request, what `labels` say it was for, `ended` so; `error` says whether it
    /// counts as a failure (the classifier's word: a 5xx, a server-side gRPC code, a
    /// failed service).
    pub fn finish(
        mut self,
        metrics: &RequestMeasures,
        labels: &RequestLabels<'_>,
        ended: Ended,
        error: bool,
    ) {
        self.finished = true;
        self.gauge.gauge().decrement(1.0);
        let seconds = self.started.elapsed().as_secs_f64();
        match &self.gauge {
            Gauged::With(handles) if handles.matches(labels) => {
                handles.record(metrics, ended, error, seconds);
            }
            _ => metrics
                .handles(labels)
                .record(metrics, ended, error, seconds),
        }
    }
}

impl Drop for InFlight {
    fn drop(&mut self) {
        if !self.finished {
            self.gauge.gauge().decrement(1.0);
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
    served: Served,
    /// gRPC service and method, or HTTP method and route.
    values: (&'a str, &'a str),
    tenant: &'a str,
}

impl<'a> RequestLabels<'a> {
    /// The labels of a gRPC call of `service`'s `method` by `tenant` (`method`
    /// `_OTHER`: one the server does not know, whatever the service).
    pub fn grpc(service: &'a str, method: &'a str, tenant: &'a str) -> Self {
        Self {
            served: Served::Grpc,
            values: (service, method),
            tenant,
        }
    }

    /// The labels of an HTTP request: `method` (`GET`, ...) to `route` by `tenant`.
    pub fn http(method: &'a str, route: &'a str, tenant: &'a str) -> Self {
        Self {
            served: Served::Http,
            values: (method, route),
            tenant,
        }
    }

    /// The label set under `scheme`, without the status.
    fn labels(&self, scheme: MetricScheme) -> Vec<Label> {
        let (first, second) = self.values;
        let mut labels = Vec::with_capacity(5);
        match (scheme, self.served) {
            (MetricScheme::Prefixed, Served::Grpc) => {
                labels.push(Label::new(LABEL_RPC_SERVICE, shared(first)));
                labels.push(Label::new(LABEL_RPC_METHOD, shared(second)));
            }
            (MetricScheme::Prefixed, Served::Http) => {
                labels.push(Label::new(LABEL_METHOD, shared(first)));
                labels.push(Label::new(LABEL_ROUTE, shared(second)));
            }
            (MetricScheme::Conventions, Served::Grpc) => {
                labels.push(Label::new(LABEL_RPC_SYSTEM_NAME, "grpc"));
                let method = if second == OTHER {
                    shared(OTHER)
                } else {
                    shared(&format!("{first}/{second}"))
                };
                labels.push(Label::new(LABEL_RPC_METHOD_FULL, method));
            }
            (MetricScheme::Conventions, Served::Http) => {
                labels.push(Label::new(LABEL_HTTP_REQUEST_METHOD, shared(first)));
                labels.push(Label::new(LABEL_HTTP_ROUTE, shared(second)));
            }
        }
        labels.push(Label::new(LABEL_TENANT_ID, shared(self.tenant)));
        labels
    }
}

/// The metrics of one label set.
struct Handles {
    served: Served,
    /// The values the label set was made from, to confirm a kept entry.
    values: (SharedString, SharedString),
    tenant: SharedString,
    /// The label set (as [`RequestLabels::labels`] makes it), without the status.
    labels: Vec<Label>,
    /// The in-flight gauge of the protocol and tenant (the same gauge for every label
    /// set of the tenant: the recorder keeps one per name and labels).
    in_flight: Gauge,
    /// Per ending and failure: the metrics, for the first few endings seen (read
    /// without a lock; most label sets see one or two).
    by_status: [OnceLock<StatusHandles>; STATUS_SLOTS],
}

/// Endings whose handles a label set keeps; past them, each request registers its own.
const STATUS_SLOTS: usize = 8;

/// The metrics of one label set, ending and failure.
struct StatusHandles {
    ended: Ended,
    error: bool,
    duration: Histogram,
    /// Prefixed scheme: the request counter.
    requests: Option<Counter>,
    /// Prefixed scheme, for a failure: the error counter.
    errors: Option<Counter>,
}

impl StatusHandles {
    fn record(&self, seconds: f64) {
        if let Some(errors) = &self.errors {
            errors.increment(1);
        }
        self.duration.record(seconds);
        if let Some(requests) = &self.requests {
            requests.increment(1);
        }
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
    fn register(config: &RequestMeasures, values: &RequestLabels<'_>) -> Self {
        let tenant = shared(values.tenant);
        let in_flight = config.names(values.served).in_flight.clone();
        let tenant_label = Label::new(LABEL_TENANT_ID, tenant.clone());
        Self {
            served: values.served,
            values: (shared(values.values.0), shared(values.values.1)),
            in_flight: metrics::gauge!(in_flight, vec![tenant_label]),
            tenant,
            labels: values.labels(config.scheme),
            by_status: std::array::from_fn(|_| OnceLock::new()),
        }
    }

    fn matches(&self, values: &RequestLabels<'_>) -> bool {
        self.served == values.served
            && (&*self.values.0, &*self.values.1) == values.values
            && &*self.tenant == values.tenant
    }

    /// Records one finished request (its handles registered on first use).
    fn record(&self, config: &RequestMeasures, ended: Ended, error: bool, seconds: f64) {
        for slot in &self.by_status {
            // A slot is filled once, by the first request to find it empty.
            let kept = slot.get_or_init(|| self.register_status(config, ended, error));
            if (kept.ended, kept.error) == (ended, error) {
                kept.record(seconds);
                return;
            }
        }
        self.register_status(config, ended, error).record(seconds);
    }

    fn register_status(
        &self,
        config: &RequestMeasures,
        ended: Ended,
        error: bool,
    ) -> StatusHandles {
        let mut labels = self.labels.clone();
        let duration = config.names(self.served).duration.clone();
        match config.scheme {
            MetricScheme::Prefixed => {
                labels.push(Label::new(LABEL_STATUS, ended.status()));
                StatusHandles {
                    ended,
                    error,
                    requests: config
                        .requests
                        .clone()
                        .map(|name| metrics::counter!(name, labels.clone())),
                    errors: config
                        .errors
                        .clone()
                        .filter(|_| error)
                        .map(|name| metrics::counter!(name, labels.clone())),
                    duration: metrics::histogram!(duration, labels),
                }
            }
            MetricScheme::Conventions => {
                if let Some((key, code)) = ended.code() {
                    labels.push(Label::new(key, code));
                }
                if error {
                    labels.push(Label::new(LABEL_ERROR_TYPE, ended.error_type()));
                }
                StatusHandles {
                    ended,
                    error,
                    requests: None,
                    errors: None,
                    duration: metrics::histogram!(duration, labels),
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::super::http_code;
    use super::*;

    /// Kept handles are found by a 64-bit hash; `matches` is what tells a colliding
    /// label set apart, so each label, name and value, must count.
    #[test]
    fn a_request_started_with_its_labels_is_counted_under_them_and_in_flight_meanwhile() {
        let recorder = metrics_util::debugging::DebuggingRecorder::new();
        let snapshots = recorder.snapshotter();
        metrics::with_local_recorder(&recorder, || {
            let metrics = RequestMeasures::new(&MetricNames::default());
            let expected = RequestLabels::grpc("pkg.Svc", "Do", "acme");
            let first = metrics.start_labelled(&expected, Instant::now());
            let second = metrics.start_labelled(&expected, Instant::now());
            // The first ends as expected, the second as something else (not recognised).
            first.finish(&metrics, &expected, Ended::Grpc("OK"), false);
            let other = RequestLabels::grpc(OTHER, OTHER, "acme");
            second.finish(&metrics, &other, Ended::Grpc("UNIMPLEMENTED"), true);
            // Dropped unfinished: leaves the gauge, counted nowhere.
            drop(metrics.start_labelled(&expected, Instant::now()));
        });
        let mut histograms = Vec::new();
        let mut in_flight = None;
        for (key, _, _, value) in snapshots.snapshot().into_vec() {
            match value {
                metrics_util::debugging::DebugValue::Histogram(values) => {
                    let labels: Vec<String> = key
                        .key()
                        .labels()
                        .map(|l| format!("{}={}", l.key(), l.value()))
                        .collect();
                    histograms.push((labels.join(","), values.len()));
                }
                metrics_util::debugging::DebugValue::Gauge(value) => in_flight = Some(value),
                metrics_util::debugging::DebugValue::Counter(_) => {}
            }
        }
        histograms.sort();
        assert_eq!(
            histograms,
            [
                (
                    "rpc_system_name=grpc,rpc_method=_OTHER,tenant_id=acme,rpc_response_status_code=UNIMPLEMENTED,error_type=UNIMPLEMENTED"
                        .to_owned(),
                    1
                ),
                (
                    "rpc_system_name=grpc,rpc_method=pkg.Svc/Do,tenant_id=acme,rpc_response_status_code=OK"
                        .to_owned(),
                    1
                ),
            ]
        );
        assert_eq!(in_flight.map(|v| v.into_inner()), Some(0.0));
    }

    #[test]
    fn handles_match_only_their_own_label_set() {
        let own = RequestLabels::http("GET", "/jobs", "acme");
        let handles = Handles::register(&RequestMeasures::new(&MetricNames::default()), &own);
        assert!(handles.matches(&own));
        for other in [
            RequestLabels::grpc("GET", "/jobs", "acme"),
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

    #[test]
    fn status_codes_are_label_values() {
        assert_eq!(http_code(200), "200");
        assert_eq!(http_code(100), "100");
        assert_eq!(http_code(999), "999");
        assert_eq!(http_code(99), OTHER);
        assert_eq!(http_code(1000), OTHER);
        assert_eq!(Ended::Http(503).error_type(), "503");
        assert_eq!(Ended::Failed.error_type(), OTHER);
        assert_eq!(Ended::Http(404).status(), "4xx");
    }

    #[test]
    fn label_sets_follow_the_scheme() {
        let keys = |scheme, labels: RequestLabels<'_>| {
            labels
                .labels(scheme)
                .iter()
                .map(|l| format!("{}={}", l.key(), l.value()))
                .collect::<Vec<_>>()
        };
        let call = RequestLabels::grpc("pkg.Svc", "Get", "acme");
        assert_eq!(
            keys(MetricScheme::Conventions, call),
            [
                "rpc_system_name=grpc",
                "rpc_method=pkg.Svc/Get",
                "tenant_id=acme"
            ]
        );
        assert_eq!(
            keys(
                MetricScheme::Conventions,
                RequestLabels::grpc("evil.S", OTHER, "acme")
            ),
            [
                "rpc_system_name=grpc",
                "rpc_method=_OTHER",
                "tenant_id=acme"
            ]
        );
        assert_eq!(
            keys(MetricScheme::Prefixed, call),
            ["rpc_service=pkg.Svc", "rpc_method=Get", "tenant_id=acme"]
        );
        let request = RequestLabels::http("GET", "/jobs/{id}", "acme");
        assert_eq!(
            keys(MetricScheme::Conventions, request),
            [
                "http_request_method=GET",
                "http_route=/jobs/{id}",
                "tenant_id=acme"
            ]
        );
        assert_eq!(
            keys(MetricScheme::Prefixed, request),
            ["method=GET", "route=/jobs/{id}", "tenant_id=acme"]
        );
    }
}
