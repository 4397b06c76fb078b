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

use http::{HeaderMap, HeaderValue, Request, Response};
use tower_http::classify::{
    ClassifiedResponse, ClassifyEos, ClassifyResponse, GrpcCode, GrpcEosErrorsAsFailures,
    GrpcErrorsAsFailures, GrpcFailureClass, MakeClassifier, NeverClassifyEos,
    ServerErrorsAsFailures, ServerErrorsFailureClass,
};

use crate::protocol::{grpc_code, grpc_status_value, Protocol};

pub use tower_http::classify::SharedClassifier;

/// The default classifier (see the [module docs](self)).
#[derive(Debug, Clone)]
pub struct DefaultClassifier {
    grpc: GrpcErrorsAsFailures,
    /// What `grpc` answers for a response whose status is in its trailers, made once.
    grpc_eos: Option<GrpcEosErrorsAsFailures>,
}

impl Default for DefaultClassifier {
    fn default() -> Self {
        let grpc = server_faults();
        let grpc_eos = match grpc.clone().classify_response(&Response::new(())) {
            ClassifiedResponse::RequiresEos(eos) => Some(eos),
            ClassifiedResponse::Ready(_) => None,
        };
        Self { grpc, grpc_eos }
    }
}

/// The gRPC codes that describe the caller's request (or nobody's fault): successes of
/// [`server_faults`].
const CALLERS_CODES: [GrpcCode; 10] = [
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
];

/// The codes [`server_faults`] counts as successes, as a bit per code: `OK` and
/// [`CALLERS_CODES`].
const SUCCESS_BITS: u32 = {
    let mut bits = 1; // OK
    let mut i = 0;
    while i < CALLERS_CODES.len() {
        bits |= 1 << CALLERS_CODES[i] as u32;
        i += 1;
    }
    bits
};

/// tower-http's gRPC classifier with every code that is the caller's (or nobody's)
/// fault as a success.
pub fn server_faults() -> GrpcErrorsAsFailures {
    CALLERS_CODES.into_iter().fold(
        GrpcErrorsAsFailures::new(),
        GrpcErrorsAsFailures::with_success,
    )
}

impl MakeClassifier for DefaultClassifier {
    type FailureClass = Failure;
    type ClassifyEos = DefaultEos;
    type Classifier = ByProtocol;

    fn make_classifier<B>(&self, request: &Request<B>) -> Self::Classifier {
        ByProtocol(match Protocol::of(request) {
            Protocol::Grpc => Judge::Grpc(self.grpc.clone(), self.grpc_eos.clone()),
            Protocol::Http => Judge::Http(ServerErrorsAsFailures::new()),
        })
    }
}

/// The [`DefaultClassifier`]'s classifier of one response.
#[derive(Debug, Clone)]
pub struct ByProtocol(Judge);

#[derive(Debug, Clone)]
enum Judge {
    Http(ServerErrorsAsFailures),
    Grpc(GrpcErrorsAsFailures, Option<GrpcEosErrorsAsFailures>),
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
pub struct DefaultEos(JudgeEos);

#[derive(Debug)]
enum JudgeEos {
    /// A plain HTTP response (decided by its status already).
    Http(NeverClassifyEos<ServerErrorsFailureClass>),
    /// A gRPC response: its status is in the trailers.
    Grpc(GrpcEosErrorsAsFailures),
}

/// Whether a `grpc-status` value says the call succeeded as [`server_faults`] counts
/// success: decimal digits naming `OK` or a caller's code. Read with a constant
/// header name; everything else (a failure, an odd status) is left to tower-http,
/// which builds the failure class. Most responses succeed, and this spares them
/// tower-http's lookup by string and parse (~700 instructions a call).
fn plainly_succeeded(status: &HeaderValue) -> bool {
    grpc_code(status.as_bytes()).is_some_and(|code| code < 32 && SUCCESS_BITS & (1 << code) != 0)
}

impl ClassifyResponse for ByProtocol {
    type FailureClass = Failure;
    type ClassifyEos = DefaultEos;

    fn classify_response<B>(
        self,
        response: &Response<B>,
    ) -> ClassifiedResponse<Failure, DefaultEos> {
        match self.0 {
            Judge::Http(c) => match c.classify_response(response) {
                ClassifiedResponse::Ready(r) => ClassifiedResponse::Ready(r.map_err(Failure::Http)),
                ClassifiedResponse::RequiresEos(e) => {
                    ClassifiedResponse::RequiresEos(DefaultEos(JudgeEos::Http(e)))
                }
            },
            Judge::Grpc(c, eos) => {
                match (grpc_status_value(response.headers()), eos) {
                    (Some(status), _) if plainly_succeeded(status) => {
                        return ClassifiedResponse::Ready(Ok(()));
                    }
                    // The status comes in the trailers (every response that is not
                    // trailers-only): what tower-http answers for that, made once.
                    (None, Some(eos)) => {
                        return ClassifiedResponse::RequiresEos(DefaultEos(JudgeEos::Grpc(eos)));
                    }
                    _ => {}
                }
                match c.classify_response(response) {
                    ClassifiedResponse::Ready(r) => {
                        ClassifiedResponse::Ready(r.map_err(Failure::Grpc))
                    }
                    ClassifiedResponse::RequiresEos(e) => {
                        ClassifiedResponse::RequiresEos(DefaultEos(JudgeEos::Grpc(e)))
                    }
                }
            }
        }
    }

    fn classify_error<E>(self, error: &E) -> Failure
    where
        E: fmt::Display + 'static,
    {
        match self.0 {
            Judge::Http(c) => Failure::Http(c.classify_error(error)),
            Judge::Grpc(c, _) => Failure::Grpc(c.classify_error(error)),
        }
    }
}

impl ClassifyEos for DefaultEos {
    type FailureClass = Failure;

    fn classify_eos(self, trailers: Option<&HeaderMap>) -> Result<(), Failure> {
        match self.0 {
            JudgeEos::Http(e) => e.classify_eos(trailers).map_err(Failure::Http),
            JudgeEos::Grpc(_)
                if trailers
                    .and_then(grpc_status_value)
                    .is_some_and(plainly_succeeded) =>
            {
                Ok(())
            }
            JudgeEos::Grpc(e) => e.classify_eos(trailers).map_err(Failure::Grpc),
        }
    }

    fn classify_error<E>(self, error: &E) -> Failure
    where
        E: fmt::Display + 'static,
    {
        match self.0 {
            JudgeEos::Http(e) => Failure::Http(e.classify_error(error)),
            JudgeEos::Grpc(e) => Failure::Grpc(e.classify_error(error)),
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

    /// tower-http's own verdict with [`server_faults`], for the same response.
    fn tower_http_judge(head: Option<&str>, trailers: Option<&str>) -> Option<String> {
        let mut response = Response::new(());
        if let Some(code) = head.and_then(|c| HeaderValue::from_str(c).ok()) {
            response.headers_mut().insert("grpc-status", code);
        }
        let mut end = HeaderMap::new();
        if let Some(code) = trailers.and_then(|c| HeaderValue::from_str(c).ok()) {
            end.insert("grpc-status", code);
        }
        match server_faults().classify_response(&response) {
            ClassifiedResponse::Ready(r) => r.err().map(|f| f.to_string()),
            ClassifiedResponse::RequiresEos(eos) => {
                eos.classify_eos(Some(&end)).err().map(|f| f.to_string())
            }
        }
    }

    fn default_judge(head: Option<&str>, trailers: Option<&str>) -> Option<String> {
        let mut request = Request::new(());
        request
            .headers_mut()
            .insert("content-type", HeaderValue::from_static("application/grpc"));
        let classifier = DefaultClassifier::default().make_classifier(&request);
        let mut response = Response::new(());
        if let Some(code) = head.and_then(|c| HeaderValue::from_str(c).ok()) {
            response.headers_mut().insert("grpc-status", code);
        }
        let mut end = HeaderMap::new();
        if let Some(code) = trailers.and_then(|c| HeaderValue::from_str(c).ok()) {
            end.insert("grpc-status", code);
        }
        Verdict::of(classifier, &response).at_end(Some(&end))
    }

    #[test]
    fn the_fast_path_agrees_with_tower_http_on_every_code() {
        let mut codes: Vec<String> = (0..=40).map(|c| c.to_string()).collect();
        codes.extend(
            [
                "",
                "00",
                "01",
                "+0",
                "-1",
                " 0",
                "0 ",
                "1a",
                "999",
                "1000",
                "x",
                "2147483648",
            ]
            .map(String::from),
        );
        for code in &codes {
            for (head, trailers) in [(Some(code.as_str()), None), (None, Some(code.as_str()))] {
                assert_eq!(
                    default_judge(head, trailers),
                    tower_http_judge(head, trailers),
                    "head {head:?}, trailers {trailers:?}"
                );
            }
        }
        assert_eq!(default_judge(None, None), tower_http_judge(None, None));
    }

    proptest::proptest! {
        #[test]
        fn the_fast_path_agrees_with_tower_http(code in "[ -~]{0,6}", in_head: bool) {
            let (head, trailers) = if in_head { (Some(code.as_str()), None) } else { (None, Some(code.as_str())) };
            proptest::prop_assert_eq!(default_judge(head, trailers), tower_http_judge(head, trailers));
        }
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
