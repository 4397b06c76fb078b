//! One method per detector: each rewrites what it finds in `out` and counts it in
//! `summary`. [`Detectors::scan`](super::Detectors) runs the ones the first pass
//! allows, in order (an earlier rule's mask is not scanned again by a later one).

use std::borrow::Cow;
use std::net::{Ipv4Addr, Ipv6Addr};

use super::prefilter::{
    is_base64_snowflake, T_AZURE_SECRET, T_DISCORD, T_HEX_KEY, T_LONG, T_MAILCHIMP,
};
use super::words::*;
use super::{Detectors, Rewrite};
use crate::redact::keys::KeyMatcher;
use crate::redact::policy::Rule;
use crate::redact::summary::RedactionSummary;
use crate::redact::text::mask_card;

impl Detectors {
    /// PEM private keys, whole.
    pub(super) fn private_keys<'a>(
        &self,
        out: Cow<'a, str>,
        summary: &mut RedactionSummary,
    ) -> Cow<'a, str> {
        self.replace(
            out,
            &self.pem,
            Some(Rule::PrivateKey),
            summary,
            |_, _, _| Rewrite::Mask,
        )
    }

    /// Credentials and sensitive query parameters of URLs (`sanitize_url` counts what it masks).
    pub(super) fn urls<'a>(
        &self,
        out: Cow<'a, str>,
        keys: &KeyMatcher,
        summary: &mut RedactionSummary,
    ) -> Cow<'a, str> {
        // `sanitize_url` counts what it masks itself.
        self.replace(out, &self.url, None, summary, |caps, _, s| {
            self.sanitize_url(&caps[0], keys, s)
                .map_or(Rewrite::Keep, Rewrite::With)
        })
    }

    /// JSON Web Tokens.
    pub(super) fn jwts<'a>(
        &self,
        out: Cow<'a, str>,
        summary: &mut RedactionSummary,
    ) -> Cow<'a, str> {
        self.replace(out, &self.jwt, Some(Rule::Jwt), summary, |_, _, _| {
            Rewrite::Mask
        })
    }

    /// The credential after an auth scheme (`Bearer <token>`), the scheme kept.
    pub(super) fn auth_credentials<'a>(
        &self,
        out: Cow<'a, str>,
        summary: &mut RedactionSummary,
    ) -> Cow<'a, str> {
        self.replace(
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
        )
    }

    /// API keys of the known prefixes, the prefix kept.
    pub(super) fn api_keys<'a>(
        &self,
        mut out: Cow<'a, str>,
        summary: &mut RedactionSummary,
    ) -> Cow<'a, str> {
        if let Some(re) = &self.api_key {
            out = self.replace(out, re, Some(Rule::ApiKey), summary, |caps, _, _| {
                let prefix = &caps[2];
                let own = self.own_prefixes.iter().any(|p| &**p == prefix);
                if !own && !vendor_key_follows(prefix, &caps[3]) {
                    return Rewrite::Keep;
                }
                Rewrite::With(format!("{}{}{}", &caps[1], prefix, self.replacement))
            });
        }
        out
    }

    /// Telegram bot tokens (`123456789:AA...`): the bot's id kept, its secret masked.
    pub(super) fn bot_tokens<'a>(
        &self,
        out: Cow<'a, str>,
        summary: &mut RedactionSummary,
    ) -> Cow<'a, str> {
        self.replace(out, &self.bot, Some(Rule::ApiKey), summary, |caps, _, _| {
            Rewrite::With(format!("{}{}", &caps[1], self.replacement))
        })
    }

    /// Vendor secrets found by a literal or a shape inside them (`t`: which could be
    /// here):
    /// - Microsoft Entra ID client secrets, masked whole;
    /// - Databricks tokens, their `dapi` kept;
    /// - Mailchimp API keys, their data centre (`-us21`) kept;
    /// - Twilio API keys, their `SK` kept;
    /// - long tokens, masked whole: Terraform Cloud's (`<id>.atlasv1.<secret>`),
    ///   Grafana API keys, AWS STS session tokens, Google OAuth refresh tokens,
    ///   Airtable personal access tokens and X (Twitter) app bearer tokens;
    /// - Discord bot tokens (the bot's id in base64, a dot, a time, a dot, the secret),
    ///   masked whole when the first part decodes to a user's id.
    pub(super) fn vendor_secrets<'a>(
        &self,
        mut out: Cow<'a, str>,
        t: u32,
        summary: &mut RedactionSummary,
    ) -> Cow<'a, str> {
        if t & T_AZURE_SECRET != 0 {
            out = self.replace(
                out,
                &self.azure_secret,
                Some(Rule::ApiKey),
                summary,
                |caps, _, _| {
                    // Up to the secret's end: the byte after it may start the next one's
                    // boundary.
                    let end = caps.get(2).map_or(0, |m| m.end());
                    Rewrite::WithUpTo(end, format!("{}{}", &caps[1], self.replacement))
                },
            );
        }
        if t & T_HEX_KEY != 0 {
            out = self.replace(
                out,
                &self.hex_keys,
                Some(Rule::ApiKey),
                summary,
                |caps, _, _| Rewrite::With(format!("{}{}", &caps[1], self.replacement)),
            );
        }
        if t & T_DISCORD != 0 {
            out = self.replace(
                out,
                &self.discord,
                Some(Rule::ApiKey),
                summary,
                |caps, _, _| {
                    if !is_base64_snowflake(caps[3].as_bytes()) {
                        return Rewrite::Keep;
                    }
                    // Up to the token's end: the byte after it may start the next
                    // one's boundary.
                    let end = caps.get(2).map_or(0, |m| m.end());
                    Rewrite::WithUpTo(end, format!("{}{}", &caps[1], self.replacement))
                },
            );
        }
        if t & T_LONG != 0 {
            out = self.replace(
                out,
                &self.long_tokens,
                Some(Rule::ApiKey),
                summary,
                |_, _, _| Rewrite::Mask,
            );
        }
        if t & T_MAILCHIMP != 0 {
            out = self.replace(
                out,
                &self.mailchimp,
                Some(Rule::ApiKey),
                summary,
                |caps, _, _| Rewrite::With(format!("{}{}", self.replacement, &caps[1])),
            );
        }
        out
    }

    /// `key=value` pairs and name/value attribute pairs whose name is a sensitive key.
    pub(super) fn named_secrets<'a>(
        &self,
        mut out: Cow<'a, str>,
        keys: &KeyMatcher,
        summary: &mut RedactionSummary,
    ) -> Cow<'a, str> {
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
                let mut class = keys.classify(&caps[1]);
                // `api key: ...`, `session id: ...`: the word before a key that is
                // not a secret's name alone can make it one.
                if !path && !class.is_sensitive() {
                    if let Some(phrase) = with_word_before(before, &caps[1]) {
                        class = keys.classify(&phrase);
                    }
                }
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
                    || (unbracketed.len() < value.len() && self.keeps_under_key(class, unbracketed))
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
        out
    }

    /// A user and password written as a pair in prose (`log in as root/toor`): the password alone.
    pub(super) fn credential_pairs<'a>(
        &self,
        out: Cow<'a, str>,
        summary: &mut RedactionSummary,
    ) -> Cow<'a, str> {
        self.replace(
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
                if path || value.is_empty() || self.keeps(value) || is_mode_pair(&caps[2], value) {
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
        )
    }

    /// A secret after a key word in prose (`password is hunter2`).
    pub(super) fn prose_secrets<'a>(
        &self,
        out: Cow<'a, str>,
        summary: &mut RedactionSummary,
    ) -> Cow<'a, str> {
        self.replace(
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
        )
    }

    /// `-u user:password` on a command line: the password.
    pub(super) fn cli_passwords<'a>(
        &self,
        out: Cow<'a, str>,
        summary: &mut RedactionSummary,
    ) -> Cow<'a, str> {
        self.replace(
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
        )
    }

    /// `<password>...</password>`: the content of an element named by a sensitive key.
    pub(super) fn markup_secrets<'a>(
        &self,
        out: Cow<'a, str>,
        keys: &KeyMatcher,
        summary: &mut RedactionSummary,
    ) -> Cow<'a, str> {
        self.replace(
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
        )
    }

    /// E-mail addresses (not `git@host:repo` addresses).
    pub(super) fn emails<'a>(
        &self,
        out: Cow<'a, str>,
        summary: &mut RedactionSummary,
    ) -> Cow<'a, str> {
        self.replace(
            out,
            &self.email,
            Some(Rule::Email),
            summary,
            |caps, hay, _| {
                let m = caps.get(0).expect("group 0 always participates");
                // `git@github.com:org/repo.git` is an address of a repository.
                let scp = m.as_str().starts_with("git@")
                    && hay[m.end()..].starts_with(':')
                    && (m.start() == 0 || !hay.as_bytes()[m.start() - 1].is_ascii_alphanumeric());
                if scp {
                    Rewrite::Keep
                } else {
                    Rewrite::Mask
                }
            },
        )
    }

    /// Luhn-checked payment cards in runs of digit groups, the last four kept.
    pub(super) fn cards<'a>(
        &self,
        out: Cow<'a, str>,
        summary: &mut RedactionSummary,
    ) -> Cow<'a, str> {
        self.replace(
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
                // A UUID is an id, whatever its digits (`83920148-5482-4ec1-...`).
                if in_uuid(bytes, m.start()) {
                    return Rewrite::SkipTo(end);
                }
                // A last group glued to letters (`-4ec1`) is part of a word, not of a
                // card.
                let end = whole_groups_end(bytes, m.start(), end);
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
        )
    }

    /// US social security numbers of a valid shape.
    pub(super) fn ssns<'a>(
        &self,
        out: Cow<'a, str>,
        summary: &mut RedactionSummary,
    ) -> Cow<'a, str> {
        self.replace(out, &self.ssn, Some(Rule::Ssn), summary, |caps, _, _| {
            let valid = !matches!(&caps[1], "000" | "666")
                && !caps[1].starts_with('9')
                && &caps[2] != "00"
                && &caps[3] != "0000";
            if valid {
                Rewrite::Mask
            } else {
                Rewrite::Keep
            }
        })
    }

    /// Phone numbers, international, North American and national.
    pub(super) fn phones<'a>(
        &self,
        mut out: Cow<'a, str>,
        summary: &mut RedactionSummary,
    ) -> Cow<'a, str> {
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
        out
    }

    /// IPv4 and IPv6 addresses.
    pub(super) fn ips<'a>(
        &self,
        mut out: Cow<'a, str>,
        summary: &mut RedactionSummary,
    ) -> Cow<'a, str> {
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
        out
    }

    /// The policy's own patterns.
    pub(super) fn custom_patterns<'a>(
        &self,
        mut out: Cow<'a, str>,
        summary: &mut RedactionSummary,
    ) -> Cow<'a, str> {
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
}

/// Default prefixes that also begin ordinary names (`key-value-store-01234567`,
/// `secret_rotation_2024`, `pk.a1b2c3d4`), with the one shape their vendor's keys have
/// after them.
const EXACT_TAILS: &[(&str, TailTest)] = &[
    // Mailgun's private API keys.
    ("key-", |t| hex_of_len(t, 32)),
    // Pulumi's access tokens.
    ("pul-", |t| hex_of_len(t, 40)),
    // Notion's integration secrets (before `ntn_`).
    ("secret_", |t| {
        t.len() == 43 && t.bytes().all(|b| b.is_ascii_alphanumeric())
    }),
    // LaunchDarkly's API access tokens and SDK keys: a UUID.
    ("api-", is_uuid),
    ("sdk-", is_uuid),
    // Mapbox's public and secret tokens: a JWT's header and payload, base64 JSON.
    ("pk.", is_base64_json),
    ("sk.", is_base64_json),
];

/// Base64 of a JSON object (`eyJ` is `{"`), random enough to be a token.
fn is_base64_json(tail: &str) -> bool {
    tail.starts_with("eyJ") && looks_random(tail)
}

/// Whether what follows a prefix is its vendor's key.
type TailTest = fn(&str) -> bool;

fn hex_of_len(tail: &str, len: usize) -> bool {
    tail.len() == len
        && tail
            .bytes()
            .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
}

/// `8-4-4-4-12` lowercase hex digits.
fn is_uuid(tail: &str) -> bool {
    let mut groups = tail.split('-');
    [8, 4, 4, 4, 12]
        .iter()
        .all(|&len| groups.next().is_some_and(|g| hex_of_len(g, len)))
        && groups.next().is_none()
}

/// Whether `tail`, after the default prefix `prefix`, is a key: in the vendor's exact
/// shape for the prefixes of [`EXACT_TAILS`], else when it [`looks_random`].
fn vendor_key_follows(prefix: &str, tail: &str) -> bool {
    fits_exact_tail(prefix, tail).unwrap_or_else(|| looks_random(tail))
}

/// Whether `tail` is in the exact shape [`EXACT_TAILS`] gives `prefix`; `None` when it
/// gives it none.
pub(super) fn fits_exact_tail(prefix: &str, tail: &str) -> Option<bool> {
    EXACT_TAILS
        .iter()
        .find(|(p, _)| *p == prefix)
        .map(|(_, fits)| fits(tail))
}

/// Whether what follows a well-known API key prefix looks like a key rather than a
/// name that happens to start like one (`npm_package_version`, `ASIA-SOUTHEAST1`,
/// `hf_hub_download`, `AIzaServicesDisabled`, `sk-learn-estimator-pipeline`). Keys are
/// random, names are words: a key has a run of letters and digits that is
/// - 8 or more characters with a digit before a letter, or all digits (`7EXAMPLE`,
///   Slack's `123456789012`), where a name's number ends it (`SOUTHEAST1`, `v2`);
/// - 16 or more with a digit, or with its case changing at every fourth character or
///   more often (`AbCdEfGhIjKlMnOp`, where a name in camel case changes at its words);
/// - 24 or more, whatever it holds.
///
/// The prefixes a policy adds itself are trusted as they are.
pub(super) fn looks_random(tail: &str) -> bool {
    tail.split(|c: char| !c.is_ascii_alphanumeric()).any(|run| {
        let bytes = run.as_bytes();
        let digit = bytes.iter().any(u8::is_ascii_digit);
        let letter_after_digit = bytes
            .iter()
            .skip_while(|b| !b.is_ascii_digit())
            .any(u8::is_ascii_alphabetic);
        let all_digits = bytes.iter().all(u8::is_ascii_digit);
        let case_changes = bytes
            .windows(2)
            .filter(|pair| {
                pair[0].is_ascii_alphabetic()
                    && pair[1].is_ascii_alphabetic()
                    && pair[0].is_ascii_uppercase() != pair[1].is_ascii_uppercase()
            })
            .count();
        let len = bytes.len();
        (len >= 8 && digit && (all_digits || letter_after_digit))
            || (len >= 16 && (digit || case_changes * 4 >= len))
            || len >= 24
    })
}

/// `key` with the word written before it (`api key`, `session id`), when `key` is a
/// noun that names a secret only with a word before it (`key`, `id`), a single space
/// separates them, and the word is all letters: the phrase prose names a secret with.
fn with_word_before(before: &str, key: &str) -> Option<String> {
    if !["key", "keys", "id"]
        .iter()
        .any(|k| k.eq_ignore_ascii_case(key))
    {
        return None;
    }
    let head = before.strip_suffix(' ')?;
    let start = head
        .rfind(|c: char| !c.is_ascii_alphabetic())
        .map_or(0, |i| i + 1);
    // The whole word: not the end of `Adm1nPass` or of a path.
    if start > 0 && !head[..start].ends_with([' ', '(', '"', '\'', '\t']) {
        return None;
    }
    let word = &head[start..];
    (word.len() >= 2).then(|| format!("{word} {key}"))
}
