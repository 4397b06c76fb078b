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
    // One pass over the bytes through a class table, no allocation unless a segment is
    // replaced: this runs on every request, in the trace and the metrics layers.
    let b = path.as_bytes();
    let mut replaced: Option<String> = None;
    let mut copied = 0;
    let mut start = 0;
    let mut segment = Segment::default();
    for (i, &c) in b.iter().enumerate() {
        let class = CLASS[usize::from(c)];
        if class & (SLASH | END) == 0 {
            segment.add(class);
            continue;
        }
        if segment.is_identifier(&b[start..i]) {
            let out = replaced.get_or_insert_with(|| String::with_capacity(path.len()));
            out.push_str(&path[copied..start]);
            out.push_str(ID_PLACEHOLDER);
            copied = i;
        }
        if class & END != 0 {
            return finish(path, i, replaced, copied);
        }
        start = i + 1;
        segment = Segment::default();
    }
    if segment.is_identifier(&b[start..]) {
        let out = replaced.get_or_insert_with(|| String::with_capacity(path.len()));
        out.push_str(&path[copied..start]);
        out.push_str(ID_PLACEHOLDER);
        copied = b.len();
    }
    finish(path, b.len(), replaced, copied)
}

/// `path` up to `end`, with the replacements made so far and the rest after `copied`.
fn finish(path: &str, end: usize, replaced: Option<String>, copied: usize) -> Cow<'_, str> {
    match replaced {
        None => Cow::Borrowed(&path[..end]),
        Some(mut out) => {
            out.push_str(&path[copied..end]);
            Cow::Owned(out)
        }
    }
}

/// Byte classes of a path (bit flags).
const DIGIT: u8 = 1;
const HEX_LETTER: u8 = 2;
const LETTER: u8 = 4;
/// `-`, `_`, `=`: allowed in opaque tokens.
const TOKEN_MARK: u8 = 8;
const AT: u8 = 16;
const OTHER: u8 = 32;
/// `/`: ends a segment.
const SLASH: u8 = 64;
/// `?` and `#`: end the path.
const END: u8 = 128;

static CLASS: [u8; 256] = {
    let mut table = [OTHER; 256];
    let mut c = 0;
    while c < 256 {
        let b = c as u8;
        table[c] = match b {
            b'0'..=b'9' => DIGIT,
            b'a'..=b'f' | b'A'..=b'F' => HEX_LETTER,
            b'g'..=b'z' | b'G'..=b'Z' => LETTER,
            b'-' | b'_' | b'=' => TOKEN_MARK,
            b'@' => AT,
            b'/' => SLASH,
            b'?' | b'#' => END,
            _ => OTHER,
        };
        c += 1;
    }
    table
};

/// What one segment's bytes were, gathered byte by byte.
#[derive(Default)]
struct Segment {
    digits: usize,
    classes: u8,
}

impl Segment {
    fn add(&mut self, class: u8) {
        self.digits += usize::from(class & DIGIT);
        self.classes |= class;
    }

    /// Whether the segment `b` (whose bytes were added) is an identifier: all digits,
    /// a UUID, 16+ hex digits, an `@`, or a 20+ character token of letters and digits.
    fn is_identifier(&self, b: &[u8]) -> bool {
        !b.is_empty()
            && (self.digits == b.len()
                || self.classes & AT != 0
                || (b.len() >= 16 && self.classes & !(DIGIT | HEX_LETTER) == 0)
                || (b.len() == 36 && is_uuid(b))
                || (b.len() >= 20
                    && self.digits > 0
                    && self.classes & (HEX_LETTER | LETTER) != 0
                    && self.classes & !(DIGIT | HEX_LETTER | LETTER | TOKEN_MARK) == 0))
    }
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

    /// The first implementation (several passes, `split` and `join`): the oracle.
    fn reference(path: &str) -> Cow<'_, str> {
        fn identifier(segment: &str) -> bool {
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
        let path = match path.find(['?', '#']) {
            Some(i) => &path[..i],
            None => path,
        };
        if !path.split('/').any(identifier) {
            return Cow::Borrowed(path);
        }
        let parts: Vec<&str> = path
            .split('/')
            .map(|s| if identifier(s) { ID_PLACEHOLDER } else { s })
            .collect();
        Cow::Owned(parts.join("/"))
    }

    proptest::proptest! {
        #[test]
        fn one_pass_agrees_with_the_reference(
            path in "(/([a-zA-Z0-9@=_.-]{0,40}|[0-9a-fA-F]{13,19}|[a-z0-9_=-]{17,23}|[0-9]{1,3}|[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}|é)){0,6}[?#]?[a-z/]{0,5}",
        ) {
            let ours = normalize_route(&path);
            let reference = reference(&path);
            proptest::prop_assert_eq!(&ours, &reference);
            proptest::prop_assert_eq!(
                matches!(ours, Cow::Borrowed(_)),
                matches!(reference, Cow::Borrowed(_))
            );
        }

        #[test]
        fn any_string_agrees_with_the_reference(path in ".{0,80}") {
            proptest::prop_assert_eq!(normalize_route(&path), reference(&path));
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
