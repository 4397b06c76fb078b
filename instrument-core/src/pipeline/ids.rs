//! [`PresetIdGenerator`]: random ids, except where the caller chose them.

use opentelemetry::trace::{SpanId, TraceId};
use opentelemetry_sdk::trace::{IdGenerator, RandomIdGenerator};

use crate::context::{take_preset_span_id, take_preset_trace_id};

/// The SDK's random ids, except for a span started inside
/// [`with_preset_ids`](crate::context::with_preset_ids): that span gets the ids chosen
/// there. The span proxy relies on it to keep the span ids a worker reported, so the
/// spans other services made under them stay attached. The pipeline's `init` installs
/// it; a provider built by hand can too:
///
/// ```
/// use instrument_core::pipeline::PresetIdGenerator;
/// use opentelemetry_sdk::trace::SdkTracerProvider;
///
/// let provider = SdkTracerProvider::builder()
///     .with_id_generator(PresetIdGenerator::default())
///     .build();
/// # let _ = provider;
/// ```
#[derive(Debug, Default, Clone)]
pub struct PresetIdGenerator {
    random: RandomIdGenerator,
}

impl IdGenerator for PresetIdGenerator {
    fn new_trace_id(&self) -> TraceId {
        take_preset_trace_id().unwrap_or_else(|| self.random.new_trace_id())
    }

    fn new_span_id(&self) -> SpanId {
        take_preset_span_id().unwrap_or_else(|| self.random.new_span_id())
    }
}

#[cfg(test)]
mod tests {
    use opentelemetry::trace::{Span as _, TraceContextExt as _, Tracer as _, TracerProvider as _};
    use opentelemetry_sdk::trace::SdkTracerProvider;

    use super::*;
    use crate::context::with_preset_ids;

    #[test]
    fn a_span_started_inside_gets_the_preset_ids_and_the_next_does_not() {
        let provider = SdkTracerProvider::builder()
            .with_id_generator(PresetIdGenerator::default())
            .build();
        let tracer = provider.tracer("t");
        let span_id = SpanId::from_hex("00f067aa0ba902b7").unwrap();
        let trace_id = TraceId::from_hex("4bf92f3577b34da6a3ce929d0e0e4736").unwrap();
        let mut span = with_preset_ids(Some(trace_id), span_id, || tracer.start("reported"));
        assert_eq!(span.span_context().span_id(), span_id);
        assert_eq!(span.span_context().trace_id(), trace_id);
        span.end();
        let other = tracer.start("next");
        assert_ne!(other.span_context().span_id(), span_id);
        assert_ne!(other.span_context().trace_id(), trace_id);
        let cx = opentelemetry::Context::new().with_span(other);
        assert!(cx.span().span_context().is_valid());
    }
}
