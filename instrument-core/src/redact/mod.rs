//! Redaction: secrets and personal data masked before telemetry leaves the process.
//!
//! A [`Redactor`] is built once from a [`RedactionPolicy`] and applied at every exit
//! (span attributes, events, status messages, log fields, metric labels, headers).
//! It masks
//! - the values of **sensitive keys**, matched ignoring case and separators and inside
//!   longer names (`db_password`, `X-Api-Key`, `stripeSecretKey`), with an allow-list.
//!   A key whose last word describes a secret rather than holding one (`auth.method`,
//!   `token_type`, `password_min_length`, `api_key_id`) is not sensitive, a plural
//!   (`input_tokens`) holds secrets unless its value is a number, and a value that
//!   reveals nothing (a boolean, `ok`, a placeholder such as `${DB_PASSWORD}` or `$1`)
//!   is kept under any key;
//! - **sensitive values under any key**: e-mail addresses, payment cards (Luhn-checked,
//!   last four kept), API keys and tokens with known prefixes (prefix kept), `Bearer` /
//!   `Basic` / `Token` credentials, JWTs, PEM private keys, URL credentials, webhook
//!   URLs and sensitive query parameters, US SSNs, telephone numbers, and IP addresses
//!   if asked;
//! - **secrets written into text**: `key=value`, `key: value`, `key => value` and
//!   `key := value` pairs in any language's syntax (quoted or not, YAML blocks),
//!   secrets after a key word in prose (`password is hunter2`, `with secret s3cr3t`,
//!   `PIN is 4821`), elements of markup (`<password>...</password>`), name and value
//!   pairs (`key="DbPassword" value="..."`), command lines (`curl -u user:pass`), and
//!   all of these percent-encoded (`Authorization%3A%20Bearer%20...`);
//! - **JSON inside a string**, structurally, at any depth, rewriting only what it masks
//!   (every other byte of the document stays as it was); and [`sanitize_sql`] reduces
//!   SQL to its structure.
//!
//! Plain prose around key words (`password must be 12 characters`, `token expired`),
//! code paths (`auth::token::verify`), source positions (`Token.java:42`) and OIDs are
//! left alone.
//!
//! It fails closed: a value longer than the scan limit (1 MiB by default, scanned in
//! time linear in its length) is cut before scanning, JSON nested deeper than the limit
//! is masked whole. A clean value comes back borrowed, without allocating.
//!
//! Values of up to 64 bytes found clean, and what keys of up to 64 bytes name, are
//! remembered per thread and redactor (two small caches, 10 KiB each per thread), so a
//! value or key that repeats, such as a span name, a route or an attribute key, is
//! decided once; a value with something to mask is scanned every time.
//!
//! ```
//! use std::borrow::Cow;
//! use instrument_core::redact::Redactor;
//!
//! let r = Redactor::default();
//! assert_eq!(r.redact_attribute("db_password", "hunter2"), "[REDACTED]");
//! assert_eq!(r.redact_attribute("api_key", "sk_live_abcd1234efgh"), "sk_live_[REDACTED]");
//! assert_eq!(r.redact_attribute("note", "card 4111-1111-1111-1111"), "card ****-****-****-1111");
//! assert_eq!(
//!     r.redact_attribute("body", r#"{"user":"bob@example.com","password":"x","n":1}"#),
//!     r#"{"user":"[REDACTED]","password":"[REDACTED]","n":1}"#,
//! );
//! assert!(matches!(r.redact_attribute("workflow.kind", "order-fulfilment"), Cow::Borrowed(_)));
//! ```

mod detect;
mod json;
mod keys;
mod memo;
mod policy;
mod prefix;
mod sql;
mod summary;
pub(crate) mod text;

use std::borrow::Cow;
use std::fmt;
use std::str::FromStr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, OnceLock};

pub use policy::{
    CustomPattern, PolicyError, RedactionPolicy, Rule, DEFAULT_API_KEY_PREFIXES,
    DEFAULT_MAX_JSON_DEPTH, DEFAULT_MAX_SCAN_BYTES, DEFAULT_SENSITIVE_KEYS, REDACTED,
};
pub use sql::sanitize_sql;
pub use summary::RedactionSummary;

use detect::Detectors;
use keys::{KeyClass, KeyMatcher};

/// Appended to a value cut at the scan limit.
pub const TRUNCATED_MARKER: &str = "...[TRUNCATED]";

/// A cut at the scan limit moves back to the last separator within this many bytes,
/// so a secret straddling the cut is not left half-visible.
const CUT_BACKTRACK: usize = 4096;

/// Applies a [`RedactionPolicy`]. Cheap to clone (shared), safe to use from any thread.
#[derive(Clone)]
pub struct Redactor {
    inner: Arc<Inner>,
}

struct Inner {
    /// This redactor in the per-thread memos of clean values and sensitive keys.
    id: u64,
    /// A processor removes this redactor's vouch markers.
    vouches_read: AtomicBool,
    /// The matchers, built with the redactor, or for the default policy's (which
    /// always builds) when first used.
    built: OnceLock<Built>,
    max_scan_bytes: usize,
    max_json_depth: usize,
}

/// What a policy compiles to.
struct Built {
    keys: KeyMatcher,
    detectors: Detectors,
}

impl Built {
    fn new(policy: &RedactionPolicy) -> Result<Self, PolicyError> {
        let mut words: Vec<&str> = Vec::new();
        if policy.default_keys {
            words.extend(DEFAULT_SENSITIVE_KEYS);
        }
        words.extend(policy.sensitive_keys.iter().map(String::as_str));
        let keys = KeyMatcher::new(
            words.iter().copied(),
            policy.allowed_keys.iter().map(String::as_str),
        )?;
        let detectors = Detectors::new(policy, &words)?;
        Ok(Self { keys, detectors })
    }
}

impl Inner {
    fn new(policy: &RedactionPolicy, built: OnceLock<Built>) -> Self {
        Self {
            id: memo::next_owner(),
            vouches_read: AtomicBool::new(false),
            built,
            max_scan_bytes: policy.max_scan_bytes.max(64),
            max_json_depth: policy.max_json_depth,
        }
    }

    fn built(&self) -> &Built {
        self.built.get_or_init(|| {
            // Only the default policy's matchers are built on first use, and that
            // policy always builds (test `default_policy_builds`).
            Built::new(&RedactionPolicy::default()).expect("the default redaction policy is valid")
        })
    }

    fn keys(&self) -> &KeyMatcher {
        &self.built().keys
    }

    fn detectors(&self) -> &Detectors {
        &self.built().detectors
    }
}

/// Where a value comes from, which decides how it is read.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Kind {
    /// A span attribute (`key` is the attribute key).
    Attribute,
    /// A structured log field.
    LogField,
    /// An HTTP header or gRPC metadata entry (`key` is its name).
    Header,
    /// A request or response body expected to be JSON.
    JsonBody,
    /// A URL, absolute or relative.
    Url,
    /// SQL text.
    Sql,
}

impl FromStr for Kind {
    type Err = UnknownKind;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Ok(match s {
            "attribute" => Self::Attribute,
            "log_field" => Self::LogField,
            "header" => Self::Header,
            "json_body" => Self::JsonBody,
            "url" => Self::Url,
            "sql" => Self::Sql,
            _ => return Err(UnknownKind),
        })
    }
}

/// A [`Kind`] name that is not one of `attribute`, `log_field`, `header`, `json_body`,
/// `url`, `sql`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct UnknownKind;

impl fmt::Display for UnknownKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("kind must be one of attribute, log_field, header, json_body, url, sql")
    }
}

impl std::error::Error for UnknownKind {}

static GLOBAL: std::sync::OnceLock<Redactor> = std::sync::OnceLock::new();

/// Makes `redactor` the process-wide redactor that `#[workflow_span]` passes recorded
/// values and error texts through. `pipeline::init` installs its own.
///
/// The first redactor installed stays for the life of the process (it is read on hot
/// paths without a lock); a later call gives its redactor back as the error.
///
/// ```
/// use instrument_core::redact::{global, set_global, Redactor};
///
/// let _ = set_global(Redactor::default());
/// assert_eq!(global().redact_attribute("password", "x"), "[REDACTED]");
/// ```
pub fn set_global(redactor: Redactor) -> Result<(), Redactor> {
    GLOBAL.set(redactor)
}

/// The process-wide redactor (see [`set_global`]); the default policy's until one is
/// installed.
pub fn global() -> &'static Redactor {
    GLOBAL.get_or_init(Redactor::default)
}

/// The default policy's redactor. Its matchers are built when it first redacts (about
/// 0.3 ms, once, for the first value redacted): a process holds one from its start
/// (the process-wide one, the pipeline's processor), and building them then touched
/// 1.5 MiB of code pages and 200 KiB of heap that a process serving only sampled-out
/// requests never needs (`benches/README.md`, "What changed, measured (2026-12-07)").
impl Default for Redactor {
    fn default() -> Self {
        Self {
            inner: Arc::new(Inner::new(&RedactionPolicy::default(), OnceLock::new())),
        }
    }
}

impl fmt::Debug for Redactor {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Redactor")
            .field("detectors", &self.inner.built.get().map(|b| &b.detectors))
            .field("max_scan_bytes", &self.inner.max_scan_bytes)
            .finish_non_exhaustive()
    }
}

impl Redactor {
    /// Builds a redactor, compiling every pattern once.
    pub fn new(policy: &RedactionPolicy) -> Result<Self, PolicyError> {
        let built = OnceLock::from(Built::new(policy)?);
        Ok(Self {
            inner: Arc::new(Inner::new(policy, built)),
        })
    }

    /// A marker attribute vouching that a span's name and every attribute before the
    /// marker went through this redactor already (or hold nothing to redact).
    ///
    /// Instrumentation that redacts what it records as it records it (the tower layers
    /// redact headers when they read them, and redact a route's names once for all its
    /// requests) puts the marker after those attributes when it starts the span; a
    /// `RedactingProcessor` (the pipeline's) with the same redactor (or a clone) skips them
    /// instead of scanning them twice, and removes the marker. With another redactor
    /// it scans them anyway: a marker only vouches for its own redactor's policy.
    /// Attributes after the marker, and everything on events and links, are scanned
    /// as always.
    ///
    /// `None` until a `RedactingProcessor` reads this redactor's markers (one was made
    /// with it or a clone): without one, nothing would remove the marker, and it would
    /// be exported.
    ///
    /// ```
    /// # #[cfg(feature = "pipeline")] {
    /// use instrument_core::pipeline::RedactingProcessor;
    /// use instrument_core::redact::Redactor;
    /// use instrument_core::semconv::REDACTED_BY;
    /// use opentelemetry_sdk::trace::{InMemorySpanExporter, SimpleSpanProcessor};
    ///
    /// let redactor = Redactor::default();
    /// assert!(redactor.vouch().is_none());
    /// let exporter = SimpleSpanProcessor::new(InMemorySpanExporter::default());
    /// let _processor = RedactingProcessor::new(redactor.clone(), exporter);
    /// let marker = redactor.vouch().unwrap();
    /// assert_eq!(marker.key.as_str(), REDACTED_BY);
    /// assert!(redactor.vouches_for(&marker.value));
    /// assert!(!Redactor::default().vouches_for(&marker.value));
    /// # }
    /// ```
    pub fn vouch(&self) -> Option<opentelemetry::KeyValue> {
        self.inner.vouches_read.load(Ordering::Relaxed).then(|| {
            opentelemetry::KeyValue::new(crate::semconv::REDACTED_BY, self.inner.id as i64)
        })
    }

    /// Declares that a processor removes this redactor's markers (see
    /// [`Redactor::vouch`]).
    #[cfg_attr(not(feature = "pipeline"), allow(dead_code))]
    pub(crate) fn read_vouches(&self) {
        self.inner.vouches_read.store(true, Ordering::Relaxed);
    }

    /// Whether `self` and `other` are one redactor (one made from the other by
    /// cloning): what one vouches for, the other does.
    pub fn ptr_eq(&self, other: &Redactor) -> bool {
        Arc::ptr_eq(&self.inner, &other.inner)
    }

    /// Whether `marker` (the value of a [`Redactor::vouch`] attribute) was made by this
    /// redactor or a clone of it.
    pub fn vouches_for(&self, marker: &opentelemetry::Value) -> bool {
        matches!(marker, opentelemetry::Value::I64(id) if *id == self.inner.id as i64)
    }

    /// The text that replaces a masked value (`[REDACTED]` by default).
    pub fn replacement(&self) -> &str {
        self.inner.detectors().replacement()
    }

    /// Whether values under `key` are masked whole by the key rule.
    ///
    /// Remembered per thread (see the module docs): meant for the keys code chooses
    /// (span attributes, log fields, headers), a small set seen on every request. Keys
    /// from request data (JSON members) are decided with the matcher directly, so that
    /// keys seen once do not push those out.
    pub fn is_sensitive_key(&self, key: &str) -> bool {
        self.key_class(key).is_sensitive()
    }

    /// What `key` names, remembered per thread (see [`Redactor::is_sensitive_key`]).
    fn key_class(&self, key: &str) -> KeyClass {
        if !self.inner.detectors().on(Rule::SensitiveKey) {
            return KeyClass::Plain;
        }
        let keys = self.inner.keys();
        KeyClass::from_u8(
            memo::SENSITIVE.decided(self.inner.id, key, |key| keys.classify(key) as u8),
        )
    }

    /// Sanitises `value` as read from `kind`, adding what was masked to `summary`: the
    /// one method that does every job ([`Redactor::redact_attribute`],
    /// [`Redactor::redact_value`], [`Redactor::redact_url`] are shorthands).
    /// `key` is the attribute key, field name or header name (ignored for bodies,
    /// URLs and SQL).
    pub fn redact<'a>(
        &self,
        kind: Kind,
        key: &str,
        value: &'a str,
        summary: &mut RedactionSummary,
    ) -> Cow<'a, str> {
        match kind {
            Kind::Attribute | Kind::LogField | Kind::Header => self.keyed(key, value, summary),
            Kind::JsonBody => self.scan_text(value, 0, summary),
            Kind::Url => self.redact_url_counted(value, summary),
            Kind::Sql => {
                // Literals and comments are gone; what is left (keywords, identifiers)
                // is still scanned, so an e-mail used as a table name does not pass.
                let structure = sanitize_sql(value);
                match self.scan_text(&structure, 0, summary) {
                    Cow::Borrowed(_) => structure,
                    Cow::Owned(s) => Cow::Owned(s),
                }
            }
        }
    }

    /// Sanitises a value with no key (scans it with every value rule; a JSON document
    /// is sanitised structurally).
    pub fn redact_value<'a>(&self, value: &'a str) -> Cow<'a, str> {
        self.scan_text(value, 0, &mut RedactionSummary::default())
    }

    /// Sanitises the value of a span attribute, log field, header or gRPC metadata
    /// entry named `key` (`authorization: Bearer x` keeps its scheme). For a count of
    /// what was masked, see [`Redactor::redact`].
    pub fn redact_attribute<'a>(&self, key: &str, value: &'a str) -> Cow<'a, str> {
        self.keyed(key, value, &mut RedactionSummary::default())
    }

    /// Error text as spans record it ([`semconv::ERROR`](crate::semconv::ERROR), status
    /// messages): redacted, then cut to [`MAX_ERROR_LEN`](crate::semconv::MAX_ERROR_LEN)
    /// bytes on a char boundary.
    ///
    /// ```
    /// use instrument_core::redact::Redactor;
    ///
    /// let redactor = Redactor::default();
    /// let text = redactor.error_text("login failed for bob@example.com");
    /// assert!(!text.contains("bob@example.com"));
    /// assert!(redactor.error_text(&"é".repeat(2000)).len() <= 1024);
    /// ```
    pub fn error_text(&self, text: &str) -> String {
        let clean = self.redact_value(text);
        text::cut_at_char_boundary(&clean, crate::semconv::MAX_ERROR_LEN).to_owned()
    }

    /// Sanitises a URL: credentials, sensitive query and fragment parameters, and
    /// anything a value rule finds in the rest.
    pub fn redact_url<'a>(&self, url: &'a str) -> Cow<'a, str> {
        self.redact_url_counted(url, &mut RedactionSummary::default())
    }

    fn redact_url_counted<'a>(&self, url: &'a str, summary: &mut RedactionSummary) -> Cow<'a, str> {
        match self
            .inner
            .detectors()
            .sanitize_url(url, self.inner.keys(), summary)
        {
            None => self.scan_text(url, 0, summary),
            Some(clean) => Cow::Owned(self.scan_text(&clean, 0, summary).into_owned()),
        }
    }

    fn keyed<'a>(&self, key: &str, value: &'a str, summary: &mut RedactionSummary) -> Cow<'a, str> {
        let class = self.key_class(key);
        if class.is_sensitive() {
            let det = self.inner.detectors();
            if det.keeps_under_key(class, value) {
                return Cow::Borrowed(value);
            }
            summary.record(Rule::SensitiveKey);
            return Cow::Owned(det.mask_whole(value));
        }
        self.scan_text(value, 0, summary)
    }

    /// Value rules over free text, JSON first when the text is a JSON document. A short
    /// value found clean is remembered for the thread (see [`memo`]), so a value that
    /// repeats (a span name, a route, an id on two spans) is scanned once.
    fn scan_text<'a>(
        &self,
        value: &'a str,
        depth: usize,
        summary: &mut RedactionSummary,
    ) -> Cow<'a, str> {
        // Nested JSON (depth > 0) is judged by its depth too: not remembered.
        if depth > 0 || value.len() > memo::MAX_LEN {
            return self.scan_unremembered(value, depth, summary);
        }
        let id = self.inner.id;
        let set = match memo::CLEAN.lookup(id, value) {
            memo::Lookup::Known(memo::IS_CLEAN) => return Cow::Borrowed(value),
            memo::Lookup::Unknown(set) => set,
            // (Only clean values are remembered: another verdict does not occur.)
            memo::Lookup::Known(_) | memo::Lookup::Untracked => {
                return self.scan_unremembered(value, depth, summary)
            }
        };
        let masked_before = summary.total();
        let scanned = self.scan_unremembered(value, depth, summary);
        if matches!(scanned, Cow::Borrowed(_)) && summary.total() == masked_before {
            memo::CLEAN.remember(id, set, value, memo::IS_CLEAN);
        }
        scanned
    }

    fn scan_unremembered<'a>(
        &self,
        value: &'a str,
        depth: usize,
        summary: &mut RedactionSummary,
    ) -> Cow<'a, str> {
        match self.cut(value, summary) {
            Cow::Borrowed(v) => self.scan_within_limit(v, depth, summary),
            Cow::Owned(head) => {
                let mut s = self.scan_within_limit(&head, depth, summary).into_owned();
                s.push_str(TRUNCATED_MARKER);
                Cow::Owned(s)
            }
        }
    }

    /// `value` cut to the scan limit (fail closed: what is not scanned is not kept).
    fn cut<'a>(&self, value: &'a str, summary: &mut RedactionSummary) -> Cow<'a, str> {
        let max = self.inner.max_scan_bytes;
        if value.len() <= max {
            return Cow::Borrowed(value);
        }
        summary.record(Rule::Oversized);
        let head = text::cut_at_char_boundary(value, max);
        // Step back to a separator so a token cut in half (a JWT, a card) is dropped
        // rather than left where its detector can no longer recognise it.
        let floor = head.len().saturating_sub(CUT_BACKTRACK);
        let end = head.as_bytes()[floor..]
            .iter()
            .rposition(|b| b.is_ascii_whitespace() || matches!(b, b',' | b';' | b'&'))
            .map_or(head.len(), |p| floor + p + 1);
        Cow::Owned(head[..end].to_owned())
    }

    fn scan_within_limit<'a>(
        &self,
        value: &'a str,
        depth: usize,
        summary: &mut RedactionSummary,
    ) -> Cow<'a, str> {
        let det = self.inner.detectors();
        let trimmed = value.trim_start();
        if det.on(Rule::JsonStructure) && (trimmed.starts_with('{') || trimmed.starts_with('[')) {
            if depth > self.inner.max_json_depth {
                summary.record(Rule::JsonStructure);
                return Cow::Owned(det.replacement().to_owned());
            }
            match self.sanitize_json_text(value, depth, summary) {
                Ok(None) => return Cow::Borrowed(value),
                Ok(Some(clean)) => return Cow::Owned(clean),
                // Not JSON after all: scan it as text below.
                Err(json::NotJson) => {}
            }
        }
        det.scan(value, self.inner.keys(), summary)
    }
}

#[cfg(test)]
mod tests;
