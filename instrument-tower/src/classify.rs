//! Which responses are failures: tower-http's classifiers, so one classifier decides
//! for tower-http's own layers and for these spans and metrics alike.
//!
//! A layer takes any [`MakeClassifier`] whose failure class can be displayed. A
//! response it classifies as a failure sets the server span's status to error (with
//! the failure's text, redacted) and counts in the error metric; anything else is a
//! success, whatever its status code.
//!
//! The default, [`DefaultClassifier`], follows OpenTelemetry's semantic conventions for
//! server spans, per request protocol:
//! - plain HTTP: tower-http's [`ServerErrorsAsFailures`] (5xx are failures);
//! - gRPC: tower-http's [`GrpcErrorsAsFailures`] with the codes that describe the
//!   caller's request as successes, so only the server's faults are failures:
//!   `UNKNOWN`, `DEADLINE_EXCEEDED`, `UNIMPLEMENTED`, `INTERNAL`, `UNAVAILABLE`,
//!   `DATA_LOSS`.
//!
//! A team's classifier works unchanged:
//!
//! ```
//! use instrument_tower::stack::InstrumentLayer;
//! use tower_http::classify::{GrpcCode, GrpcErrorsAsFailures, SharedClassifier};
//!
//! // A gRPC server where a missing record is a failure too.
//! let layer = InstrumentLayer::builder()
//!     .classifier(SharedClassifier::new(
//!         GrpcErrorsAsFailures::new().with_success(GrpcCode::InvalidArgument),
//!     ))
//!     .build();
//! # let _ = layer;
//! ```

use std::fmt;

use http::{HeaderMap, Request, Response};
use tower_http::classify::{
    ClassifiedResponse, ClassifyEos, ClassifyResponse, GrpcCode, GrpcEosErrorsAsFailures,
    GrpcErrorsAsFailures, GrpcFailureClass, MakeClassifier, NeverClassifyEos,
    ServerErrorsAsFailures, ServerErrorsFailureClass,
};

use crate::protocol::Protocol;

pub use tower_http::classify::SharedClassifier;

/// The default classifier (see the [module docs](self)).
#[derive(Debug, Clone)]
pub struct DefaultClassifier {
    grpc: GrpcErrorsAsFailures,
}

impl Default for DefaultClassifier {
    fn default() -> Self {
        Self {
            grpc: server_faults(),
        }
    }
}

/// tower-http's gRPC classifier with every code that is the caller's (or nobody's)
/// fault as a success.
pub fn server_faults() -> GrpcErrorsAsFailures {
    [
        GrpcCode::Cancelled,
        GrpcCode::InvalidArgument,
        GrpcCode::NotFound,
        GrpcCode::AlreadyExists,
        GrpcCode::PermissionDenied,
        GrpcCode::ResourceExhausted,
        GrpcCode::FailedPrecondition,
        GrpcCode::Aborted,
        GrpcCode::OutOfRange,
        GrpcCode::Unauthenticated,
    ]
    .into_iter()
    .fold(
        GrpcErrorsAsFailures::new(),
        GrpcErrorsAsFailures::with_success,
    )
}

impl MakeClassifier for DefaultClassifier {
    type FailureClass = Failure;
    type ClassifyEos = DefaultEos;
    type Classifier = ByProtocol;

    fn make_classifier<B>(&self, request: &Request<B>) -> Self::Classifier {
        match Protocol::of(request) {
            Protocol::Grpc => ByProtocol::Grpc(self.grpc.clone()),
            Protocol::Http => ByProtocol::Http(ServerErrorsAsFailures::new()),
        }
    }
}

/// The [`DefaultClassifier`]'s classifier of one response.
#[derive(Debug, Clone)]
pub enum ByProtocol {
    /// A plain HTTP response.
    Http(ServerErrorsAsFailures),
    /// A gRPC response.
    Grpc(GrpcErrorsAsFailures),
}

/// The [`DefaultClassifier`]'s failure class.
#[derive(Debug)]
pub enum Failure {
    /// Of a plain HTTP response.
    Http(ServerErrorsFailureClass),
    /// Of a gRPC response.
    Grpc(GrpcFailureClass),
}

impl fmt::Display for Failure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Http(failure) => failure.fmt(f),
            Self::Grpc(failure) => failure.fmt(f),
        }
    }
}

/// The [`DefaultClassifier`]'s classifier of a response's end.
#[derive(Debug)]
pub enum DefaultEos {
    /// A plain HTTP response (decided by its status already).
    Http(NeverClassifyEos<ServerErrorsFailureClass>),
    /// A gRPC response: its status is in the trailers.
    Grpc(GrpcEosErrorsAsFailures),
}

impl ClassifyResponse for ByProtocol {
    type FailureClass = Failure;
    type ClassifyEos = DefaultEos;

    fn classify_response<B>(
        self,
        response: &Response<B>,
    ) -> ClassifiedResponse<Failure, DefaultEos> {
        match self {
            Self::Http(c) => match c.classify_response(response) {
                ClassifiedResponse::Ready(r) => ClassifiedResponse::Ready(r.map_err(Failure::Http)),
                ClassifiedResponse::RequiresEos(e) => {
                    ClassifiedResponse::RequiresEos(DefaultEos::Http(e))
                }
            },
            Self::Grpc(c) => match c.classify_response(response) {
                ClassifiedResponse::Ready(r) => ClassifiedResponse::Ready(r.map_err(Failure::Grpc)),
                ClassifiedResponse::RequiresEos(e) => {
                    ClassifiedResponse::RequiresEos(DefaultEos::Grpc(e))
                }
            },
        }
    }

    fn classify_error<E>(self, error: &E) -> Failure
    where
        E: fmt::Display + 'static,
    {
        match self {
            Self::Http(c) => Failure::Http(c.classify_error(error)),
            Self::Grpc(c) => Failure::Grpc(c.classify_error(error)),
        }
    }
}

impl ClassifyEos for DefaultEos {
    type FailureClass = Failure;

    fn classify_eos(self, trailers: Option<&HeaderMap>) -> Result<(), Failure> {
        match self {
            Self::Http(e) => e.classify_eos(trailers).map_err(Failure::Http),
            Self::Grpc(e) => e.classify_eos(trailers).map_err(Failure::Grpc),
        }
    }

    fn classify_error<E>(self, error: &E) -> Failure
    where
        E: fmt::Display + 'static,
    {
        match self {
            Self::Http(e) => Failure::Http(e.classify_error(error)),
            Self::Grpc(e) => Failure::Grpc(e.classify_error(error)),
        }
    }
}

/// How a response is judged: at once, or at its end.
pub(crate) enum Verdict<E> {
    /// Known from the response's head: `Some` with the failure's text.
    Decided(Option<String>),
    /// Known from the trailers, when the body ends.
    AtEnd(E),
}

impl<E: fmt::Debug> fmt::Debug for Verdict<E> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Decided(failure) => f.debug_tuple("Decided").field(failure).finish(),
            Self::AtEnd(eos) => f.debug_tuple("AtEnd").field(eos).finish(),
        }
    }
}

impl<E> Verdict<E>
where
    E: ClassifyEos,
    E::FailureClass: fmt::Display,
{
    /// `classifier`'s verdict on `response`.
    pub(crate) fn of<C, B>(classifier: C, response: &Response<B>) -> Self
    where
        C: ClassifyResponse<ClassifyEos = E, FailureClass = E::FailureClass>,
    {
        match classifier.classify_response(response) {
            ClassifiedResponse::Ready(result) => Self::Decided(result.err().map(|f| f.to_string())),
            ClassifiedResponse::RequiresEos(eos) => Self::AtEnd(eos),
        }
    }

    /// The failure's text once the body ended with `trailers` (none: it ended without,
    /// or was dropped before its end).
    pub(crate) fn at_end(self, trailers: Option<&HeaderMap>) -> Option<String> {
        match self {
            Self::Decided(failure) => failure,
            Self::AtEnd(eos) => eos.classify_eos(trailers).err().map(|f| f.to_string()),
        }
    }
}

#[cfg(test)]
mod tests {
    use http::HeaderValue;

    use super::*;

    fn judge(protocol: Protocol, status: u16, grpc: Option<&'static str>) -> Option<String> {
        let mut request = Request::new(());
        if protocol == Protocol::Grpc {
            request
                .headers_mut()
                .insert("content-type", HeaderValue::from_static("application/grpc"));
        }
        let classifier = DefaultClassifier::default().make_classifier(&request);
        let mut response = Response::new(());
        *response.status_mut() = http::StatusCode::from_u16(status).unwrap();
        let mut trailers = HeaderMap::new();
        if let Some(code) = grpc {
            trailers.insert("grpc-status", HeaderValue::from_static(code));
        }
        Verdict::of(classifier, &response).at_end(Some(&trailers))
    }

    #[test]
    fn http_server_errors_are_failures() {
        assert_eq!(judge(Protocol::Http, 200, None), None);
        assert_eq!(judge(Protocol::Http, 404, None), None);
        assert!(judge(Protocol::Http, 503, None).is_some());
    }

    #[test]
    fn only_the_servers_grpc_faults_are_failures() {
        for code in ["0", "1", "3", "5", "6", "7", "8", "9", "10", "11", "16"] {
            assert_eq!(judge(Protocol::Grpc, 200, Some(code)), None, "{code}");
        }
        for code in ["2", "4", "12", "13", "14", "15"] {
            assert!(judge(Protocol::Grpc, 200, Some(code)).is_some(), "{code}");
        }
    }
}
