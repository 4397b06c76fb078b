//! The id of the request being served, carried in the OpenTelemetry context so that
//! everything logged while serving it can name it.

use std::sync::Arc;

use opentelemetry::Context;

/// Longest request id kept, in bytes.
pub const MAX_REQUEST_ID_LEN: usize = 128;

/// A request id (tower-http's `x-request-id`, a caller's): 1 to
/// [`MAX_REQUEST_ID_LEN`] bytes of visible ASCII.
///
/// ```
/// use instrument_core::context::{request_id_from, with_request_id, RequestId};
///
/// let id = RequestId::parse(b"5f0c2a9e-8d1b-4c37").unwrap();
/// let cx = with_request_id(&opentelemetry::Context::new(), id);
/// assert_eq!(request_id_from(&cx).map(RequestId::as_str), Some("5f0c2a9e-8d1b-4c37"));
/// assert!(RequestId::parse(b"two words").is_none());
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RequestId(Arc<str>);

impl RequestId {
    /// `raw` (a header value) as a request id, if it is one.
    pub fn parse(raw: &[u8]) -> Option<Self> {
        let fits = !raw.is_empty() && raw.len() <= MAX_REQUEST_ID_LEN;
        let visible = raw.iter().all(|b| b.is_ascii_graphic());
        let text = std::str::from_utf8(raw).ok().filter(|_| fits && visible)?;
        Some(Self(Arc::from(text)))
    }

    /// The id as text.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// `cx` with `id` as the id of the request it serves.
pub fn with_request_id(cx: &Context, id: RequestId) -> Context {
    cx.with_value(id)
}

/// The id of the request `cx` serves, if it has one.
pub fn request_id_from(cx: &Context) -> Option<&RequestId> {
    cx.get::<RequestId>()
}
