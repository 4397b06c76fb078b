//! What the [`Redactor`](super::Redactor) masks: keys, value rules, limits.

use std::fmt;

use serde::{Deserialize, Serialize};

/// One redaction rule. Each can be switched off (or, for [`Rule::Ip`], on) in a
/// [`RedactionPolicy`], and the [`RedactionSummary`](super::RedactionSummary) counts
/// masks per rule.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum Rule {
    /// The value of a sensitive key (`password`, `db_password`, `X-Api-Key`, ...).
    SensitiveKey,
    /// `key=value` or `"key": "value"` with a sensitive key, inside free text.
    InlineSecret,
    /// E-mail addresses.
    Email,
    /// Payment card numbers that pass the Luhn check; the last four digits are kept.
    PaymentCard,
    /// API keys with a well-known prefix (`sk_live_`, `ghp_`, `xoxb-`, `AKIA`, ...); the prefix is kept.
    /// Telegram bot tokens too (`<bot id>:AA...`; the bot's id is kept), Microsoft Entra
    /// ID client secrets (`...8Q~...`), Databricks tokens (`dapi` kept), Mailchimp
    /// keys (their `-us<n>` kept), Twilio API keys (`SK` kept), Terraform Cloud tokens
    /// (`<id>.atlasv1.<secret>`), Grafana API keys, AWS STS session tokens, Google OAuth
    /// refresh tokens, Airtable personal access tokens, X (Twitter) app bearer tokens
    /// and Discord bot tokens (`<bot id in base64>.<time>.<secret>`).
    ApiKey,
    /// `Bearer` / `Basic` credentials; the scheme is kept.
    AuthCredential,
    /// JSON Web Tokens.
    Jwt,
    /// PEM private-key blocks and PuTTY key files.
    PrivateKey,
    /// User information in URLs (`https://user:pass@host`).
    UrlCredentials,
    /// Sensitive URL query or fragment parameters (`?token=...`).
    SensitiveQuery,
    /// US social security numbers.
    Ssn,
    /// IPv4 and IPv6 addresses (off by default).
    Ip,
    /// Telephone numbers: international (`+44 20 7946 0958`, `+14155552671`), North
    /// American (`(415) 555-2671`, `415-555-2671`) and national forms with a trunk `0`
    /// (`020 7946 0958`, `07700 900123`). On by default; switch it off like any rule.
    Phone,
    /// JSON inside a string is sanitised structurally (keys and values, any depth).
    JsonStructure,
    /// A user-supplied pattern.
    Custom,
    /// A value over the scan limit was cut (always on: unscanned text never passes).
    Oversized,
}

impl Rule {
    /// Every rule, in summary order.
    pub const ALL: [Rule; 16] = [
        Rule::SensitiveKey,
        Rule::InlineSecret,
        Rule::Email,
        Rule::PaymentCard,
        Rule::ApiKey,
        Rule::AuthCredential,
        Rule::Jwt,
        Rule::PrivateKey,
        Rule::UrlCredentials,
        Rule::SensitiveQuery,
        Rule::Ssn,
        Rule::Ip,
        Rule::Phone,
        Rule::JsonStructure,
        Rule::Custom,
        Rule::Oversized,
    ];

    /// The rule's name as used in policy files (`payment_card`, ...).
    pub fn name(self) -> &'static str {
        match self {
            Rule::SensitiveKey => "sensitive_key",
            Rule::InlineSecret => "inline_secret",
            Rule::Email => "email",
            Rule::PaymentCard => "payment_card",
            Rule::ApiKey => "api_key",
            Rule::AuthCredential => "auth_credential",
            Rule::Jwt => "jwt",
            Rule::PrivateKey => "private_key",
            Rule::UrlCredentials => "url_credentials",
            Rule::SensitiveQuery => "sensitive_query",
            Rule::Ssn => "ssn",
            Rule::Ip => "ip",
            Rule::Phone => "phone",
            Rule::JsonStructure => "json_structure",
            Rule::Custom => "custom",
            Rule::Oversized => "oversized",
        }
    }

    pub(crate) fn index(self) -> usize {
        self as usize
    }

    const fn bit(self) -> u32 {
        1 << self as u32
    }
}

impl fmt::Display for Rule {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// Key words whose presence in a key marks its value as sensitive. Matching ignores
/// case and separators, so `api_key` also matches `X-Api-Key`, `apiKey` and
/// `stripe_api_key`; words shorter than five letters (`ssn`, `pin`, `cvv`) must stand as
/// a whole word (`user_ssn`, not `classname`).
pub const DEFAULT_SENSITIVE_KEYS: &[&str] = &[
    "password",
    "passwd",
    "pass",
    "pwd",
    "passphrase",
    "secret",
    "token",
    "api_key",
    "access_key",
    "private_key",
    "encryption_key",
    "signing_key",
    "master_key",
    "authorization",
    "auth",
    "cookie",
    "session",
    "credential",
    "account_key",
    "credit_card",
    "card_number",
    "cvv",
    "cvc",
    "ssn",
    "pin",
    "otp",
    "signature",
    "sig",
];

/// Prefixes of well-known API keys and tokens; the prefix is kept, the rest masked.
/// At least eight characters of `A-Z a-z 0-9 _ -` must follow (and dotted parts after
/// them are part of the key, as in SendGrid's `SG.<id>.<secret>`), and they must look
/// random: a run of letters and digits of 8 or more with a digit before a letter (or
/// all digits), of 16 or more with a digit or a case change every fourth character, or
/// of 24 or more. So `npm_package_version`, `ASIA-SOUTHEAST1` and `hf_hub_download`,
/// names that start like a key, are left as they are. A prefix a policy adds with
/// [`RedactionPolicy::api_key_prefix`] masks whatever follows it. Stripe (`sk_live_`,
/// `rk_live_`, `whsec_`), GitHub (`ghp_`, `github_pat_`, ...), GitLab (`glpat-`,
/// `glptt-`, ...), Slack (`xoxb-`, `xoxp-`, `xapp-`, ...), AWS (`AKIA`, `ASIA`),
/// Google (`AIza`, `ya29.`), OpenAI and Anthropic (`sk-`), Hugging Face (`hf_`), npm,
/// PyPI, SendGrid, DigitalOcean, Shopify, Postman, Linear, HashiCorp Vault, Doppler,
/// Sentry, New Relic, Grafana, Docker Hub, PlanetScale, RubyGems, Figma, Square,
/// Atlassian, age (`AGE-SECRET-KEY-1`), Flutterwave (`FLWSECK-`, `FLWSECK_TEST-`),
/// Google OAuth client secrets (`GOCSPX-`), Alibaba Cloud (`LTAI`), Square and Facebook
/// access tokens (`EAAA`, `EAAC`, `EAAM`), Adafruit IO (`aio_`), Dynatrace (`dt0c01.`),
/// Notion (`ntn_`, `secret_`), Mailgun (`key-`), Pulumi (`pul-`), 1Password service
/// accounts (`ops_`), Clojars, Dropbox (`sl.`), Duffel, EasyPost (`EZAK`, `EZTK`),
/// Frame.io (`fio-u-`), Hugging Face organisations (`api_org_`), Infracost (`ico-`),
/// Mapbox (`pk.`, `sk.`), Prefect (`pnu_`), ReadMe (`rdme_`), Brevo (`xkeysib-`),
/// Shippo, Typeform (`tfp_`), Plaid (`access-production-`, ...), Scalingo (`tk-us-`),
/// Yandex Cloud (`AQVN`) and LaunchDarkly (`api-`, `sdk-`).
///
/// `key-`, `secret_`, `pul-`, `api-`, `sdk-`, `pk.` and `sk.` also begin ordinary
/// names (`key-value-store-01234567`, `secret_rotation_2024`, `api-gateway-7f3a9b2c`,
/// `pk.a1b2c3d4`): after them only the vendor's exact shape is masked (32 lowercase hex
/// digits after `key-`, 40 after `pul-`, 43 letters and digits after `secret_`, a UUID
/// after `api-` and `sdk-`, base64 JSON after `pk.` and `sk.`), not whatever looks
/// random.
pub const DEFAULT_API_KEY_PREFIXES: &[&str] = &[
    "sk_live_",
    "sk_test_",
    "rk_live_",
    "rk_test_",
    "whsec_",
    "ghp_",
    "gho_",
    "ghu_",
    "ghs_",
    "ghr_",
    "github_pat_",
    "glpat-",
    "xoxb-",
    "xoxp-",
    "xoxa-",
    "xoxr-",
    "xoxs-",
    "xapp-",
    "AKIA",
    "ASIA",
    "AIza",
    "sk-ant-",
    "sk-proj-",
    "npm_",
    "pypi-",
    "SG.",
    "dop_v1_",
    "doo_v1_",
    "dor_v1_",
    "shpat_",
    "shpss_",
    "shpca_",
    "shppa_",
    "hf_",
    "sk-",
    "ya29.",
    "xoxc-",
    "xoxd-",
    "xoxe-",
    "xoxe.",
    "glptt-",
    "gldt-",
    "glrt-",
    "glsoat-",
    "glc_",
    "glsa_",
    "PMAK-",
    "lin_api_",
    "hvs.",
    "hvb.",
    "dp.pt.",
    "dp.st.",
    "sntrys_",
    "sntryu_",
    "NRAK-",
    "dckr_pat_",
    "pscale_tkn_",
    "pscale_pw_",
    "rubygems_",
    "figd_",
    "sq0atp-",
    "sq0csp-",
    "ATATT",
    "AGE-SECRET-KEY-1",
    "FLWSECK-",
    "FLWSECK_TEST-",
    "GOCSPX-",
    "LTAI",
    "EAAA",
    "EAAC",
    "EAAM",
    "aio_",
    "dt0c01.",
    "ntn_",
    "secret_",
    "key-",
    "pul-",
    "ops_",
    "CLOJARS_",
    "sl.",
    "duffel_live_",
    "duffel_test_",
    "EZAK",
    "EZTK",
    "fio-u-",
    "api_org_",
    "ico-",
    "pk.",
    "sk.",
    "NRJS-",
    "NRII-",
    "pnu_",
    "rdme_",
    "xkeysib-",
    "shippo_live_",
    "shippo_test_",
    "tfp_",
    "access-production-",
    "access-sandbox-",
    "access-development-",
    "tk-us-",
    "AQVN",
    "api-",
    "sdk-",
];

/// Everything a [`Redactor`](super::Redactor) is built from. `Default` is a policy good
/// enough to ship; every list can be added to, keys and values can be allowed, and
/// every rule can be switched off.
///
/// It deserialises from any serde format (unknown fields are an error, so a typo does
/// not silently weaken the policy), and from TOML text with the `toml` feature:
///
/// ```
/// use instrument_core::redact::{RedactionPolicy, Rule};
///
/// let policy = RedactionPolicy::default()
///     .deny_key("tenant_secret_hint")
///     .allow_key("token_count")
///     .api_key_prefix("acme_")
///     .disable(Rule::Email)
///     .enable(Rule::Ip);
/// assert!(!policy.is_enabled(Rule::Email));
/// assert!(policy.is_enabled(Rule::Ip));
/// ```
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
#[non_exhaustive]
pub struct RedactionPolicy {
    /// Text that replaces a masked value.
    pub replacement: String,
    /// Start from [`DEFAULT_SENSITIVE_KEYS`] (else only `sensitive_keys` count).
    pub default_keys: bool,
    /// Extra sensitive key words.
    pub sensitive_keys: Vec<String>,
    /// Keys never treated as sensitive by the key rule (their values are still scanned).
    /// An entry matches the whole key or its last `.`-separated segment, ignoring case
    /// and separators: `token_count` allows `llm.usage.token_count`.
    pub allowed_keys: Vec<String>,
    /// Exact values that are never masked (for example a documented test card).
    pub allowed_values: Vec<String>,
    /// Start from [`DEFAULT_API_KEY_PREFIXES`].
    pub default_api_key_prefixes: bool,
    /// Extra API key prefixes (at least 8 more characters must follow to match).
    pub api_key_prefixes: Vec<String>,
    /// Extra patterns (regular expressions) whose matches are masked.
    pub patterns: Vec<CustomPattern>,
    /// Rules switched on in addition to the defaults (only [`Rule::Ip`] is off by
    /// default: addresses are operational data more often than personal data).
    pub enable: Vec<Rule>,
    /// Rules switched off.
    pub disable: Vec<Rule>,
    /// Longest value scanned, in bytes; a longer one is cut there (and marked) before scanning.
    pub max_scan_bytes: usize,
    /// Deepest JSON nesting sanitised structurally; deeper JSON is masked as a whole.
    pub max_json_depth: usize,
}

/// A user-supplied pattern for [`RedactionPolicy::patterns`].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CustomPattern {
    /// A name for error messages.
    pub name: String,
    /// The regular expression (`regex` crate syntax).
    pub regex: String,
}

/// Default for [`RedactionPolicy::max_scan_bytes`]: 1 MiB. Every rule runs in time
/// linear in the value (`benches/core.rs`, `redact/clean_1mib`), so a log line or body
/// of that size is scanned whole, and kept whole when clean.
pub const DEFAULT_MAX_SCAN_BYTES: usize = 1024 * 1024;
/// Default for [`RedactionPolicy::max_json_depth`].
pub const DEFAULT_MAX_JSON_DEPTH: usize = 32;
/// Default replacement text.
pub const REDACTED: &str = "[REDACTED]";

impl Default for RedactionPolicy {
    fn default() -> Self {
        Self {
            replacement: REDACTED.to_owned(),
            default_keys: true,
            sensitive_keys: Vec::new(),
            allowed_keys: Vec::new(),
            allowed_values: Vec::new(),
            default_api_key_prefixes: true,
            api_key_prefixes: Vec::new(),
            patterns: Vec::new(),
            enable: Vec::new(),
            disable: Vec::new(),
            max_scan_bytes: DEFAULT_MAX_SCAN_BYTES,
            max_json_depth: DEFAULT_MAX_JSON_DEPTH,
        }
    }
}

impl RedactionPolicy {
    /// Adds a sensitive key word.
    pub fn deny_key(mut self, key: impl Into<String>) -> Self {
        self.sensitive_keys.push(key.into());
        self
    }

    /// Allows a key (see [`RedactionPolicy::allowed_keys`]).
    pub fn allow_key(mut self, key: impl Into<String>) -> Self {
        self.allowed_keys.push(key.into());
        self
    }

    /// Allows an exact value.
    pub fn allow_value(mut self, value: impl Into<String>) -> Self {
        self.allowed_values.push(value.into());
        self
    }

    /// Adds an API key prefix: at least eight characters of `A-Z a-z 0-9 _ -` after it
    /// are masked, whatever they look like (the defaults' keys must also look random,
    /// see [`DEFAULT_API_KEY_PREFIXES`]).
    pub fn api_key_prefix(mut self, prefix: impl Into<String>) -> Self {
        self.api_key_prefixes.push(prefix.into());
        self
    }

    /// Adds a custom pattern.
    pub fn pattern(mut self, name: impl Into<String>, regex: impl Into<String>) -> Self {
        self.patterns.push(CustomPattern {
            name: name.into(),
            regex: regex.into(),
        });
        self
    }

    /// Switches a rule on.
    pub fn enable(mut self, rule: Rule) -> Self {
        self.disable.retain(|r| *r != rule);
        self.enable.push(rule);
        self
    }

    /// Switches a rule off. [`Rule::Oversized`] cannot be switched off.
    pub fn disable(mut self, rule: Rule) -> Self {
        self.enable.retain(|r| *r != rule);
        self.disable.push(rule);
        self
    }

    /// Whether `rule` is in force under this policy.
    pub fn is_enabled(&self, rule: Rule) -> bool {
        self.enabled_rules() & rule.bit() != 0
    }

    pub(crate) fn enabled_rules(&self) -> u32 {
        let mut bits = Rule::ALL.iter().fold(0, |acc, r| acc | r.bit()) & !Rule::Ip.bit();
        for r in &self.enable {
            bits |= r.bit();
        }
        for r in &self.disable {
            bits &= !r.bit();
        }
        bits | Rule::Oversized.bit()
    }

    /// Parses a policy from TOML text.
    ///
    /// ```
    /// # #[cfg(feature = "toml")] {
    /// use instrument_core::redact::{RedactionPolicy, Rule};
    ///
    /// let policy = RedactionPolicy::from_toml_str(r#"
    ///     sensitive_keys = ["internal_ref"]
    ///     allowed_keys = ["token_count"]
    ///     disable = ["email"]
    ///     max_scan_bytes = 8192
    ///     [[patterns]]
    ///     name = "order"
    ///     regex = "ORD-[0-9]{6}"
    /// "#)?;
    /// assert!(!policy.is_enabled(Rule::Email));
    /// # }
    /// # Ok::<(), instrument_core::redact::PolicyError>(())
    /// ```
    #[cfg(feature = "toml")]
    pub fn from_toml_str(text: &str) -> Result<Self, PolicyError> {
        toml::from_str(text).map_err(|e| PolicyError::Parse(e.message().to_owned()))
    }
}

/// A policy that cannot be turned into a [`Redactor`](super::Redactor).
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum PolicyError {
    /// A custom pattern does not compile.
    Pattern {
        /// The pattern's name.
        name: String,
        /// The compiler's message.
        message: String,
    },
    /// An empty key word, prefix or replacement.
    Empty(&'static str),
    /// The policy text did not parse.
    Parse(String),
}

impl fmt::Display for PolicyError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Pattern { name, message } => {
                write!(f, "redaction pattern {name:?} does not compile: {message}")
            }
            Self::Empty(what) => write!(f, "redaction policy has an empty {what}"),
            Self::Parse(message) => write!(f, "redaction policy does not parse: {message}"),
        }
    }
}

impl std::error::Error for PolicyError {}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ip_is_off_and_everything_else_on_by_default() {
        let p = RedactionPolicy::default();
        for rule in Rule::ALL {
            assert_eq!(p.is_enabled(rule), rule != Rule::Ip, "{rule}");
        }
    }

    #[test]
    fn oversized_cannot_be_switched_off() {
        assert!(RedactionPolicy::default()
            .disable(Rule::Oversized)
            .is_enabled(Rule::Oversized));
    }

    #[test]
    fn enable_then_disable_keeps_the_last_word() {
        let p = RedactionPolicy::default()
            .enable(Rule::Ip)
            .disable(Rule::Ip);
        assert!(!p.is_enabled(Rule::Ip));
    }

    #[test]
    fn rule_names_match_serde() {
        for rule in Rule::ALL {
            assert_eq!(
                serde_json::to_string(&rule).unwrap(),
                format!("\"{}\"", rule.name())
            );
            assert_eq!(Rule::ALL[rule.index()], rule);
        }
    }

    #[test]
    fn unknown_fields_are_rejected() {
        let err = serde_json::from_str::<RedactionPolicy>(r#"{"sensitive_kyes": ["x"]}"#);
        assert!(err.is_err());
    }

    #[cfg(feature = "toml")]
    #[test]
    fn loads_from_toml() {
        let p = RedactionPolicy::from_toml_str("enable = [\"ip\"]\nreplacement = \"***\"").unwrap();
        assert!(p.is_enabled(Rule::Ip));
        assert_eq!(p.replacement, "***");
        assert!(matches!(
            RedactionPolicy::from_toml_str("enable = [\"nope\"]"),
            Err(PolicyError::Parse(_))
        ));
    }
}
