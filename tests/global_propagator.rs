//! `init` installs the toolkit's propagator as OpenTelemetry's global one, so any
//! library that propagates through `opentelemetry::global` follows the same W3C rules
//! as the layers, with baggage. One binary of its own: `init` installs process-wide.

use std::collections::HashMap;

use instrument::pipeline::{init, ExporterConfig, PipelineConfig, PropagatorConfig};
use opentelemetry::baggage::BaggageExt as _;
use opentelemetry::global;

const TP: &str = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-02";

#[test]
fn init_installs_w3c_trace_context_and_baggage_for_every_library() {
    let config = PipelineConfig::default().with_exporter(ExporterConfig::None);
    assert_eq!(
        config.propagators,
        [PropagatorConfig::TraceContext, PropagatorConfig::Baggage]
    );
    let telemetry = init(config).expect("the first pipeline of this process");
    let incoming = HashMap::from([
        ("traceparent".to_owned(), TP.to_owned()),
        // A key opentelemetry 0.33's own propagator refuses (the current grammar).
        ("tracestate".to_owned(), "foo@@bar=1,vendor=x".to_owned()),
        ("baggage".to_owned(), "region=eu".to_owned()),
    ]);
    let cx = global::get_text_map_propagator(|p| p.extract(&incoming));
    assert_eq!(
        cx.baggage().get("region").map(|v| v.as_str().to_owned()),
        Some("eu".to_owned())
    );
    let mut outgoing = HashMap::new();
    global::get_text_map_propagator(|p| p.inject_context(&cx, &mut outgoing));
    assert_eq!(
        outgoing.get("traceparent").map(String::as_str),
        Some(TP),
        "the random flag kept"
    );
    assert_eq!(
        outgoing.get("tracestate").map(String::as_str),
        Some("foo@@bar=1,vendor=x")
    );
    assert_eq!(
        outgoing.get("baggage").map(String::as_str),
        Some("region=eu")
    );
    telemetry.shutdown().unwrap();
}
