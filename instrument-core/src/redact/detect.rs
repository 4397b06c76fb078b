//! Value detectors: secrets and personal data found under any key.
//!
//! Scanning a clean value must cost almost nothing (`benches/core.rs`,
//! `redact/clean_64b`), so a first pass decides which detectors could possibly fire: a
//! vectorised count of byte classes (`@`, `:`, `=`, `.`, `-`, `_`, `b`, whitespace,
//! digits, dashes), then only the literal searches those classes allow (`-----BEGIN`
//! only if there are five `-`, `://` only if there is a `:`, `bearer` only if there is
//! a `b` and whitespace, ...). Only the detectors that survive run their
//! regular expressions; a value none survives for comes back borrowed.

use std::borrow::Cow;
use std::collections::HashSet;
use std::net::{Ipv4Addr, Ipv6Addr};
use std::sync::OnceLock;

use aho_corasick::{AhoCorasick, AhoCorasickBuilder, MatchKind};
use regex::{Captures, Regex, RegexSet};

use super::keys::{KeyClass, KeyMatcher};
use super::policy::{PolicyError, RedactionPolicy, Rule};
use super::prefix::PrefixIndex;
use super::summary::RedactionSummary;
use super::text::{is_card_number, is_number, mask_card, percent_decode, reveals_nothing};

// Trigger bits: which detectors may fire on a value.
const T_PEM: u32 = 1 << 0;
const T_URL: u32 = 1 << 1;
const T_JWT: u32 = 1 << 2;
const T_AUTH: u32 = 1 << 3;
const T_API_KEY: u32 = 1 << 4;
const T_KEYWORD: u32 = 1 << 5;
const T_EMAIL: u32 = 1 << 6;
const T_DIGITS: u32 = 1 << 7;
const T_IP: u32 = 1 << 8;
const T_PROSE: u32 = 1 << 9;
const T_MARKUP: u32 = 1 << 10;
const T_PERCENT: u32 = 1 << 11;
const T_PHONE: u32 = 1 << 12;
const T_CLI: u32 = 1 << 13;

// Byte classes for the first pass. Each detector needs at least one byte of some class
// (a URL needs ':', a JWT '.', a PEM block '-', `key=value` '=' or ':'), so most
// literal searches are skipped for most values.
const C_AT: u16 = 1;
const C_SEP: u16 = 2; // '=' or ':'
const C_COLON: u16 = 4;
const C_DOT: u16 = 8;
const C_DASH: u16 = 16;
const C_UNDERSCORE: u16 = 32;
/// ASCII whitespace or control, and any non-ASCII byte (it may be Unicode whitespace).
const C_SPACE: u16 = 64;
/// `b` or `B`, which `bearer` and `basic` start with.
const C_B: u16 = 128;
/// `%`, which percent-encoded text has.
const C_PERCENT: u16 = 256;
/// `<`, which markup has.
const C_LT: u16 = 512;
/// `+`, which an international telephone number starts with.
const C_PLUS: u16 = 1024;
// `byte_stats` shifts by these positions.
const _: () = assert!(
    C_AT == 1 << 0
        && C_SEP == 1 << 1
        && C_COLON == 1 << 2
        && C_DOT == 1 << 3
        && C_DASH == 1 << 4
        && C_UNDERSCORE == 1 << 5
        && C_SPACE == 1 << 6
        && C_B == 1 << 7
        && C_PERCENT == 1 << 8
        && C_LT == 1 << 9
        && C_PLUS == 1 << 10
);

/// What the first pass counts in a value.
struct ByteStats {
    /// Which byte classes (`C_*`) occur.
    class: u16,
    /// ASCII digits.
    digits: usize,
    /// `-` bytes (a PEM block starts with five).
    dashes: usize,
}

/// Which byte classes occur in `bytes`, how many ASCII digits and dashes.
///
/// Comparisons only, no table lookups, over fixed 32-byte blocks, so the compiler
/// vectorises the whole pass: the last, partial block is padded with a byte of no
/// class (`a`) rather than finished by a scalar loop, which on a 25-byte value (a
/// span name, a route) cost more than the vector part. Kept out of line: inlined into
/// a large caller it was compiled as a scalar loop (~200 ns, seen with `perf annotate`).
#[inline(never)]
fn byte_stats(bytes: &[u8]) -> ByteStats {
    let mut stats = ByteStats {
        class: 0,
        digits: 0,
        dashes: 0,
    };
    let blocks = bytes.chunks_exact(BLOCK);
    let rest = blocks.remainder();
    for block in blocks {
        stats.add(block_stats(block.try_into().unwrap_or(&[PAD; BLOCK])));
    }
    if !rest.is_empty() {
        let mut last = [PAD; BLOCK];
        last[..rest.len()].copy_from_slice(rest);
        stats.add(block_stats(&last));
    }
    stats
}

/// Whether one of `a`, `b` is an ASCII letter and the other an ASCII digit.
#[inline(always)]
fn mixed_pair(a: u8, b: u8) -> bool {
    let digit = |c: u8| c.wrapping_sub(b'0') < 10;
    let letter = |c: u8| (c | 0x20).wrapping_sub(b'a') < 26;
    (digit(a) & letter(b)) | (letter(a) & digit(b))
}

/// Bytes per block of the first pass.
const BLOCK: usize = 32;
/// What a partial block is padded with: a byte of no class, neither a letter, a digit
/// nor a dash.
const PAD: u8 = 0x7f;

impl ByteStats {
    fn add(&mut self, (class, digits, dashes): (u16, u8, u8)) {
        self.class |= class;
        self.digits += usize::from(digits);
        self.dashes += usize::from(dashes);
    }
}

/// [`byte_stats`] of one block: classes, digits, dashes.
fn block_stats(block: &[u8; BLOCK]) -> (u16, u8, u8) {
    // Two `u8` accumulators rather than one `u16`, comparisons only (no table, no
    // `match`): so the loop stays vectorised.
    let (mut low, mut high, mut digits, mut dashes) = (0u8, 0u8, 0u8, 0u8);
    for &b in block {
        digits += u8::from(b.wrapping_sub(b'0') < 10);
        dashes += u8::from(b == b'-');
        low |= u8::from(b == b'@')
            | u8::from(b == b'=' || b == b':') << 1
            | u8::from(b == b':') << 2
            | u8::from(b == b'.') << 3
            | u8::from(b == b'-') << 4
            | u8::from(b == b'_') << 5
            | u8::from(b <= b' ' || b >= 0x80) << 6
            | u8::from(b | 0x20 == b'b') << 7;
        high |= u8::from(b == b'%') | u8::from(b == b'<') << 1 | u8::from(b == b'+') << 2;
    }
    (u16::from(low) | u16::from(high) << 8, digits, dashes)
}

/// Whether `bytes` has a symbol of [`is_secret_symbol`] or a letter next to a digit:
/// what a secret written in prose has (see [`looks_like_secret`]). A second pass, run
/// only for text with whitespace, so the first stays as cheap as it was for the
/// values most spans carry (names, routes, ids).
#[inline(never)]
fn has_secret_shape(bytes: &[u8]) -> bool {
    let mut found = 0u8;
    let blocks = bytes.chunks_exact(BLOCK);
    let rest = blocks.remainder();
    let mut before = PAD;
    for block in blocks {
        let block: &[u8; BLOCK] = block.try_into().unwrap_or(&[PAD; BLOCK]);
        found |= shape_of_block(block) | u8::from(mixed_pair(before, block[0]));
        before = block[BLOCK - 1];
    }
    if !rest.is_empty() {
        let mut last = [PAD; BLOCK];
        last[..rest.len()].copy_from_slice(rest);
        found |= shape_of_block(&last) | u8::from(mixed_pair(before, last[0]));
    }
    found != 0
}

/// [`has_secret_shape`] of one block, as 0 or 1.
fn shape_of_block(block: &[u8; BLOCK]) -> u8 {
    // Digit and letter masks once, then each against its neighbour's (the last byte's
    // neighbour is padding, of neither kind).
    let mut digit = [0u8; BLOCK + 1];
    let mut letter = [0u8; BLOCK + 1];
    let mut found = 0u8;
    for (i, &b) in block.iter().enumerate() {
        digit[i] = u8::from(b.wrapping_sub(b'0') < 10);
        letter[i] = u8::from((b | 0x20).wrapping_sub(b'a') < 26);
        found |= u8::from(is_secret_symbol(b));
    }
    for i in 0..BLOCK {
        found |= (digit[i] & letter[i + 1]) | (letter[i] & digit[i + 1]);
    }
    found
}

/// A symbol a secret may hold and prose rarely does, as ranges of ASCII (so the pass
/// stays vectorised): `! " # $ % & ' ( ) * +`, `/`, `; < = > ? @`, `[ \ ] ^`,
/// `` ` ``, `{ | } ~`.
#[inline(always)]
fn is_secret_symbol(b: u8) -> bool {
    (b.wrapping_sub(b'!') < 11)
        | (b == b'/')
        | (b == b'`')
        | (b.wrapping_sub(b';') < 6)
        | (b.wrapping_sub(b'[') < 4)
        | (b.wrapping_sub(b'{') < 4)
}

/// The most digits in one run of `bytes` shaped like a telephone number: digits with
/// at most two of ` - . ( ) /` between neighbours (`(415) 555-2671`, `+44 20 7946
/// 0958`). Every phone pattern needs a run of at least [`MIN_PHONE_DIGITS`].
pub(crate) fn longest_phone_run(bytes: &[u8]) -> usize {
    let (mut best, mut run, mut gap) = (0, 0, 0);
    for &b in bytes {
        if b.is_ascii_digit() {
            run += 1;
            gap = 0;
            best = best.max(run);
        } else if run > 0 && gap < 2 && matches!(b, b' ' | b'-' | b'.' | b'(' | b')' | b'/') {
            gap += 1;
        } else {
            run = 0;
            gap = 0;
        }
    }
    best
}

/// Whether a command line's user flag (`-u `, `-u=`, `--user`) occurs in `bytes`.
fn has_user_flag(bytes: &[u8]) -> bool {
    memchr::memchr_iter(b'-', bytes).any(|i| {
        let rest = &bytes[i + 1..];
        rest.starts_with(b"-user")
            || (rest.starts_with(b"u") && matches!(rest.get(1), Some(b' ' | b'=')))
    })
}

/// Whether a closing tag (`</`) occurs in `bytes`.
fn has_closing_tag(bytes: &[u8]) -> bool {
    memchr::memchr_iter(b'<', bytes).any(|i| bytes.get(i + 1) == Some(&b'/'))
}

/// Whether `bytes` has a valid percent escape (`%3A`).
fn has_percent_escape(bytes: &[u8]) -> bool {
    memchr::memchr_iter(b'%', bytes).any(|i| {
        bytes
            .get(i + 1..i + 3)
            .is_some_and(|h| h.iter().all(u8::is_ascii_hexdigit))
    })
}

/// The most digits in one run of `bytes`, a run going on over a single space or dash
/// between two digits: the shape of the card (`[0-9](?:[ \-]?[0-9]){12,18}`) and SSN
/// (`[0-9]{3}-[0-9]{2}-[0-9]{4}`) patterns, so neither can match in fewer digits.
pub(crate) fn longest_digit_run(bytes: &[u8]) -> usize {
    let (mut best, mut run) = (0, 0);
    for (i, &b) in bytes.iter().enumerate() {
        if b.is_ascii_digit() {
            run += 1;
            best = best.max(run);
        } else if !(run > 0
            && (b == b' ' || b == b'-')
            && bytes.get(i + 1).is_some_and(u8::is_ascii_digit))
        {
            run = 0;
        }
    }
    best
}

/// The first char boundary after `i` (past the end when `i` is the end).
fn next_char_boundary(text: &str, i: usize) -> usize {
    text[i..].chars().next().map_or(i + 1, |c| i + c.len_utf8())
}

/// Whether `bearer` or `basic` (any case) starts a word somewhere in `bytes`.
fn has_auth_word(bytes: &[u8]) -> bool {
    memchr::memchr2_iter(b'b', b'B', bytes).any(|i| {
        (i == 0 || !bytes[i - 1].is_ascii_alphanumeric())
            && [&b"bearer"[..], b"basic"].iter().any(|w| {
                bytes
                    .get(i..i + w.len())
                    .is_some_and(|s| s.eq_ignore_ascii_case(w))
            })
    })
}

/// Digits needed before a card or SSN is possible (an SSN has nine).
const MIN_SENSITIVE_DIGITS: usize = 9;
/// Digits in a run before a telephone number is possible: eight after a `+`
/// (`+33 1 23 45 67`), ten otherwise (`415-555-2671`, `020 7946 0958`).
const MIN_PHONE_DIGITS: usize = 8;
const MIN_NATIONAL_PHONE_DIGITS: usize = 10;
/// Dashes a PEM block starts with (`-----BEGIN`).
const PEM_DASHES: usize = 5;
/// Shortest value any detector can fire on (`a@b.io`).
const MIN_SCAN_LEN: usize = 6;

/// Key words after which a short run of digits is the secret (`PIN is 4821`).
fn is_numeric_secret_word(word: &str) -> bool {
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
fn looks_like_secret(key_word: &str, value: &str) -> bool {
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
fn next_pair_in(hay: &str, start: usize, raw: &str) -> Option<usize> {
    let end = start + raw.len();
    if !hay[end..].starts_with('=') || raw.starts_with(['"', '\'']) {
        return None;
    }
    raw.rfind('&').map(|amp| start + amp)
}

/// Where the secret part of a webhook URL's path starts, for the services whose URL is
/// the credential (a Slack or Discord webhook, a Telegram bot, a Teams connector).
fn secret_path_start(host: &str, path: &str) -> Option<usize> {
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
fn is_source_position(key: &str, raw: &str) -> bool {
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
fn nested_description(keys: &KeyMatcher, value: &str) -> bool {
    value.split_once('=').is_some_and(|(key, rest)| {
        !key.is_empty()
            && !rest.is_empty()
            && key.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_')
            && keys.is_description(key)
    })
}

/// Whether `value` looks like the name or path of something (`prod/db`,
/// `kv/data/app`, `db.password`) rather than a secret.
fn names_something(value: &str) -> bool {
    value.contains('/')
        || (value.contains('.')
            && value.split('.').all(|part| {
                !part.is_empty() && part.bytes().all(|b| b.is_ascii_lowercase() || b == b'_')
            }))
}

/// Whether the match `start..end` of `hay` stands alone as a number: no digit, `+`
/// or word character glued to either end, and not followed by `:` or a decimal part
/// (a date and a time, `01-15-2024 10:30`, are not a telephone number).
fn stands_alone(hay: &str, start: usize, end: usize) -> bool {
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
fn words_of(text: &str) -> impl Iterator<Item = (usize, &str)> {
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
fn percent_decode_mapped(word: &str) -> Option<(String, Vec<usize>)> {
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
fn is_file_name(value: &str) -> bool {
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
fn is_mode_pair(a: &str, b: &str) -> bool {
    const MODES: &[&str] = &[
        "read", "write", "r", "w", "rw", "ro", "on", "off", "yes", "no", "true", "false",
        "enabled", "disabled", "allow", "deny", "n", "a", "none", "any",
    ];
    let known = |w: &str| MODES.iter().any(|m| m.eq_ignore_ascii_case(w));
    known(a) && known(b)
}

/// How many of the brackets `value` ends with (`)`, `]`) it did not open itself.
fn unopened_closing_brackets(value: &str) -> usize {
    let trailing = value.len() - value.trim_end_matches([')', ']']).len();
    let opened = value.bytes().filter(|b| matches!(b, b'(' | b'[')).count();
    trailing.saturating_sub(opened)
}

/// Where the run of digit groups continued at `from` ends: digits, with single spaces or
/// dashes between them.
fn digit_run_end(bytes: &[u8], mut from: usize) -> usize {
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

/// The span (start, end) of the first payment card in `run` (digit groups with single
/// spaces or dashes between them): the whole run when it is one (any grouping), else
/// whole groups laid out as cards print them (one group of 13 to 19 digits, fours with
/// a shorter last group, or 4-6-5 and 4-6-4): a card written beside a year, an amount
/// or a CVV. Luhn-checked.
fn card_in_run(run: &str) -> Option<(usize, usize)> {
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
fn common_ends(a: &str, b: &str) -> (usize, usize) {
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

/// What to do with one regex match.
enum Rewrite {
    /// Not sensitive after all: leave it.
    Keep,
    /// Leave it, and look for the next match from this offset (inside the match): a
    /// `key: value` pair whose key is not sensitive may hold a sensitive pair in its value.
    KeepFrom(usize),
    /// Replace with the policy's replacement text.
    Mask,
    /// Replace with this (a partial mask).
    With(String),
    /// Replace the match up to this offset (inside the match) with this, and look for
    /// the next match from there: the rest of the match was not part of this one.
    WithUpTo(usize, String),
    /// Replace from the match's start up to this offset of the text (at or past the
    /// match's end: what the match began runs on) with this, and go on from there.
    Through(usize, String),
    /// Leave everything up to this offset of the text (at or past the match's end) and
    /// go on from there.
    SkipTo(usize),
}

pub(crate) struct Detectors {
    rules: u32,
    replacement: Box<str>,
    /// Known API key prefixes, case-sensitive like the keys themselves.
    api_prefixes: Option<PrefixIndex>,
    /// Sensitive key words as they appear in text (`api_key`, `api-key`, `apikey`), any case.
    keywords: AhoCorasick,
    pem_start: memchr::memmem::Finder<'static>,
    url_scheme: memchr::memmem::Finder<'static>,
    jwt_start: memchr::memmem::Finder<'static>,
    allowed_values: HashSet<Box<str>>,
    pem: Lazy,
    url: Lazy,
    jwt: Lazy,
    auth: Lazy,
    api_key: Option<Lazy>,
    inline: Lazy,
    /// `password is hunter2`, `with secret s3cr3t`: a secret after a key word in prose.
    prose: Lazy,
    /// The cheap test before `prose`: one of its key words occurs.
    prose_words: AhoCorasick,
    /// `<password>...</password>`: an element whose name is a sensitive key.
    markup: Lazy,
    /// `key="DbPassword" value="..."`, `"name": "DB_PASSWORD", "value": "..."`.
    name_value: Lazy,
    /// The same pair the other way round: `value="..." type="password"`.
    value_name: Lazy,
    /// `curl -u user:password`.
    cli_user: Lazy,
    /// `default credentials admin/Adm1n!`, `log in as root/toor`: a user and its
    /// password written as a pair.
    cred_pair: Lazy,
    email: Lazy,
    card: Lazy,
    ssn: Lazy,
    ipv4: Lazy,
    ipv6: Lazy,
    phone_international: Lazy,
    phone_nanp: Lazy,
    phone_national: Lazy,
    custom: Option<(RegexSet, Vec<Regex>)>,
    /// Anchored forms used under a sensitive key, where a whole-value match keeps a partial mask.
    api_key_whole: Option<Lazy>,
    card_whole: Lazy,
}

fn compile(name: &str, pattern: &str) -> Result<Regex, PolicyError> {
    Regex::new(pattern).map_err(|e| PolicyError::Pattern {
        name: name.to_owned(),
        message: e.to_string(),
    })
}

/// A detector's automaton, compiled when a value first needs it. Most processes never
/// see most kinds of secret, and each automaton holds tens to hundreds of KiB for the
/// process's life: built eagerly, the detectors were most of a server's heap at start
/// (benches README, "Memory").
struct Lazy {
    pattern: String,
    regex: OnceLock<Regex>,
}

impl Lazy {
    /// A built-in pattern, compiled on first use (every one is compiled by the test
    /// `every_detector_compiles`).
    fn new(pattern: &str) -> Self {
        Self {
            pattern: pattern.to_owned(),
            regex: OnceLock::new(),
        }
    }

    /// A pattern made from the policy (API key prefixes): compiled now, so that a policy
    /// the regex engine refuses is an error when it is built, not later.
    fn compiled(name: &str, pattern: String) -> Result<Self, PolicyError> {
        let regex = compile(name, &pattern)?;
        Ok(Self {
            pattern,
            regex: OnceLock::from(regex),
        })
    }

    fn get(&self) -> &Regex {
        self.regex.get_or_init(|| {
            // Built-in patterns are constants, compiled in the tests; made from a policy,
            // the regex was compiled (and checked) when the policy was built.
            Regex::new(&self.pattern).expect("a detector's pattern compiles")
        })
    }
}

impl std::ops::Deref for Lazy {
    type Target = Regex;

    fn deref(&self) -> &Regex {
        self.get()
    }
}

/// Text forms of a key word as it may appear in free text (`api_key`, `api-key`, `apikey`).
fn text_variants(word: &str) -> Vec<String> {
    let lower = word.to_ascii_lowercase();
    if lower.contains(['_', '-', '.']) {
        let parts: Vec<&str> = lower.split(['_', '-', '.']).collect();
        vec![
            parts.join("_"),
            parts.join("-"),
            parts.concat(),
            parts.join("."),
        ]
    } else {
        vec![lower]
    }
}

impl Detectors {
    pub(crate) fn new(policy: &RedactionPolicy, key_words: &[&str]) -> Result<Self, PolicyError> {
        if policy.replacement.is_empty() {
            return Err(PolicyError::Empty("replacement"));
        }
        let rules = policy.enabled_rules();
        let mut prefixes: Vec<String> = Vec::new();
        if policy.default_api_key_prefixes {
            prefixes.extend(
                super::policy::DEFAULT_API_KEY_PREFIXES
                    .iter()
                    .map(|p| (*p).to_owned()),
            );
        }
        for p in &policy.api_key_prefixes {
            if p.is_empty() {
                return Err(PolicyError::Empty("API key prefix"));
            }
            prefixes.push(p.clone());
        }

        let api_prefixes = if prefixes.is_empty() {
            None
        } else {
            Some(
                PrefixIndex::new(&prefixes).map_err(|e| PolicyError::Pattern {
                    name: "api key prefixes".into(),
                    message: e.to_string(),
                })?,
            )
        };
        let keyword_variants: Vec<String> =
            key_words.iter().flat_map(|w| text_variants(w)).collect();
        let keywords = AhoCorasickBuilder::new()
            .ascii_case_insensitive(true)
            .match_kind(MatchKind::LeftmostFirst)
            .build(&keyword_variants)
            .map_err(|e| PolicyError::Pattern {
                name: "sensitive key words".into(),
                message: e.to_string(),
            })?;

        let (api_key, api_key_whole) = if prefixes.is_empty() {
            (None, None)
        } else {
            let alternation = prefixes
                .iter()
                .map(|p| regex::escape(p))
                .collect::<Vec<_>>()
                .join("|");
            let anywhere = format!(
                r"(^|[^A-Za-z0-9])({alternation})([A-Za-z0-9_\-]{{8,}}(?:\.[A-Za-z0-9_\-]+)*)"
            );
            let whole =
                format!(r"^\s*({alternation})([A-Za-z0-9_\-]{{8,}}(?:\.[A-Za-z0-9_\-]+)*)\s*$");
            if policy.api_key_prefixes.is_empty() {
                (Some(Lazy::new(&anywhere)), Some(Lazy::new(&whole)))
            } else {
                (
                    Some(Lazy::compiled("api key", anywhere)?),
                    Some(Lazy::compiled("api key", whole)?),
                )
            }
        };

        let custom = if policy.patterns.is_empty() {
            None
        } else {
            let mut regexes = Vec::new();
            for p in &policy.patterns {
                regexes.push(compile(&p.name, &p.regex)?);
            }
            let set = RegexSet::new(policy.patterns.iter().map(|p| &p.regex)).map_err(|e| {
                PolicyError::Pattern {
                    name: "custom patterns".into(),
                    message: e.to_string(),
                }
            })?;
            Some((set, regexes))
        };

        Ok(Self {
            rules,
            replacement: policy.replacement.clone().into_boxed_str(),
            api_prefixes,
            keywords,
            pem_start: memchr::memmem::Finder::new(b"-----BEGIN").into_owned(),
            url_scheme: memchr::memmem::Finder::new(b"://").into_owned(),
            jwt_start: memchr::memmem::Finder::new(b"eyJ").into_owned(),
            allowed_values: policy
                .allowed_values
                .iter()
                .map(|v| v.clone().into_boxed_str())
                .collect(),
            pem: Lazy::new(
                r"-----BEGIN [A-Z0-9 ]*PRIVATE KEY(?: BLOCK)?-----(?s:.*?)(?:-----END [A-Z0-9 ]*PRIVATE KEY(?: BLOCK)?-----|\z)",
            ),
            url: Lazy::new(r#"(?i)\b[a-z][a-z0-9+.\-]{1,15}://[^\s"'<>\\`]+"#),
            jwt: Lazy::new(r"\beyJ[A-Za-z0-9_\-]{2,}\.[A-Za-z0-9_\-]{2,}\.[A-Za-z0-9_\-]*"),
            auth: Lazy::new(r"(?i)\b(bearer|basic)(\s+)([A-Za-z0-9._~+/=\-]{8,})"),
            api_key,
            // key, its closing quote, the separator (`=`, `:`, `=>`, `:=`), then the
            // value: a YAML block, a quoted string, a credential with its scheme, a
            // template (`${X}`, `{{ x }}`), or a bare word (an `&` inside it is part
            // of it unless a `key=` follows, as in a query string).
            inline: Lazy::new(
                r#"([A-Za-z0-9_.\-]+)(["']?)([ \t]*(?:=>|:=|[:=])[ \t]*)([|>][+\-]?[ \t]*\r?\n(?:[ \t]+[^\n]*(?:\n|$))+|"(?:[^"\\]|\\.)*"|'[^']*'|(?i:bearer|basic|token|digest|negotiate|ntlm|apikey|api-key|sso-key|dpop|mac|hmac|aws4-hmac-sha256)[ \t]+[^\s,;&"'}]+|\$\{[^}\s]*\}|\{\{[^}]*\}\}|\{[^{}\s]*\}|[^\s,;&"'}]+(?:&[^\s,;&"'}=]+)*)"#,
            ),
            prose: Lazy::new(
                r#"(?i)\b(passwords?|passwd|passphrase|passcode|pwd|secret|token|api[ _\-]?key|access[ _\-]?key|secret[ _\-]?key|private[ _\-]?key|client[ _\-]?secret|credentials?|pin|otp|one[ \-]time (?:code|password|pin)|verification code|identified by|signature|auth(?:[ _\-]?token)?)\b((?:[ \t]+(?:is|was|were|are|be|being|set|reset|changed|updated|to|of|as|equals|now|value|code|number|no\.?|for[ \t]+[^\s"'`]+|[:=\#]))*[ \t]+)(["'`]?)([^\s"'`]+)(["'`]?)"#,
            ),
            // A DFA: a few instructions a byte, where the default NFA without a
            // prefilter (case-insensitive words) cost several times more on
            // `redact/clean_64b`.
            prose_words: AhoCorasickBuilder::new()
                .ascii_case_insensitive(true)
                .kind(Some(aho_corasick::AhoCorasickKind::DFA))
                .build([
                    "pass",
                    "pwd",
                    "secret",
                    "token",
                    "key",
                    "credential",
                    "pin",
                    "otp",
                    "code",
                    "identified",
                    "signature",
                    "auth",
                    "cred",
                    "login",
                    "log in",
                ])
                .map_err(|e| PolicyError::Pattern {
                    name: "secret in prose".into(),
                    message: e.to_string(),
                })?,
            // No counted repetition of a multi-byte class here (`[^<]{1,4096}` was
            // one): the regex crate unrolls it into an NFA of megabytes, held for the
            // process's life. An unbounded repetition is a handful of states and
            // matches the same elements (and longer ones, masked all the same).
            markup: Lazy::new(
                r#"<(?:[A-Za-z_][\w.\-]*:)?([A-Za-z_][\w.\-]*)(?:\s[^<>]*)?>([^<]+)</(?:[A-Za-z_][\w.\-]*:)?([A-Za-z_][\w.\-]*)\s*>"#,
            ),
            // `key="DbPassword" value="..."`, `<input type="password" id="pw" value="...">`:
            // an attribute naming a credential, then (past other attributes of the same
            // element or object) the one holding it; and the other way round.
            name_value: Lazy::new(concat!(
                r#"(?i)["']?\b(?:name|key|type|id|field|property)["']?[ \t]*[:=][ \t]*["']([^"'\n]+)["']"#,
                r#"(?:[ \t]*,?[ \t]*["']?[\w:.\-]+["']?[ \t]*[:=][ \t]*(?:"[^"\n]*"|'[^'\n]*'))*?"#,
                r#"[ \t]*,?[ \t]*["']?(?:value|content)["']?[ \t]*[:=][ \t]*(?:"((?:[^"\\]|\\.)*)"|'([^']*)')"#,
            )),
            value_name: Lazy::new(concat!(
                r#"(?i)["']?\b(?:value|content)["']?[ \t]*[:=][ \t]*(?:"((?:[^"\\]|\\.)*)"|'([^']*)')"#,
                r#"(?:[ \t]*,?[ \t]*["']?[\w:.\-]+["']?[ \t]*[:=][ \t]*(?:"[^"\n]*"|'[^'\n]*'))*?"#,
                r#"[ \t]*,?[ \t]*["']?\b(?:name|key|type|id|field|property)["']?[ \t]*[:=][ \t]*["']([^"'\n]+)["']"#,
            )),
            cred_pair: Lazy::new(concat!(
                r"(?i)\b(credentials?|creds|logins?|log(?:ged)?[ \t]+in[ \t]+(?:as|with)",
                r"|sign(?:ed)?[ \t]+in[ \t]+(?:as|with)|user(?:name)?[ \t]*/[ \t]*pass(?:word)?|auth)\b",
                r"[ \t]*(?:[:=]|is|are|was|were|of|with|as)?[ \t]*(?:[:=][ \t]*)?",
                r"([A-Za-z0-9._@+\-]{1,64})[ \t]*/[ \t]*([^\s/]+)",
            )),
            // `curl -u user:password`; `docker login -u user -p password`,
            // `mysql -u root -psecret`.
            cli_user: Lazy::new(
                r"(?:^|\s)(?:-u|--user)[ =](?:([^\s:@]+):([^\s@]+)|[^\s:@]+\s+-p[ =]?([^\s-][^\s]*))",
            ),
            email: Lazy::new(
                r"[A-Za-z0-9._%+\-]+@[A-Za-z0-9](?:[A-Za-z0-9\-]*[A-Za-z0-9])?(?:\.[A-Za-z0-9](?:[A-Za-z0-9\-]*[A-Za-z0-9])?)*\.[A-Za-z]{2,}",
            ),
            card: Lazy::new(r"[0-9](?:[ \-]?[0-9]){12,18}"),
            ssn: Lazy::new(r"\b([0-9]{3})-([0-9]{2})-([0-9]{4})\b"),
            ipv4: Lazy::new(r"\b(?:[0-9]{1,3}\.){3}[0-9]{1,3}\b"),
            ipv6: Lazy::new(r"[0-9A-Fa-f]{0,4}(?::[0-9A-Fa-f]{0,4}){2,7}(?:%[0-9A-Za-z]+)?"),
            phone_international: Lazy::new(r"\+[1-9][0-9]{0,2}(?:[ .\-]?\(?[0-9]{1,5}\)?){1,7}"),
            phone_nanp: Lazy::new(
                r"(?:\b1[ .\-]?)?(?:\([2-9][0-9]{2}\)[ ]?|\b[2-9][0-9]{2}[ .\-])[2-9][0-9]{2}[ .\-][0-9]{4}\b",
            ),
            phone_national: Lazy::new(r"\b0[1-9][0-9]{0,4}(?:[ \-][0-9]{2,8}){1,4}\b"),
            custom,
            api_key_whole,
            card_whole: Lazy::new(r"^\s*[0-9](?:[ \-]?[0-9]){12,18}\s*$"),
        })
    }

    pub(crate) fn replacement(&self) -> &str {
        &self.replacement
    }

    pub(crate) fn on(&self, rule: Rule) -> bool {
        self.rules & (1 << rule as u32) != 0
    }

    pub(crate) fn is_allowed_value(&self, value: &str) -> bool {
        !self.allowed_values.is_empty() && self.allowed_values.contains(value)
    }

    /// Whether `value`, held under a key of `class`, stays as it is: it reveals nothing
    /// (empty, a boolean, a placeholder, a mask), is allowed, or is a number under a
    /// plural key (`input_tokens=1532` counts tokens).
    pub(crate) fn keeps_under_key(&self, class: KeyClass, value: &str) -> bool {
        self.is_allowed_value(value)
            || self.already_masked(value)
            || reveals_nothing(value)
            || (class == KeyClass::Plural && is_number(value))
    }

    /// The first pass: which detectors could fire on `text`.
    fn triggers(&self, text: &str) -> u32 {
        let bytes = text.as_bytes();
        let ByteStats {
            class,
            digits,
            dashes,
        } = byte_stats(bytes);
        let has = |c: u16| class & c != 0;
        let mut t = 0;
        if has(C_AT) {
            t |= T_EMAIL;
        }
        // Cards and SSNs are runs of digits (single spaces or dashes between them):
        // nine digits scattered through an id (`task-5f0c2a9e8d1b4c37`) are neither,
        // and used to send every such id through both regexes.
        if digits >= MIN_SENSITIVE_DIGITS && longest_digit_run(bytes) >= MIN_SENSITIVE_DIGITS {
            t |= T_DIGITS;
        }
        if digits >= 2 && has(C_DOT | C_COLON) {
            t |= T_IP;
        }
        if dashes >= PEM_DASHES && self.pem_start.find(bytes).is_some() {
            t |= T_PEM;
        }
        if has(C_COLON) && self.url_scheme.find(bytes).is_some() {
            t |= T_URL;
        }
        if has(C_DOT) && self.jwt_start.find(bytes).is_some() {
            t |= T_JWT;
        }
        if has(C_SPACE) && has(C_B) && has_auth_word(bytes) {
            t |= T_AUTH;
        }
        let separators = has(C_DASH | C_UNDERSCORE | C_DOT);
        if self
            .api_prefixes
            .as_ref()
            .is_some_and(|ix| ix.is_match(bytes, separators))
        {
            t |= T_API_KEY;
        }
        if has(C_SEP) && self.keywords.is_match(bytes) {
            t |= T_KEYWORD;
        }
        // A secret after a key word in prose has a symbol or mixes letters and digits
        // (or is a PIN's digits): without one, the key words are not even looked for.
        let secretish = has(C_SPACE)
            && (has(C_SEP | C_PERCENT | C_LT | C_PLUS | C_AT)
                || (digits >= 4 && longest_digit_run(bytes) >= 4)
                || has_secret_shape(bytes));
        if secretish && has(C_SPACE) && self.prose_words.is_match(bytes) {
            t |= T_PROSE;
        }
        if has(C_LT) && has_closing_tag(bytes) {
            t |= T_MARKUP;
        }
        if has(C_PERCENT) && has_percent_escape(bytes) {
            t |= T_PERCENT;
        }
        if digits >= MIN_PHONE_DIGITS {
            let run = longest_phone_run(bytes);
            if run >= MIN_NATIONAL_PHONE_DIGITS || (run >= MIN_PHONE_DIGITS && has(C_PLUS)) {
                t |= T_PHONE;
            }
        }
        if secretish && has(C_DASH) && has(C_SPACE) && has_user_flag(bytes) {
            t |= T_CLI;
        }
        t
    }

    /// Masks every sensitive value found in free text.
    ///
    /// `keys` decides inline `key=value` pairs and URL parameters.
    pub(crate) fn scan<'a>(
        &self,
        text: &'a str,
        keys: &KeyMatcher,
        summary: &mut RedactionSummary,
    ) -> Cow<'a, str> {
        self.scan_decoding(text, keys, summary, 2)
    }

    /// [`Detectors::scan`], looking into percent-encoded words up to `decode` levels
    /// deep (`%253A` is encoded twice).
    fn scan_decoding<'a>(
        &self,
        text: &'a str,
        keys: &KeyMatcher,
        summary: &mut RedactionSummary,
        decode: u8,
    ) -> Cow<'a, str> {
        // Nothing built in matches fewer than six bytes; a custom pattern may.
        if (text.len() < MIN_SCAN_LEN && self.custom.is_none()) || self.is_allowed_value(text) {
            return Cow::Borrowed(text);
        }
        let t = self.triggers(text);
        let mut out = Cow::Borrowed(text);
        if t & T_PEM != 0 && self.on(Rule::PrivateKey) {
            out = self.replace(
                out,
                &self.pem,
                Some(Rule::PrivateKey),
                summary,
                |_, _, _| Rewrite::Mask,
            );
        }
        if t & T_URL != 0 && (self.on(Rule::UrlCredentials) || self.on(Rule::SensitiveQuery)) {
            // `sanitize_url` counts what it masks itself.
            out = self.replace(out, &self.url, None, summary, |caps, _, s| {
                self.sanitize_url(&caps[0], keys, s)
                    .map_or(Rewrite::Keep, Rewrite::With)
            });
        }
        if t & T_JWT != 0 && self.on(Rule::Jwt) {
            out = self.replace(out, &self.jwt, Some(Rule::Jwt), summary, |_, _, _| {
                Rewrite::Mask
            });
        }
        if t & T_AUTH != 0 && self.on(Rule::AuthCredential) {
            out = self.replace(
                out,
                &self.auth,
                Some(Rule::AuthCredential),
                summary,
                |caps, _, _| {
                    let token = &caps[3];
                    // Plain words after "basic"/"bearer" in prose are not credentials.
                    let looks_like_token = token.bytes().any(|b| {
                        b.is_ascii_digit() || b.is_ascii_uppercase() || b"._~+/=-".contains(&b)
                    });
                    // `bearer expires_in=3600`: a pair, not a token (base64 pads only
                    // at the end).
                    let pair = token.trim_end_matches('=').contains('=');
                    if pair {
                        return Rewrite::Keep;
                    }
                    if !looks_like_token || self.already_masked(token) {
                        return Rewrite::Keep;
                    }
                    Rewrite::With(format!("{}{}{}", &caps[1], &caps[2], self.replacement))
                },
            );
        }
        if t & T_API_KEY != 0 && self.on(Rule::ApiKey) {
            if let Some(re) = &self.api_key {
                out = self.replace(out, re, Some(Rule::ApiKey), summary, |caps, _, _| {
                    Rewrite::With(format!("{}{}{}", &caps[1], &caps[2], self.replacement))
                });
            }
        }
        if t & T_KEYWORD != 0 && self.on(Rule::InlineSecret) {
            out = self.replace(
                out,
                &self.name_value,
                Some(Rule::InlineSecret),
                summary,
                |caps, _, _| {
                    let value = caps.get(2).or_else(|| caps.get(3));
                    self.mask_named_value(keys, caps, &caps[1], value)
                },
            );
            out = self.replace(
                out,
                &self.value_name,
                Some(Rule::InlineSecret),
                summary,
                |caps, _, _| {
                    let value = caps.get(1).or_else(|| caps.get(2));
                    self.mask_named_value(keys, caps, &caps[3], value)
                },
            );
            out = self.replace(
                out,
                &self.inline,
                Some(Rule::InlineSecret),
                summary,
                |caps, hay, _| {
                    let raw = &caps[4];
                    let value_start = caps.get(4).map_or(0, |v| v.start());
                    let separator = caps[3].trim();
                    let key_start = caps.get(1).map_or(0, |k| k.start());
                    // `auth::token::verify`, `src/auth/token_store.rs:142`: a path, not
                    // a pair. `/reset/token=...` in a URL path is a pair all the same.
                    let before = &hay[..key_start];
                    let path = (separator == ":" && raw.starts_with(':'))
                        || before.ends_with("::")
                        || (separator != "=" && before.ends_with(['/', '\\']))
                        || (separator == ":" && is_source_position(&caps[1], raw));
                    let class = keys.classify(&caps[1]);
                    if path || !class.is_sensitive() {
                        // `host: password=x`: the value may hold a pair of its own.
                        return Rewrite::KeepFrom(value_start);
                    }
                    // `a=x&b=2`: an `&` segment followed by `=` is the next key.
                    let next_pair = next_pair_in(hay, value_start, raw);
                    let raw = next_pair.map_or(raw, |end| &raw[..end - value_start]);
                    // `(password=hunter2)`: brackets the value did not open close the
                    // sentence around it; they stay outside the mask.
                    let closing = unopened_closing_brackets(raw);
                    let (raw, closing) = raw.split_at(raw.len() - closing);
                    let value = raw.trim_matches(['"', '\'']);
                    // Masked already by an earlier rule (a URL's query value): what follows
                    // the mask (`#section-2`) is not the secret's.
                    if value.starts_with(&*self.replacement) {
                        return Rewrite::Keep;
                    }
                    // `(using password: YES)`: the bracket closes the sentence.
                    let unbracketed = value.trim_end_matches([')', ']', '.']);
                    if self.keeps_under_key(class, value)
                        || (unbracketed.len() < value.len()
                            && self.keeps_under_key(class, unbracketed))
                    {
                        return Rewrite::Keep;
                    }
                    // `auth: method=oidc`: the value is a pair that describes the secret.
                    if raw == value && nested_description(keys, value) {
                        return Rewrite::KeepFrom(value_start);
                    }
                    let quote = match raw.as_bytes()[0] {
                        b'"' => "\"",
                        b'\'' => "'",
                        _ => "",
                    };
                    let masked = format!(
                        "{}{}{}{quote}{}{quote}{closing}",
                        &caps[1], &caps[2], &caps[3], self.replacement
                    );
                    match next_pair {
                        Some(end) => Rewrite::WithUpTo(end, masked),
                        None => Rewrite::With(masked),
                    }
                },
            );
        }
        // Before the prose rule: the user's name is kept, the password alone masked.
        if t & T_PROSE != 0 && self.on(Rule::InlineSecret) && out.contains('/') {
            out = self.replace(
                out,
                &self.cred_pair,
                Some(Rule::InlineSecret),
                summary,
                |caps, hay, _| {
                    let m = caps.get(0).expect("group 0 always participates");
                    let Some(secret) = caps.get(3) else {
                        return Rewrite::Keep;
                    };
                    let value = secret
                        .as_str()
                        .trim_end_matches(['.', ',', ';', ':', ')', ']', '"', '\'']);
                    // A path goes on (`credentials in config/prod/db.yaml`); a file
                    // name is no password (`creds in secrets/db.yaml`).
                    let path = hay[secret.end()..].starts_with('/') || is_file_name(value);
                    if path
                        || value.is_empty()
                        || self.keeps(value)
                        || is_mode_pair(&caps[2], value)
                    {
                        return Rewrite::Keep;
                    }
                    let cut = secret.start() - m.start();
                    Rewrite::With(format!(
                        "{}{}{}",
                        &m.as_str()[..cut],
                        self.replacement,
                        &secret.as_str()[value.len()..]
                    ))
                },
            );
        }
        if t & T_PROSE != 0 && self.on(Rule::InlineSecret) {
            out = self.replace(
                out,
                &self.prose,
                Some(Rule::InlineSecret),
                summary,
                |caps, _, _| {
                    let (open, close) = (&caps[3], &caps[5]);
                    let word = &caps[4];
                    // Sentence punctuation after a bare word is not part of it.
                    let kept_tail = if open.is_empty() {
                        word.len()
                            - word
                                .trim_end_matches(['.', ',', ';', ':', ')', ']', '}', '>'])
                                .len()
                    } else {
                        0
                    };
                    let value = &word[..word.len() - kept_tail];
                    let connected = !caps[2].trim().is_empty();
                    let secret = if word.contains(&*self.replacement) {
                        false
                    } else if !open.is_empty() && open == close {
                        // Quoted: the secret itself, unless it names one (`Secret
                        // 'prod/db' rotated`) without `is` / `:` before it.
                        !self.keeps(value) && (connected || !names_something(value))
                    } else {
                        looks_like_secret(&caps[1], value)
                    };
                    if !secret {
                        return Rewrite::Keep;
                    }
                    Rewrite::With(format!(
                        "{}{}{open}{}{}{close}",
                        &caps[1],
                        &caps[2],
                        self.replacement,
                        &word[value.len()..]
                    ))
                },
            );
        }
        if t & T_CLI != 0 && self.on(Rule::InlineSecret) {
            out = self.replace(
                out,
                &self.cli_user,
                Some(Rule::InlineSecret),
                summary,
                |caps, _, _| {
                    let m = caps.get(0).expect("group 0 always participates");
                    let Some(password) = caps.get(2).or_else(|| caps.get(3)) else {
                        return Rewrite::Keep;
                    };
                    if self.keeps(password.as_str()) {
                        return Rewrite::Keep;
                    }
                    let cut = password.start() - m.start();
                    Rewrite::With(format!("{}{}", &m.as_str()[..cut], self.replacement))
                },
            );
        }
        if t & T_MARKUP != 0 && self.on(Rule::InlineSecret) {
            out = self.replace(
                out,
                &self.markup,
                Some(Rule::InlineSecret),
                summary,
                |caps, _, _| {
                    let content = caps.get(2).expect("the pattern has content");
                    let class = keys.classify(&caps[1]);
                    if caps[1] != caps[3]
                        || !class.is_sensitive()
                        || self.keeps_under_key(class, content.as_str().trim())
                    {
                        // Not a secret element: what is inside may still hold one.
                        return Rewrite::KeepFrom(content.start());
                    }
                    let m = caps.get(0).expect("group 0 always participates");
                    let whole = m.as_str();
                    let (start, end) = (content.start() - m.start(), content.end() - m.start());
                    Rewrite::With(format!(
                        "{}{}{}",
                        &whole[..start],
                        self.replacement,
                        &whole[end..]
                    ))
                },
            );
        }
        if t & T_EMAIL != 0 && self.on(Rule::Email) {
            out = self.replace(
                out,
                &self.email,
                Some(Rule::Email),
                summary,
                |caps, hay, _| {
                    let m = caps.get(0).expect("group 0 always participates");
                    // `git@github.com:org/repo.git` is an address of a repository.
                    let scp = m.as_str().starts_with("git@")
                        && hay[m.end()..].starts_with(':')
                        && (m.start() == 0
                            || !hay.as_bytes()[m.start() - 1].is_ascii_alphanumeric());
                    if scp {
                        Rewrite::Keep
                    } else {
                        Rewrite::Mask
                    }
                },
            );
        }
        if t & T_DIGITS != 0 && self.on(Rule::PaymentCard) {
            out = self.replace(
                out,
                &self.card,
                Some(Rule::PaymentCard),
                summary,
                |caps, hay, _| {
                    let m = caps.get(0).expect("group 0 always participates");
                    let bytes = hay.as_bytes();
                    // Part of a longer number is not a card.
                    if m.start() > 0 && bytes[m.start() - 1].is_ascii_digit() {
                        return Rewrite::Keep;
                    }
                    // The whole run of digit groups the match starts (the pattern stops
                    // at 19 digits; a card may sit after a year, before a CVV).
                    let end = digit_run_end(bytes, m.end());
                    match card_in_run(&hay[m.start()..end]) {
                        Some((from, to)) => {
                            let (from, to) = (m.start() + from, m.start() + to);
                            let kept = &hay[m.start()..from];
                            Rewrite::Through(to, format!("{kept}{}", mask_card(&hay[from..to])))
                        }
                        // No card anywhere in the run: none of it is scanned again.
                        None => Rewrite::SkipTo(end),
                    }
                },
            );
        }
        if t & T_DIGITS != 0 && self.on(Rule::Ssn) {
            out = self.replace(out, &self.ssn, Some(Rule::Ssn), summary, |caps, _, _| {
                let valid = !matches!(&caps[1], "000" | "666")
                    && !caps[1].starts_with('9')
                    && &caps[2] != "00"
                    && &caps[3] != "0000";
                if valid {
                    Rewrite::Mask
                } else {
                    Rewrite::Keep
                }
            });
        }
        // Cards and SSNs masked above may have taken the digits a number needed.
        let phone_still = t & T_PHONE != 0
            && (matches!(out, Cow::Borrowed(_))
                || longest_phone_run(out.as_bytes()) >= MIN_PHONE_DIGITS);
        if phone_still && self.on(Rule::Phone) {
            for (re, digits) in [
                (&self.phone_international, MIN_PHONE_DIGITS..=15),
                (&self.phone_nanp, 10..=11),
                (&self.phone_national, MIN_NATIONAL_PHONE_DIGITS..=11),
            ] {
                out = self.replace(out, re, Some(Rule::Phone), summary, |caps, hay, _| {
                    let m = caps.get(0).expect("group 0 always participates");
                    let count = m.as_str().bytes().filter(u8::is_ascii_digit).count();
                    if digits.contains(&count) && stands_alone(hay, m.start(), m.end()) {
                        Rewrite::Mask
                    } else {
                        Rewrite::Keep
                    }
                });
            }
        }
        if t & T_IP != 0 && self.on(Rule::Ip) {
            out = self.replace(out, &self.ipv4, Some(Rule::Ip), summary, |caps, _, _| {
                if caps[0].parse::<Ipv4Addr>().is_ok() {
                    Rewrite::Mask
                } else {
                    Rewrite::Keep
                }
            });
            out = self.replace(out, &self.ipv6, Some(Rule::Ip), summary, |caps, _, _| {
                let candidate = caps[0].split('%').next().unwrap_or_default();
                if candidate.parse::<Ipv6Addr>().is_ok() {
                    Rewrite::Mask
                } else {
                    Rewrite::Keep
                }
            });
        }
        if t & T_PERCENT != 0 && decode > 0 {
            out = self.scan_percent_encoded(out, keys, summary, decode - 1);
        }
        if let Some((set, regexes)) = &self.custom {
            if self.on(Rule::Custom) {
                let hits: Vec<usize> = set.matches(&out).iter().collect();
                for i in hits {
                    out = self.replace(out, &regexes[i], Some(Rule::Custom), summary, |_, _, _| {
                        Rewrite::Mask
                    });
                }
            }
        }
        out
    }

    /// Whether `value` reveals nothing, is allowed or is masked already.
    fn keeps(&self, value: &str) -> bool {
        self.is_allowed_value(value) || self.already_masked(value) || reveals_nothing(value)
    }

    /// Words of `text` (between whitespace and quotes) that are percent-encoded are
    /// decoded and scanned: `Authorization%3A%20Bearer%20<token>` in a log line is a
    /// credential. What the scan changes replaces the encoded bytes it came from; the
    /// rest of the word stays as it was.
    fn scan_percent_encoded<'a>(
        &self,
        text: Cow<'a, str>,
        keys: &KeyMatcher,
        summary: &mut RedactionSummary,
        decode: u8,
    ) -> Cow<'a, str> {
        let mut out: Option<String> = None;
        let mut last = 0;
        for (word_start, word) in words_of(&text) {
            if !has_percent_escape(word.as_bytes()) {
                continue;
            }
            let Some((decoded, map)) = percent_decode_mapped(word) else {
                continue;
            };
            let mut inner = RedactionSummary::default();
            let scanned = self.scan_decoding(&decoded, keys, &mut inner, decode);
            let Cow::Owned(clean) = scanned else {
                continue;
            };
            summary.merge(&inner);
            let (prefix, suffix) = common_ends(&decoded, &clean);
            let buf = out.get_or_insert_with(|| String::with_capacity(text.len()));
            buf.push_str(&text[last..word_start]);
            buf.push_str(&word[..map[prefix]]);
            buf.push_str(&clean[prefix..clean.len() - suffix]);
            buf.push_str(&word[map[decoded.len() - suffix]..]);
            last = word_start + word.len();
        }
        match out {
            None => text,
            Some(mut buf) => {
                buf.push_str(&text[last..]);
                Cow::Owned(buf)
            }
        }
    }

    /// Whether `value` was already masked by an earlier rule.
    /// A name-and-value match: the value masked in place when the name is a sensitive
    /// key and the value reveals something.
    fn mask_named_value(
        &self,
        keys: &KeyMatcher,
        caps: &Captures<'_>,
        name: &str,
        value: Option<regex::Match<'_>>,
    ) -> Rewrite {
        match value {
            Some(v) if keys.is_sensitive(name) && !self.keeps(v.as_str()) => {
                let m = caps.get(0).expect("group 0 always participates");
                let (start, end) = (v.start() - m.start(), v.end() - m.start());
                let whole = m.as_str();
                Rewrite::With(format!(
                    "{}{}{}",
                    &whole[..start],
                    self.replacement,
                    &whole[end..]
                ))
            }
            _ => Rewrite::Keep,
        }
    }

    fn already_masked(&self, value: &str) -> bool {
        value.ends_with(&*self.replacement)
    }

    /// Rewrites the matches of `re` in `text` as `rewrite` decides, counting one mask
    /// of `rule` per rewritten match. Stays borrowed when nothing changes.
    fn replace<'a>(
        &self,
        text: Cow<'a, str>,
        re: &Regex,
        rule: Option<Rule>,
        summary: &mut RedactionSummary,
        mut rewrite: impl FnMut(&Captures<'_>, &str, &mut RedactionSummary) -> Rewrite,
    ) -> Cow<'a, str> {
        let mut out: Option<String> = None;
        let mut last = 0;
        let mut pos = 0;
        while let Some(caps) = re.captures_at(&text, pos) {
            let m = caps.get(0).expect("group 0 always participates");
            // Resume after this match by default; never loop on an empty one.
            pos = if m.is_empty() {
                next_char_boundary(&text, m.end())
            } else {
                m.end()
            };
            if m.is_empty() || self.is_allowed_value(m.as_str()) {
                if pos > text.len() {
                    break;
                }
                continue;
            }
            let mut end = m.end();
            let replacement: Cow<'_, str> = match rewrite(&caps, &text, summary) {
                Rewrite::Keep => continue,
                Rewrite::WithUpTo(up_to, partial) => {
                    end = up_to.clamp(m.start() + 1, m.end());
                    while !text.is_char_boundary(end) {
                        end += 1;
                    }
                    pos = end;
                    Cow::Owned(partial)
                }
                Rewrite::KeepFrom(resume) => {
                    pos = resume.clamp(m.start() + 1, m.end());
                    while !text.is_char_boundary(pos) {
                        pos += 1;
                    }
                    continue;
                }
                Rewrite::SkipTo(resume) => {
                    pos = resume.clamp(m.end(), text.len());
                    while !text.is_char_boundary(pos) {
                        pos += 1;
                    }
                    continue;
                }
                Rewrite::Through(through, partial) => {
                    end = through.clamp(m.start() + 1, text.len());
                    while !text.is_char_boundary(end) {
                        end += 1;
                    }
                    pos = end;
                    Cow::Owned(partial)
                }
                Rewrite::Mask => Cow::Borrowed(&self.replacement),
                Rewrite::With(partial) => Cow::Owned(partial),
            };
            let buf = out.get_or_insert_with(|| String::with_capacity(text.len()));
            buf.push_str(&text[last..m.start()]);
            buf.push_str(&replacement);
            last = end;
            if let Some(rule) = rule {
                summary.record(rule);
            }
        }
        match out {
            None => text,
            Some(mut buf) => {
                buf.push_str(&text[last..]);
                Cow::Owned(buf)
            }
        }
    }

    /// The masked form of a value held under a sensitive key: a partial mask when the
    /// whole value is one thing a value rule knows how to mask partially (an API key
    /// keeps its prefix, a card its last four digits, a credential its scheme), else the
    /// replacement.
    pub(crate) fn mask_whole(&self, value: &str) -> String {
        // Cheap tests guard each anchored regex: most secrets are none of these
        // (`redact/sensitive_key`).
        let bytes = value.as_bytes();
        let api_key = self.on(Rule::ApiKey)
            && self
                .api_prefixes
                .as_ref()
                .is_some_and(|ix| ix.is_match(bytes, true));
        if api_key {
            if let Some(caps) = self
                .api_key_whole
                .as_ref()
                .and_then(|re| re.captures(value))
            {
                return format!("{}{}", &caps[1], self.replacement);
            }
        }
        let digits = bytes.iter().filter(|b| b.is_ascii_digit()).count();
        if self.on(Rule::PaymentCard) && digits >= 13 && self.card_whole.is_match(value) {
            let digits: Vec<u8> = bytes.iter().copied().filter(u8::is_ascii_digit).collect();
            if is_card_number(&digits) {
                return mask_card(value.trim());
            }
        }
        // `Bearer x`, `Basic x`, ...: keep the scheme.
        if let Some((scheme, rest)) = value.trim_start().split_once([' ', '\t']) {
            let known = ["bearer", "basic", "digest", "token", "negotiate"]
                .iter()
                .any(|s| s.eq_ignore_ascii_case(scheme));
            if known && !rest.trim().is_empty() {
                return format!("{scheme} {}", self.replacement);
            }
        }
        self.replacement.to_string()
    }

    /// Masks credentials and sensitive parameters of one URL (absolute or relative).
    /// `None` when nothing changed.
    pub(crate) fn sanitize_url(
        &self,
        url: &str,
        keys: &KeyMatcher,
        summary: &mut RedactionSummary,
    ) -> Option<String> {
        let mut out = String::with_capacity(url.len());
        let mut changed = false;
        let mut host = "";
        let rest = match url.find("://") {
            Some(i) => {
                let after = i + 3;
                let auth_end = url[after..]
                    .find(['/', '?', '#'])
                    .map_or(url.len(), |j| after + j);
                let authority = &url[after..auth_end];
                out.push_str(&url[..after]);
                host = authority.rsplit('@').next().unwrap_or_default();
                host = host.split(':').next().unwrap_or_default();
                match authority.rfind('@') {
                    Some(at)
                        if self.on(Rule::UrlCredentials)
                            && &authority[..at] != self.replacement() =>
                    {
                        out.push_str(&self.replacement);
                        out.push_str(&authority[at..]);
                        summary.record(Rule::UrlCredentials);
                        changed = true;
                    }
                    _ => out.push_str(authority),
                }
                &url[auth_end..]
            }
            None => url,
        };
        let path_end = rest.find(['?', '#']).unwrap_or(rest.len());
        let rest = match secret_path_start(host, &rest[..path_end]) {
            Some(cut) if self.on(Rule::UrlCredentials) && !rest[cut..path_end].is_empty() => {
                out.push_str(&rest[..cut]);
                out.push_str(&self.replacement);
                summary.record(Rule::UrlCredentials);
                changed = true;
                &rest[path_end..]
            }
            _ => rest,
        };
        // Path, then `?query`, then `#fragment`; parameters in both can carry secrets
        // (OAuth implicit flow puts `access_token` in the fragment).
        let query_start = rest.find(['?', '#']).unwrap_or(rest.len());
        out.push_str(&rest[..query_start]);
        let mut tail = &rest[query_start..];
        while let Some(sep) = tail.chars().next() {
            out.push(sep);
            tail = &tail[1..];
            let end = if sep == '?' {
                tail.find('#').unwrap_or(tail.len())
            } else {
                tail.len()
            };
            let (params, next) = tail.split_at(end);
            changed |= self.sanitize_params(params, keys, summary, &mut out);
            tail = next;
        }
        changed.then_some(out)
    }

    fn sanitize_params(
        &self,
        params: &str,
        keys: &KeyMatcher,
        summary: &mut RedactionSummary,
        out: &mut String,
    ) -> bool {
        let mut changed = false;
        for (i, param) in params.split('&').enumerate() {
            if i > 0 {
                out.push('&');
            }
            let Some((name, value)) = param.split_once('=') else {
                out.push_str(param);
                continue;
            };
            let decoded_name = percent_decode(name, true);
            let sensitive = self.on(Rule::SensitiveQuery) && keys.is_sensitive(&decoded_name);
            let dirty = !sensitive && !value.is_empty() && {
                let decoded = percent_decode(value, true);
                let mut inner = RedactionSummary::default();
                let scanned = self.scan(&decoded, keys, &mut inner);
                let dirty = matches!(scanned, Cow::Owned(_));
                if dirty {
                    summary.merge(&inner);
                }
                dirty
            };
            if (sensitive && !value.is_empty() && value != self.replacement()) || dirty {
                out.push_str(name);
                out.push('=');
                // One policy for a value wherever it is: a card keeps its last four, an
                // API key its prefix (as under a sensitive key elsewhere).
                let decoded = percent_decode(value, true);
                let masked = if sensitive {
                    self.mask_whole(&decoded)
                } else {
                    self.scan(&decoded, keys, &mut RedactionSummary::default())
                        .into_owned()
                };
                push_query_value(out, &masked);
                if sensitive {
                    summary.record(Rule::SensitiveQuery);
                }
                changed = true;
            } else {
                out.push_str(param);
            }
        }
        changed
    }
}

/// `value` into a query string, the characters that would end or change it
/// percent-encoded (`&`, `#`, `%`, `+`, `=`, spaces and controls).
fn push_query_value(out: &mut String, value: &str) {
    for c in value.chars() {
        match c {
            '&' | '#' | '%' | '+' | '=' | ' ' => out.push_str(&format!("%{:02X}", c as u32)),
            c if c.is_control() => {
                let mut buf = [0u8; 4];
                for b in c.encode_utf8(&mut buf).bytes() {
                    out.push_str(&format!("%{b:02X}"));
                }
            }
            c => out.push(c),
        }
    }
}

impl std::fmt::Debug for Detectors {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Detectors")
            .field("rules", &format_args!("{:#x}", self.rules))
            .field("replacement", &self.replacement)
            .finish_non_exhaustive()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::redact::policy::DEFAULT_SENSITIVE_KEYS;
    use proptest::prelude::*;

    #[test]
    fn every_detector_compiles_and_none_before_it_is_needed() {
        let det = Detectors::new(&RedactionPolicy::default(), DEFAULT_SENSITIVE_KEYS)
            .expect("the default policy builds");
        let built_in = [
            &det.pem,
            &det.url,
            &det.jwt,
            &det.auth,
            &det.inline,
            &det.prose,
            &det.markup,
            &det.name_value,
            &det.value_name,
            &det.cred_pair,
            &det.cli_user,
            &det.email,
            &det.card,
            &det.ssn,
            &det.ipv4,
            &det.ipv6,
            &det.phone_international,
            &det.phone_nanp,
            &det.phone_national,
            &det.card_whole,
        ];
        let api = [&det.api_key, &det.api_key_whole].map(|re| re.as_ref().expect("defaults"));
        for lazy in built_in.iter().copied().chain(api) {
            assert!(
                lazy.regex.get().is_none(),
                "{} compiled early",
                lazy.pattern
            );
            assert!(Regex::new(&lazy.pattern).is_ok(), "{}", lazy.pattern);
            let _ = lazy.get();
        }
        // Prefixes from the policy are compiled (and checked) when it is built.
        let policy = RedactionPolicy::default().api_key_prefix("acme_");
        let det = Detectors::new(&policy, DEFAULT_SENSITIVE_KEYS).expect("builds");
        assert!(det
            .api_key
            .as_ref()
            .is_some_and(|re| re.regex.get().is_some()));
    }

    /// The triggers without the first pass: every literal search run on every value.
    fn unfiltered(det: &Detectors, text: &str) -> u32 {
        let bytes = text.as_bytes();
        let digits = bytes.iter().filter(|b| b.is_ascii_digit()).count();
        let phone_run = longest_phone_run(bytes);
        // A symbol, a quote, a letter next to a digit, or four digits in a row.
        let secretish = text
            .bytes()
            .any(|b| b"!\"#$%&'()*+/;<=>?@[\\]^`{|}~:".contains(&b))
            || bytes.windows(2).any(|p| {
                (p[0].is_ascii_digit() && p[1].is_ascii_alphabetic())
                    || (p[0].is_ascii_alphabetic() && p[1].is_ascii_digit())
            })
            || longest_digit_run(bytes) >= 4;
        let mut t = 0;
        let found = [
            (bytes.contains(&b'@'), T_EMAIL),
            (longest_digit_run(bytes) >= MIN_SENSITIVE_DIGITS, T_DIGITS),
            (digits >= 2 && (text.contains(['.', ':'])), T_IP),
            (det.pem_start.find(bytes).is_some(), T_PEM),
            (det.url_scheme.find(bytes).is_some(), T_URL),
            (det.jwt_start.find(bytes).is_some(), T_JWT),
            (has_auth_word(bytes), T_AUTH),
            (
                det.api_prefixes
                    .as_ref()
                    .is_some_and(|ix| ix.is_match(bytes, true)),
                T_API_KEY,
            ),
            (det.keywords.is_match(bytes), T_KEYWORD),
            (secretish && det.prose_words.is_match(bytes), T_PROSE),
            (text.contains("</"), T_MARKUP),
            (has_percent_escape(bytes), T_PERCENT),
            (
                phone_run >= MIN_NATIONAL_PHONE_DIGITS
                    || (phone_run >= MIN_PHONE_DIGITS && text.contains('+')),
                T_PHONE,
            ),
            (secretish && has_user_flag(bytes), T_CLI),
        ];
        for (hit, bit) in found {
            if hit {
                t |= bit;
            }
        }
        t
    }

    proptest! {
        #[test]
        fn byte_stats_counts_every_byte(bytes in prop::collection::vec(any::<u8>(), 0..200)) {
            // Each block, the padded last one included, against a byte-by-byte count.
            type Class = (u16, fn(u8) -> bool);
            let classes: [Class; 11] = [
                (C_AT, |b| b == b'@'),
                (C_SEP, |b| b == b'=' || b == b':'),
                (C_COLON, |b| b == b':'),
                (C_DOT, |b| b == b'.'),
                (C_DASH, |b| b == b'-'),
                (C_UNDERSCORE, |b| b == b'_'),
                (C_SPACE, |b| b <= b' ' || b >= 0x80),
                (C_B, |b| b == b'b' || b == b'B'),
                (C_PERCENT, |b| b == b'%'),
                (C_LT, |b| b == b'<'),
                (C_PLUS, |b| b == b'+'),
            ];
            let class = classes
                .iter()
                .filter(|(_, is)| bytes.iter().any(|&b| is(b)))
                .fold(0, |class, (c, _)| class | c);
            let shape = bytes.windows(2).any(|p| {
                (p[0].is_ascii_digit() && p[1].is_ascii_alphabetic())
                    || (p[0].is_ascii_alphabetic() && p[1].is_ascii_digit())
            }) || bytes.iter().any(|b| b"!\"#$%&'()*+/;<=>?@[\\]^`{|}~".contains(b));
            prop_assert_eq!(has_secret_shape(&bytes), shape);
            let stats = byte_stats(&bytes);
            prop_assert_eq!(stats.class, class);
            prop_assert_eq!(stats.digits, bytes.iter().filter(|b| b.is_ascii_digit()).count());
            prop_assert_eq!(stats.dashes, bytes.iter().filter(|&&b| b == b'-').count());
        }

        #[test]
        fn the_first_pass_skips_only_what_cannot_match(
            pieces in prop::collection::vec(prop::sample::select(vec![
                "-----BEGIN", "----", "-", "bearer ", "Basic ", "BEARER", "abc", "://", ":",
                "eyJ", ".", "sk_live_", "AKIA", "@", " ", "x", "b", "B", "password=", "=",
                "7", "1234", "é", "\t", "_", "%3A", "%", "</", "<", "+", "(415) ", "555-",
                "token ", "PIN ", "-u ", "a1", "'", "#", "9876",
            ]), 0..12),
        ) {
            static DET: std::sync::OnceLock<Detectors> = std::sync::OnceLock::new();
            let det = DET.get_or_init(|| {
                Detectors::new(&RedactionPolicy::default(), DEFAULT_SENSITIVE_KEYS)
                    .expect("default policy")
            });
            let text = pieces.concat();
            // What the detectors' patterns demand besides the literal: a keyword needs
            // `=` or `:` after it, a credential whitespace before its token, a JWT
            // the dots between its parts. Past
            // that, the first pass and the plain searches must agree exactly.
            let mut expected = unfiltered(det, &text);
            if !text.contains(['=', ':']) {
                expected &= !T_KEYWORD;
            }
            if !text.bytes().any(|b| b <= b' ' || b >= 0x80) {
                expected &= !T_AUTH;
            }
            if !text.contains('.') {
                expected &= !T_JWT;
            }
            // Prose needs whitespace; a command line's user flag too.
            if !text.bytes().any(|b| b <= b' ' || b >= 0x80) {
                expected &= !(T_PROSE | T_CLI);
            }
            // A markup element needs a `<` before its `</`: the same byte.
            // A telephone number needs its digits.
            if text.bytes().filter(u8::is_ascii_digit).count() < MIN_PHONE_DIGITS {
                expected &= !T_PHONE;
            }
            prop_assert_eq!(det.triggers(&text), expected, "{:?}", text);
        }
    }
}
