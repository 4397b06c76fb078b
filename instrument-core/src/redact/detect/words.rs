//! Text helpers of the detectors: what a word or a run of digits is.

use super::prefilter::{is_secret_symbol, mixed_pair};
use crate::redact::keys::KeyMatcher;
use crate::redact::text::{is_card_number, reveals_nothing};

/// Digits needed before a card or SSN is possible (an SSN has nine).
pub(super) const MIN_SENSITIVE_DIGITS: usize = 9;
/// Digits in the shortest Telegram bot id a bot token starts with.
pub(super) const MIN_BOT_ID_DIGITS: usize = 8;
/// Digits in a run before a telephone number is possible: eight after a `+`
/// (`+33 1 23 45 67`), ten otherwise (`415-555-2671`, `020 7946 0958`).
pub(super) const MIN_PHONE_DIGITS: usize = 8;
pub(super) const MIN_NATIONAL_PHONE_DIGITS: usize = 10;
/// Dashes a PEM block starts with (`-----BEGIN`).
pub(super) const PEM_DASHES: usize = 5;
/// What a PuTTY private key file starts with, and the dashes in it.
pub(super) const PUTTY_START: &[u8] = b"PuTTY-User-Key-File-";
pub(super) const PUTTY_DASHES: usize = 4;
/// Shortest value any detector can fire on (`a@b.io`).
pub(super) const MIN_SCAN_LEN: usize = 6;

/// Key words after which a short run of digits is the secret (`PIN is 4821`).
pub(super) fn is_numeric_secret_word(word: &str) -> bool {
    let w = word.to_ascii_lowercase();
    ["pin", "otp", "passcode", "code"]
        .iter()
        .any(|k| w.ends_with(k))
}

/// Whether `value`, written after a key word in prose without `=` or `:`
/// (`password is <value>`, `with secret <value>`), looks like a secret rather than the
/// next word of the sentence: a letter next to a digit, or a symbol among eight
/// characters or more (or, after `PIN` / `OTP` / `code`, four to ten digits). Plain words
/// (`password is required`, `token expired`, `secret rotation`), hyphenated words,
/// numbers with units, paths and URLs are prose.
pub(super) fn looks_like_secret(key_word: &str, value: &str) -> bool {
    let b = value.as_bytes();
    if b.is_empty() || reveals_nothing(value) {
        return false;
    }
    if b.iter().all(u8::is_ascii_digit) {
        return is_numeric_secret_word(key_word) && (4..=10).contains(&b.len());
    }
    if b.len() < 6 || value.contains("://") || matches!(b[0], b'/' | b'~' | b'.') {
        return false;
    }
    let letters = b.iter().filter(|c| c.is_ascii_alphabetic()).count();
    let digits = b.iter().filter(|c| c.is_ascii_digit()).count();
    // A number with a unit or a version: `250ms`, `1.5s`, `10:30`, `v2.1`.
    let numberish = b[0].is_ascii_digit()
        && b.iter()
            .all(|c| c.is_ascii_digit() || b".,:-/".contains(c) || c.is_ascii_alphabetic())
        && letters <= 3
        && b[b.len() - letters..].iter().all(u8::is_ascii_alphabetic);
    if numberish {
        return false;
    }
    // What the first pass looks for (`has_secret_shape`, the first pass's classes):
    // letters next to digits, or a symbol prose does not use.
    let mixed = b.windows(2).any(|pair| mixed_pair(pair[0], pair[1]));
    let symbol = b
        .iter()
        .any(|&c| is_secret_symbol(c) || b"=:%<+@".contains(&c));
    mixed || (symbol && b.len() >= 8 && letters + digits > 0)
}

/// Where the bare value `raw` (at `start` in `hay`) really ends when one of its `&`
/// segments is followed by `=`: then that segment is the next pair's key.
pub(super) fn next_pair_in(hay: &str, start: usize, raw: &str) -> Option<usize> {
    let end = start + raw.len();
    if !hay[end..].starts_with('=') || raw.starts_with(['"', '\'']) {
        return None;
    }
    raw.rfind('&').map(|amp| start + amp)
}

/// Where the secret part of a webhook URL's path starts, for the services whose URL is
/// the credential (a Slack or Discord webhook, a Telegram bot, a Teams connector).
pub(super) fn secret_path_start(host: &str, path: &str) -> Option<usize> {
    const WEBHOOKS: &[(&str, &str)] = &[
        ("hooks.slack.com", "/services/"),
        ("hooks.slack.com", "/workflows/"),
        ("hooks.slack.com", "/triggers/"),
        ("discord.com", "/api/webhooks/"),
        ("discordapp.com", "/api/webhooks/"),
        ("api.telegram.org", "/bot"),
        ("webhook.office.com", "/webhookb2/"),
        ("outlook.office.com", "/webhook/"),
    ];
    let host = host.to_ascii_lowercase();
    WEBHOOKS.iter().find_map(|(h, prefix)| {
        let host_matches = host == *h || host.ends_with(&format!(".{h}"));
        (host_matches && path.starts_with(prefix)).then(|| {
            // Discord keeps the webhook id, the rest is the token.
            if *h == "discord.com" || *h == "discordapp.com" {
                let after = prefix.len();
                path[after..].find('/').map_or(after, |i| after + i + 1)
            } else {
                prefix.len()
            }
        })
    })
}

/// Whether `key: raw` is a position in a source file (`PasswordEncoder.java:42`).
pub(super) fn is_source_position(key: &str, raw: &str) -> bool {
    const SOURCE: &[&str] = &[
        "c", "cc", "cpp", "cs", "dart", "erl", "ex", "exs", "go", "h", "hpp", "java", "js", "jsx",
        "kt", "lua", "m", "mm", "php", "pl", "py", "rb", "rs", "scala", "sh", "sql", "swift", "ts",
        "tsx", "vue",
    ];
    raw.starts_with(|c: char| c.is_ascii_digit())
        && key
            .rsplit_once('.')
            .is_some_and(|(_, ext)| SOURCE.contains(&ext))
}

/// Whether the bare value `value` is itself a pair whose key describes a secret
/// (`method=oidc`, `type=basic`).
pub(super) fn nested_description(keys: &KeyMatcher, value: &str) -> bool {
    value.split_once('=').is_some_and(|(key, rest)| {
        !key.is_empty()
            && !rest.is_empty()
            && key.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_')
            && keys.is_description(key)
    })
}

/// Whether `value` looks like the name or path of something (`prod/db`,
/// `kv/data/app`, `db.password`) rather than a secret.
pub(super) fn names_something(value: &str) -> bool {
    value.contains('/')
        || (value.contains('.')
            && value.split('.').all(|part| {
                !part.is_empty() && part.bytes().all(|b| b.is_ascii_lowercase() || b == b'_')
            }))
}

/// Whether the match `start..end` of `hay` stands alone as a number: no digit, `+`
/// or word character glued to either end, and not followed by `:` or a decimal part
/// (a date and a time, `01-15-2024 10:30`, are not a telephone number).
pub(super) fn stands_alone(hay: &str, start: usize, end: usize) -> bool {
    let b = hay.as_bytes();
    let before_ok =
        start == 0 || !(b[start - 1].is_ascii_alphanumeric() || b"+._/".contains(&b[start - 1]));
    let after = b.get(end).copied();
    let after_ok = match after {
        None => true,
        Some(c) if c.is_ascii_alphanumeric() || c == b':' => false,
        Some(b'.' | b'-' | b'/') => !b.get(end + 1).is_some_and(u8::is_ascii_digit),
        Some(_) => true,
    };
    before_ok && after_ok
}

/// The words of `text` with their offsets: what lies between whitespace, quotes and
/// angle brackets.
pub(super) fn words_of(text: &str) -> impl Iterator<Item = (usize, &str)> {
    let boundary = |c: char| c.is_whitespace() || matches!(c, '"' | '\'' | '<' | '>' | '`');
    let mut rest = 0;
    std::iter::from_fn(move || {
        let tail = &text[rest..];
        let skip = tail.find(|c: char| !boundary(c))?;
        let start = rest + skip;
        let len = text[start..].find(boundary).unwrap_or(text.len() - start);
        rest = start + len;
        Some((start, &text[start..start + len]))
    })
}

/// `word` percent-decoded, with the offset in `word` of each decoded byte (and of the
/// end); `None` when nothing decodes or the result is not UTF-8.
pub(super) fn percent_decode_mapped(word: &str) -> Option<(String, Vec<usize>)> {
    let bytes = word.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut map = Vec::with_capacity(bytes.len() + 1);
    let mut i = 0;
    let mut decoded_any = false;
    while i < bytes.len() {
        let escape = bytes
            .get(i + 1..i + 3)
            .filter(|h| bytes[i] == b'%' && h.iter().all(u8::is_ascii_hexdigit));
        map.push(i);
        match escape {
            Some(h) => {
                let hex = |c: u8| (c as char).to_digit(16).unwrap_or(0) as u8;
                out.push(hex(h[0]) << 4 | hex(h[1]));
                i += 3;
                decoded_any = true;
            }
            None => {
                out.push(bytes[i]);
                i += 1;
            }
        }
    }
    map.push(bytes.len());
    if !decoded_any {
        return None;
    }
    String::from_utf8(out).ok().map(|s| (s, map))
}

/// Whether `value` is a file name: a word and a short alphabetic extension, no digit
/// or symbol a password would have (`db.yaml`, `id_rsa.pub`).
pub(super) fn is_file_name(value: &str) -> bool {
    match value.rsplit_once('.') {
        Some((stem, ext)) => {
            !stem.is_empty()
                && (1..=4).contains(&ext.len())
                && ext.bytes().all(|b| b.is_ascii_lowercase())
                && stem
                    .bytes()
                    .all(|b| b.is_ascii_alphabetic() || matches!(b, b'_' | b'-'))
        }
        None => false,
    }
}

/// Whether `a/b` is a pair of modes or answers rather than a user and a password
/// (`read/write`, `on/off`, `yes/no`).
pub(super) fn is_mode_pair(a: &str, b: &str) -> bool {
    const MODES: &[&str] = &[
        "read", "write", "r", "w", "rw", "ro", "on", "off", "yes", "no", "true", "false",
        "enabled", "disabled", "allow", "deny", "n", "a", "none", "any",
    ];
    let known = |w: &str| MODES.iter().any(|m| m.eq_ignore_ascii_case(w));
    known(a) && known(b)
}

/// How many of the brackets `value` ends with (`)`, `]`) it did not open itself.
pub(super) fn unopened_closing_brackets(value: &str) -> usize {
    let trailing = value.len() - value.trim_end_matches([')', ']']).len();
    let opened = value.bytes().filter(|b| matches!(b, b'(' | b'[')).count();
    trailing.saturating_sub(opened)
}

/// Where the run of digit groups continued at `from` ends: digits, with single spaces or
/// dashes between them.
pub(super) fn digit_run_end(bytes: &[u8], mut from: usize) -> usize {
    loop {
        match bytes.get(from..) {
            Some([d, ..]) if d.is_ascii_digit() => from += 1,
            Some([b' ' | b'-', d, ..])
                if d.is_ascii_digit() && from > 0 && bytes[from - 1].is_ascii_digit() =>
            {
                from += 2
            }
            _ => return from,
        }
    }
}

/// Whether the token around `at` in `bytes` (hex digits and dashes) is a UUID:
/// `8-4-4-4-12` hex digits.
pub(super) fn in_uuid(bytes: &[u8], at: usize) -> bool {
    let token = |b: &u8| b.is_ascii_hexdigit() || *b == b'-';
    let start = bytes[..at]
        .iter()
        .rposition(|b| !token(b))
        .map_or(0, |i| i + 1);
    let end = bytes[at..]
        .iter()
        .position(|b| !token(b))
        .map_or(bytes.len(), |i| at + i);
    let groups: Vec<usize> = bytes[start..end]
        .split(|&b| b == b'-')
        .map(<[u8]>::len)
        .collect();
    groups == [8, 4, 4, 4, 12]
}

/// `end` of a run of digit groups from `start`, without a last group that runs on into
/// a word (a letter, a digit or `_` right after it): when the run has more than one
/// group, that group belongs to the word.
pub(super) fn whole_groups_end(bytes: &[u8], start: usize, end: usize) -> usize {
    let glued = bytes
        .get(end)
        .is_some_and(|b| b.is_ascii_alphanumeric() || *b == b'_');
    if !glued {
        return end;
    }
    match bytes[start..end]
        .iter()
        .rposition(|b| matches!(b, b' ' | b'-'))
    {
        Some(separator) => start + separator,
        None => end,
    }
}

/// The span (start, end) of the first payment card in `run` (digit groups with single
/// spaces or dashes between them): the whole run when it is one (any grouping), else
/// whole groups laid out as cards print them (one group of 13 to 19 digits, fours with
/// a shorter last group, or 4-6-5 and 4-6-4): a card written beside a year, an amount
/// or a CVV. Luhn-checked.
pub(super) fn card_in_run(run: &str) -> Option<(usize, usize)> {
    let bytes = run.as_bytes();
    let digits = |from: usize, to: usize| -> Vec<u8> {
        bytes[from..to]
            .iter()
            .copied()
            .filter(u8::is_ascii_digit)
            .collect()
    };
    if is_card_number(&digits(0, bytes.len())) {
        return Some((0, bytes.len()));
    }
    let mut groups: Vec<(usize, usize)> = Vec::new();
    let mut start = 0;
    for (i, b) in bytes.iter().enumerate() {
        if !b.is_ascii_digit() {
            groups.push((start, i));
            start = i + 1;
        }
    }
    groups.push((start, bytes.len()));
    let len = |g: &(usize, usize)| g.1 - g.0;
    for first in 0..groups.len() {
        // At most 19 digits: at most 19 groups.
        for last in (first..groups.len().min(first + 19)).rev() {
            let laid_out = &groups[first..=last];
            let printed = match laid_out.iter().map(len).collect::<Vec<_>>().as_slice() {
                [4, 6, 5] | [4, 6, 4] => true,
                [one] => (13..=19).contains(one),
                [fours @ .., tail] => {
                    fours.len() >= 3 && fours.iter().all(|&l| l == 4) && (1..=4).contains(tail)
                }
                [] => false,
            };
            let (from, to) = (laid_out[0].0, laid_out[laid_out.len() - 1].1);
            if printed && is_card_number(&digits(from, to)) {
                return Some((from, to));
            }
        }
    }
    None
}

/// The lengths of the longest common prefix and suffix of `a` and `b` (not
/// overlapping, on char boundaries of both).
pub(super) fn common_ends(a: &str, b: &str) -> (usize, usize) {
    let max = a.len().min(b.len());
    let mut prefix = a.bytes().zip(b.bytes()).take_while(|(x, y)| x == y).count();
    while !(a.is_char_boundary(prefix) && b.is_char_boundary(prefix)) {
        prefix -= 1;
    }
    let mut suffix = a
        .bytes()
        .rev()
        .zip(b.bytes().rev())
        .take(max - prefix)
        .take_while(|(x, y)| x == y)
        .count();
    while !(a.is_char_boundary(a.len() - suffix) && b.is_char_boundary(b.len() - suffix)) {
        suffix -= 1;
    }
    (prefix, suffix)
}
