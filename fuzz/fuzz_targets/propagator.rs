//! The global propagator (`W3cPropagator`, what other libraries extract and inject
//! through) never panics on any set of headers; what it extracts it injects again, and
//! what it injects it extracts back unchanged.
#![no_main]

use instrument_core::context::W3cPropagator;
use libfuzzer_sys::fuzz_target;
use opentelemetry::propagation::{Extractor, TextMapPropagator as _};
use opentelemetry::trace::TraceContextExt as _;

/// Headers as a carrier gives them: a name may repeat.
struct Headers(Vec<(&'static str, String)>);

impl Extractor for Headers {
    fn get(&self, key: &str) -> Option<&str> {
        self.0
            .iter()
            .find(|(k, _)| *k == key)
            .map(|(_, v)| v.as_str())
    }

    fn keys(&self) -> Vec<&str> {
        self.0.iter().map(|(k, _)| *k).collect()
    }

    fn get_all(&self, key: &str) -> Option<Vec<&str>> {
        let all: Vec<&str> = self
            .0
            .iter()
            .filter(|(k, _)| *k == key)
            .map(|(_, v)| v.as_str())
            .collect();
        (!all.is_empty()).then_some(all)
    }
}

fuzz_target!(|data: &[u8]| {
    // NUL-separated values; each value's first byte says which header it is.
    const NAMES: [&str; 4] = ["traceparent", "tracestate", "baggage", "TraceParent"];
    let headers = data
        .split(|b| *b == 0)
        .filter_map(|value| {
            let (which, value) = value.split_first()?;
            let name = NAMES[usize::from(*which) % NAMES.len()];
            Some((name, String::from_utf8_lossy(value).into_owned()))
        })
        .collect();
    let propagator = W3cPropagator::new();
    let cx = propagator.extract(&Headers(headers));
    let mut out = std::collections::HashMap::new();
    propagator.inject_context(&cx, &mut out);
    let span = cx.span();
    let sc = span.span_context();
    assert_eq!(sc.is_valid(), out.contains_key("traceparent"));
    // Injected, then extracted: the same parent and tracestate.
    let again = propagator.extract(&out);
    let span_again = again.span();
    assert_eq!(span_again.span_context().trace_id(), sc.trace_id());
    assert_eq!(span_again.span_context().span_id(), sc.span_id());
    assert_eq!(span_again.span_context().trace_flags(), sc.trace_flags());
    let mut out_again = std::collections::HashMap::new();
    propagator.inject_context(&again, &mut out_again);
    assert_eq!(out_again, out);
});
