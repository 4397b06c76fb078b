//! Route normalisation and status groups: label values with few distinct values.

use std::borrow::Cow;

/// Placeholder for a path segment that is an identifier.
pub const ID_PLACEHOLDER: &str = "{id}";

/// A path with its identifier segments replaced by `{id}`: numbers, UUIDs, hex strings
/// of 16 or more digits, e-mail-like segments, and long opaque tokens (20 or more
/// base64url characters mixing letters and digits). The query and fragment are dropped.
/// Routes with nothing to replace come back borrowed.
///
/// ```
/// use instrument_core::cardinality::normalize_route;
///
/// assert_eq!(
///     normalize_route("/sessions/123/items/550e8400-e29b-41d4-a716-446655440000"),
///     "/sessions/{id}/items/{id}",
/// );
/// assert_eq!(normalize_route("/api/v1/users?page=2"), "/api/v1/users");
/// ```
pub fn normalize_route(path: &str) -> Cow<'_, str> {
    let path = match path.find(['?', '#']) {
        Some(i) => &path[..i],
        None => path,
    };
    if !path.split('/').any(is_identifier) {
        return Cow::Borrowed(path);
    }
    let normalized: Vec<&str> = path
        .split('/')
        .map(|segment| {
            if is_identifier(segment) {
                ID_PLACEHOLDER
            } else {
                segment
            }
        })
        .collect();
    Cow::Owned(normalized.join("/"))
}

fn is_identifier(segment: &str) -> bool {
    let b = segment.as_bytes();
    if b.is_empty() {
        return false;
    }
    let digits = b.iter().filter(|c| c.is_ascii_digit()).count();
    let all_hex = b.iter().all(u8::is_ascii_hexdigit);
    digits == b.len()
        || is_uuid(b)
        || (b.len() >= 16 && all_hex)
        || b.contains(&b'@')
        || (b.len() >= 20
            && digits > 0
            && b.iter().any(u8::is_ascii_alphabetic)
            && b.iter()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, b'-' | b'_' | b'=')))
}

fn is_uuid(b: &[u8]) -> bool {
    b.len() == 36
        && b.iter().enumerate().all(|(i, c)| match i {
            8 | 13 | 18 | 23 => *c == b'-',
            _ => c.is_ascii_hexdigit(),
        })
}

/// The API version segment of a path (`v1`, `v2`, `v1beta1`), if it has one.
///
/// ```
/// use instrument_core::cardinality::api_version;
///
/// assert_eq!(api_version("/api/v1/workflows"), Some("v1"));
/// assert_eq!(api_version("/v2beta1/x"), Some("v2beta1"));
/// assert_eq!(api_version("/videos/1"), None);
/// ```
pub fn api_version(path: &str) -> Option<&str> {
    path.split(['/', '?', '#']).find(|segment| {
        let Some(rest) = segment.strip_prefix(['v', 'V']) else {
            return false;
        };
        let digits = rest.bytes().take_while(u8::is_ascii_digit).count();
        if digits == 0 {
            return false;
        }
        let tail = &rest[digits..];
        tail.is_empty()
            || ["alpha", "beta"].iter().any(|stage| {
                tail.strip_prefix(stage)
                    .is_some_and(|n| n.bytes().all(|c| c.is_ascii_digit()))
            })
    })
}

/// The status class of an HTTP status code: `1xx` to `5xx`, or `unknown`.
///
/// ```
/// assert_eq!(instrument_core::cardinality::status_group(503), "5xx");
/// ```
pub fn status_group(status: u16) -> &'static str {
    match status {
        100..=199 => "1xx",
        200..=299 => "2xx",
        300..=399 => "3xx",
        400..=499 => "4xx",
        500..=599 => "5xx",
        _ => "unknown",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn identifiers_are_replaced() {
        for (input, expected) in [
            ("/sessions/123", "/sessions/{id}"),
            ("/a/550e8400-e29b-41d4-a716-446655440000/b", "/a/{id}/b"),
            ("/blobs/deadbeefdeadbeefdeadbeef", "/blobs/{id}"),
            ("/users/bob@example.com/posts", "/users/{id}/posts"),
            ("/t/AbC123xYz789QwE456rTy", "/t/{id}"),
            ("/orders/42/", "/orders/{id}/"),
            ("/", "/"),
            ("", ""),
        ] {
            assert_eq!(normalize_route(input), expected, "{input}");
        }
    }

    #[test]
    fn ordinary_segments_stay_and_borrow() {
        for route in [
            "/api/v1/users",
            "/health",
            "/instrument.example.v1.WorkflowService/StartWorkflow",
            "/face",
            "/a-long-readable-slug-name",
        ] {
            assert!(
                matches!(normalize_route(route), Cow::Borrowed(r) if r == route),
                "{route}"
            );
        }
    }

    #[test]
    fn versions() {
        assert_eq!(api_version("/api/v1/x"), Some("v1"));
        assert_eq!(api_version("/api/v10"), Some("v10"));
        assert_eq!(api_version("/V3/x"), Some("V3"));
        assert_eq!(api_version("/api/v1alpha2/x"), Some("v1alpha2"));
        assert_eq!(api_version("/api/version/x"), None);
        assert_eq!(api_version("/v/x"), None);
        assert_eq!(api_version(""), None);
    }

    #[test]
    fn status_groups() {
        assert_eq!(status_group(100), "1xx");
        assert_eq!(status_group(204), "2xx");
        assert_eq!(status_group(302), "3xx");
        assert_eq!(status_group(404), "4xx");
        assert_eq!(status_group(503), "5xx");
        assert_eq!(status_group(0), "unknown");
        assert_eq!(status_group(600), "unknown");
    }
}
