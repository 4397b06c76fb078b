//! The context of a span just started, with the trace flags W3C says it propagates.

use opentelemetry::trace::{Span, SpanContext, SpanId, TraceContextExt as _, TraceFlags};
use opentelemetry::Context;

use super::traceparent::DEFINED_FLAGS;

/// The `random` trace flag (W3C Trace Context Level 2, 3.2.2.5.2).
const RANDOM: u8 = 0x02;

/// `parent` with `span`, just started under it, as the active span: what
/// `parent.with_span(span)` gives, except that a span the sampler dropped is kept as its
/// span context alone (it has nothing to record or end) and keeps the parent's
/// `random` flag.
///
/// W3C Trace Context Level 2 (3.2.2.5.2): when continuing a trace, the `random` flag
/// of the incoming `traceparent` must be set on every outgoing one with the same trace
/// id. opentelemetry_sdk 0.33 gives a dropped (unsampled) span the flags `00`
/// whatever its parent had, so a request that arrived with `-02` would leave with
/// `-00`. A recording span keeps its parent's flags already and is returned as it is.
///
/// ```
/// use instrument_core::context::{child_context, inject, restore};
/// use opentelemetry::trace::{Tracer as _, TracerProvider as _};
/// use opentelemetry_sdk::trace::{Sampler, SdkTracerProvider};
///
/// let provider = SdkTracerProvider::builder()
///     .with_sampler(Sampler::ParentBased(Box::new(Sampler::AlwaysOn)))
///     .build();
/// let tracer = provider.tracer("docs");
/// // Not sampled, random trace id.
/// let parent = restore(Some("00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-02")).to_context();
/// let cx = child_context(&parent, tracer.start_with_context("call", &parent));
/// let mut traceparent = String::new();
/// inject(&cx, |_, value| traceparent = value.to_owned());
/// assert!(traceparent.ends_with("-02"));
/// ```
pub fn child_context<S>(parent: &Context, span: S) -> Context
where
    S: Span + Send + Sync + 'static,
{
    if span.is_recording() {
        return parent.with_span(span);
    }
    let own = span.span_context();
    if !own.is_valid() {
        return parent.with_span(span);
    }
    let parent_span = parent.span();
    let from_parent = parent_span.span_context();
    let inherited = if from_parent.is_valid() && from_parent.trace_id() == own.trace_id() {
        from_parent.trace_flags().to_u8() & RANDOM
    } else {
        0
    };
    let flags = own.trace_flags().to_u8() & DEFINED_FLAGS | inherited;
    // A span that does not record has nothing to end (the API says so): its context is
    // all it is, kept without the span (a boxed SDK span of some 300 bytes, made and
    // freed on every sampled-out request: `full_stack_request/sampled_out`).
    let fixed = SpanContext::new(
        own.trace_id(),
        own.span_id(),
        TraceFlags::new(flags),
        false,
        own.trace_state().clone(),
    );
    parent.with_remote_span_context(fixed)
}

/// The span context of a span that `parent`'s sampled-out decision leaves unrecorded,
/// with `span_id`: what [`child_context`] keeps of such a span (the parent's trace id
/// and tracestate, not sampled, the parent's `random` flag), made without starting
/// one. For a layer whose tracer is known to drop every span under an unsampled parent
/// (OpenTelemetry's `ParentBased` samplers): it need not ask the tracer.
///
/// ```
/// use instrument_core::context::{unsampled_child, TraceParent};
/// use opentelemetry::trace::{SpanId, TraceState};
///
/// let parent = TraceParent::parse("00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-02")?
///     .to_span_context(TraceState::NONE);
/// let child = unsampled_child(&parent, SpanId::from(7));
/// assert_eq!(child.trace_id(), parent.trace_id());
/// assert!(!child.is_sampled());
/// assert_eq!(child.trace_flags().to_u8(), 0x02);
/// # Ok::<(), instrument_core::context::TraceParentError>(())
/// ```
pub fn unsampled_child(parent: &SpanContext, span_id: SpanId) -> SpanContext {
    SpanContext::new(
        parent.trace_id(),
        span_id,
        TraceFlags::new(parent.trace_flags().to_u8() & RANDOM),
        false,
        parent.trace_state().clone(),
    )
}

#[cfg(test)]
mod tests {
    use opentelemetry::trace::{Tracer as _, TracerProvider as _};
    use opentelemetry_sdk::trace::{Sampler, SdkTracerProvider};

    use super::*;
    use crate::context::restore;

    fn tracer(sampler: Sampler) -> (opentelemetry_sdk::trace::SdkTracer, SdkTracerProvider) {
        let provider = SdkTracerProvider::builder().with_sampler(sampler).build();
        (provider.tracer("t"), provider)
    }

    fn flags_of_child(stored: &str, sampler: Sampler) -> (u8, bool) {
        let (tracer, _provider) = tracer(sampler);
        let parent = restore(Some(stored)).to_context();
        let cx = child_context(&parent, tracer.start_with_context("child", &parent));
        let sc = cx.span().span_context().clone();
        assert!(sc.is_valid());
        assert!(!sc.is_remote(), "the child is a local span");
        assert_ne!(
            sc.span_id(),
            parent.span().span_context().span_id(),
            "the child has its own id"
        );
        (sc.trace_flags().to_u8(), cx.span().is_recording())
    }

    const RANDOM_UNSAMPLED: &str = "00-12345678901234567890123456789012-1234567890123456-02";
    const RANDOM_SAMPLED: &str = "00-12345678901234567890123456789012-1234567890123456-03";

    #[test]
    fn an_unsampled_child_keeps_the_random_flag() {
        let parent_based = Sampler::ParentBased(Box::new(Sampler::AlwaysOn));
        assert_eq!(
            flags_of_child(RANDOM_UNSAMPLED, parent_based),
            (0x02, false)
        );
    }

    #[test]
    fn a_sampled_child_keeps_both_flags() {
        let parent_based = Sampler::ParentBased(Box::new(Sampler::AlwaysOn));
        assert_eq!(flags_of_child(RANDOM_SAMPLED, parent_based), (0x03, true));
    }

    #[test]
    fn a_child_dropped_by_the_sampler_under_a_sampled_parent_is_unsampled_and_random() {
        assert_eq!(
            flags_of_child(RANDOM_SAMPLED, Sampler::AlwaysOff),
            (0x02, false)
        );
    }

    #[test]
    fn no_random_flag_is_invented() {
        let parent_based = Sampler::ParentBased(Box::new(Sampler::AlwaysOn));
        let plain = "00-12345678901234567890123456789012-1234567890123456-00";
        assert_eq!(flags_of_child(plain, parent_based), (0x00, false));
        let (tracer, _provider) = tracer(Sampler::AlwaysOff);
        let root = child_context(&Context::new(), tracer.start("root"));
        assert_eq!(root.span().span_context().trace_flags().to_u8(), 0);
    }
}
