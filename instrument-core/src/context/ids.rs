//! Span ids chosen by the caller: the span proxy keeps the ids a worker reported, so a
//! downstream service's span, whose parent is the worker's client span, stays attached.

use std::cell::Cell;

use opentelemetry::trace::{SpanId, TraceId};

thread_local! {
    static PRESET: Cell<(Option<TraceId>, Option<SpanId>)> = const { Cell::new((None, None)) };
}

/// Runs `f` so that the next span started on this thread, inside `f`, gets `span_id`
/// (and, when it has no parent, `trace_id`) instead of fresh random ids.
///
/// Only a tracer provider whose id generator is the pipeline's `PresetIdGenerator`
/// honours it (the pipeline's `init` installs one); under any other, the span gets
/// fresh ids, as usual. Nothing is left behind when `f` returns or panics.
///
/// ```
/// use instrument_core::context::with_preset_ids;
/// use opentelemetry::trace::SpanId;
///
/// let id = SpanId::from_hex("00f067aa0ba902b7")?;
/// with_preset_ids(None, id, || { /* start the span here */ });
/// # Ok::<(), std::num::ParseIntError>(())
/// ```
pub fn with_preset_ids<R>(trace_id: Option<TraceId>, span_id: SpanId, f: impl FnOnce() -> R) -> R {
    struct Clear;
    impl Drop for Clear {
        fn drop(&mut self) {
            PRESET.with(|p| p.set((None, None)));
        }
    }
    PRESET.with(|p| p.set((trace_id, Some(span_id))));
    let _clear = Clear;
    f()
}

/// The preset span id, taken: the next call returns `None`.
#[cfg_attr(not(feature = "pipeline"), allow(dead_code))]
pub(crate) fn take_preset_span_id() -> Option<SpanId> {
    PRESET.with(|p| {
        let (trace, span) = p.get();
        p.set((trace, None));
        span
    })
}

/// The preset trace id, taken: the next call returns `None`.
#[cfg_attr(not(feature = "pipeline"), allow(dead_code))]
pub(crate) fn take_preset_trace_id() -> Option<TraceId> {
    PRESET.with(|p| {
        let (trace, span) = p.get();
        p.set((None, span));
        trace
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn preset_ids_are_taken_once_and_cleared_after() {
        let span = SpanId::from(7u64);
        let trace = TraceId::from(9u128);
        with_preset_ids(Some(trace), span, || {
            assert_eq!(take_preset_span_id(), Some(span));
            assert_eq!(take_preset_span_id(), None);
            assert_eq!(take_preset_trace_id(), Some(trace));
            assert_eq!(take_preset_trace_id(), None);
        });
        with_preset_ids(Some(trace), span, || {});
        assert_eq!(take_preset_span_id(), None);
        assert_eq!(take_preset_trace_id(), None);
    }
}
