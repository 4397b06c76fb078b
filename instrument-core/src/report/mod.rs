//! Spans a worker reports about its own execution, and the rules a server applies to
//! them before they become part of a workflow's trace.
//!
//! Workers hold no collector credentials. They record their execution spans (running a
//! workflow or task, timers, child workflows, promises, their outgoing calls) and send
//! them to the workflow server, which checks each against [`ReportRules`] and records
//! the ones it accepts as real spans of the workflow's trace (`instrument-tower`'s
//! `proxy::SpanProxy`). With the feature `report`, [`SpanCollector`] is the worker's
//! half: it records, batches and sends them.
//!
//! What the rules refuse, per span, and why ([`Refusal`]):
//!
//! | reason | when |
//! |---|---|
//! | `too_many_spans` | past the first [`ReportRules::max_spans`] (100) spans of one report |
//! | `malformed_id` | a span id that is not 16 lower-case hex digits, or is zero; a bad parent id, or the span's own |
//! | `duplicate_id` | a span id already used earlier in the same report |
//! | `unknown_type` | a span type not on the allow-list |
//! | `end_before_start` | an end before the start |
//! | `in_the_future` | a start or end later than now plus the allowed clock skew (60 s) |
//! | `before_workflow` | a start before the workflow started (less the skew), or older than [`ReportRules::max_age`] when the workflow's start is not known |
//! | `unknown_workflow` | no workflow with that id (the server's lookup) |
//! | `other_tenant` | the workflow belongs to another tenant than the reporter |
//! | `lookup_failed` | the server could not look the workflow up (retry later) |
//!
//! An attribute whose key is not on the allow-list, or whose value is larger than
//! [`ReportRules::max_raw_value`], is left out and named in the span's verdict; the
//! span is still recorded. Every value that is kept goes through the redactor and is
//! cut at [`ReportRules::max_value`]; an error message is cut at 1 KiB.
//!
//! ```
//! use std::time::{Duration, SystemTime};
//! use instrument_core::report::{ExecutionSpan, Refusal, ReportRules};
//!
//! let rules = ReportRules::default();
//! let now = SystemTime::now();
//! let mut span = ExecutionSpan::new("00f067aa0ba902b7", "task.execute", "wf-1", now - Duration::from_secs(2), now);
//! span.attributes.push(("task.type".into(), "charge".into()));
//! span.attributes.push(("card".into(), "4111 1111 1111 1111".into()));
//! let checked = rules.check(&span, now, None).expect("a valid span");
//! assert_eq!(checked.dropped, ["card"]);
//!
//! span.end = span.start - Duration::from_secs(1);
//! assert_eq!(rules.check(&span, now, None).unwrap_err(), Refusal::EndBeforeStart);
//! ```

use std::collections::HashSet;
use std::fmt;
use std::time::{Duration, SystemTime};

use opentelemetry::trace::{SpanId, SpanKind};
use opentelemetry::{KeyValue, Value};

use crate::redact::text::cut_at_char_boundary;
use crate::redact::Redactor;
use crate::semconv::{
    self, MAX_ERROR_LEN, SPAN_CHILD_WORKFLOW, SPAN_HTTP_CLIENT, SPAN_PROMISE, SPAN_RPC_CLIENT,
    SPAN_TASK_EXECUTE, SPAN_TIMER, SPAN_WORKFLOW_EXECUTE, SPAN_WORKFLOW_REPLAY,
};

#[cfg(feature = "report")]
mod collector;
#[cfg(feature = "report")]
pub use collector::{
    Execution, ExecutionBuilder, NoRuntime, Report, SinkError, SpanCollector, SpanCollectorBuilder,
    SpanSink,
};

/// What a reporting worker runs on, recorded on every span it reports as `sdk.language`,
/// `sdk.version`, `sdk.os` and `sdk.arch`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SdkInfo {
    /// `rust`, `python`, ...
    pub language: String,
    /// The SDK's version.
    pub version: String,
    /// `linux`, `macos`, ...
    pub os: String,
    /// `x86_64`, `aarch64`, ...
    pub arch: String,
}

impl SdkInfo {
    /// A Rust SDK of `version` on this machine's OS and architecture.
    pub fn rust(version: &str) -> Self {
        Self {
            language: "rust".to_owned(),
            version: version.to_owned(),
            os: std::env::consts::OS.to_owned(),
            arch: std::env::consts::ARCH.to_owned(),
        }
    }
}

/// One span a worker reports (the `ExecutionSpan` message of the worker protocol, `docs/worker-protocol.md`). Plain data:
/// nothing in it has been checked.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExecutionSpan {
    /// 16 lower-case hex digits; the span keeps this id, so spans other services made
    /// under it (the callee of an outgoing call) stay attached.
    pub span_id: String,
    /// The parent's span id (16 hex digits), empty for a span directly under the
    /// workflow's stored span.
    pub parent_span_id: String,
    /// What the span is: one of the allow-list (`task.execute`, `http.client`, ...).
    pub span_type: String,
    /// The span's name, for client spans (`GET`, `package.Service/Method`); empty: the
    /// type.
    pub name: String,
    /// The workflow whose trace the span belongs to.
    pub workflow_id: String,
    /// The task it ran, if any.
    pub task_id: String,
    /// When it started.
    pub start: SystemTime,
    /// When it ended.
    pub end: SystemTime,
    /// Why it failed, if it did.
    pub error: Option<String>,
    /// Its attributes, as text.
    pub attributes: Vec<(String, String)>,
}

impl ExecutionSpan {
    /// A span of `span_type` with id `span_id` in `workflow_id`'s trace, from `start` to
    /// `end`, with nothing else.
    pub fn new(
        span_id: &str,
        span_type: &str,
        workflow_id: &str,
        start: SystemTime,
        end: SystemTime,
    ) -> Self {
        Self {
            span_id: span_id.to_owned(),
            parent_span_id: String::new(),
            span_type: span_type.to_owned(),
            name: String::new(),
            workflow_id: workflow_id.to_owned(),
            task_id: String::new(),
            start,
            end,
            error: None,
            attributes: Vec::new(),
        }
    }
}

/// Why a reported span was refused (see the [module docs](self)).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Refusal {
    /// Past the report's span limit.
    TooManySpans,
    /// A span or parent id that is not 16 lower-case hex digits, or is zero.
    MalformedId,
    /// A span id used earlier in the same report.
    DuplicateId,
    /// A span type not on the allow-list.
    UnknownType,
    /// Ends before it starts.
    EndBeforeStart,
    /// Starts or ends later than now plus the allowed skew.
    InTheFuture,
    /// Starts before its workflow (or longer ago than the maximum age).
    BeforeWorkflow,
    /// No such workflow.
    UnknownWorkflow,
    /// The workflow belongs to another tenant.
    OtherTenant,
    /// The workflow could not be looked up.
    LookupFailed,
}

impl Refusal {
    /// The reason as a metric label and in the response: `too_many_spans`, ...
    pub fn as_str(self) -> &'static str {
        match self {
            Self::TooManySpans => "too_many_spans",
            Self::MalformedId => "malformed_id",
            Self::DuplicateId => "duplicate_id",
            Self::UnknownType => "unknown_type",
            Self::EndBeforeStart => "end_before_start",
            Self::InTheFuture => "in_the_future",
            Self::BeforeWorkflow => "before_workflow",
            Self::UnknownWorkflow => "unknown_workflow",
            Self::OtherTenant => "other_tenant",
            Self::LookupFailed => "lookup_failed",
        }
    }
}

impl fmt::Display for Refusal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The verdict on one reported span, in the order they were reported.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SpanVerdict {
    /// Recorded; the attribute keys left out, if any.
    Accepted {
        /// Keys left out (not on the allow-list, or values too large), as reported but
        /// redacted and cut at 64 bytes.
        dropped: Vec<String>,
    },
    /// Not recorded, and why.
    Refused(Refusal),
}

/// A span that passed the checks, ready to record.
#[derive(Debug, Clone, PartialEq)]
pub struct CheckedSpan {
    /// Its id.
    pub span_id: SpanId,
    /// Its parent's id, when it named one.
    pub parent_span_id: Option<SpanId>,
    /// Its name: the type, or for a client span its checked name.
    pub name: String,
    /// `Client` for `http.client` and `rpc.client`, else `Internal`.
    pub kind: SpanKind,
    /// Its attributes: the allowed ones (redacted, cut), `workflow.id`, `task.id`.
    pub attributes: Vec<KeyValue>,
    /// The error, redacted and cut at 1 KiB.
    pub error: Option<String>,
    /// Keys left out.
    pub dropped: Vec<String>,
}

/// The rules reported spans are checked against (see the [module docs](self)).
#[derive(Debug, Clone)]
pub struct ReportRules {
    span_types: HashSet<String>,
    attribute_keys: HashSet<String>,
    /// Spans per report (default 100).
    pub max_spans: usize,
    /// Allowed clock difference between worker and server (default 60 s).
    pub skew: Duration,
    /// Oldest start accepted when the workflow's own start is not known (default 31
    /// days).
    pub max_age: Duration,
    /// Longest attribute value kept, after redaction (default 4 KiB).
    pub max_value: usize,
    /// An attribute value longer than this is left out unread (default 64 KiB).
    pub max_raw_value: usize,
    redactor: Option<Redactor>,
}

/// Attribute keys whose values are numbers.
const INTEGER_KEYS: &[&str] = &[
    semconv::HTTP_RESPONSE_STATUS_CODE,
    semconv::SERVER_PORT,
    semconv::RPC_GRPC_STATUS_CODE,
    semconv::EXECUTION_COUNT,
];

/// The attribute keys allowed by default.
pub const DEFAULT_ATTRIBUTE_KEYS: &[&str] = &[
    semconv::TASK_TYPE,
    semconv::TASK_QUEUE,
    semconv::WORKER_ID,
    semconv::WORKFLOW_KIND,
    semconv::TIMER_ID,
    semconv::CHILD_ID,
    semconv::CHILD_KIND,
    semconv::PROMISE_ID,
    semconv::PROMISE_NAME,
    semconv::EXECUTION_COUNT,
    semconv::ERROR_TYPE,
    semconv::CANCELLED,
    semconv::HTTP_REQUEST_METHOD,
    semconv::HTTP_RESPONSE_STATUS_CODE,
    semconv::URL_FULL,
    semconv::SERVER_ADDRESS,
    semconv::SERVER_PORT,
    semconv::RPC_SYSTEM,
    semconv::RPC_SYSTEM_NAME,
    semconv::RPC_SERVICE,
    semconv::RPC_METHOD,
    semconv::RPC_GRPC_STATUS_CODE,
    semconv::RPC_RESPONSE_STATUS_CODE,
    semconv::STORED_PARENT_UNUSED,
];

/// The span types allowed by default.
pub const DEFAULT_SPAN_TYPES: &[&str] = &[
    SPAN_WORKFLOW_EXECUTE,
    SPAN_WORKFLOW_REPLAY,
    SPAN_TASK_EXECUTE,
    SPAN_TIMER,
    SPAN_CHILD_WORKFLOW,
    SPAN_PROMISE,
    SPAN_HTTP_CLIENT,
    SPAN_RPC_CLIENT,
];

/// The longest dropped key named in a verdict, and how many are named.
const MAX_DROPPED_KEY: usize = 64;
const MAX_DROPPED_KEYS: usize = 16;
/// The longest client span name and SDK field kept.
const MAX_NAME: usize = 256;
const MAX_SDK_FIELD: usize = 64;

impl Default for ReportRules {
    fn default() -> Self {
        Self {
            span_types: DEFAULT_SPAN_TYPES.iter().map(|&t| t.to_owned()).collect(),
            attribute_keys: DEFAULT_ATTRIBUTE_KEYS
                .iter()
                .map(|&k| k.to_owned())
                .collect(),
            max_spans: 100,
            skew: Duration::from_secs(60),
            max_age: Duration::from_secs(31 * 24 * 3600),
            max_value: 4096,
            max_raw_value: 64 * 1024,
            redactor: None,
        }
    }
}

/// 16 lower-case hex digits, not all zero.
fn span_id(text: &str) -> Option<SpanId> {
    let valid = text.len() == 16 && text.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'));
    let id = SpanId::from_hex(text).ok().filter(|_| valid)?;
    (id != SpanId::INVALID).then_some(id)
}

impl ReportRules {
    /// Allows these span types instead of [`DEFAULT_SPAN_TYPES`].
    pub fn span_types<I: IntoIterator<Item = S>, S: Into<String>>(mut self, types: I) -> Self {
        self.span_types = types.into_iter().map(Into::into).collect();
        self
    }

    /// Allows these attribute keys instead of [`DEFAULT_ATTRIBUTE_KEYS`].
    pub fn attribute_keys<I: IntoIterator<Item = S>, S: Into<String>>(mut self, keys: I) -> Self {
        self.attribute_keys = keys.into_iter().map(Into::into).collect();
        self
    }

    /// Redacts with `redactor` instead of the process-wide one.
    pub fn redactor(mut self, redactor: Redactor) -> Self {
        self.redactor = Some(redactor);
        self
    }

    /// The redactor values go through.
    pub fn redactor_in_use(&self) -> &Redactor {
        self.redactor
            .as_ref()
            .unwrap_or_else(|| crate::redact::global())
    }

    fn clean(&self, key: &str, value: &str, max: usize) -> String {
        let clean = self.redactor_in_use().redact_attribute(key, value);
        cut_at_char_boundary(&clean, max).to_owned()
    }

    /// Checks `span` at time `now`, for a workflow that started at `workflow_start`
    /// (when known). The workflow's owner is not checked here: that needs the lookup.
    pub fn check(
        &self,
        span: &ExecutionSpan,
        now: SystemTime,
        workflow_start: Option<SystemTime>,
    ) -> Result<CheckedSpan, Refusal> {
        let id = span_id(&span.span_id).ok_or(Refusal::MalformedId)?;
        let parent = match span.parent_span_id.as_str() {
            "" => None,
            // A span cannot be its own parent.
            text if text == span.span_id => return Err(Refusal::MalformedId),
            text => Some(span_id(text).ok_or(Refusal::MalformedId)?),
        };
        if !self.span_types.contains(&span.span_type) {
            return Err(Refusal::UnknownType);
        }
        if span.end < span.start {
            return Err(Refusal::EndBeforeStart);
        }
        let latest = now + self.skew;
        if span.start > latest || span.end > latest {
            return Err(Refusal::InTheFuture);
        }
        let earliest = match workflow_start {
            Some(start) => start.checked_sub(self.skew),
            None => now.checked_sub(self.max_age),
        };
        if earliest.is_some_and(|earliest| span.start < earliest) {
            return Err(Refusal::BeforeWorkflow);
        }
        let (name, kind) = self.name(span);
        let mut attributes = Vec::with_capacity(span.attributes.len() + 2);
        attributes.push(KeyValue::new(
            semconv::WORKFLOW_ID,
            self.clean(semconv::WORKFLOW_ID, &span.workflow_id, MAX_NAME),
        ));
        if !span.task_id.is_empty() {
            attributes.push(KeyValue::new(
                semconv::TASK_ID,
                self.clean(semconv::TASK_ID, &span.task_id, MAX_NAME),
            ));
        }
        let mut dropped = Vec::new();
        for (key, value) in &span.attributes {
            let allowed = self.attribute_keys.contains(key)
                && key != semconv::WORKFLOW_ID
                && key != semconv::TASK_ID;
            if !allowed || value.len() > self.max_raw_value {
                if dropped.len() < MAX_DROPPED_KEYS {
                    dropped.push(self.clean("key", key, MAX_DROPPED_KEY));
                }
                continue;
            }
            let key = opentelemetry::Key::new(key.clone());
            let value = match value.parse::<i64>() {
                Ok(n) if INTEGER_KEYS.contains(&key.as_str()) => Value::I64(n),
                _ => Value::from(self.clean(key.as_str(), value, self.max_value)),
            };
            attributes.push(KeyValue::new(key, value));
        }
        // A 10 MB message is not scanned whole: what is past the raw limit is cut first
        // (and the cut at 1 KiB drops it anyway).
        let error = span.error.as_deref().map(|e| {
            let head = cut_at_char_boundary(e, self.max_raw_value);
            self.clean(semconv::ERROR, head, MAX_ERROR_LEN)
        });
        Ok(CheckedSpan {
            span_id: id,
            parent_span_id: parent,
            name,
            kind,
            attributes,
            error,
            dropped,
        })
    }

    /// The span's name and kind: the type, or for a client span its reported name when
    /// it has the shape of one (an HTTP method, `package.Service/Method`).
    fn name(&self, span: &ExecutionSpan) -> (String, SpanKind) {
        let reported = span.name.as_str();
        match span.span_type.as_str() {
            SPAN_HTTP_CLIENT => {
                let known = [
                    "GET", "POST", "PUT", "DELETE", "PATCH", "HEAD", "OPTIONS", "CONNECT", "TRACE",
                ];
                let name = if known.contains(&reported) {
                    reported
                } else {
                    "HTTP"
                };
                (name.to_owned(), SpanKind::Client)
            }
            SPAN_RPC_CLIENT => {
                let shaped = reported.len() <= MAX_NAME
                    && reported.split_once('/').is_some_and(|(service, method)| {
                        !service.is_empty() && !method.is_empty() && !method.contains('/')
                    });
                let name = if shaped {
                    self.clean(semconv::RPC_METHOD, reported, MAX_NAME)
                } else {
                    semconv::OTHER.to_owned()
                };
                (name, SpanKind::Client)
            }
            other => (other.to_owned(), SpanKind::Internal),
        }
    }

    /// The attributes recording `sdk`: each field redacted and cut at 64 bytes; empty
    /// fields left out.
    pub fn sdk_attributes(&self, sdk: &SdkInfo) -> Vec<KeyValue> {
        [
            (semconv::SDK_LANGUAGE, &sdk.language),
            (semconv::SDK_VERSION, &sdk.version),
            (semconv::SDK_OS, &sdk.os),
            (semconv::SDK_ARCH, &sdk.arch),
        ]
        .into_iter()
        .filter(|(_, value)| !value.is_empty())
        .map(|(key, value)| {
            // A field of more than 1 KiB is nobody's version string: cut before the scan.
            let head = cut_at_char_boundary(value, 1024);
            KeyValue::new(key, self.clean(key, head, MAX_SDK_FIELD))
        })
        .collect()
    }
}

#[cfg(test)]
mod tests;
