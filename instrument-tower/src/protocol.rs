//! What the layers share about the two protocols: telling gRPC from plain HTTP, and
//! answering a request without calling the service.

use http::header::{HeaderValue, CONTENT_TYPE};
use http::{Request, Response, StatusCode};

/// The protocol of a request, which decides how a rejection is written.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Protocol {
    /// gRPC (`content-type: application/grpc...`): status in `grpc-status`.
    Grpc,
    /// Plain HTTP: status in the HTTP status code.
    Http,
}

impl Protocol {
    /// The protocol of `request`.
    pub fn of<B>(request: &Request<B>) -> Self {
        let grpc = request
            .headers()
            .get(CONTENT_TYPE)
            .is_some_and(|ct| ct.as_bytes().starts_with(b"application/grpc"));
        if grpc {
            Self::Grpc
        } else {
            Self::Http
        }
    }

    /// `grpc` or `http`, as a metric label.
    pub fn label(self) -> &'static str {
        match self {
            Self::Grpc => "grpc",
            Self::Http => "http",
        }
    }
}

/// A refusal, in the terms of both protocols.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Refusal {
    pub(crate) http: StatusCode,
    /// gRPC status code (`tonic::Code` numbering).
    pub(crate) grpc: u16,
    /// Short text for `grpc-message`; never carries request data.
    pub(crate) message: &'static str,
}

impl Refusal {
    /// A response that refuses the request: the HTTP status, or for gRPC a
    /// trailers-only response with `grpc-status` and `grpc-message`.
    pub(crate) fn response<B: Default>(&self, protocol: Protocol) -> Response<B> {
        let mut response = Response::new(B::default());
        match protocol {
            Protocol::Http => *response.status_mut() = self.http,
            Protocol::Grpc => {
                let headers = response.headers_mut();
                headers.insert(CONTENT_TYPE, HeaderValue::from_static("application/grpc"));
                headers.insert("grpc-status", HeaderValue::from(self.grpc));
                // `message` is static ASCII text without characters needing escapes.
                headers.insert("grpc-message", HeaderValue::from_static(self.message));
            }
        }
        response
    }
}
