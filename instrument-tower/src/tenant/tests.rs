use std::convert::Infallible;

use http::{Request, Response, StatusCode};
use instrument_core::tenant::{current_tenant, TenantId};
use metrics_util::debugging::DebuggingRecorder;
use tower::{Service, ServiceBuilder, ServiceExt as _};

use super::TenantLayer;
use crate::test_support::{run, snapshot};

/// Answers with the tenant it saw, in the extensions and in the OTel context after an
/// await point, as `extension|context`.
async fn echo(request: Request<()>) -> Result<Response<String>, Infallible> {
    let extension = request
        .extensions()
        .get::<TenantId>()
        .map(|t| t.to_string());
    tokio::task::yield_now().await;
    let context = current_tenant().map(|t| t.to_string());
    Ok(Response::new(format!(
        "{}|{}",
        extension.unwrap_or_default(),
        context.unwrap_or_default()
    )))
}

fn service(
    layer: TenantLayer,
) -> impl Service<Request<()>, Response = Response<String>, Error = Infallible> {
    ServiceBuilder::new().layer(layer).service_fn(echo)
}

fn http(tenant: Option<&str>) -> Request<()> {
    let mut builder = Request::builder().uri("/workflows");
    if let Some(t) = tenant {
        builder = builder.header("x-tenant-id", t);
    }
    builder.body(()).unwrap()
}

fn grpc(path: &str, tenant: Option<&[u8]>) -> Request<()> {
    let mut builder = Request::builder()
        .uri(path)
        .header("content-type", "application/grpc");
    if let Some(t) = tenant {
        builder = builder.header("x-tenant-id", http::HeaderValue::from_bytes(t).unwrap());
    }
    builder.body(()).unwrap()
}

async fn send(layer: TenantLayer, request: Request<()>) -> Response<String> {
    service(layer).oneshot(request).await.unwrap()
}

fn grpc_status(response: &Response<String>) -> Option<&str> {
    response
        .headers()
        .get("grpc-status")
        .and_then(|v| v.to_str().ok())
}

#[tokio::test]
async fn accepted_tenant_reaches_extensions_and_the_otel_context_across_awaits() {
    let response = send(TenantLayer::new(), http(Some("acme"))).await;
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(response.body(), "acme|acme");
    assert_eq!(
        current_tenant(),
        None,
        "the context does not leak out of the request"
    );
}

/// Under `InstrumentLayer` the tenant layer adds no context of its own when the trace
/// layer's already carries the tenant; the handler must see it all the same.
#[tokio::test]
async fn under_the_stack_the_tenant_reaches_extensions_and_context_across_awaits() {
    use http_body_util::BodyExt as _;

    let mut upstream = http(Some("from-header"));
    upstream
        .extensions_mut()
        .insert(TenantId::parse("from-auth").unwrap());
    for (request, expected) in [
        (http(Some("acme")), "acme|acme"),
        (upstream, "from-auth|from-auth"),
    ] {
        let service = ServiceBuilder::new()
            .layer(crate::stack::InstrumentLayer::default())
            .service_fn(echo);
        let response = service.oneshot(request).await.unwrap();
        assert_eq!(response.status(), StatusCode::OK);
        let body = response.into_body().collect().await.unwrap().to_bytes();
        assert_eq!(body, expected);
        assert_eq!(current_tenant(), None);
    }
}

#[tokio::test]
async fn upstream_extension_wins_over_the_header() {
    let mut request = http(Some("from-header"));
    request
        .extensions_mut()
        .insert(TenantId::parse("from-auth").unwrap());
    assert_eq!(
        send(TenantLayer::new(), request).await.body(),
        "from-auth|from-auth"
    );
}

#[tokio::test]
async fn missing_tenant_is_401_or_unauthenticated() {
    let response = send(TenantLayer::new(), http(None)).await;
    assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
    assert_eq!(response.body(), "", "the service was not called");
    let response = send(TenantLayer::new(), grpc("/pkg.Svc/Call", None)).await;
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(grpc_status(&response), Some("16"));
    assert_eq!(response.headers()["content-type"], "application/grpc");
}

#[tokio::test]
async fn malformed_or_repeated_tenant_is_400_or_invalid_argument() {
    for bad in [
        &b"acme corp"[..],
        b"",
        &[b'a'; 129],
        b"caf\xc3\xa9",
        b"\xff",
    ] {
        let response = send(TenantLayer::new(), grpc("/pkg.Svc/Call", Some(bad))).await;
        assert_eq!(grpc_status(&response), Some("3"), "{bad:?}");
        assert!(!response.headers()["grpc-message"]
            .as_bytes()
            .windows(4)
            .any(|w| w == b"acme"));
    }
    let response = send(TenantLayer::new(), http(Some("acme corp"))).await;
    assert_eq!(response.status(), StatusCode::BAD_REQUEST);
    let twice = Request::builder()
        .header("x-tenant-id", "a")
        .header("x-tenant-id", "b")
        .body(())
        .unwrap();
    assert_eq!(
        send(TenantLayer::new(), twice).await.status(),
        StatusCode::BAD_REQUEST
    );
}

#[tokio::test]
async fn health_checks_reflection_and_configured_paths_are_exempt() {
    let response = send(
        TenantLayer::new(),
        grpc("/grpc.health.v1.Health/Check", None),
    )
    .await;
    assert_eq!(
        (grpc_status(&response), response.body().as_str()),
        (None, "|")
    );
    let response = send(
        TenantLayer::new(),
        grpc("/grpc.reflection.v1.ServerReflection/Info", None),
    )
    .await;
    assert_eq!(grpc_status(&response), None);
    let layer = TenantLayer::new().exempt("/metrics");
    let response = send(layer, Request::builder().uri("/metrics").body(()).unwrap()).await;
    assert_eq!(response.status(), StatusCode::OK);
}

#[tokio::test]
async fn the_header_name_is_configurable() {
    let layer = TenantLayer::new().tenant_header(http::HeaderName::from_static("x-org"));
    let request = Request::builder().header("x-org", "acme").body(()).unwrap();
    assert_eq!(send(layer, request).await.body(), "acme|acme");
}

#[test]
fn rejections_are_counted_by_reason_and_protocol() {
    let recorder = DebuggingRecorder::new();
    run(&recorder, async {
        send(TenantLayer::new(), http(None)).await;
        send(TenantLayer::new(), http(None)).await;
        send(
            TenantLayer::new(),
            grpc("/pkg.Svc/Call", Some(b"bad tenant")),
        )
        .await;
        send(TenantLayer::new(), http(Some("acme"))).await;
    });
    let counts: Vec<(String, String)> = snapshot(&recorder)
        .into_iter()
        .filter(|(key, _)| key.starts_with("instrument_tenant_rejections_total{"))
        .collect();
    assert_eq!(
        counts,
        [
            (
                "instrument_tenant_rejections_total{protocol=grpc,reason=malformed}".to_owned(),
                "1".to_owned()
            ),
            (
                "instrument_tenant_rejections_total{protocol=http,reason=missing}".to_owned(),
                "2".to_owned()
            )
        ]
    );
}
