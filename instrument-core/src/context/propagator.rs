//! [`W3cPropagator`]: the toolkit's W3C Trace Context rules behind OpenTelemetry's
//! `TextMapPropagator`, for every library that propagates through
//! `opentelemetry::global`.

use opentelemetry::propagation::text_map_propagator::FieldIter;
use opentelemetry::propagation::{Extractor, Injector, TextMapPropagator};
use opentelemetry::Context;

use super::propagation::{extract, inject, TRACEPARENT_HEADER, TRACESTATE_HEADER};

/// W3C Trace Context (`traceparent`, `tracestate`) with the toolkit's parser: the
/// current Level 2 rules (the `random` flag kept, the current `tracestate` key
/// grammar, duplicated keys passed on), where opentelemetry 0.33's
/// `TraceContextPropagator` follows an older text and drops some valid headers.
///
/// The pipeline's `init` installs it as the global propagator (with W3C baggage, as
/// `OTEL_PROPAGATORS` says), so client instrumentation of other libraries that calls
/// `opentelemetry::global::get_text_map_propagator` injects what the layers would.
/// An invalid or repeated `traceparent` is ignored (the context is returned as it
/// was), as the specification says.
///
/// ```
/// use std::collections::HashMap;
///
/// use instrument_core::context::W3cPropagator;
/// use opentelemetry::propagation::TextMapPropagator as _;
///
/// let propagator = W3cPropagator::new();
/// let incoming = HashMap::from([
///     ("traceparent".to_owned(), "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-02".to_owned()),
///     ("tracestate".to_owned(), "foo@bar=1".to_owned()),
/// ]);
/// let cx = propagator.extract(&incoming);
/// let mut outgoing = HashMap::new();
/// propagator.inject_context(&cx, &mut outgoing);
/// assert_eq!(outgoing["traceparent"], incoming["traceparent"]);
/// assert_eq!(outgoing["tracestate"], "foo@bar=1");
/// ```
#[derive(Debug, Clone)]
pub struct W3cPropagator {
    fields: [String; 2],
}

impl W3cPropagator {
    /// The propagator.
    pub fn new() -> Self {
        Self {
            fields: [TRACEPARENT_HEADER.to_owned(), TRACESTATE_HEADER.to_owned()],
        }
    }
}

impl Default for W3cPropagator {
    fn default() -> Self {
        Self::new()
    }
}

impl TextMapPropagator for W3cPropagator {
    fn inject_context(&self, cx: &Context, injector: &mut dyn Injector) {
        inject(cx, |name, value| injector.set(name, value.to_owned()));
    }

    fn extract_with_context(&self, cx: &Context, extractor: &dyn Extractor) -> Context {
        let parents = extractor.get_all(TRACEPARENT_HEADER).unwrap_or_default();
        let states = extractor.get_all(TRACESTATE_HEADER).unwrap_or_default();
        extract(
            parents.iter().map(|v| v.as_bytes()),
            states.iter().map(|v| v.as_bytes()),
        )
        .apply_to(cx)
    }

    fn fields(&self) -> FieldIter<'_> {
        FieldIter::new(&self.fields)
    }
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;

    use opentelemetry::trace::TraceContextExt as _;

    use super::*;

    const TP: &str = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";

    fn carrier(pairs: &[(&str, &str)]) -> HashMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect()
    }

    #[test]
    fn a_valid_parent_becomes_the_remote_parent_and_goes_out_again() {
        let cx = W3cPropagator::new().extract(&carrier(&[
            ("traceparent", TP),
            ("tracestate", "foo@@bar=1,k@v=2"),
        ]));
        let span = cx.span();
        let sc = span.span_context();
        assert!(sc.is_remote() && sc.is_sampled());
        let mut out = HashMap::new();
        W3cPropagator::new().inject_context(&cx, &mut out);
        assert_eq!(out["traceparent"], TP);
        assert_eq!(out["tracestate"], "foo@@bar=1,k@v=2");
    }

    #[test]
    fn garbage_leaves_the_context_as_it_was_and_injects_nothing() {
        for bad in [
            "",
            "00-xyz",
            "ff-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
        ] {
            let cx = W3cPropagator::new().extract(&carrier(&[("traceparent", bad)]));
            assert!(!cx.span().span_context().is_valid(), "{bad:?}");
            let mut out = HashMap::new();
            W3cPropagator::new().inject_context(&cx, &mut out);
            assert!(out.is_empty(), "{bad:?}: {out:?}");
        }
    }

    #[test]
    fn its_fields_are_the_two_headers() {
        let propagator = W3cPropagator::new();
        let fields: Vec<&str> = propagator.fields().collect();
        assert_eq!(fields, ["traceparent", "tracestate"]);
    }
}
