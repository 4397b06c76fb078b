//! [`RedactingProcessor`]: nothing leaves the process unredacted.

use std::borrow::Cow;

use opentelemetry::trace::Status;
use opentelemetry::{Array, Context, KeyValue, StringValue, Value};
use opentelemetry_sdk::error::OTelSdkResult;
use opentelemetry_sdk::trace::{Span, SpanData, SpanExporter, SpanProcessor};

use crate::redact::{Kind, RedactionSummary, Redactor, Rule};
use crate::semconv::{REDACTED_BY, REDACTION_MASKED_COUNT, TENANT_ID};

/// Runs a [`Redactor`] over every finished span before the inner processor (and so the
/// exporter) sees it: the span name, every attribute, every event's name and
/// attributes, every link's attributes and the status message. A span that had
/// anything masked gets `redaction.masked.count`.
///
/// `tenant.id` is not scanned: it is a validated [`TenantId`](crate::tenant::TenantId),
/// and a numeric tenant id must not be mistaken for a card number.
///
/// ```
/// use instrument_core::pipeline::RedactingProcessor;
/// use instrument_core::redact::Redactor;
/// use opentelemetry::trace::{Span as _, Tracer as _, TracerProvider as _};
/// use opentelemetry_sdk::trace::{InMemorySpanExporter, SdkTracerProvider, SimpleSpanProcessor};
///
/// let exporter = InMemorySpanExporter::default();
/// let provider = SdkTracerProvider::builder()
///     .with_span_processor(RedactingProcessor::new(Redactor::default(), SimpleSpanProcessor::new(exporter.clone())))
///     .build();
/// let mut span = provider.tracer("demo").start("login");
/// span.set_attribute(opentelemetry::KeyValue::new("user.email", "bob@example.com"));
/// span.end();
/// let spans = exporter.get_finished_spans().unwrap();
/// assert_eq!(spans[0].attributes[0].value.as_str(), "[REDACTED]");
/// ```
#[derive(Debug)]
pub struct RedactingProcessor<P> {
    redactor: Redactor,
    inner: P,
}

impl<P> RedactingProcessor<P> {
    /// Redacts spans with `redactor` before handing them to `inner`.
    pub fn new(redactor: Redactor, inner: P) -> Self {
        redactor.read_vouches();
        Self { redactor, inner }
    }

    /// Masks everything `span` would export; returns how many values were masked.
    ///
    /// The span name and the attributes before a [`Redactor::vouch`] marker of this
    /// processor's redactor are left as they are (they were redacted when recorded);
    /// the marker itself is removed, whoever made it.
    pub fn redact_span(&self, span: &mut SpanData) -> u32 {
        let mut summary = RedactionSummary::default();
        let vouched = match span
            .attributes
            .iter()
            .position(|kv| kv.key.as_str() == REDACTED_BY)
        {
            Some(at) => {
                let marker = span.attributes.remove(at);
                self.redactor.vouches_for(&marker.value).then_some(at)
            }
            None => None,
        };
        if vouched.is_none() {
            self.redact_text(&mut span.name, &mut summary);
        }
        let from = vouched.unwrap_or(0);
        self.redact_attributes(&mut span.attributes[from..], &mut summary);
        for event in span.events.events.iter_mut() {
            self.redact_text(&mut event.name, &mut summary);
            self.redact_attributes(&mut event.attributes, &mut summary);
        }
        for link in span.links.links.iter_mut() {
            self.redact_attributes(&mut link.attributes, &mut summary);
        }
        if let Status::Error { description } = &mut span.status {
            self.redact_text(description, &mut summary);
        }
        summary.total()
    }

    /// Replaces `text` (a span or event name, a status message) with its redacted form.
    fn redact_text(&self, text: &mut Cow<'static, str>, summary: &mut RedactionSummary) {
        if let Some(clean) = owned(self.redactor.redact(Kind::Attribute, "", text, summary)) {
            *text = Cow::Owned(clean);
        }
    }

    fn redact_attributes(&self, attributes: &mut [KeyValue], summary: &mut RedactionSummary) {
        for kv in attributes {
            let key = kv.key.as_str();
            if key == TENANT_ID {
                continue;
            }
            let masked = match &kv.value {
                Value::String(s) => {
                    owned(
                        self.redactor
                            .redact(Kind::Attribute, key, s.as_str(), summary),
                    )
                    .map(|clean| Value::String(clean.into()))
                }
                Value::Array(Array::String(items)) => {
                    let mut changed = false;
                    let items: Vec<StringValue> = items
                        .iter()
                        .map(|item| {
                            match owned(self.redactor.redact(
                                Kind::Attribute,
                                key,
                                item.as_str(),
                                summary,
                            )) {
                                Some(clean) => {
                                    changed = true;
                                    clean.into()
                                }
                                None => item.clone(),
                            }
                        })
                        .collect();
                    changed.then_some(Value::Array(Array::String(items)))
                }
                // A number or flag under a sensitive key (`pin = 1234`) is a secret too.
                // (String values had the key checked by the redactor itself.)
                _ if self.redactor.is_sensitive_key(key) => {
                    summary.record(Rule::SensitiveKey);
                    Some(Value::String(self.redactor.replacement().to_owned().into()))
                }
                _ => None,
            };
            if let Some(value) = masked {
                kv.value = value;
            }
        }
    }
}

fn owned(value: Cow<'_, str>) -> Option<String> {
    match value {
        Cow::Borrowed(_) => None,
        Cow::Owned(s) => Some(s),
    }
}

impl<P: SpanProcessor> SpanProcessor for RedactingProcessor<P> {
    fn on_start(&self, span: &mut Span, cx: &Context) {
        self.inner.on_start(span, cx);
    }

    fn on_end(&self, mut span: SpanData) {
        self.scrub(&mut span);
        self.inner.on_end(span);
    }

    forward_to_inner!();
}

impl<P> RedactingProcessor<P> {
    /// [`redact_span`](Self::redact_span), and `redaction.masked.count` on a span that
    /// had anything masked.
    fn scrub(&self, span: &mut SpanData) {
        let masked = self.redact_span(span);
        if masked > 0 {
            span.attributes
                .push(KeyValue::new(REDACTION_MASKED_COUNT, i64::from(masked)));
        }
    }
}

/// [`RedactingProcessor`]'s work done where spans are exported: every span of a batch
/// is redacted (as the processor does it, `redaction.masked.count` included) before
/// `inner` sees it.
///
/// Put behind a batch processor, the redaction runs on the batch's thread, a batch at a
/// time, and not on the thread that ended the span: a request's end does not wait for
/// its spans to be scanned. The spans wait in the batch processor's queue unredacted,
/// in the process's memory as they were while they ran; nothing leaves the process
/// before it is redacted. [`pipeline::build`](super::build) puts it there. A span
/// processor of your own beside the batch processor sees spans unredacted: put it
/// behind a [`RedactingProcessor`] instead.
///
/// ```
/// use instrument_core::pipeline::RedactingExporter;
/// use instrument_core::redact::Redactor;
/// use opentelemetry::trace::{Span as _, Tracer as _, TracerProvider as _};
/// use opentelemetry_sdk::trace::{InMemorySpanExporter, SdkTracerProvider, SimpleSpanProcessor};
///
/// let exporter = InMemorySpanExporter::default();
/// let provider = SdkTracerProvider::builder()
///     .with_span_processor(SimpleSpanProcessor::new(RedactingExporter::new(Redactor::default(), exporter.clone())))
///     .build();
/// let mut span = provider.tracer("demo").start("login");
/// span.set_attribute(opentelemetry::KeyValue::new("user.email", "bob@example.com"));
/// span.end();
/// let spans = exporter.get_finished_spans().unwrap();
/// assert_eq!(spans[0].attributes[0].value.as_str(), "[REDACTED]");
/// ```
#[derive(Debug)]
pub struct RedactingExporter<E>(RedactingProcessor<E>);

impl<E> RedactingExporter<E> {
    /// Redacts every span with `redactor` before `inner` exports it.
    pub fn new(redactor: Redactor, inner: E) -> Self {
        Self(RedactingProcessor::new(redactor, inner))
    }
}

impl<E: SpanExporter> SpanExporter for RedactingExporter<E> {
    fn export(
        &self,
        mut batch: Vec<SpanData>,
    ) -> impl std::future::Future<Output = OTelSdkResult> + Send {
        for span in &mut batch {
            self.0.scrub(span);
        }
        self.0.inner.export(batch)
    }

    fn shutdown_with_timeout(&self, timeout: std::time::Duration) -> OTelSdkResult {
        self.0.inner.shutdown_with_timeout(timeout)
    }

    fn force_flush(&self) -> OTelSdkResult {
        self.0.inner.force_flush()
    }

    fn set_resource(&mut self, resource: &opentelemetry_sdk::Resource) {
        self.0.inner.set_resource(resource);
    }
}
