//! Request metrics: duration (whose count is the request count), errors and requests
//! in flight, named by the [`MetricScheme`](crate::semconv::MetricScheme), with their handles registered once per
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
//! Server requests ([`RequestMeasures`], in `server.rs`) are this module's API: the
//! request-metrics layer of `instrument-tower` records through it, and a server of
//! another kind can too. Outgoing calls ([`ClientMeasures`], in `client.rs`) are
//! plumbing for `instrument-tower`'s client layer: public so that crate can use it,
//! documented, but shaped for that layer alone.
//!
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

use metrics::SharedString;

use crate::cardinality::status_group;
use crate::semconv::{LABEL_HTTP_RESPONSE_STATUS_CODE, LABEL_RPC_RESPONSE_STATUS_CODE, OTHER};

mod client;
mod server;

pub use client::{ClientLabels, ClientMeasures};
pub use server::{InFlight, RequestLabels, RequestMeasures, MAX_LABEL_SETS};

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
    pub(crate) fn status(self) -> &'static str {
        match self {
            Self::Http(code) => status_group(code),
            Self::Grpc(name) => name,
            Self::Failed => "error",
            Self::Cancelled => "cancelled",
        }
    }

    /// The conventions' status label (`http_response_status_code`,
    /// `rpc_response_status_code`), when there was a status.
    pub(crate) fn code(self) -> Option<(&'static str, &'static str)> {
        match self {
            Self::Http(code) => Some((LABEL_HTTP_RESPONSE_STATUS_CODE, http_code(code))),
            Self::Grpc(name) => Some((LABEL_RPC_RESPONSE_STATUS_CODE, name)),
            Self::Failed | Self::Cancelled => None,
        }
    }

    /// The conventions' `error_type` of a request that failed: the status code (as the
    /// HTTP and RPC conventions say), `_OTHER` when there was none.
    pub(crate) fn error_type(self) -> &'static str {
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

/// A name or label value that is cheap to clone (a reference count, not a copy).
fn shared(value: &str) -> SharedString {
    SharedString::from(Arc::<str>::from(value))
}
