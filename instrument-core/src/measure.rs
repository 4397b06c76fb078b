//! Request metrics: duration (whose count is the request count), errors and requests
//! in flight, named by the [`MetricScheme`], with their handles registered once per
//! label set.
//!
//! Registering a metric (`counter!(name, labels)`) builds a `metrics::Key`, hashes it,
//! and looks it up in the recorder (and, behind a
//! [`GuardedRecorder`](crate::cardinality::GuardedRecorder), in the label guard): a few
//! hundred nanoseconds per metric, two to four metrics per request. The handles stay valid,
//! so [`RequestMeasures`] keeps them per label set, and each request after the first
//! costs one hash and one map read. They are kept only under a recorder that lives for
//! the rest of the program (the one `pipeline::install_prometheus` installs, or one
//! declared with [`keep_handles_for`](crate::cardinality::keep_handles_for)), for at
//! most [`MAX_LABEL_SETS`] label sets; under any other recorder (a test's local one)
//! each request registers its metrics: correct, slower.
//!
//! A request is in the in-flight gauge of its protocol from its start, labelled by
//! its tenant only;
//! what it was for (gRPC method, HTTP route) labels the counters and the histogram when
//! it ends, because only then is it known whether the server recognised it (a client
//! chooses the path it sends; see `instrument-tower`'s docs on what labels a client
//! can influence).
//!
//! The request-metrics layer of `instrument-tower` records through it; a server of
//! another kind can too:
//!
//! ```
//! use instrument_core::measure::{Ended, RequestLabels, RequestMeasures, Served};
//! use instrument_core::semconv::MetricNames;
//!
//! let metrics = RequestMeasures::new(&MetricNames::default());
//! let request = metrics.start(Served::Http, "acme", std::time::Instant::now());
//! // ... the request is served ...
//! let labels = RequestLabels::http("GET", "/workflows/{id}", "acme");
//! request.finish(&metrics, &labels, Ended::Http(200), false);
//! ```

use std::sync::{Arc, OnceLock};
use std::time::Instant;

use metrics::{Counter, Gauge, Histogram, Label, SharedString};

use crate::cardinality::{status_group, KeptHandles};
use crate::semconv::{
    MetricNames, MetricScheme, LABEL_ERROR_TYPE, LABEL_HTTP_REQUEST_METHOD,
    LABEL_HTTP_RESPONSE_STATUS_CODE, LABEL_HTTP_ROUTE, LABEL_RPC_METHOD_FULL,
    LABEL_RPC_RESPONSE_STATUS_CODE, LABEL_RPC_SYSTEM_NAME, LABEL_SERVER_ADDRESS, LABEL_SERVER_PORT,
    LABEL_STATUS, LABEL_TENANT_ID, OTHER,
};

/// Label of the gRPC service (`package.Service`), prefixed scheme.
pub const LABEL_RPC_SERVICE: &str = "rpc_service";
/// Label of the gRPC method, prefixed scheme.
pub const LABEL_RPC_METHOD: &str = "rpc_method";
/// Label of the HTTP method, prefixed scheme.
pub const LABEL_METHOD: &str = "method";
/// Label of the HTTP route, prefixed scheme.
pub const LABEL_ROUTE: &str = "route";

/// The protocol a request was served over: which metrics it is recorded in.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Served {
    /// An HTTP request.
    Http,
    /// A gRPC call.
    Grpc,
}

/// How a request ended, as its metrics record it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Ended {
    /// An HTTP response with this status code.
    Http(u16),
    /// A gRPC call that ended with this status (its code name: `OK`, `NOT_FOUND`, ...).
    Grpc(&'static str),
    /// The service failed instead of responding, or the response body failed.
    Failed,
    /// The request was dropped before its response (the client went away).
    Cancelled,
}

impl Ended {
    /// The prefixed scheme's `status` label: the gRPC code name, the HTTP status class (`2xx`),
    /// `error` or `cancelled`.
    fn status(self) -> &'static str {
        match self {
            Self::Http(code) => status_group(code),
            Self::Grpc(name) => name,
            Self::Failed => "error",
            Self::Cancelled => "cancelled",
        }
    }

    /// The conventions' status label (`http_response_status_code`,
    /// `rpc_response_status_code`), when there was a status.
    fn code(self) -> Option<(&'static str, &'static str)> {
        match self {
            Self::Http(code) => Some((LABEL_HTTP_RESPONSE_STATUS_CODE, http_code(code))),
            Self::Grpc(name) => Some((LABEL_RPC_RESPONSE_STATUS_CODE, name)),
            Self::Failed | Self::Cancelled => None,
        }
    }

    /// The conventions' `error_type` of a request that failed: the status code (as the
    /// HTTP and RPC conventions say), `_OTHER` when there was none.
    fn error_type(self) -> &'static str {
        match self {
            Self::Http(code) => http_code(code),
            Self::Grpc(name) => name,
            Self::Failed | Self::Cancelled => OTHER,
        }
    }
}

/// An HTTP status code as a label value: `"100"` to `"999"` (every code `http`
/// accepts), `_OTHER` for anything else.
fn http_code(code: u16) -> &'static str {
    static CODES: OnceLock<Box<[String]>> = OnceLock::new();
    let codes = CODES.get_or_init(|| (100..1000).map(|c: u16| c.to_string()).collect());
    code.checked_sub(100)
        .and_then(|i| codes.get(usize::from(i)))
        .map_or(OTHER, String::as_str)
}

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

/// A name or label value that is cheap to clone (a reference count, not a copy).
fn shared(value: &str) -> SharedString {
    SharedString::from(Arc::<str>::from(value))
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

/// The duration histograms of outgoing calls (`http_client_request_duration_seconds`,
/// `rpc_client_call_duration_seconds`, or `<prefix>_client_request_duration_seconds`
/// in the prefixed scheme), as the client layer of `instrument-tower` records them.
///
/// The labels are what the program chose to call, never what a peer sent: the HTTP
/// method (or `_OTHER`), the gRPC method of the stub, the server's address and port,
/// and how the call ended. A call the caller dropped before its end is labelled
/// `error_type="cancelled"` (`status="cancelled"` in the prefixed scheme).
///
/// ```
/// use instrument_core::measure::{ClientLabels, ClientMeasures, Ended};
/// use instrument_core::semconv::MetricNames;
///
/// let metrics = ClientMeasures::new(&MetricNames::default());
/// let labels = ClientLabels::http("GET", "api.example.com", Some(443));
/// metrics.record(&labels, Ended::Http(200), 0.012);
/// ```
#[derive(Debug, Clone)]
pub struct ClientMeasures {
    scheme: MetricScheme,
    http: SharedString,
    grpc: SharedString,
    /// The histogram of each label set and ending, under a lasting recorder.
    kept: Arc<KeptHandles<ClientHandle>>,
}

/// The histogram of one outgoing label set and ending.
struct ClientHandle {
    served: Served,
    values: (SharedString, SharedString),
    address: SharedString,
    port: Option<u16>,
    ended: Ended,
    histogram: Histogram,
}

impl std::fmt::Debug for ClientHandle {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ClientHandle")
            .field("values", &self.values)
            .field("address", &self.address)
            .finish_non_exhaustive()
    }
}

impl ClientHandle {
    fn is_for(&self, labels: &ClientLabels<'_>, ended: Ended) -> bool {
        self.served == labels.served
            && (&*self.values.0, &*self.values.1) == labels.values
            && &*self.address == labels.address
            && self.port == labels.port
            && self.ended == ended
    }
}

/// What an outgoing call was for, as its metrics are labelled.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct ClientLabels<'a> {
    served: Served,
    /// gRPC service and method, or the HTTP method and nothing.
    values: (&'a str, &'a str),
    address: &'a str,
    port: Option<u16>,
}

impl<'a> ClientLabels<'a> {
    /// A gRPC call of `service`'s `method` to `address:port` (an empty address and no
    /// port when the client does not know them: labelled empty).
    pub fn grpc(service: &'a str, method: &'a str, address: &'a str, port: Option<u16>) -> Self {
        Self {
            served: Served::Grpc,
            values: (service, method),
            address,
            port,
        }
    }

    /// An HTTP request with `method` (`GET`, ... or `_OTHER`) to `address:port`.
    pub fn http(method: &'a str, address: &'a str, port: Option<u16>) -> Self {
        Self {
            served: Served::Http,
            values: (method, ""),
            address,
            port,
        }
    }
}

/// A port as a label value, without allocating for the usual ones; empty when unknown.
fn port_label(port: Option<u16>) -> SharedString {
    match port {
        None => SharedString::const_str(""),
        Some(80) => SharedString::const_str("80"),
        Some(443) => SharedString::const_str("443"),
        Some(port) => SharedString::from(port.to_string()),
    }
}

impl ClientMeasures {
    /// Metrics named after `names` (see [`MetricScheme`]).
    pub fn new(names: &MetricNames) -> Self {
        Self {
            scheme: names.scheme(),
            http: shared(&names.http_client_duration()),
            grpc: shared(&names.rpc_client_duration()),
            kept: Arc::new(KeptHandles::new(MAX_LABEL_SETS)),
        }
    }

    /// Records one call described by `labels`, `ended` so, that took `seconds`. An
    /// HTTP status of 400 or more, a gRPC status other than `OK` and a failed call are
    /// failures (for a client, as the conventions say, 4xx are failures too).
    pub fn record(&self, labels: &ClientLabels<'_>, ended: Ended, seconds: f64) {
        let handle = self.kept.get(
            &(labels, ended),
            |kept| kept.is_for(labels, ended),
            || ClientHandle {
                served: labels.served,
                values: (shared(labels.values.0), shared(labels.values.1)),
                address: shared(labels.address),
                port: labels.port,
                ended,
                histogram: self.register(labels, ended),
            },
        );
        handle.histogram.record(seconds);
    }

    /// The histogram of `labels` and `ended`, registered with the recorder.
    fn register(&self, labels: &ClientLabels<'_>, ended: Ended) -> Histogram {
        let (first, second) = labels.values;
        let mut set = Vec::with_capacity(6);
        let name = match labels.served {
            Served::Http => self.http.clone(),
            Served::Grpc => self.grpc.clone(),
        };
        match (self.scheme, labels.served) {
            (MetricScheme::Prefixed, Served::Grpc) => {
                set.push(Label::new(LABEL_RPC_SERVICE, shared(first)));
                set.push(Label::new(LABEL_RPC_METHOD, shared(second)));
            }
            (MetricScheme::Prefixed, Served::Http) => {
                set.push(Label::new(LABEL_METHOD, shared(first)));
            }
            (MetricScheme::Conventions, Served::Grpc) => {
                set.push(Label::new(LABEL_RPC_SYSTEM_NAME, "grpc"));
                let method = if second == OTHER {
                    shared(OTHER)
                } else {
                    shared(&format!("{first}/{second}"))
                };
                set.push(Label::new(LABEL_RPC_METHOD_FULL, method));
            }
            (MetricScheme::Conventions, Served::Http) => {
                set.push(Label::new(LABEL_HTTP_REQUEST_METHOD, shared(first)));
            }
        }
        set.push(Label::new(LABEL_SERVER_ADDRESS, shared(labels.address)));
        set.push(Label::new(LABEL_SERVER_PORT, port_label(labels.port)));
        let failed = match ended {
            Ended::Http(code) => code >= 400,
            Ended::Grpc(name) => name != "OK",
            Ended::Failed | Ended::Cancelled => true,
        };
        match self.scheme {
            MetricScheme::Prefixed => set.push(Label::new(LABEL_STATUS, ended.status())),
            MetricScheme::Conventions => {
                if let Some((key, code)) = ended.code() {
                    set.push(Label::new(key, code));
                }
                if failed {
                    let error = match ended {
                        Ended::Cancelled => "cancelled",
                        ended => ended.error_type(),
                    };
                    set.push(Label::new(LABEL_ERROR_TYPE, error));
                }
            }
        }
        metrics::histogram!(name, set)
    }
}

#[cfg(test)]
mod tests {
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
