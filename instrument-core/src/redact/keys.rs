//! Deciding whether a key (attribute, header, field, JSON member) names a secret.
//!
//! Keys are compared after folding case and dropping separators, so one word list
//! covers `db_password`, `user.password_hash`, `X-Api-Key` and `stripeSecretKey`.
//! Short words would match inside unrelated names (`ssn` in `classname`), so words of
//! fewer than five letters must stand as a whole word of the key instead.

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

#[derive(Debug)]
pub(crate) struct KeyMatcher {
    /// First three letters of every deny word: a key none of whose trigrams is here
    /// matches no word, and is decided in one pass without the automata (the common
    /// case; `redact/clean_64b`). `None` when a deny word is shorter than three.
    first_trigrams: Option<Box<[u64]>>,
    /// Normalised long words, matched as substrings of the normalised key.
    long: Option<AhoCorasick>,
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

    /// Whether `key` names a sensitive value.
    pub(crate) fn is_sensitive(&self, key: &str) -> bool {
        if self.surely_clean(key) {
            return false;
        }
        let mut buf = [0u8; STACK_KEY];
        let mut heap = Vec::new();
        let norm = normalize_into(key, &mut buf, &mut heap);
        if norm.is_empty() {
            return false;
        }
        let denied = self.long.as_ref().is_some_and(|ac| ac.is_match(norm))
            || (self.short_any.as_ref().is_some_and(|ac| ac.is_match(norm))
                && words(key).any(|w| {
                    self.short.iter().any(|s| {
                        s.len() == w.len() && s.as_bytes().eq_ignore_ascii_case(w.as_bytes())
                    })
                }));
        denied && !self.is_allowed(key, norm)
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
            "aws_access_key_id",
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
    fn allow_list_wins_over_deny_words() {
        let m = matcher(&["token_count"]);
        assert!(!m.is_sensitive("token_count"));
        assert!(!m.is_sensitive("TokenCount"));
        assert!(!m.is_sensitive("llm.usage.token_count"));
        assert!(m.is_sensitive("token"));
        assert!(m.is_sensitive("token_count_secret"));
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
