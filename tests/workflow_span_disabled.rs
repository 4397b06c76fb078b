//! With the `disabled` feature, `#[workflow_span]` leaves the function as it is: the
//! attribute's expressions are not evaluated and nothing is recorded.
//! `cargo test --features disabled --test workflow_span_disabled` (run by `.ci/run`).
#![cfg(feature = "disabled")]

use std::cell::Cell;

use instrument::workflow_span;
use opentelemetry_sdk::trace::{InMemorySpanExporter, SdkTracerProvider};

thread_local! {
    static EVALUATED: Cell<u32> = const { Cell::new(0) };
}

#[allow(dead_code)] // named only in the attribute, which is not expanded
fn tenant() -> &'static str {
    EVALUATED.with(|n| n.set(n.get() + 1));
    "acme"
}

#[workflow_span(kind = "task", tenant = tenant(), id = id)]
fn handler(id: u64) -> Result<u64, String> {
    Err(format!("failed {}", 1))
}

#[test]
fn disabled_records_nothing_and_evaluates_nothing() {
    let exporter = InMemorySpanExporter::default();
    let provider = SdkTracerProvider::builder()
        .with_simple_exporter(exporter.clone())
        .build();
    opentelemetry::global::set_tracer_provider(provider);
    assert!(handler(7).is_err());
    assert_eq!(EVALUATED.with(Cell::get), 0);
    assert!(exporter.get_finished_spans().unwrap().is_empty());
}
