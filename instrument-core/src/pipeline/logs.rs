//! [`JsonLogLayer`]: one redacted JSON object per log event, correlated with traces.

use std::fmt::{self, Write as _};
use std::io::Write as _;

use opentelemetry::trace::TraceContextExt as _;
use serde_json::{Map, Value};
use tracing::field::{Field, Visit};
use tracing::{Event, Subscriber};
use tracing_subscriber::fmt::time::{FormatTime as _, SystemTime};
use tracing_subscriber::fmt::MakeWriter;
use tracing_subscriber::layer::Context;
use tracing_subscriber::Layer;

use crate::context::request_id_from;
use crate::redact::Redactor;
use crate::semconv::TENANT_ID;
use crate::tenant::tenant_from;

/// The log field naming the request being served, when it has an id.
const REQUEST_ID: &str = "request_id";

/// Writes each event as one line of JSON: `timestamp`, `level`, `target`, `message`,
/// the current span's `trace_id` and `span_id`, `tenant.id` and `request_id` when the
/// request has them (the tower layers put tower-http's `x-request-id` in the context,
/// see [`RequestId`](crate::context::RequestId)), and the event's `fields`, every value
/// passed through the [`Redactor`].
///
/// Events also become span events on the current span through the tracing-opentelemetry
/// layer (an ERROR event marks the span as failed), where the pipeline's
/// [`RedactingProcessor`](super::RedactingProcessor) masks them in turn.
///
/// ```text
/// {"timestamp":"2026-11-21T15:05:10.123Z","level":"ERROR","target":"server","message":"login failed for [REDACTED]",
///  "trace_id":"4bf92f3577b34da6a3ce929d0e0e4736","span_id":"00f067aa0ba902b7","tenant.id":"acme","request_id":"5f0c2a9e-8d1b-4c37","fields":{"password":"[REDACTED]"}}
/// ```
#[derive(Debug)]
pub struct JsonLogLayer<W> {
    redactor: Redactor,
    make_writer: W,
}

impl<W> JsonLogLayer<W> {
    /// Logs through `make_writer` (for example `std::io::stderr`).
    pub fn new(redactor: Redactor, make_writer: W) -> Self {
        Self {
            redactor,
            make_writer,
        }
    }
}

impl<S, W> Layer<S> for JsonLogLayer<W>
where
    S: Subscriber,
    W: for<'w> MakeWriter<'w> + 'static,
{
    fn on_event(&self, event: &Event<'_>, _ctx: Context<'_, S>) {
        let mut fields = Fields::new(&self.redactor);
        event.record(&mut fields);

        let mut line = Map::new();
        let mut timestamp = String::new();
        if SystemTime
            .format_time(&mut tracing_subscriber::fmt::format::Writer::new(
                &mut timestamp,
            ))
            .is_ok()
        {
            line.insert("timestamp".into(), Value::String(timestamp));
        }
        let meta = event.metadata();
        line.insert("level".into(), Value::String(meta.level().to_string()));
        line.insert("target".into(), Value::String(meta.target().to_owned()));
        line.insert(
            "message".into(),
            Value::String(fields.message.unwrap_or_default()),
        );
        // The OpenTelemetry layer activates the current span's context on enter.
        opentelemetry::Context::map_current(|cx| {
            let span = cx.span();
            let sc = span.span_context();
            if sc.is_valid() {
                line.insert("trace_id".into(), Value::String(sc.trace_id().to_string()));
                line.insert("span_id".into(), Value::String(sc.span_id().to_string()));
            }
            if let Some(tenant) = tenant_from(cx) {
                line.insert(TENANT_ID.into(), Value::String(tenant.as_str().to_owned()));
            }
            if let Some(id) = request_id_from(cx) {
                let id = self.redactor.redact_attribute(REQUEST_ID, id.as_str());
                line.insert(REQUEST_ID.into(), Value::String(id.into_owned()));
            }
        });
        if !fields.values.is_empty() {
            line.insert("fields".into(), Value::Object(fields.values));
        }
        let mut text = Value::Object(line).to_string();
        text.push('\n');
        // A log line that cannot be written is not worth failing the caller for.
        let _ = self
            .make_writer
            .make_writer_for(meta)
            .write_all(text.as_bytes());
    }
}

/// Collects an event's fields, redacted (the JSON lines and the OTLP log records
/// alike).
pub(super) struct Fields<'r> {
    redactor: &'r Redactor,
    pub(super) message: Option<String>,
    pub(super) values: Map<String, Value>,
}

impl<'r> Fields<'r> {
    pub(super) fn new(redactor: &'r Redactor) -> Self {
        Self {
            redactor,
            message: None,
            values: Map::new(),
        }
    }

    fn text(&mut self, field: &Field, value: &str) {
        let clean = self
            .redactor
            .redact_attribute(field.name(), value)
            .into_owned();
        if field.name() == "message" {
            self.message = Some(clean);
        } else {
            self.values
                .insert(field.name().to_owned(), Value::String(clean));
        }
    }

    /// A non-text value: kept as JSON unless its key is sensitive.
    fn scalar(&mut self, field: &Field, value: Value) {
        let value = if self.redactor.is_sensitive_key(field.name()) {
            Value::String(self.redactor.replacement().to_owned())
        } else {
            value
        };
        self.values.insert(field.name().to_owned(), value);
    }
}

impl Visit for Fields<'_> {
    fn record_str(&mut self, field: &Field, value: &str) {
        self.text(field, value);
    }

    fn record_debug(&mut self, field: &Field, value: &dyn fmt::Debug) {
        let mut text = String::new();
        let _ = write!(text, "{value:?}");
        self.text(field, &text);
    }

    fn record_i64(&mut self, field: &Field, value: i64) {
        self.scalar(field, value.into());
    }

    fn record_u64(&mut self, field: &Field, value: u64) {
        self.scalar(field, value.into());
    }

    fn record_f64(&mut self, field: &Field, value: f64) {
        self.scalar(field, value.into());
    }

    fn record_bool(&mut self, field: &Field, value: bool) {
        self.scalar(field, value.into());
    }

    fn record_error(&mut self, field: &Field, value: &(dyn std::error::Error + 'static)) {
        self.text(field, &value.to_string());
    }
}
