//! [`SpanEventLayer`]: `tracing` events inside a request become events on its span.

use std::borrow::Cow;
use std::fmt;
use std::time::SystemTime;

use opentelemetry::trace::{Status, TraceContextExt as _};
use opentelemetry::KeyValue;
use tracing::field::{Field, Visit};
use tracing::{Event, Level, Subscriber};
use tracing_subscriber::layer::Context;
use tracing_subscriber::Layer;

/// Adds each `tracing` event emitted outside any `tracing` span to the OpenTelemetry
/// span current where it is emitted: the server span the tower layers started (they
/// serve the request in its context), a `#[workflow_span]`, a client span. So a
/// `tracing::error!` inside an axum handler or a tonic method is an event on the
/// request's span, as it is on a `tracing` span through tracing-opentelemetry (which
/// handles events inside `tracing` spans; this layer leaves those to it).
///
/// The event is named by its message and carries `level`, `target` and its fields
/// (the pipeline's [`RedactingProcessor`](super::RedactingProcessor) masks them at
/// export like any attribute). An `ERROR` event marks the span as failed, as
/// tracing-opentelemetry does. A span that is not recording (sampled out) is left
/// alone at the cost of one context lookup. [`init`](super::init) installs it.
///
/// ```
/// use tracing_subscriber::layer::SubscriberExt as _;
///
/// let subscriber = tracing_subscriber::registry().with(instrument_core::pipeline::SpanEventLayer);
/// # let _ = subscriber;
/// ```
#[derive(Debug, Clone, Copy, Default)]
pub struct SpanEventLayer;

impl<S: Subscriber> Layer<S> for SpanEventLayer {
    fn on_event(&self, event: &Event<'_>, ctx: Context<'_, S>) {
        if ctx.current_span().id().is_some() {
            return; // Inside a `tracing` span: tracing-opentelemetry's.
        }
        opentelemetry::Context::map_current(|cx| {
            let span = cx.span();
            // A sampled-out request under tail bias holds its events until it is
            // decided.
            let watch = match span.is_recording() {
                true => None,
                false => match crate::sampling::installed_tail_bias()
                    .and_then(|_| cx.get::<crate::sampling::TailWatch>())
                {
                    Some(watch) => Some(watch),
                    None => return,
                },
            };
            let meta = event.metadata();
            let mut fields = Fields {
                message: None,
                attributes: vec![
                    KeyValue::new("level", meta.level().as_str()),
                    KeyValue::new("target", meta.target()),
                ],
            };
            event.record(&mut fields);
            let name: Cow<'static, str> = match fields.message {
                Some(message) => message.into(),
                None => meta.name().into(),
            };
            let error = *meta.level() == Level::ERROR;
            if let Some(watch) = watch {
                watch.hold_event(name, SystemTime::now(), fields.attributes, error);
                return;
            }
            if error {
                span.set_status(Status::error(name.clone()));
            }
            span.add_event(name, fields.attributes);
        });
    }
}

/// An event's message and fields.
struct Fields {
    message: Option<String>,
    attributes: Vec<KeyValue>,
}

impl Visit for Fields {
    fn record_str(&mut self, field: &Field, value: &str) {
        if field.name() == "message" {
            self.message = Some(value.to_owned());
        } else {
            self.attributes
                .push(KeyValue::new(field.name(), value.to_owned()));
        }
    }

    fn record_debug(&mut self, field: &Field, value: &dyn fmt::Debug) {
        self.record_str(field, &format!("{value:?}"));
    }

    fn record_i64(&mut self, field: &Field, value: i64) {
        self.attributes.push(KeyValue::new(field.name(), value));
    }

    fn record_u64(&mut self, field: &Field, value: u64) {
        match i64::try_from(value) {
            Ok(value) => self.record_i64(field, value),
            Err(_) => self.record_str(field, &value.to_string()),
        }
    }

    fn record_f64(&mut self, field: &Field, value: f64) {
        self.attributes.push(KeyValue::new(field.name(), value));
    }

    fn record_bool(&mut self, field: &Field, value: bool) {
        self.attributes.push(KeyValue::new(field.name(), value));
    }

    fn record_error(&mut self, field: &Field, value: &(dyn std::error::Error + 'static)) {
        self.record_str(field, &value.to_string());
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use opentelemetry::trace::{Tracer as _, TracerProvider as _};
    use opentelemetry_sdk::trace::{InMemorySpanExporter, SdkTracerProvider};
    use tracing_subscriber::layer::SubscriberExt as _;

    #[test]
    fn events_outside_tracing_spans_land_on_the_current_span_and_error_fails_it() {
        let exporter = InMemorySpanExporter::default();
        let provider = SdkTracerProvider::builder()
            .with_simple_exporter(exporter.clone())
            .build();
        let tracer = provider.tracer("t");
        let subscriber = tracing_subscriber::registry().with(SpanEventLayer);
        tracing::subscriber::with_default(subscriber, || {
            tracing::info!("outside any span: nothing to add to");
            let span = tracer.start("GET /orders/{id}");
            let cx = opentelemetry::Context::current_with_span(span);
            let _attached = cx.clone().attach();
            tracing::warn!(order = 7, retry = true, "slow database");
            tracing::error!(error = "timeout", "charge failed");
            {
                let inside = tracing::info_span!("db.query");
                let _entered = inside.enter();
                tracing::info!("tracing-opentelemetry's to attach");
            }
            cx.span().end();
        });
        let spans = exporter.get_finished_spans().unwrap();
        assert_eq!(spans.len(), 1);
        let events: Vec<_> = spans[0].events.iter().collect();
        assert_eq!(events.len(), 2, "{events:?}");
        assert_eq!(events[0].name, "slow database");
        assert!(events[0]
            .attributes
            .contains(&KeyValue::new("level", "WARN")));
        assert!(events[0].attributes.contains(&KeyValue::new("order", 7)));
        assert!(events[0].attributes.contains(&KeyValue::new("retry", true)));
        assert_eq!(events[1].name, "charge failed");
        assert!(events[1]
            .attributes
            .contains(&KeyValue::new("error", "timeout")));
        assert_eq!(spans[0].status, Status::error("charge failed"));
    }
}
