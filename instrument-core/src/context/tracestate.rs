//! The W3C `tracestate` header: validation and combination of several header lines.
//!
//! Rules (W3C Trace Context, section 3.3): at most 32 list members; a key is either a
//! simple key (`lcalpha` then up to 255 of `lcalpha DIGIT _ - * /`) or a multi-tenant
//! key `tenant@system` (tenant: `lcalpha / DIGIT` then up to 240 more; system: `lcalpha`
//! then up to 13 more); a value is 1 to 256 printable ASCII characters other than `,`
//! and `=`, not ending in a space; empty list members (and empty header lines) are
//! allowed and ignored; a key may appear only once across all lines. When any of this
//! is violated the whole `tracestate` is discarded, never the `traceparent`.

use std::fmt;

use opentelemetry::trace::TraceState;

use super::traceparent::trim_ows;

/// Most list members a `tracestate` may carry (W3C 3.3.1.1).
pub const MAX_MEMBERS: usize = 32;
const MAX_VALUE_LEN: usize = 256;
const MAX_SIMPLE_KEY_LEN: usize = 256;
const MAX_TENANT_LEN: usize = 241;
const MAX_SYSTEM_LEN: usize = 14;

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
    /// A key breaks the key grammar or its length limits.
    InvalidKey {
        /// Zero-based index of the member.
        member: usize,
    },
    /// A value is empty, too long, or has a forbidden character.
    InvalidValue {
        /// Zero-based index of the member.
        member: usize,
    },
    /// The same key appears twice.
    DuplicateKey {
        /// Zero-based index of the second occurrence.
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
            Self::DuplicateKey { member } => {
                write!(f, "tracestate member {member} repeats an earlier key")
            }
            Self::NotAscii => f.write_str("tracestate is not ASCII"),
        }
    }
}

impl std::error::Error for TraceStateError {}

fn is_key_char(b: u8) -> bool {
    b.is_ascii_lowercase() || b.is_ascii_digit() || matches!(b, b'_' | b'-' | b'*' | b'/')
}

fn valid_key(key: &[u8]) -> bool {
    match key.iter().position(|&b| b == b'@') {
        None => {
            matches!(key.first(), Some(b) if b.is_ascii_lowercase())
                && key.len() <= MAX_SIMPLE_KEY_LEN
                && key.iter().all(|&b| is_key_char(b))
        }
        Some(at) => {
            let (tenant, system) = (&key[..at], &key[at + 1..]);
            matches!(tenant.first(), Some(b) if b.is_ascii_lowercase() || b.is_ascii_digit())
                && tenant.len() <= MAX_TENANT_LEN
                && tenant.iter().all(|&b| is_key_char(b))
                && matches!(system.first(), Some(b) if b.is_ascii_lowercase())
                && system.len() <= MAX_SYSTEM_LEN
                && system.iter().all(|&b| is_key_char(b))
        }
    }
}

fn valid_value(value: &[u8]) -> bool {
    // value = 0*255(chr) nblk-chr; chr = %x20 / nblk-chr; nblk-chr excludes ',' and '='.
    let printable = |b: u8| (0x20..=0x7e).contains(&b) && b != b',' && b != b'=';
    !value.is_empty()
        && value.len() <= MAX_VALUE_LEN
        && value.last() != Some(&b' ')
        && value.iter().all(|&b| printable(b))
}

/// Parses and validates every `tracestate` header line of one request, in order, as one
/// combined list.
///
/// Returns the members as `(key, value)` slices borrowed from the input; no allocation
/// beyond the member list. An empty result means "no tracestate".
///
/// ```
/// use instrument_core::context::parse_tracestate;
///
/// let members = parse_tracestate([&b"foo=1, bar=2"[..], b"", b"rojo@congo=x"])?;
/// assert_eq!(members, [("foo", "1"), ("bar", "2"), ("rojo@congo", "x")]);
/// assert!(parse_tracestate([&b"foo=1,foo=2"[..]]).is_err());
/// # Ok::<(), instrument_core::context::TraceStateError>(())
/// ```
pub fn parse_tracestate<'a, I>(lines: I) -> Result<Vec<(&'a str, &'a str)>, TraceStateError>
where
    I: IntoIterator<Item = &'a [u8]>,
{
    let mut members: Vec<(&'a str, &'a str)> = Vec::new();
    let mut index = 0usize;
    for line in lines {
        let line = std::str::from_utf8(line).map_err(|_| TraceStateError::NotAscii)?;
        if !line.is_ascii() {
            return Err(TraceStateError::NotAscii);
        }
        for raw in line.split(',') {
            let member = trim_ows(raw.as_bytes());
            if member.is_empty() {
                continue;
            }
            let member_index = index;
            index += 1;
            if index > MAX_MEMBERS {
                continue; // keep counting for the error below
            }
            let eq =
                member
                    .iter()
                    .position(|&b| b == b'=')
                    .ok_or(TraceStateError::MissingEquals {
                        member: member_index,
                    })?;
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
            // Both slices are ASCII sub-slices of a &str.
            let (key, value) = (ascii(key), ascii(value));
            if members.iter().any(|(k, _)| *k == key) {
                return Err(TraceStateError::DuplicateKey {
                    member: member_index,
                });
            }
            members.push((key, value));
        }
    }
    if index > MAX_MEMBERS {
        return Err(TraceStateError::TooManyMembers { count: index });
    }
    Ok(members)
}

fn ascii(b: &[u8]) -> &str {
    std::str::from_utf8(b).unwrap_or_default()
}

/// Converts validated members into opentelemetry's [`TraceState`].
///
/// opentelemetry 0.33's `TraceState` refuses a few keys the specification allows (a
/// multi-tenant key whose system part is exactly 14 characters long). Such a member is
/// left out rather than costing the other members; everything else is kept in order.
pub fn to_otel_trace_state(members: &[(&str, &str)]) -> TraceState {
    if members.is_empty() {
        return TraceState::NONE;
    }
    TraceState::from_key_value(members.iter().copied()).unwrap_or_else(|_| {
        let mut accepted = TraceState::NONE;
        // Insert in reverse: `insert` pushes to the front.
        for (k, v) in members.iter().rev() {
            if let Ok(next) = accepted.insert(*k, *v) {
                accepted = next;
            }
        }
        accepted
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(lines: &[&str]) -> Result<Vec<(String, String)>, TraceStateError> {
        parse_tracestate(lines.iter().map(|l| l.as_bytes())).map(|m| {
            m.into_iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect()
        })
    }

    #[test]
    fn multiple_lines_are_combined_in_order() {
        let m = parse(&["foo=1,bar=2", "rojo=1,congo=2", "baz=3"]).unwrap();
        let keys: Vec<_> = m.iter().map(|(k, _)| k.as_str()).collect();
        assert_eq!(keys, ["foo", "bar", "rojo", "congo", "baz"]);
    }

    #[test]
    fn empty_lines_and_members_are_ignored() {
        assert!(parse(&[""]).unwrap().is_empty());
        assert_eq!(parse(&["foo=1", ""]).unwrap().len(), 1);
        assert_eq!(parse(&["", "foo=1"]).unwrap().len(), 1);
        assert_eq!(parse(&["foo=1,, ,\t,bar=2"]).unwrap().len(), 2);
    }

    #[test]
    fn ows_around_members_is_ignored() {
        let m = parse(&["foo=1 \t , \t bar=2, \t baz=3"]).unwrap();
        assert_eq!(m[2], ("baz".into(), "3".into()));
        assert_eq!(parse(&["\t foo=1 \t"]).unwrap()[0].1, "1");
    }

    #[test]
    fn all_allowed_characters_are_accepted() {
        let key = "abcdefghijklmnopqrstuvwxyz0123456789_-*/";
        let value: String = (0x20u8..=0x7e)
            .filter(|b| *b != b',' && *b != b'=')
            .map(char::from)
            .collect();
        let m = parse(&[&format!("{key}={value}")]).unwrap();
        assert_eq!(m[0], (key.to_string(), value.clone()));
        let vendor = format!("{key}@a-z0-9_-*/");
        assert_eq!(parse(&[&format!("{vendor}={value}")]).unwrap()[0].0, vendor);
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
    fn key_length_limits() {
        assert!(parse(&["foo=1", &format!("{}=1", "z".repeat(256))]).is_ok());
        assert!(parse(&["foo=1", &format!("{}=1", "z".repeat(257))]).is_err());
        assert!(parse(&[
            "foo=1",
            &format!("{}@{}=1", "t".repeat(241), "v".repeat(14))
        ])
        .is_ok());
        assert!(parse(&["foo=1", &format!("{}@v=1", "t".repeat(242))]).is_err());
        assert!(parse(&["foo=1", &format!("t@{}=1", "v".repeat(15))]).is_err());
    }

    #[test]
    fn bad_keys_discard_the_whole_header() {
        for bad in [
            "foo =1",
            "FOO=1",
            "foo.bar=1",
            "foo@=1,bar=2",
            "@foo=1,bar=2",
            "foo@@bar=1,bar=2",
            "foo@bar@baz=1,bar=2",
            "1foo=1",
            "=1",
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
    fn duplicate_keys_across_lines_are_invalid() {
        for lines in [
            &["foo=1,foo=1"][..],
            &["foo=1,foo=2"],
            &["foo=1", "foo=1"],
            &["foo=1", "foo=2"],
        ] {
            assert!(
                matches!(parse(lines), Err(TraceStateError::DuplicateKey { .. })),
                "{lines:?}"
            );
        }
    }

    #[test]
    fn non_ascii_is_rejected_without_panic() {
        assert_eq!(
            parse_tracestate([&b"foo=\xff"[..]]),
            Err(TraceStateError::NotAscii)
        );
        assert_eq!(parse(&["foo=é"]), Err(TraceStateError::NotAscii));
    }

    #[test]
    fn otel_conversion_keeps_order_and_skips_what_otel_refuses() {
        let vendor14 = format!("t@{}", "v".repeat(14));
        let members = [("foo", "1"), (vendor14.as_str(), "2"), ("bar", "3")];
        let ts = to_otel_trace_state(&members);
        assert_eq!(ts.header(), "foo=1,bar=3");
        assert_eq!(
            to_otel_trace_state(&[("a", "1"), ("b", "2")]).header(),
            "a=1,b=2"
        );
    }
}
