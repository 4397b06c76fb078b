//! [`ClientMeasures`]: the duration histograms of outgoing calls (plumbing of
//! `instrument-tower`'s client layer).

use std::sync::Arc;

use metrics::{Histogram, Label, SharedString};

use super::{
    shared, Ended, Served, LABEL_METHOD, LABEL_RPC_METHOD, LABEL_RPC_SERVICE, MAX_LABEL_SETS,
};
use crate::cardinality::KeptHandles;
use crate::semconv::{
    MetricNames, MetricScheme, LABEL_ERROR_TYPE, LABEL_HTTP_REQUEST_METHOD, LABEL_RPC_METHOD_FULL,
    LABEL_RPC_SYSTEM_NAME, LABEL_SERVER_ADDRESS, LABEL_SERVER_PORT, LABEL_STATUS, OTHER,
};

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
