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

use aho_corasick::{AhoCorasick, AhoCorasickBuilder, MatchKind};
use regex::{Captures, Regex, RegexSet};

use super::keys::KeyMatcher;
use super::policy::{PolicyError, RedactionPolicy, Rule};
use super::prefix::PrefixIndex;
use super::summary::RedactionSummary;
use super::text::{is_card_number, mask_card, percent_decode};

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

// Byte classes for the first pass. Each detector needs at least one byte of some class
// (a URL needs ':', a JWT '.', a PEM block '-', `key=value` '=' or ':'), so most
// literal searches are skipped for most values.
const C_AT: u8 = 1;
const C_SEP: u8 = 2; // '=' or ':'
const C_COLON: u8 = 4;
const C_DOT: u8 = 8;
const C_DASH: u8 = 16;
const C_UNDERSCORE: u8 = 32;
/// ASCII whitespace or control, and any non-ASCII byte (it may be Unicode whitespace).
const C_SPACE: u8 = 64;
/// `b` or `B`, which `bearer` and `basic` start with.
const C_B: u8 = 128;

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
);

/// What the first pass counts in a value.
struct ByteStats {
    /// Which byte classes (`C_*`) occur.
    class: u8,
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

/// Bytes per block of the first pass.
const BLOCK: usize = 32;
/// What a partial block is padded with: a byte of no class, not a digit nor a dash.
const PAD: u8 = b'a';

impl ByteStats {
    fn add(&mut self, (class, digits, dashes): (u8, u8, u8)) {
        self.class |= class;
        self.digits += usize::from(digits);
        self.dashes += usize::from(dashes);
    }
}

/// [`byte_stats`] of one block: classes, digits, dashes.
fn block_stats(block: &[u8; BLOCK]) -> (u8, u8, u8) {
    let (mut class, mut digits, mut dashes) = (0u8, 0u8, 0u8);
    for &b in block {
        digits += u8::from(b.wrapping_sub(b'0') < 10);
        dashes += u8::from(b == b'-');
        class |= u8::from(b == b'@')
            | u8::from(b == b'=' || b == b':') << 1
            | u8::from(b == b':') << 2
            | u8::from(b == b'.') << 3
            | u8::from(b == b'-') << 4
            | u8::from(b == b'_') << 5
            | u8::from(b <= b' ' || b >= 0x80) << 6
            | u8::from(b | 0x20 == b'b') << 7;
    }
    (class, digits, dashes)
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
/// Dashes a PEM block starts with (`-----BEGIN`).
const PEM_DASHES: usize = 5;
/// Shortest value any detector can fire on (`a@b.io`).
const MIN_SCAN_LEN: usize = 6;

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
    pem: Regex,
    url: Regex,
    jwt: Regex,
    auth: Regex,
    api_key: Option<Regex>,
    inline: Regex,
    email: Regex,
    card: Regex,
    ssn: Regex,
    ipv4: Regex,
    ipv6: Regex,
    custom: Option<(RegexSet, Vec<Regex>)>,
    /// Anchored forms used under a sensitive key, where a whole-value match keeps a partial mask.
    api_key_whole: Option<Regex>,
    card_whole: Regex,
}

fn compile(name: &str, pattern: &str) -> Result<Regex, PolicyError> {
    Regex::new(pattern).map_err(|e| PolicyError::Pattern {
        name: name.to_owned(),
        message: e.to_string(),
    })
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
            (
                Some(compile(
                    "api key",
                    &format!(r"(^|[^A-Za-z0-9])({alternation})([A-Za-z0-9_\-]{{8,}})"),
                )?),
                Some(compile(
                    "api key",
                    &format!(r"^\s*({alternation})([A-Za-z0-9_\-]{{8,}})\s*$"),
                )?),
            )
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
            pem: compile(
                "private key",
                r"-----BEGIN [A-Z0-9 ]*PRIVATE KEY(?: BLOCK)?-----(?s:.*?)(?:-----END [A-Z0-9 ]*PRIVATE KEY(?: BLOCK)?-----|\z)",
            )?,
            url: compile("url", r#"(?i)\b[a-z][a-z0-9+.\-]{1,15}://[^\s"'<>\\`]+"#)?,
            jwt: compile(
                "jwt",
                r"\beyJ[A-Za-z0-9_\-]{2,}\.[A-Za-z0-9_\-]{2,}\.[A-Za-z0-9_\-]*",
            )?,
            auth: compile(
                "auth",
                r"(?i)\b(bearer|basic)(\s+)([A-Za-z0-9._~+/=\-]{8,})",
            )?,
            api_key,
            inline: compile(
                "inline secret",
                r#"([A-Za-z0-9_.\-]+)(["']?)([ \t]*[:=][ \t]*)("(?:[^"\\]|\\.)*"|'[^']*'|(?i:bearer|basic)[ \t]+[^\s,;&"'}]+|[^\s,;&"'}]+)"#,
            )?,
            email: compile(
                "email",
                r"[A-Za-z0-9._%+\-]+@[A-Za-z0-9](?:[A-Za-z0-9\-]*[A-Za-z0-9])?(?:\.[A-Za-z0-9](?:[A-Za-z0-9\-]*[A-Za-z0-9])?)*\.[A-Za-z]{2,}",
            )?,
            card: compile("payment card", r"[0-9](?:[ \-]?[0-9]){12,18}")?,
            ssn: compile("ssn", r"\b([0-9]{3})-([0-9]{2})-([0-9]{4})\b")?,
            ipv4: compile("ipv4", r"\b(?:[0-9]{1,3}\.){3}[0-9]{1,3}\b")?,
            ipv6: compile(
                "ipv6",
                r"[0-9A-Fa-f]{0,4}(?::[0-9A-Fa-f]{0,4}){2,7}(?:%[0-9A-Za-z]+)?",
            )?,
            custom,
            api_key_whole,
            card_whole: compile("payment card", r"^\s*[0-9](?:[ \-]?[0-9]){12,18}\s*$")?,
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

    /// The first pass: which detectors could fire on `text`.
    fn triggers(&self, text: &str) -> u32 {
        let bytes = text.as_bytes();
        let ByteStats {
            class,
            digits,
            dashes,
        } = byte_stats(bytes);
        let has = |c: u8| class & c != 0;
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
                &self.inline,
                Some(Rule::InlineSecret),
                summary,
                |caps, _, _| {
                    let raw = &caps[4];
                    let value = raw.trim_matches(['"', '\'']);
                    if !keys.is_sensitive(&caps[1]) {
                        // `host: password=x`: the value may hold a pair of its own.
                        return Rewrite::KeepFrom(caps.get(4).map_or(0, |v| v.start()));
                    }
                    if value.is_empty() || self.already_masked(value) {
                        return Rewrite::Keep;
                    }
                    let quote = match raw.as_bytes()[0] {
                        b'"' => "\"",
                        b'\'' => "'",
                        _ => "",
                    };
                    Rewrite::With(format!(
                        "{}{}{}{quote}{}{quote}",
                        &caps[1], &caps[2], &caps[3], self.replacement
                    ))
                },
            );
        }
        if t & T_EMAIL != 0 && self.on(Rule::Email) {
            out = self.replace(out, &self.email, Some(Rule::Email), summary, |_, _, _| {
                Rewrite::Mask
            });
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
                    let digit_before = m.start() > 0 && bytes[m.start() - 1].is_ascii_digit();
                    let digit_after = bytes.get(m.end()).is_some_and(u8::is_ascii_digit);
                    let digits: Vec<u8> = m.as_str().bytes().filter(u8::is_ascii_digit).collect();
                    if digit_before || digit_after || !is_card_number(&digits) {
                        return Rewrite::Keep;
                    }
                    Rewrite::With(mask_card(m.as_str()))
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

    /// Whether `value` was already masked by an earlier rule.
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
            let replacement: Cow<'_, str> = match rewrite(&caps, &text, summary) {
                Rewrite::Keep => continue,
                Rewrite::KeepFrom(resume) => {
                    pos = resume.clamp(m.start() + 1, m.end());
                    while !text.is_char_boundary(pos) {
                        pos += 1;
                    }
                    continue;
                }
                Rewrite::Mask => Cow::Borrowed(&self.replacement),
                Rewrite::With(partial) => Cow::Owned(partial),
            };
            let buf = out.get_or_insert_with(|| String::with_capacity(text.len()));
            buf.push_str(&text[last..m.start()]);
            buf.push_str(&replacement);
            last = m.end();
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
        let rest = match url.find("://") {
            Some(i) => {
                let after = i + 3;
                let auth_end = url[after..]
                    .find(['/', '?', '#'])
                    .map_or(url.len(), |j| after + j);
                let authority = &url[after..auth_end];
                out.push_str(&url[..after]);
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
                out.push_str(&self.replacement);
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

    /// The triggers without the first pass: every literal search run on every value.
    fn unfiltered(det: &Detectors, text: &str) -> u32 {
        let bytes = text.as_bytes();
        let digits = bytes.iter().filter(|b| b.is_ascii_digit()).count();
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
            type Class = (u8, fn(u8) -> bool);
            let classes: [Class; 8] = [
                (C_AT, |b| b == b'@'),
                (C_SEP, |b| b == b'=' || b == b':'),
                (C_COLON, |b| b == b':'),
                (C_DOT, |b| b == b'.'),
                (C_DASH, |b| b == b'-'),
                (C_UNDERSCORE, |b| b == b'_'),
                (C_SPACE, |b| b <= b' ' || b >= 0x80),
                (C_B, |b| b == b'b' || b == b'B'),
            ];
            let class = classes
                .iter()
                .filter(|(_, is)| bytes.iter().any(|&b| is(b)))
                .fold(0, |class, (c, _)| class | c);
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
                "7", "1234", "é", "\t", "_",
            ]), 0..12),
        ) {
            let det = Detectors::new(&RedactionPolicy::default(), DEFAULT_SENSITIVE_KEYS)
                .expect("default policy");
            let text = pieces.concat();
            // What the detectors' patterns demand besides the literal: a keyword needs
            // `=` or `:` after it, a credential whitespace before its token, a JWT
            // the dots between its parts. Past
            // that, the first pass and the plain searches must agree exactly.
            let mut expected = unfiltered(&det, &text);
            if !text.contains(['=', ':']) {
                expected &= !T_KEYWORD;
            }
            if !text.bytes().any(|b| b <= b' ' || b >= 0x80) {
                expected &= !T_AUTH;
            }
            if !text.contains('.') {
                expected &= !T_JWT;
            }
            prop_assert_eq!(det.triggers(&text), expected, "{:?}", text);
        }
    }
}
