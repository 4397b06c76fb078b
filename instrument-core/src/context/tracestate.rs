//! The W3C `tracestate` header: validation, combination of several header lines, and a
//! form of the list the toolkit owns, so that no valid member is lost on its way from
//! the incoming header to the outgoing one.
//!
//! Rules (W3C Trace Context, section 3.3, as the current test suite checks them):
//! at most 32 list members across all lines; a key is `( lcalpha / DIGIT )` followed
//! by up to 255 of `lcalpha DIGIT _ - * / @` (so `foo@`, `foo@@bar` and
//! `foo@bar@baz` are keys, `@foo` is not); a value is 1 to 256 printable ASCII
//! characters other than `,` and `=`, not ending in a space; empty list members (and
//! empty header lines) are allowed and ignored. When any of this is violated the whole
//! `tracestate` is discarded, never the `traceparent`. A key that appears twice is the
//! sender's mistake, not a reason to discard: the first (left-most, most recent)
//! member is kept and later ones with the same key are dropped (3.3.1.3 lets a vendor
//! discard duplicates).
//!
//! opentelemetry 0.33's `TraceState` still checks an older key grammar and refuses some
//! of these keys. [`TraceStateList`] keeps the list as received; it is converted to
//! the OpenTelemetry type only where OpenTelemetry needs one (the span context a
//! sampler sees), and [`inject`](super::inject) writes the list itself.

use std::fmt;
use std::sync::Arc;

use opentelemetry::trace::TraceState;

use super::traceparent::trim_ows;

/// Most list members a `tracestate` may carry (W3C 3.3.1.1).
pub const MAX_MEMBERS: usize = 32;
const MAX_VALUE_LEN: usize = 256;
const MAX_KEY_LEN: usize = 256;

/// Why a `tracestate` was discarded.
///
/// Carries positions and lengths, never the header text.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum TraceStateError {
    /// More than [`MAX_MEMBERS`] non-empty list members.
    TooManyMembers {
        /// How many members arrived.
        count: usize,
    },
    /// A list member has no `=`.
    MissingEquals {
        /// Zero-based index of the member.
        member: usize,
    },
    /// A key breaks the key grammar or its length limit.
    InvalidKey {
        /// Zero-based index of the member.
        member: usize,
    },
    /// A value is empty, too long, or has a forbidden character.
    InvalidValue {
        /// Zero-based index of the member.
        member: usize,
    },
    /// The header is not ASCII text.
    NotAscii,
}

impl fmt::Display for TraceStateError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::TooManyMembers { count } => {
                write!(
                    f,
                    "tracestate has {count} members, at most {MAX_MEMBERS} allowed"
                )
            }
            Self::MissingEquals { member } => write!(f, "tracestate member {member} has no '='"),
            Self::InvalidKey { member } => {
                write!(f, "tracestate member {member} has an invalid key")
            }
            Self::InvalidValue { member } => {
                write!(f, "tracestate member {member} has an invalid value")
            }
            Self::NotAscii => f.write_str("tracestate is not ASCII"),
        }
    }
}

impl std::error::Error for TraceStateError {}

fn is_key_char(b: u8) -> bool {
    b.is_ascii_lowercase() || b.is_ascii_digit() || matches!(b, b'_' | b'-' | b'*' | b'/' | b'@')
}

/// `key = ( lcalpha / DIGIT ) 0*255 ( keychar )`.
fn valid_key(key: &[u8]) -> bool {
    matches!(key.first(), Some(b) if b.is_ascii_lowercase() || b.is_ascii_digit())
        && key.len() <= MAX_KEY_LEN
        && key.iter().all(|&b| is_key_char(b))
}

/// `value = 0*255(chr) nblk-chr`; `chr = %x20 / nblk-chr`; `nblk-chr` is printable
/// ASCII other than `,` and `=`.
fn valid_value(value: &[u8]) -> bool {
    let printable = |b: u8| (0x20..=0x7e).contains(&b) && b != b',' && b != b'=';
    !value.is_empty()
        && value.len() <= MAX_VALUE_LEN
        && value.last() != Some(&b' ')
        && value.iter().all(|&b| printable(b))
}

/// The list-members of a W3C `tracestate`, validated and kept as received: in order,
/// without optional whitespace or empty members, a repeated key kept once (its first
/// occurrence).
///
/// Cheap to clone (one shared string). Build it with [`TraceStateList::parse`] from
/// every `tracestate` line of a request; [`Incoming`](super::Incoming) carries it and
/// [`inject`](super::inject) writes it back out.
///
/// ```
/// use instrument_core::context::TraceStateList;
///
/// let list = TraceStateList::parse([&b"foo=1, rojo@congo=x"[..], b"", b"foo@@bar=2"])?;
/// assert_eq!(list.header(), "foo=1,rojo@congo=x,foo@@bar=2");
/// assert_eq!(list.get("foo@@bar"), Some("2"));
///
/// // A repeated key is the sender's mistake: the first one is kept.
/// assert_eq!(TraceStateList::parse([&b"foo=1,foo=2"[..]])?.header(), "foo=1");
/// // A key must start with a lower-case letter or a digit: the whole header is discarded.
/// assert!(TraceStateList::parse([&b"@foo=1,bar=2"[..]]).is_err());
/// # Ok::<(), instrument_core::context::TraceStateError>(())
/// ```
#[derive(Clone, Default, PartialEq, Eq, Hash)]
pub struct TraceStateList {
    /// Members joined by `,`; `None` when there are none.
    header: Option<Arc<str>>,
}

impl TraceStateList {
    /// The empty list.
    pub const EMPTY: Self = Self { header: None };

    /// Parses and validates every `tracestate` header line of one request, in order,
    /// as one combined list (RFC 9110 5.3).
    ///
    /// Linear in the input; one allocation when there is at least one member.
    pub fn parse<'a, I>(lines: I) -> Result<Self, TraceStateError>
    where
        I: IntoIterator<Item = &'a [u8]>,
    {
        let mut kept: Vec<(&'a [u8], &'a [u8])> = Vec::new();
        let mut index = 0usize;
        for line in lines {
            if !line.is_ascii() {
                return Err(TraceStateError::NotAscii);
            }
            for raw in line.split(|&b| b == b',') {
                let member = trim_ows(raw);
                if member.is_empty() {
                    continue;
                }
                let member_index = index;
                index += 1;
                if index > MAX_MEMBERS {
                    continue; // keep counting for the error below
                }
                let eq = member.iter().position(|&b| b == b'=').ok_or(
                    TraceStateError::MissingEquals {
                        member: member_index,
                    },
                )?;
                let (key, value) = (&member[..eq], &member[eq + 1..]);
                if !valid_key(key) {
                    return Err(TraceStateError::InvalidKey {
                        member: member_index,
                    });
                }
                if !valid_value(value) {
                    return Err(TraceStateError::InvalidValue {
                        member: member_index,
                    });
                }
                if !kept.iter().any(|(k, _)| *k == key) {
                    kept.push((key, value));
                }
            }
        }
        if index > MAX_MEMBERS {
            return Err(TraceStateError::TooManyMembers { count: index });
        }
        Ok(Self::from_members(
            kept.iter().map(|&(k, v)| (ascii(k), ascii(v))),
        ))
    }

    /// Joins members already known to be valid.
    fn from_members<'a>(members: impl Iterator<Item = (&'a str, &'a str)> + Clone) -> Self {
        let len: usize = members.clone().map(|(k, v)| k.len() + v.len() + 2).sum();
        if len == 0 {
            return Self::EMPTY;
        }
        let mut header = String::with_capacity(len);
        for (key, value) in members {
            if !header.is_empty() {
                header.push(',');
            }
            header.push_str(key);
            header.push('=');
            header.push_str(value);
        }
        Self {
            header: Some(header.into()),
        }
    }

    /// The list as a `tracestate` header value (`""` when empty).
    pub fn header(&self) -> &str {
        self.header.as_deref().unwrap_or_default()
    }

    /// Whether the list has no members.
    pub fn is_empty(&self) -> bool {
        self.header.is_none()
    }

    /// The members, left to right, as `(key, value)`.
    pub fn iter(&self) -> impl Iterator<Item = (&str, &str)> + Clone + '_ {
        self.header()
            .split(',')
            .filter_map(|member| member.split_once('='))
    }

    /// The number of members.
    pub fn len(&self) -> usize {
        self.iter().count()
    }

    /// The value of `key`, if the list has it.
    pub fn get(&self, key: &str) -> Option<&str> {
        self.iter().find_map(|(k, v)| (k == key).then_some(v))
    }

    /// The list as opentelemetry's [`TraceState`], for the span context a sampler and an
    /// exporter see.
    ///
    /// opentelemetry 0.33's `TraceState` refuses some keys the specification allows
    /// (`foo@@bar`, an `@` more than 14 characters from the end). Such a member is left
    /// out of the OpenTelemetry form only; [`inject`](super::inject) still sends it.
    pub fn to_otel(&self) -> TraceState {
        if self.is_empty() {
            return TraceState::NONE;
        }
        TraceState::from_key_value(self.iter()).unwrap_or_else(|_| {
            let mut accepted = TraceState::NONE;
            // Insert in reverse: `insert` pushes to the front.
            let members: Vec<(&str, &str)> = self.iter().collect();
            for (k, v) in members.into_iter().rev() {
                if let Ok(next) = accepted.insert(k, v) {
                    accepted = next;
                }
            }
            accepted
        })
    }

    /// `theirs` (an OpenTelemetry state that a sampler or vendor code may have changed)
    /// followed by the members of `self` that OpenTelemetry could not hold and that
    /// `theirs` does not replace, up to [`MAX_MEMBERS`].
    pub(crate) fn merged_after(&self, theirs: &TraceState, held: &TraceState) -> Self {
        let header = theirs.header();
        let from_theirs = header
            .split(',')
            .filter_map(|member| member.split_once('='));
        let only_ours = self
            .iter()
            .filter(|(k, _)| theirs.get(k).is_none() && held.get(k).is_none());
        Self::from_members(from_theirs.chain(only_ours).take(MAX_MEMBERS))
    }
}

impl fmt::Debug for TraceStateList {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "TraceStateList({:?})", self.header())
    }
}

impl fmt::Display for TraceStateList {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.header())
    }
}

fn ascii(b: &[u8]) -> &str {
    // Only called on bytes checked to be ASCII.
    std::str::from_utf8(b).unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(lines: &[&str]) -> Result<TraceStateList, TraceStateError> {
        TraceStateList::parse(lines.iter().map(|l| l.as_bytes()))
    }

    fn keys(list: &TraceStateList) -> Vec<&str> {
        list.iter().map(|(k, _)| k).collect()
    }

    #[test]
    fn multiple_lines_are_combined_in_order() {
        let m = parse(&["foo=1,bar=2", "rojo=1,congo=2", "baz=3"]).unwrap();
        assert_eq!(keys(&m), ["foo", "bar", "rojo", "congo", "baz"]);
        assert_eq!(m.header(), "foo=1,bar=2,rojo=1,congo=2,baz=3");
        assert_eq!(m.len(), 5);
    }

    #[test]
    fn empty_lines_and_members_are_ignored() {
        assert!(parse(&[""]).unwrap().is_empty());
        assert_eq!(parse(&[""]).unwrap(), TraceStateList::EMPTY);
        assert_eq!(parse(&["foo=1", ""]).unwrap().len(), 1);
        assert_eq!(parse(&["", "foo=1"]).unwrap().len(), 1);
        assert_eq!(parse(&["foo=1,, ,\t,bar=2"]).unwrap().len(), 2);
    }

    #[test]
    fn ows_around_members_is_ignored() {
        let m = parse(&["foo=1 \t , \t bar=2, \t baz=3"]).unwrap();
        assert_eq!(m.get("baz"), Some("3"));
        assert_eq!(parse(&["\t foo=1 \t"]).unwrap().get("foo"), Some("1"));
        // Leading spaces of a value are part of it (3.3.1.3.2).
        assert_eq!(parse(&["foo= 1"]).unwrap().get("foo"), Some(" 1"));
    }

    #[test]
    fn all_allowed_characters_are_accepted() {
        let key = "abcdefghijklmnopqrstuvwxyz0123456789_-*/";
        let value: String = (0x20u8..=0x7e)
            .filter(|b| *b != b',' && *b != b'=')
            .map(char::from)
            .collect();
        let m = parse(&[&format!("{key}={value}")]).unwrap();
        assert_eq!(m.get(key), Some(value.as_str()));
        let vendor = format!("{key}@a-z0-9_-*/");
        assert_eq!(
            parse(&[&format!("{vendor}={value}")]).unwrap().get(&vendor),
            Some(value.as_str())
        );
    }

    #[test]
    fn member_count_limit_is_32() {
        let lines: Vec<String> = (1..=32).map(|i| format!("bar{i:02}={i:02}")).collect();
        let refs: Vec<&str> = lines.iter().map(String::as_str).collect();
        assert_eq!(parse(&refs).unwrap().len(), 32);
        let mut more = refs.clone();
        more.push("bar33=33");
        assert_eq!(
            parse(&more),
            Err(TraceStateError::TooManyMembers { count: 33 })
        );
    }

    #[test]
    fn ten_thousand_members_are_refused_in_one_pass() {
        let header = vec!["k=v"; 10_000].join(",");
        assert_eq!(
            parse(&[&header]),
            Err(TraceStateError::TooManyMembers { count: 10_000 })
        );
    }

    #[test]
    fn key_length_limit_is_256_with_at_signs_anywhere_after_the_first() {
        for key in [
            "z".repeat(256),
            format!("{}@{}", "t".repeat(241), "v".repeat(14)),
            format!("{}@v", "t".repeat(242)),
            format!("t@{}", "v".repeat(15)),
        ] {
            let m = parse(&["foo=1", &format!("{key}=1")]).unwrap();
            assert_eq!(m.get(&key), Some("1"), "{key}");
            assert_eq!(m.get("foo"), Some("1"));
        }
        assert!(matches!(
            parse(&["foo=1", &format!("{}=1", "z".repeat(257))]),
            Err(TraceStateError::InvalidKey { member: 1 })
        ));
    }

    #[test]
    fn at_signs_are_key_characters_but_not_the_first() {
        for (header, key) in [
            ("foo@=1,bar=2", "foo@"),
            ("foo@@bar=1,bar=2", "foo@@bar"),
            ("foo@bar@baz=1,bar=2", "foo@bar@baz"),
            ("1foo=1,bar=2", "1foo"),
        ] {
            let m = parse(&[header]).unwrap();
            assert_eq!(m.get(key), Some("1"), "{header}");
            assert_eq!(m.get("bar"), Some("2"), "{header}");
        }
    }

    #[test]
    fn bad_keys_discard_the_whole_header() {
        for bad in [
            "foo =1",
            "FOO=1",
            "foo.bar=1",
            "@foo=1,bar=2",
            "=1",
            "_foo=1",
        ] {
            assert!(
                matches!(parse(&[bad]), Err(TraceStateError::InvalidKey { .. })),
                "{bad:?}"
            );
        }
    }

    #[test]
    fn bad_values_discard_the_whole_header() {
        for bad in ["foo=bar=baz", "foo=,bar=3", "foo=a\u{7f}", "foo=a\tb"] {
            assert!(parse(&[bad]).is_err(), "{bad:?}");
        }
        assert!(parse(&[&format!("foo={}", "v".repeat(256))]).is_ok());
        assert!(parse(&[&format!("foo={}", "v".repeat(257))]).is_err());
        assert_eq!(
            parse(&["foo"]),
            Err(TraceStateError::MissingEquals { member: 0 })
        );
    }

    #[test]
    fn a_repeated_key_keeps_its_first_member() {
        for (lines, expected) in [
            (&["foo=1,foo=1"][..], "foo=1"),
            (&["foo=1,foo=2"], "foo=1"),
            (&["foo=1", "foo=1"], "foo=1"),
            (&["foo=1", "foo=2"], "foo=1"),
            (&["foo=1,bar=2", "foo=3,baz=4"], "foo=1,bar=2,baz=4"),
        ] {
            assert_eq!(parse(lines).unwrap().header(), expected, "{lines:?}");
        }
    }

    #[test]
    fn non_ascii_is_rejected_without_panic() {
        assert_eq!(
            TraceStateList::parse([&b"foo=\xff"[..]]),
            Err(TraceStateError::NotAscii)
        );
        assert_eq!(parse(&["foo=é"]), Err(TraceStateError::NotAscii));
    }

    #[test]
    fn otel_form_keeps_order_and_skips_only_what_otel_refuses() {
        let m = parse(&["foo=1,t@vvvvvvvvvvvvvvv=2,foo@@bar=3,bar=4"]).unwrap();
        assert_eq!(m.to_otel().header(), "foo=1,bar=4");
        assert_eq!(m.len(), 4, "the list itself keeps every member");
        assert_eq!(parse(&["a=1,b=2"]).unwrap().to_otel().header(), "a=1,b=2");
        assert_eq!(TraceStateList::EMPTY.to_otel(), TraceState::NONE);
    }

    #[test]
    fn merge_puts_their_changes_first_and_keeps_what_otel_could_not_hold() {
        let ours = parse(&["foo=1,foo@@bar=3,bar=4"]).unwrap();
        let held = ours.to_otel();
        let theirs = held.insert("ot", "th:8").unwrap();
        assert_eq!(
            ours.merged_after(&theirs, &held).header(),
            "ot=th:8,foo=1,bar=4,foo@@bar=3"
        );
        // A member they deleted stays deleted.
        let deleted = held.delete("bar").unwrap();
        assert_eq!(
            ours.merged_after(&deleted, &held).header(),
            "foo=1,foo@@bar=3"
        );
    }
}
