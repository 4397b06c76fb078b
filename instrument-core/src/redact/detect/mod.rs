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
use std::sync::OnceLock;

use aho_corasick::{AhoCorasick, AhoCorasickBuilder, MatchKind};
use regex::{Captures, Regex, RegexSet};

use super::keys::{KeyClass, KeyMatcher};
use super::policy::{PolicyError, RedactionPolicy, Rule};
use super::prefix::PrefixIndex;
use super::summary::RedactionSummary;
use super::text::{is_card_number, is_number, mask_card, percent_decode, reveals_nothing};

mod prefilter;
mod rules;
mod url;
mod words;

#[cfg(test)]
pub(crate) use prefilter::longest_digit_run;
use prefilter::*;
use words::*;

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
    /// The prefixes the policy added: what follows them is masked whatever it looks
    /// like (see [`rules::looks_random`]).
    own_prefixes: Box<[Box<str>]>,
    /// Sensitive key words as they appear in text (`api_key`, `api-key`, `apikey`), any case.
    keywords: AhoCorasick,
    pem_start: memchr::memmem::Finder<'static>,
    putty_start: memchr::memmem::Finder<'static>,
    url_scheme: memchr::memmem::Finder<'static>,
    jwt_start: memchr::memmem::Finder<'static>,
    /// `:AA`, between a Telegram bot's id and its secret.
    bot_start: memchr::memmem::Finder<'static>,
    /// `Q~`, in a Microsoft Entra ID client secret.
    azure_start: memchr::memmem::Finder<'static>,
    /// `-us`, before a Mailchimp key's data centre.
    mailchimp_start: memchr::memmem::Finder<'static>,
    /// `dapi` and `SK`: the prefixes of Databricks tokens and Twilio API keys, each
    /// followed by 32 hex digits.
    hex_key_starts: [memchr::memmem::Finder<'static>; 2],
    /// The literals of [`LONG_TOKEN_LITERALS`], looked for in long values only.
    long_literals: AhoCorasick,
    allowed_values: HashSet<Box<str>>,
    pem: Lazy,
    url: Lazy,
    jwt: Lazy,
    /// Telegram bot tokens: `<bot id>:AA<30 or more characters>` (35 in all, 34 in
    /// the examples of their docs).
    bot: Lazy,
    /// Microsoft Entra ID (Azure AD) client secrets: three characters, a digit, `Q~`,
    /// 31 to 34 more.
    azure_secret: Lazy,
    /// Mailchimp API keys: 32 hex digits, then `-us` and the data centre's number.
    mailchimp: Lazy,
    /// A prefix and 32 hex digits: Databricks tokens (`dapi`, sometimes `-<n>` after)
    /// and Twilio API keys (`SK`).
    hex_keys: Lazy,
    /// Long tokens found by a literal in them ([`LONG_TOKEN_LITERALS`]), masked whole:
    /// Terraform Cloud (HCP Terraform) API tokens (14 letters and digits, `.atlasv1.`,
    /// 60 to 70 more), Grafana API keys (`eyJrIjoi`, base64 JSON), AWS STS session
    /// tokens, Google OAuth refresh tokens (`1//0`), Airtable personal access tokens
    /// (`pat<14>.<64 hex>`) and X (Twitter) app bearer tokens (`AAAA...`).
    long_tokens: Lazy,
    /// Discord bot tokens: the bot's id in base64, a dot, six characters, a dot, 27
    /// to 38 more (the token in group 2, the id in group 3).
    discord: Lazy,
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
            // Prose: `api key: ...`.
            parts.join(" "),
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
            // The key, then its base64 padding if it has any (`...Ab==`).
            let anywhere = format!(
                r"(^|[^A-Za-z0-9])({alternation})([A-Za-z0-9_\-]{{8,}}(?:\.[A-Za-z0-9_\-]+)*={{0,2}})"
            );
            let whole = format!(
                r"^\s*({alternation})([A-Za-z0-9_\-]{{8,}}(?:\.[A-Za-z0-9_\-]+)*={{0,2}})\s*$"
            );
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
            own_prefixes: policy
                .api_key_prefixes
                .iter()
                .map(|p| p.as_str().into())
                .collect(),
            keywords,
            pem_start: memchr::memmem::Finder::new(b"-----BEGIN").into_owned(),
            putty_start: memchr::memmem::Finder::new(PUTTY_START).into_owned(),
            url_scheme: memchr::memmem::Finder::new(b"://").into_owned(),
            jwt_start: memchr::memmem::Finder::new(b"eyJ").into_owned(),
            bot_start: memchr::memmem::Finder::new(b":AA").into_owned(),
            azure_start: memchr::memmem::Finder::new(b"Q~").into_owned(),
            mailchimp_start: memchr::memmem::Finder::new(b"-us").into_owned(),
            hex_key_starts: [
                memchr::memmem::Finder::new(b"dapi").into_owned(),
                memchr::memmem::Finder::new(b"SK").into_owned(),
            ],
            long_literals: AhoCorasick::new(LONG_TOKEN_LITERALS).map_err(|e| {
                PolicyError::Pattern {
                    name: "long token literals".into(),
                    message: e.to_string(),
                }
            })?,
            allowed_values: policy
                .allowed_values
                .iter()
                .map(|v| v.clone().into_boxed_str())
                .collect(),
            // PEM blocks; PuTTY's key files, from their first line through the MAC.
            pem: Lazy::new(concat!(
                r"-----BEGIN [A-Z0-9 ]*PRIVATE KEY(?: BLOCK)?-----(?s:.*?)(?:-----END [A-Z0-9 ]*PRIVATE KEY(?: BLOCK)?-----|\z)",
                r"|PuTTY-User-Key-File-[0-9]+:(?s:.*?)(?:Private-MAC:[ \t]*[0-9a-fA-F]+|\z)",
            )),
            url: Lazy::new(r#"(?i)\b[a-z][a-z0-9+.\-]{1,15}://[^\s"'<>\\`]+"#),
            jwt: Lazy::new(r"\beyJ[A-Za-z0-9_\-]{2,}\.[A-Za-z0-9_\-]{2,}\.[A-Za-z0-9_\-]*"),
            bot: Lazy::new(r"\b([0-9]{8,12}:)AA[0-9A-Za-z_\-]{30,}"),
            azure_secret: Lazy::new(
                r"(^|[^A-Za-z0-9_~.\-])([A-Za-z0-9_~.]{3}[0-9]Q~[A-Za-z0-9_~.\-]{31,34})(?:$|[^A-Za-z0-9_~.\-])",
            ),
            mailchimp: Lazy::new(r"\b[0-9a-f]{32}(-us[0-9]{1,2})\b"),
            hex_keys: Lazy::new(r"\b(dapi|SK)[0-9a-fA-F]{32}(?:-[0-9]+)?\b"),
            discord: Lazy::new(
                r"(^|[^A-Za-z0-9_\-.])(([A-Za-z0-9_\-]{23,27})\.[A-Za-z0-9_\-]{6}\.[A-Za-z0-9_\-]{27,38})(?:$|[^A-Za-z0-9_\-])",
            ),
            long_tokens: Lazy::new(concat!(
                r"\b[A-Za-z0-9]{14}\.atlasv1\.[A-Za-z0-9_=\-]{60,70}\b",
                r"|\beyJrIjoi[A-Za-z0-9]{70,400}={0,2}",
                r"|\b(?:FwoGZXIvYXdzE|IQoJb3JpZ2luX2Vj)[A-Za-z0-9/+=]{100,}",
                r"|\b1//0[A-Za-z0-9_\-]{74,}",
                r"|\bpat[A-Za-z0-9]{14}\.[0-9a-f]{64}\b",
                r"|\bAAAAAAAAAAAAAAAAAAAA[A-Za-z0-9%]{50,}",
            )),
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
            out = self.private_keys(out, summary);
        }
        if t & T_URL != 0 && (self.on(Rule::UrlCredentials) || self.on(Rule::SensitiveQuery)) {
            out = self.urls(out, keys, summary);
        }
        if t & T_JWT != 0 && self.on(Rule::Jwt) {
            out = self.jwts(out, summary);
        }
        if t & T_AUTH != 0 && self.on(Rule::AuthCredential) {
            out = self.auth_credentials(out, summary);
        }
        if t & T_API_KEY != 0 && self.on(Rule::ApiKey) {
            out = self.api_keys(out, summary);
        }
        if t & T_BOT != 0 && self.on(Rule::ApiKey) {
            out = self.bot_tokens(out, summary);
        }
        if t & (T_AZURE_SECRET | T_MAILCHIMP | T_HEX_KEY | T_LONG | T_DISCORD) != 0
            && self.on(Rule::ApiKey)
        {
            out = self.vendor_secrets(out, t, summary);
        }
        if t & T_KEYWORD != 0 && self.on(Rule::InlineSecret) {
            out = self.named_secrets(out, keys, summary);
        }
        // Before the prose rule: the user's name is kept, the password alone masked.
        if t & T_PROSE != 0 && self.on(Rule::InlineSecret) && out.contains('/') {
            out = self.credential_pairs(out, summary);
        }
        if t & T_PROSE != 0 && self.on(Rule::InlineSecret) {
            out = self.prose_secrets(out, summary);
        }
        if t & T_CLI != 0 && self.on(Rule::InlineSecret) {
            out = self.cli_passwords(out, summary);
        }
        if t & T_MARKUP != 0 && self.on(Rule::InlineSecret) {
            out = self.markup_secrets(out, keys, summary);
        }
        if t & T_EMAIL != 0 && self.on(Rule::Email) {
            out = self.emails(out, summary);
        }
        if t & T_DIGITS != 0 && self.on(Rule::PaymentCard) {
            out = self.cards(out, summary);
        }
        if t & T_DIGITS != 0 && self.on(Rule::Ssn) {
            out = self.ssns(out, summary);
        }
        // Cards and SSNs masked above may have taken the digits a number needed.
        let phone_still = t & T_PHONE != 0
            && (matches!(out, Cow::Borrowed(_))
                || longest_phone_run(out.as_bytes()) >= MIN_PHONE_DIGITS);
        if phone_still && self.on(Rule::Phone) {
            out = self.phones(out, summary);
        }
        if t & T_IP != 0 && self.on(Rule::Ip) {
            out = self.ips(out, summary);
        }
        if t & T_PERCENT != 0 && decode > 0 {
            out = self.scan_percent_encoded(out, keys, summary, decode - 1);
        }
        self.custom_patterns(out, summary)
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
            &det.bot,
            &det.azure_secret,
            &det.mailchimp,
            &det.hex_keys,
            &det.long_tokens,
            &det.discord,
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
            (
                det.pem_start.find(bytes).is_some() || det.putty_start.find(bytes).is_some(),
                T_PEM,
            ),
            (det.url_scheme.find(bytes).is_some(), T_URL),
            (det.jwt_start.find(bytes).is_some(), T_JWT),
            (det.bot_start.find(bytes).is_some(), T_BOT),
            (det.azure_start.find(bytes).is_some(), T_AZURE_SECRET),
            (det.has_mailchimp_shape(bytes), T_MAILCHIMP),
            (det.has_hex_key_shape(bytes), T_HEX_KEY),
            (det.long_literals.is_match(bytes), T_LONG),
            (has_discord_shape(bytes), T_DISCORD),
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
            let classes: [Class; 12] = [
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
                (C_TILDE, |b| b == b'~'),
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
                "token ", "PIN ", "-u ", "a1", "'", "#", "9876", ":AA", "12345678", "Q~", "~",
                "-us", "0123456789abcdef0123456789abcdef", "-us2", "dapi", ".atlasv1.",
                "eyJrIjoi", "1//0", "pat", "SK", ".abcdef.", "MTIzNDU2Nzg5MDEyMzQ1Njc4",
                "key-", "EAAA", "LTAI", "PuTTY-User-Key-File-",
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
            // A bot token needs its bot's id before the `:AA`.
            if text.bytes().filter(u8::is_ascii_digit).count() < MIN_BOT_ID_DIGITS {
                expected &= !T_BOT;
            }
            // An Entra ID secret has a digit, a Mailchimp key several.
            let digits = text.bytes().filter(u8::is_ascii_digit).count();
            if digits == 0 {
                expected &= !T_AZURE_SECRET;
            }
            if digits < MIN_HEX_KEY_DIGITS {
                expected &= !(T_MAILCHIMP | T_HEX_KEY);
            }
            // A long token is long.
            if text.len() < MIN_LONG_TOKEN {
                expected &= !T_LONG;
            }
            if text.len() < MIN_DISCORD_TOKEN {
                expected &= !T_DISCORD;
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
