//! Deciding whether a key (attribute, header, field, JSON member) names a secret.
//!
//! Keys are compared after folding case and dropping separators, so one word list
//! covers `db_password`, `user.password_hash`, `X-Api-Key` and `stripeSecretKey`.
//! Short words would match inside unrelated names (`ssn` in `classname`), so words of
//! fewer than five letters must stand as a whole word of the key instead.
//!
//! A key that contains a sensitive word does not always name a secret: its last word
//! may describe one instead (`auth.method`, `token_type`, `password_min_length`,
//! `secret.name`, `api_key_id`, `token_expires_at`). Such a key is not sensitive (its
//! value is still scanned by every value rule). A key whose last word is the plural of
//! a sensitive word (`gen_ai.usage.input_tokens`) counts secrets when its value is a
//! number and holds them otherwise.

use aho_corasick::{AhoCorasick, MatchKind};

use super::policy::PolicyError;

/// Shorter normalised words match only as whole words.
const SUBSTRING_MIN_LEN: usize = 5;
/// Keys are normalised into a stack buffer of this size; longer keys use the heap.
const STACK_KEY: usize = 128;

/// Letters and digits of a normalised key, as 0..36.
fn code(b: u8) -> usize {
    if b.is_ascii_digit() {
        26 + usize::from(b - b'0')
    } else {
        usize::from(b.to_ascii_lowercase().wrapping_sub(b'a')) % 26
    }
}

const TRIGRAMS: usize = 36 * 36 * 36;

/// What a key names.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u8)]
pub(crate) enum KeyClass {
    /// Nothing sensitive.
    Plain = 0,
    /// A secret: its value is masked whole.
    Secret = 1,
    /// Secrets, plural (`input_tokens`): a number under it is a count, anything else
    /// is masked whole.
    Plural = 2,
}

impl KeyClass {
    pub(crate) fn from_u8(v: u8) -> Self {
        match v {
            1 => Self::Secret,
            2 => Self::Plural,
            _ => Self::Plain,
        }
    }

    /// Whether values under such a key are masked (a number under a plural may not be).
    pub(crate) fn is_sensitive(self) -> bool {
        self != Self::Plain
    }
}

/// Last words of a key that describe a secret rather than hold one, compared in lower
/// case: `auth.method`, `token_type`, `password_min_length`, `secret.name`,
/// `session.duration_ms`, `token_endpoint`. A value under such a key is still scanned
/// by every value rule, so a secret written there is still masked.
const DESCRIPTORS: &[&str] = &[
    "age",
    "alg",
    "algo",
    "algorithm",
    "at",
    "attempt",
    "attempts",
    "backend",
    "bin",
    "brand",
    "bytes",
    "changed",
    "channel",
    "check",
    "checked",
    "count",
    "counts",
    "created",
    "date",
    "days",
    "dir",
    "disabled",
    "duration",
    "enabled",
    "endpoint",
    "error",
    "errors",
    "expiration",
    "expired",
    "expires",
    "expiry",
    "field",
    "file",
    "first6",
    "format",
    "generated",
    "h",
    "hours",
    "id",
    "ids",
    "in",
    "interval",
    "invalid",
    "issued",
    "issuer",
    "kind",
    "last4",
    "len",
    "length",
    "lifetime",
    "limit",
    "location",
    "m",
    "manager",
    "max",
    "method",
    "methods",
    "min",
    "mins",
    "minutes",
    "mode",
    "modified",
    "ms",
    "name",
    "names",
    "ns",
    "num",
    "oid",
    "path",
    "pct",
    "period",
    "policy",
    "prefix",
    "present",
    "provided",
    "provider",
    "rate",
    "ratio",
    "reason",
    "refreshed",
    "required",
    "result",
    "retries",
    "revoked",
    "rotated",
    "rotation",
    "rule",
    "rules",
    "s",
    "scheme",
    "scope",
    "scopes",
    "sec",
    "seconds",
    "secs",
    "sent",
    "set",
    "size",
    "source",
    "state",
    "status",
    "store",
    "strength",
    "suffix",
    "time",
    "timeout",
    "timestamp",
    "total",
    "ttl",
    "type",
    "types",
    "updated",
    "uri",
    "url",
    "us",
    "used",
    "valid",
    "verified",
    "version",
];

/// Words before `token` that make it a position or a count, not a credential: a
/// pagination cursor (`next_page_token`), a cancellation handle, a model's token
/// budget (`max_token`).
const NOT_CREDENTIAL_TOKENS: &[&str] = &[
    "page",
    "continuation",
    "pagination",
    "sync",
    "resume",
    "cancellation",
    "idempotency",
    "max",
    "input",
    "output",
    "prompt",
    "completion",
    "total",
];

/// Words before `id` that make it a secret after all: a session id or a Vault
/// `secret_id` is a credential, an `api_key_id` or a `token_id` only names one.
const SECRET_IDS: &[&str] = &["session", "sess", "secret"];

/// The last two words of `key` (lower-cased on comparison).
fn last_words(key: &str) -> (Option<&str>, Option<&str>) {
    words(key).fold((None, None), |(_, last), w| (last, Some(w)))
}

/// The last three words of `key`.
fn last_three_words(key: &str) -> (Option<&str>, Option<&str>, Option<&str>) {
    words(key).fold((None, None, None), |(_, b, l), w| (b, l, Some(w)))
}

fn is_descriptor(before: Option<&str>, last: &str) -> bool {
    let lower = |w: &str, list: &[&str]| list.iter().any(|d| d.eq_ignore_ascii_case(w));
    let token = last.eq_ignore_ascii_case("token") || last.eq_ignore_ascii_case("tokens");
    if token {
        return before.is_some_and(|b| lower(b, NOT_CREDENTIAL_TOKENS));
    }
    lower(last, DESCRIPTORS)
        && !((last.eq_ignore_ascii_case("id") || last.eq_ignore_ascii_case("ids"))
            && before.is_some_and(|b| lower(b, SECRET_IDS)))
}

#[derive(Debug)]
pub(crate) struct KeyMatcher {
    /// First three letters of every deny word: a key none of whose trigrams is here
    /// matches no word, and is decided in one pass without the automata (the common
    /// case; `redact/clean_64b`). `None` when a deny word is shorter than three.
    first_trigrams: Option<Box<[u64]>>,
    /// Normalised long words, matched as substrings of the normalised key.
    long: Option<AhoCorasick>,
    /// The same words, for the plural test.
    long_words: Vec<Box<[u8]>>,
    /// Normalised short words, matched against whole words of the key.
    short: Vec<Box<str>>,
    /// `short` as substrings of the normalised key: the cheap test before splitting words.
    short_any: Option<AhoCorasick>,
    /// Normalised allowed keys.
    allowed: Vec<Box<str>>,
}

/// Lower-case ASCII letters and digits of `s`, everything else dropped.
fn normalize_into<'b>(s: &str, buf: &'b mut [u8; STACK_KEY], heap: &'b mut Vec<u8>) -> &'b [u8] {
    let alnum = s
        .bytes()
        .filter(u8::is_ascii_alphanumeric)
        .map(|b| b.to_ascii_lowercase());
    if s.len() <= STACK_KEY {
        let mut n = 0;
        for b in alnum {
            buf[n] = b;
            n += 1;
        }
        &buf[..n]
    } else {
        heap.extend(alnum);
        heap
    }
}

pub(crate) fn normalize(s: &str) -> String {
    s.bytes()
        .filter(u8::is_ascii_alphanumeric)
        .map(|b| char::from(b.to_ascii_lowercase()))
        .collect()
}

/// Splits a key into lower-cased words at non-alphanumerics and camelCase humps.
fn words(key: &str) -> impl Iterator<Item = &str> {
    key.split(|c: char| !c.is_ascii_alphanumeric())
        .flat_map(split_camel)
        .filter(|w| !w.is_empty())
}

fn split_camel(part: &str) -> impl Iterator<Item = &str> {
    let bytes = part.as_bytes();
    let mut start = 0;
    let mut i = 1;
    std::iter::from_fn(move || {
        while i < bytes.len() {
            let (prev, cur) = (bytes[i - 1], bytes[i]);
            let next_lower = bytes.get(i + 1).is_some_and(u8::is_ascii_lowercase);
            // A hump starts at `aB`, or at the last capital of a run followed by lower case (`APIKey` -> API|Key).
            let hump = cur.is_ascii_uppercase()
                && (prev.is_ascii_lowercase()
                    || prev.is_ascii_digit()
                    || (prev.is_ascii_uppercase() && next_lower));
            i += 1;
            if hump {
                let word = &part[start..i - 1];
                start = i - 1;
                return Some(word);
            }
        }
        if start < bytes.len() {
            let word = &part[start..];
            start = bytes.len();
            Some(word)
        } else {
            None
        }
    })
}

impl KeyMatcher {
    pub(crate) fn new<'a>(
        deny: impl IntoIterator<Item = &'a str>,
        allow: impl IntoIterator<Item = &'a str>,
    ) -> Result<Self, PolicyError> {
        let mut long = Vec::new();
        let mut short = Vec::new();
        for word in deny {
            let n = normalize(word);
            if n.is_empty() {
                return Err(PolicyError::Empty("sensitive key"));
            }
            if n.len() >= SUBSTRING_MIN_LEN {
                long.push(n);
            } else {
                short.push(n.into_boxed_str());
            }
        }
        let automaton = |words: &[&str]| -> Result<Option<AhoCorasick>, PolicyError> {
            if words.is_empty() {
                return Ok(None);
            }
            AhoCorasick::builder()
                .match_kind(MatchKind::LeftmostFirst)
                .build(words)
                .map(Some)
                .map_err(|e| PolicyError::Pattern {
                    name: "sensitive keys".into(),
                    message: e.to_string(),
                })
        };
        let first_trigrams = long
            .iter()
            .map(String::as_str)
            .chain(short.iter().map(|s| &**s))
            .try_fold(vec![0u64; TRIGRAMS / 64 + 1], |mut bits, w| {
                let b = w.as_bytes();
                (b.len() >= 3).then(|| {
                    let t = code(b[0]) * 1296 + code(b[1]) * 36 + code(b[2]);
                    bits[t / 64] |= 1 << (t % 64);
                    bits
                })
            })
            .map(Vec::into_boxed_slice);
        let long_words = long.iter().map(|w| w.as_bytes().into()).collect();
        let long = automaton(&long.iter().map(String::as_str).collect::<Vec<_>>())?;
        let short_any = automaton(&short.iter().map(|s| &**s).collect::<Vec<_>>())?;
        let allowed = allow
            .into_iter()
            .map(|a| normalize(a).into_boxed_str())
            .filter(|a| !a.is_empty())
            .collect();
        Ok(Self {
            first_trigrams,
            long,
            long_words,
            short,
            short_any,
            allowed,
        })
    }

    /// Whether no trigram of the normalised `key` starts a deny word (so it matches none).
    fn surely_clean(&self, key: &str) -> bool {
        let Some(bits) = &self.first_trigrams else {
            return false;
        };
        let (mut a, mut b, mut n) = (0usize, 0usize, 0usize);
        for byte in key.bytes().filter(u8::is_ascii_alphanumeric) {
            let c = code(byte);
            if n >= 2 {
                let t = a * 1296 + b * 36 + c;
                if bits[t / 64] & (1 << (t % 64)) != 0 {
                    return false;
                }
            }
            (a, b, n) = (b, c, n + 1);
        }
        true
    }

    /// Whether `key` names a sensitive value (a secret, or secrets).
    pub(crate) fn is_sensitive(&self, key: &str) -> bool {
        self.classify(key).is_sensitive()
    }

    /// What `key` names.
    pub(crate) fn classify(&self, key: &str) -> KeyClass {
        if self.surely_clean(key) {
            return KeyClass::Plain;
        }
        let mut buf = [0u8; STACK_KEY];
        let mut heap = Vec::new();
        let norm = normalize_into(key, &mut buf, &mut heap);
        if norm.is_empty() {
            return KeyClass::Plain;
        }
        let denied = self.long.as_ref().is_some_and(|ac| ac.is_match(norm))
            || (self.short_any.as_ref().is_some_and(|ac| ac.is_match(norm))
                && words(key).any(|w| self.is_short_word(w)));
        if !denied || self.is_allowed(key, norm) {
            return KeyClass::Plain;
        }
        let (earlier, before, last) = last_three_words(key);
        let Some(last) = last else {
            return KeyClass::Secret;
        };
        if is_descriptor(before, last) {
            return KeyClass::Plain;
        }
        // `x509.signature_algorithm.oid`: the description goes on with a word of its own
        // (neither a secret's name nor a description).
        if before.is_some_and(|b| is_descriptor(earlier, b)) && !self.names_a_secret(last) {
            return KeyClass::Plain;
        }
        // `api_keys`, `input_tokens`: a deny word ends where the plural `s` starts.
        let plural = last.len() > 1
            && last.ends_with(['s', 'S'])
            && !last.ends_with("ss")
            && norm.len() > 1
            && self.denies_ending_at(&norm[..norm.len() - 1]);
        if plural {
            KeyClass::Plural
        } else {
            KeyClass::Secret
        }
    }

    /// Whether the single word `word` is (or contains) a sensitive word.
    fn names_a_secret(&self, word: &str) -> bool {
        let norm = normalize(word);
        self.long.as_ref().is_some_and(|ac| ac.is_match(&*norm)) || self.is_short_word(word)
    }

    /// Whether a deny word ends exactly at the end of the normalised `norm`.
    fn denies_ending_at(&self, norm: &[u8]) -> bool {
        self.long_words.iter().any(|w| norm.ends_with(w))
            || self.short.iter().any(|w| norm.ends_with(w.as_bytes()))
    }

    /// Whether the last word of `key` describes a secret (`auth.method`,
    /// `token_type`) rather than naming one: a member of an object held under a
    /// sensitive key is masked unless its own key is such a description.
    pub(crate) fn is_description(&self, key: &str) -> bool {
        let (before, last) = last_words(key);
        last.is_some_and(|last| is_descriptor(before, last))
    }

    fn is_short_word(&self, w: &str) -> bool {
        self.short
            .iter()
            .any(|s| s.len() == w.len() && s.as_bytes().eq_ignore_ascii_case(w.as_bytes()))
    }

    fn is_allowed(&self, key: &str, norm: &[u8]) -> bool {
        if self.allowed.is_empty() {
            return false;
        }
        let last = key.rsplit('.').next().unwrap_or(key);
        let last = normalize(last);
        self.allowed
            .iter()
            .any(|a| a.as_bytes() == norm || **a == *last)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::redact::policy::DEFAULT_SENSITIVE_KEYS;

    fn matcher(allow: &[&str]) -> KeyMatcher {
        KeyMatcher::new(
            DEFAULT_SENSITIVE_KEYS.iter().copied(),
            allow.iter().copied(),
        )
        .unwrap()
    }

    #[test]
    fn sensitive_words_match_inside_longer_names_in_any_case() {
        let m = matcher(&[]);
        for key in [
            "password",
            "PASSWORD",
            "db_password",
            "user.password_hash",
            "X-Api-Key",
            "x-api-key",
            "apiKey",
            "APIKey",
            "stripeSecretKey",
            "hmac_secret",
            "oidc_token",
            "bearer_token",
            "private_key",
            "privateKey",
            "authorization",
            "Proxy-Authorization",
            "cookie",
            "set-cookie",
            "Set-Cookie",
            "session",
            "sessionId",
            "credit_card",
            "creditCardNumber",
            "ssn",
            "user_ssn",
            "userSSN",
            "passwd",
            "client_secret",
            "x-auth",
            "x-auth-token",
            "card_pin",
        ] {
            assert!(m.is_sensitive(key), "{key}");
        }
    }

    #[test]
    fn ordinary_names_do_not_match() {
        let m = matcher(&[]);
        for key in [
            "classname",
            "username",
            "author",
            "spin",
            "options",
            "tenant.id",
            "workflow.id",
            "http.route",
            "duration_ms",
            "",
            "---",
            "cotter",
            "opinion",
        ] {
            assert!(!m.is_sensitive(key), "{key}");
        }
    }

    #[test]
    fn keys_that_describe_a_secret_are_not_sensitive() {
        let m = matcher(&[]);
        for key in [
            "auth.method",
            "token_type",
            "token.type",
            "password_min_length",
            "password.policy",
            "secret.name",
            "api_key.name",
            "api_key_id",
            "token_expires_at",
            "password_last_changed_at",
            "session.duration_ms",
            "session_timeout",
            "token.expires_in",
            "password_last_changed",
            "token_endpoint",
            "signature_algorithm",
            "x509.signature_algorithm",
            "otp_enabled",
            "pin.length",
            "tokens_used",
            // An access key's id names the key (AKIA...; the key-prefix rule masks it).
            "aws_access_key_id",
            "gen_ai.usage.input_tokens",
            "gen_ai.usage.output_tokens",
            "credential.provider",
            "next_page_token",
            "pageToken",
            "cancellation_token",
            "max_tokens",
            "token.scope",
            "session.length_s",
            "api_key.prefix",
            "otp.channel",
            "secret_store",
            "authorization.result",
            "AuthMethod",
        ] {
            assert_eq!(m.classify(key), KeyClass::Plain, "{key}");
        }
        for key in [
            "session_id",
            "sessionId",
            "user.session.id",
            "secret_id",
            "auth_token_hash",
        ] {
            assert_eq!(m.classify(key), KeyClass::Secret, "{key}");
        }
    }

    #[test]
    fn plural_keys_hold_secrets_or_count_them() {
        let m = matcher(&[]);
        for key in [
            "tokens",
            "api_keys",
            "refresh_tokens",
            "auth_tokens",
            "cookies",
            "passwords",
        ] {
            assert_eq!(m.classify(key), KeyClass::Plural, "{key}");
        }
        assert_eq!(m.classify("token"), KeyClass::Secret);
        assert_eq!(m.classify("options"), KeyClass::Plain);
    }

    #[test]
    fn allow_list_wins_over_deny_words() {
        let m = matcher(&["token_hint"]);
        assert!(!m.is_sensitive("token_hint"));
        assert!(!m.is_sensitive("TokenHint"));
        assert!(!m.is_sensitive("llm.usage.token_hint"));
        assert!(m.is_sensitive("token"));
        assert!(m.is_sensitive("token_hint_secret"));
    }

    #[test]
    fn camel_case_splitting() {
        let w: Vec<_> = words("stripeSecretKey").collect();
        assert_eq!(w, ["stripe", "Secret", "Key"]);
        let w: Vec<_> = words("APIKey_userSSN2").collect();
        assert_eq!(w, ["API", "Key", "user", "SSN2"]);
    }

    #[test]
    fn long_keys_use_the_heap_path() {
        let m = matcher(&[]);
        let long = format!("{}password", "x".repeat(500));
        assert!(m.is_sensitive(&long));
        assert!(!m.is_sensitive(&"x".repeat(500)));
    }
}
