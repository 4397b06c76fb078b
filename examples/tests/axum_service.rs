//! The axum example end to end over sockets: the shop and its stock service on
//! 127.0.0.1, called by a plain HTTP client, spans exported over OTLP/gRPC to a
//! receiver started here, `/metrics` scraped and checked by promtool. One test: it
//! installs the process-wide subscriber, tracer provider and metrics recorder.

#[path = "../../tests/support/otlp.rs"]
mod otlp;
#[path = "../../tests/support/promtool.rs"]
mod promtool;

use std::net::SocketAddr;

use bytes::Bytes;
use http_body_util::{BodyExt as _, Full};
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;
use instrument::cardinality::LabelGuard;
use instrument::pipeline::install_prometheus;
use instrument::semconv::MetricNames;
use instrument_examples::axum_service::{shop, stock, Shop};
use opentelemetry_proto::tonic::trace::v1::status::StatusCode as OtlpStatus;
use opentelemetry_proto::tonic::trace::v1::Span;
use otlp::{attribute, flush_and_collect, pipeline_to, start_receiver};

type Plain = Client<hyper_util::client::legacy::connect::HttpConnector, Full<Bytes>>;

/// A request to `addr` from a client with no instrumentation; the status, the
/// `x-tracking-id` and the body.
async fn call(
    client: &Plain,
    addr: SocketAddr,
    method: &str,
    path: &str,
    tenant: Option<&str>,
    body: &str,
) -> (u16, Option<String>, String) {
    let mut request = http::Request::builder()
        .method(method)
        .uri(format!("http://{addr}{path}"))
        .header("content-type", "application/json");
    if let Some(tenant) = tenant {
        request = request.header("x-tenant-id", tenant);
    }
    let response = client
        .request(
            request
                .body(Full::new(Bytes::from(body.to_owned())))
                .unwrap(),
        )
        .await
        .unwrap();
    let status = response.status().as_u16();
    let tracking = response
        .headers()
        .get("x-tracking-id")
        .map(|v| v.to_str().unwrap().to_owned());
    let body = response.into_body().collect().await.unwrap().to_bytes();
    (
        status,
        tracking,
        String::from_utf8_lossy(&body).into_owned(),
    )
}

async fn serve(router: axum::Router) -> SocketAddr {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let service = router.into_make_service_with_connect_info::<SocketAddr>();
    tokio::spawn(async move { axum::serve(listener, service).await });
    addr
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn named<'a>(spans: &'a [Span], name: &str) -> Vec<&'a Span> {
    spans.iter().filter(|s| s.name == name).collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_axum_service_is_traced_measured_and_masked_end_to_end() {
    let receiver = start_receiver().await;
    let telemetry = pipeline_to(&receiver, "axum-shop");
    let metrics = install_prometheus(LabelGuard::default(), &MetricNames::default()).unwrap();
    let stock_addr = serve(stock()).await;
    let shop_addr = serve(shop(Shop::new(stock_addr, Some(metrics)))).await;
    let client: Plain = Client::builder(TokioExecutor::new()).build_http();
    let card = "4111 1111 1111 1111";

    let (status, user_trace, body) =
        call(&client, shop_addr, "GET", "/users/42", Some("acme"), "").await;
    assert_eq!(
        (status, body.as_str()),
        (200, r#"{"id":42,"email":"ada@example.com"}"#)
    );
    let (status, ..) = call(&client, shop_addr, "GET", "/users/0", Some("acme"), "").await;
    assert_eq!(status, 404);
    let order = format!(r#"{{"sku":"book","card":"{card}"}}"#);
    let (status, order_trace, _) =
        call(&client, shop_addr, "POST", "/orders", Some("acme"), &order).await;
    assert_eq!(status, 201);
    let refused = format!(r#"{{"sku":"none","card":"{card}"}}"#);
    let (status, ..) = call(
        &client,
        shop_addr,
        "POST",
        "/orders",
        Some("acme"),
        &refused,
    )
    .await;
    assert_eq!(status, 409);
    // No tenant: refused, saying which header to send.
    let (status, _, body) = call(&client, shop_addr, "GET", "/users/42", None, "").await;
    assert_eq!(status, 401);
    assert!(body.contains("`x-tenant-id` header"), "{body}");
    // Probes and scrapes pass untouched: no tenant needed, no tracking header.
    let (status, tracking, body) = call(&client, shop_addr, "GET", "/health", None, "").await;
    assert_eq!((status, tracking, body.as_str()), (200, None, "ok"));
    let (status, _, exposition) = call(&client, shop_addr, "GET", "/metrics", None, "").await;
    assert_eq!(status, 200);

    // Metrics: labelled by the route template, refusals included, no probe or scrape.
    for line in [
        r#"http_server_request_duration_seconds_count{http_request_method="GET",http_route="/users/{id}",tenant_id="acme",http_response_status_code="200""#,
        r#"http_server_request_duration_seconds_count{http_request_method="GET",http_route="/users/{id}",tenant_id="unknown",http_response_status_code="401""#,
        r#"http_server_request_duration_seconds_count{http_request_method="POST",http_route="/orders",tenant_id="acme",http_response_status_code="409""#,
        r#"instrument_orders_completed_total{tenant_id="acme",name="order.place"} 1"#,
        r#"instrument_tenant_rejections_total{reason="missing",protocol="http"} 1"#,
    ] {
        assert!(
            exposition.lines().any(|l| l.starts_with(line)),
            "{line} not in\n{exposition}"
        );
    }
    assert!(!exposition.contains("/health") && !exposition.contains("/metrics"));
    assert!(exposition.contains("# HELP instrument_orders_started_total "));
    promtool::check_metrics(&exposition);

    let spans = flush_and_collect(telemetry, receiver).await;
    let names: std::collections::BTreeSet<&str> = spans.iter().map(|s| s.name.as_str()).collect();
    for name in [
        "GET /users/{id}",
        "POST /orders",
        "order.place",
        "order.completed",
        "order.failed",
        "GET",
        "GET /stock/{sku}",
    ] {
        assert!(names.contains(name), "no {name} in {names:?}");
    }
    assert!(spans.iter().all(|s| !matches!(
        attribute(s, "url.path").as_deref(),
        Some("/health" | "/metrics")
    )));

    // The handler's own attribute, and its `tracing::warn!` as an event on the span.
    let users = named(&spans, "GET /users/{id}");
    let ok = users
        .iter()
        .find(|s| Some(hex(&s.trace_id)) == user_trace)
        .expect("the tracking id is the span's trace id");
    assert_eq!(attribute(ok, "user.id").as_deref(), Some("42"));
    assert_eq!(attribute(ok, "tenant.id").as_deref(), Some("acme"));
    assert!(users
        .iter()
        .any(|s| s.events.iter().any(|e| e.name == "no such user")));
    let refusal = users
        .iter()
        .find(|s| attribute(s, "tenant.rejected").as_deref() == Some("missing"))
        .unwrap();
    assert_eq!(
        attribute(refusal, "http.response.status_code").as_deref(),
        Some("401")
    );

    // One trace across the outgoing call: order span, its workflow span, the client
    // span and the stock service's server span under it.
    let order = named(&spans, "POST /orders")
        .into_iter()
        .find(|s| Some(hex(&s.trace_id)) == order_trace)
        .unwrap();
    let in_trace: Vec<&Span> = spans
        .iter()
        .filter(|s| s.trace_id == order.trace_id)
        .collect();
    let place = in_trace.iter().find(|s| s.name == "order.place").unwrap();
    assert_eq!(place.parent_span_id, order.span_id);
    let client_span = in_trace.iter().find(|s| s.name == "GET").unwrap();
    assert_eq!(client_span.parent_span_id, place.span_id);
    let downstream = in_trace
        .iter()
        .find(|s| s.name == "GET /stock/{sku}")
        .unwrap();
    assert_eq!(downstream.parent_span_id, client_span.span_id);
    assert_eq!(attribute(downstream, "tenant.id").as_deref(), Some("acme"));
    let completed = in_trace
        .iter()
        .find(|s| s.name == "order.completed")
        .unwrap();
    assert_eq!(
        completed.parent_span_id, place.span_id,
        "the function span's child"
    );

    // The refused order: the handler's `tracing::error!` fails its span.
    let failed_order = named(&spans, "POST /orders")
        .into_iter()
        .find(|s| attribute(s, "http.response.status_code").as_deref() == Some("409"))
        .unwrap();
    assert_eq!(
        failed_order.status.as_ref().map(|s| s.code),
        Some(OtlpStatus::Error as i32)
    );
    assert!(failed_order
        .events
        .iter()
        .any(|e| e.name.starts_with("order refused")));

    // The card number reached no span, attribute or event.
    let exported = format!("{spans:?}");
    assert!(!exported.contains(card), "a card number was exported");
    assert!(exported.contains("**** **** **** 1111"));
}
