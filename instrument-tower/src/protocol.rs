//! What the layers share about the two protocols: telling gRPC from plain HTTP, and
//! answering a request without calling the service.

use http::header::{HeaderName, HeaderValue, CONTENT_TYPE};
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
        Self::of_headers(request.headers())
    }

    /// The protocol of a request with these `headers`.
    pub(crate) fn of_headers(headers: &http::HeaderMap) -> Self {
        // A standard name compares as one byte, so a request's dozen fields are scanned
        // for less than hashing the name costs (~40 against ~140 instructions).
        Self::of_content_type(small_map_get(headers, &CONTENT_TYPE, 16))
    }

    /// The protocol of a request with this `content-type`.
    pub(crate) fn of_content_type(content_type: Option<&HeaderValue>) -> Self {
        let grpc = content_type.is_some_and(|ct| ct.as_bytes().starts_with(b"application/grpc"));
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
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Refusal {
    pub(crate) http: StatusCode,
    /// gRPC status code (`tonic::Code` numbering).
    pub(crate) grpc: u16,
    /// What was wrong and what to send instead, for `grpc-message` and an HTTP body;
    /// printable ASCII, never request data.
    pub(crate) message: String,
}

impl Refusal {
    /// A response that refuses the request: the HTTP status (with `text/plain` as the
    /// type of the body [`message`](Self::message) a caller may write), or for gRPC a
    /// trailers-only response with `grpc-status` and `grpc-message`.
    pub(crate) fn response<B: Default>(&self, protocol: Protocol) -> Response<B> {
        let mut response = Response::new(B::default());
        match protocol {
            Protocol::Http => {
                *response.status_mut() = self.http;
                response.headers_mut().insert(
                    CONTENT_TYPE,
                    HeaderValue::from_static("text/plain; charset=utf-8"),
                );
            }
            Protocol::Grpc => {
                let headers = response.headers_mut();
                headers.insert(CONTENT_TYPE, HeaderValue::from_static("application/grpc"));
                headers.insert("grpc-status", HeaderValue::from(self.grpc));
                // Printable ASCII without `%`: nothing to percent-encode.
                if let Ok(message) = HeaderValue::from_str(&self.message) {
                    headers.insert("grpc-message", message);
                }
            }
        }
        response
    }
}

pub(crate) const GRPC_STATUS: http::HeaderName = http::HeaderName::from_static("grpc-status");

/// The `grpc-status` in `headers` (response headers of a trailers-only response, or
/// trailers), if present and a number.
pub(crate) fn grpc_status(headers: &http::HeaderMap) -> Option<u16> {
    grpc_code(grpc_status_value(headers)?.as_bytes())
}

/// The `grpc-status` value of a response's headers or trailers. They hold two or three
/// fields, and comparing the name with each costs less than hashing it for the map's
/// lookup (~60 against ~150 instructions, three or four times a call); a larger map is
/// looked up by hash.
pub(crate) fn grpc_status_value(headers: &http::HeaderMap) -> Option<&HeaderValue> {
    small_map_get(headers, &GRPC_STATUS, 4)
}

/// The first value of `name` in `headers`: compared with each field's name when there
/// are at most `small` of them, else looked up by hash.
fn small_map_get<'h>(
    headers: &'h http::HeaderMap,
    name: &HeaderName,
    small: usize,
) -> Option<&'h HeaderValue> {
    if headers.len() > small {
        return headers.get(name);
    }
    headers
        .iter()
        .find_map(|(field, value)| (field == name).then_some(value))
}

/// A `grpc-status` value as a number: one to three decimal digits.
pub(crate) fn grpc_code(value: &[u8]) -> Option<u16> {
    if value.is_empty() || value.len() > 3 || !value.iter().all(u8::is_ascii_digit) {
        return None;
    }
    value.iter().try_fold(0u16, |n, d| {
        n.checked_mul(10)?.checked_add(u16::from(d - b'0'))
    })
}

/// gRPC status code `CANCELLED`, recorded when a response stream ends early.
pub(crate) const GRPC_CANCELLED: u16 = 1;
/// gRPC status code `UNKNOWN`, recorded when a gRPC response ends without a status.
pub(crate) const GRPC_UNKNOWN: u16 = 2;

/// The name of a gRPC status code (`OK`, `NOT_FOUND`, ...), as a metric label: the
/// classification every part of the toolkit shares (`#[workflow_span]`'s `error.type`
/// for a `tonic::Status` included).
pub use instrument_core::semconv::grpc_code_name;

/// `/package.Service/Method` split into service and method, when `path` has that shape.
pub(crate) fn grpc_service_method(path: &str) -> Option<(&str, &str)> {
    let (service, method) = path.strip_prefix('/')?.split_once('/')?;
    (!service.is_empty() && !method.is_empty() && !method.contains('/'))
        .then_some((service, method))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(status: &'static str) -> http::HeaderMap {
        let mut h = http::HeaderMap::new();
        h.insert("grpc-status", HeaderValue::from_static(status));
        h
    }

    #[test]
    fn grpc_status_accepts_only_short_decimal_numbers() {
        assert_eq!(grpc_status(&headers("0")), Some(0));
        assert_eq!(grpc_status(&headers("16")), Some(16));
        assert_eq!(grpc_status(&headers("999")), Some(999));
        for bad in ["", "-1", "1a", "1234", " 1", "0x1"] {
            assert_eq!(grpc_status(&headers(bad)), None, "{bad:?}");
        }
        assert_eq!(grpc_status(&http::HeaderMap::new()), None);
    }

    #[test]
    fn code_names() {
        assert_eq!(grpc_code_name(5), "NOT_FOUND");
        assert_eq!(grpc_code_name(17), "UNRECOGNIZED");
    }

    #[test]
    fn grpc_paths() {
        assert_eq!(
            grpc_service_method("/instrument.example.v1.WorkflowService/StartWorkflow"),
            Some(("instrument.example.v1.WorkflowService", "StartWorkflow"))
        );
        for bad in ["", "/", "//", "/svc", "/svc/", "svc/m", "/a/b/c"] {
            assert_eq!(grpc_service_method(bad), None, "{bad:?}");
        }
    }
}
