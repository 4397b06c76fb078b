//! Small text helpers shared by the detectors.

use std::borrow::Cow;

/// The longest prefix of `s` that is at most `max` bytes and ends on a char boundary.
pub(crate) fn cut_at_char_boundary(s: &str, max: usize) -> &str {
    if s.len() <= max {
        return s;
    }
    let mut end = max;
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    &s[..end]
}

/// Percent-decodes `s` (`+` as space when `plus_is_space`). Invalid escapes are kept as is.
pub(crate) fn percent_decode(s: &str, plus_is_space: bool) -> Cow<'_, str> {
    if !s.bytes().any(|b| b == b'%' || (plus_is_space && b == b'+')) {
        return Cow::Borrowed(s);
    }
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'%' if i + 2 < bytes.len() => match (hex_val(bytes[i + 1]), hex_val(bytes[i + 2])) {
                (Some(h), Some(l)) => {
                    out.push(h << 4 | l);
                    i += 3;
                }
                _ => {
                    out.push(b'%');
                    i += 1;
                }
            },
            b'+' if plus_is_space => {
                out.push(b' ');
                i += 1;
            }
            b => {
                out.push(b);
                i += 1;
            }
        }
    }
    Cow::Owned(String::from_utf8_lossy(&out).into_owned())
}

fn hex_val(b: u8) -> Option<u8> {
    match b {
        b'0'..=b'9' => Some(b - b'0'),
        b'a'..=b'f' => Some(b - b'a' + 10),
        b'A'..=b'F' => Some(b - b'A' + 10),
        _ => None,
    }
}

/// Whether `value`, held under a sensitive key, reveals nothing worth masking: empty,
/// a boolean or null, an outcome or state (`ok`, `denied`, `new`), a mask (`******`, `xxxx`), or a placeholder standing for the
/// secret rather than the secret itself (`${DB_PASSWORD}`, `{{ .Values.token }}`,
/// `<your-api-key>`, `$1`, `?`, `:password`, `%s`).
pub(crate) fn reveals_nothing(value: &str) -> bool {
    let v = value.trim();
    if v.is_empty() {
        return true;
    }
    let word = |w: &str| v.eq_ignore_ascii_case(w);
    // Booleans, nothing, and outcomes: `auth=ok`, `password=required`.
    const WORDS: &[&str] = &[
        "true",
        "false",
        "yes",
        "no",
        "on",
        "off",
        "null",
        "nil",
        "none",
        "undefined",
        "n/a",
        "ok",
        "success",
        "failed",
        "failure",
        "denied",
        "allowed",
        "granted",
        "valid",
        "invalid",
        "expired",
        "required",
        "optional",
        "missing",
        "present",
        "unknown",
        "enabled",
        "disabled",
        "new",
        "active",
        "inactive",
        "open",
        "closed",
        "pending",
        "started",
        "ended",
        "revoked",
        "locked",
        "unlocked",
    ];
    if WORDS.iter().any(|w| word(w)) {
        return true;
    }
    let b = v.as_bytes();
    // A mask: one repeated mask character.
    if b.len() >= 3 && matches!(b[0], b'*' | b'x' | b'X' | b'#') && b.iter().all(|&c| c == b[0]) {
        return true;
    }
    if v.chars().all(|c| c == '•' || c == '●') {
        return true;
    }
    let inner_is_name = |inner: &str| {
        !inner.is_empty()
            && inner
                .bytes()
                .all(|c| c.is_ascii_alphabetic() || matches!(c, b'_' | b'-' | b' ' | b'.'))
    };
    // Templates and references: `${X}`, `{{ x }}`, `%(x)s`, `$X`, `%X%`.
    if (v.starts_with("${") || v.starts_with("{{") || v.starts_with("%(")) && v.len() > 3 {
        return v.ends_with('}') || v.ends_with(")s");
    }
    if let Some(var) = v.strip_prefix('$') {
        // `$1` (a SQL placeholder) or `$DB_PASSWORD` (an environment variable).
        return var.bytes().all(|c| c.is_ascii_digit()) && !var.is_empty()
            || (!var.is_empty()
                && var
                    .bytes()
                    .all(|c| c.is_ascii_uppercase() || c.is_ascii_digit() || c == b'_'));
    }
    if let Some(var) = v.strip_prefix('%').and_then(|r| r.strip_suffix('%')) {
        return inner_is_name(var);
    }
    if matches!(v, "?" | "%s" | "%d" | "{}") {
        return true;
    }
    // A bind parameter: `:password`, `@password`.
    if let Some(name) = v.strip_prefix(':').or_else(|| v.strip_prefix('@')) {
        return !name.is_empty()
            && name.bytes().all(|c| c.is_ascii_alphanumeric() || c == b'_')
            && name.as_bytes()[0].is_ascii_alphabetic();
    }
    // A placeholder in brackets, without digits: `<your-api-key>`, `[hidden]`, `{token}`.
    for (open, close) in [('<', '>'), ('[', ']'), ('{', '}'), ('(', ')')] {
        if let Some(inner) = v.strip_prefix(open).and_then(|r| r.strip_suffix(close)) {
            return inner_is_name(inner);
        }
    }
    false
}

/// Whether `value` is a plain decimal number (`1532`, `-0.5`, `1e9`).
pub(crate) fn is_number(value: &str) -> bool {
    let v = value.trim();
    !v.is_empty() && v.parse::<f64>().is_ok() && v.bytes().any(|b| b.is_ascii_digit())
}

/// Luhn checksum over ASCII digits.
pub(crate) fn luhn_valid(digits: &[u8]) -> bool {
    let mut sum = 0u32;
    for (i, d) in digits.iter().rev().enumerate() {
        let mut v = u32::from(d - b'0');
        if i % 2 == 1 {
            v *= 2;
            if v > 9 {
                v -= 9;
            }
        }
        sum += v;
    }
    sum.is_multiple_of(10)
}

/// Whether `digits` (13 to 19 ASCII digits) look like a payment card: an issuer range
/// (first digit 2 to 6) and a valid Luhn check digit.
pub(crate) fn is_card_number(digits: &[u8]) -> bool {
    (13..=19).contains(&digits.len()) && (b'2'..=b'6').contains(&digits[0]) && luhn_valid(digits)
}

/// `card` with every digit but the last four replaced by `*`, separators kept.
pub(crate) fn mask_card(card: &str) -> String {
    let total = card.bytes().filter(u8::is_ascii_digit).count();
    let mut seen = 0;
    card.chars()
        .map(|c| {
            if c.is_ascii_digit() {
                seen += 1;
                if seen <= total.saturating_sub(4) {
                    return '*';
                }
            }
            c
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cut_respects_char_boundaries() {
        assert_eq!(cut_at_char_boundary("héllo", 2), "h");
        assert_eq!(cut_at_char_boundary("héllo", 3), "hé");
        assert_eq!(cut_at_char_boundary("abc", 10), "abc");
    }

    #[test]
    fn percent_decoding() {
        assert_eq!(percent_decode("api%5Fkey", false), "api_key");
        assert_eq!(percent_decode("a+b%20c", true), "a b c");
        assert_eq!(percent_decode("100%", false), "100%");
        assert_eq!(percent_decode("%zz%4", false), "%zz%4");
        assert!(matches!(percent_decode("plain", true), Cow::Borrowed(_)));
    }

    #[test]
    fn placeholders_and_masks_reveal_nothing() {
        for v in [
            "",
            " ",
            "true",
            "FALSE",
            "ok",
            "Required",
            "null",
            "None",
            "******",
            "xxxx",
            "••••",
            "${DB_PASSWORD}",
            "{{ .Values.token }}",
            "%(password)s",
            "$1",
            "$DB_PASSWORD",
            "%API_KEY%",
            "?",
            "%s",
            ":password",
            "@token",
            "<your-api-key>",
            "[hidden]",
            "{token}",
        ] {
            assert!(reveals_nothing(v), "{v:?}");
        }
        for v in [
            "hunter2",
            "**a",
            "$ecret",
            "$1a",
            "<hunter2>",
            "[s3cr3t]",
            "${",
            ":",
            "p@ss",
            "xoxb-123",
            "truee",
        ] {
            assert!(!reveals_nothing(v), "{v:?}");
        }
    }

    #[test]
    fn numbers() {
        for v in ["1532", "-0.5", "1e9", " 42 "] {
            assert!(is_number(v), "{v}");
        }
        for v in ["", "NaN", "inf", "12a", "0x10", "1.2.3"] {
            assert!(!is_number(v), "{v}");
        }
    }

    #[test]
    fn luhn_and_card_ranges() {
        assert!(is_card_number(b"4111111111111111"));
        assert!(is_card_number(b"5500005555555559"));
        assert!(is_card_number(b"378282246310005"));
        assert!(!is_card_number(b"4111111111111112"), "fails Luhn");
        assert!(
            !is_card_number(b"1700000000008"),
            "epoch-like, no issuer range"
        );
    }

    #[test]
    fn card_masking_keeps_last_four_and_separators() {
        assert_eq!(mask_card("4111-1111-1111-1111"), "****-****-****-1111");
        assert_eq!(mask_card("4111 1111 1111 1111"), "**** **** **** 1111");
        assert_eq!(mask_card("4111111111111111"), "************1111");
    }
}
