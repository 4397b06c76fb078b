//! The layers' route and filter hooks as plain closures: no type annotation on the
//! closure's argument, whatever the route's type (`&'static str` or `String`).

use instrument::tower::metrics::RequestMetricsLayer;
use instrument::tower::stack::InstrumentLayer;
use instrument::tower::trace::TraceLayer;

fn main() {
    let stack = InstrumentLayer::builder()
        .route(|parts| parts.uri.path().starts_with("/jobs/").then_some("/jobs/{job}"))
        .filter(|parts| parts.uri.path() == "/health")
        .build();
    let trace = TraceLayer::new()
        .route(|parts| Some(format!("/{}", parts.method)))
        .filter(|parts| parts.uri.path() == "/metrics");
    let metrics = RequestMetricsLayer::new()
        .route(|parts| parts.uri.path().strip_prefix("/v1").map(|_| "/v1/{rest}"))
        .filter(|parts| parts.headers.contains_key("x-internal"));
    let _ = (stack, trace, metrics);
}
