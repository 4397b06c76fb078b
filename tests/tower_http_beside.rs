//! tower-http's `TraceLayer` beside `InstrumentLayer`: placed inside it, its span is a
//! child of the server span, in the same trace, not a second root.

use std::convert::Infallible;

use http::{Request, Response};
use instrument::pipeline::{build, ExporterConfig, MemoryExporter, PipelineConfig};
use instrument::tower::stack::InstrumentLayer;
use opentelemetry::trace::SpanKind;
use tower::{ServiceBuilder, ServiceExt as _};
use tracing_subscriber::layer::SubscriberExt as _;

type Body = http_body_util::Full<&'static [u8]>;

#[tokio::test]
async fn tower_https_trace_layer_inside_ours_makes_a_child_span() {
    let spans = MemoryExporter::default();
    let telemetry =
        build(&PipelineConfig::default().with_exporter(ExporterConfig::Memory(spans.clone())))
            .unwrap();
    let _subscriber =
        tracing::subscriber::set_default(tracing_subscriber::registry().with(telemetry.layer()));

    let service = ServiceBuilder::new()
        .layer(
            InstrumentLayer::builder()
                .tracer(telemetry.tracer().unwrap())
                .build(),
        )
        .layer(tower_http::trace::TraceLayer::new_for_http())
        .service_fn(|_: Request<Body>| async {
            Ok::<_, Infallible>(Response::new(Body::new(&b"ok"[..])))
        });
    let request = Request::get("/orders")
        .header("x-tenant-id", "acme")
        .body(Body::new(&b""[..]))
        .unwrap();
    let response = service.oneshot(request).await.unwrap();
    drop(response);
    telemetry.shutdown().unwrap();

    let exported = spans.spans();
    let server = exported
        .iter()
        .find(|s| s.span_kind == SpanKind::Server)
        .expect("our server span");
    let tower_http = exported
        .iter()
        .find(|s| s.name == "request")
        .expect("tower-http's span");
    assert_eq!(
        tower_http.span_context.trace_id(),
        server.span_context.trace_id()
    );
    assert_eq!(tower_http.parent_span_id, server.span_context.span_id());
    assert_eq!(
        exported
            .iter()
            .filter(|s| s.parent_span_id == opentelemetry::trace::SpanId::INVALID)
            .count(),
        1,
        "one root"
    );
}

/// Inside axum's router, the route it matched is `http.route`.
#[tokio::test]
async fn axums_matched_path_is_the_route() {
    use axum::routing::get;
    use instrument::tower::request::MatchedPath;

    let spans = MemoryExporter::default();
    let telemetry =
        build(&PipelineConfig::default().with_exporter(ExporterConfig::Memory(spans.clone())))
            .unwrap();
    let layer = InstrumentLayer::builder()
        .tracer(telemetry.tracer().unwrap())
        .route_with(MatchedPath)
        .build();
    let app = axum::Router::new()
        .route("/users/{id}", get(|| async { "ok" }))
        .layer(layer);
    let request = Request::get("/users/42")
        .header("x-tenant-id", "acme")
        .body(axum::body::Body::empty())
        .unwrap();
    let response = app.oneshot(request).await.unwrap();
    drop(response);
    telemetry.shutdown().unwrap();
    let exported = spans.spans();
    assert_eq!(exported[0].name, "GET /users/{id}");
}
