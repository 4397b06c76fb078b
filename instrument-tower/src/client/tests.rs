use std::convert::Infallible;
use std::sync::{Arc, Mutex};

use http::{HeaderMap, Request, Response};
use instrument_core::context::{restore, InContextExt as _};
use instrument_core::semconv::*;
use instrument_core::tenant::{with_tenant, TenantId};
use metrics_util::debugging::DebuggingRecorder;
use opentelemetry::trace::{SpanKind, Status};
use opentelemetry::Context;
use tower::{ServiceBuilder, ServiceExt as _};

use super::ClientLayer;
use crate::test_support::*;

/// The headers each request arrived with.
type Seen = Arc<Mutex<Vec<HeaderMap>>>;

/// A server answering every request with `reply()`, keeping the headers it got.
fn server(
    seen: &Seen,
    reply: fn() -> Response<Reply>,
) -> impl tower::Service<
    Request<()>,
    Response = Response<Reply>,
    Error = Infallible,
    Future = std::future::Ready<Result<Response<Reply>, Infallible>>,
> + Clone {
    let seen = Arc::clone(seen);
    tower::service_fn(move |request: Request<()>| {
        seen.lock().unwrap().push(request.headers().clone());
        std::future::ready(Ok(reply()))
    })
}

fn acme(cx: &Context) -> Context {
    with_tenant(cx, TenantId::parse("acme").unwrap())
}

fn sampled() -> Context {
    acme(&restore(Some(TP)).to_context())
}

#[tokio::test]
async fn an_http_call_is_a_client_span_whose_context_and_tenant_go_out() {
    let (tracer, exporter, _p) = tracer();
    let seen = Seen::default();
    let client = ServiceBuilder::new()
        .layer(ClientLayer::new().tracer(tracer).without_metrics())
        .service(server(&seen, || {
            let mut r = Response::new(Reply::text("no"));
            *r.status_mut() = http::StatusCode::SERVICE_UNAVAILABLE;
            r
        }));
    let request =
        Request::get("https://api.example.com/v1/charge?api_key=sk_live_abcdef1234567890")
            .body(())
            .unwrap();
    let response = client.oneshot(request).in_context(sampled()).await.unwrap();
    drain(response.into_body()).await;

    let spans = spans(&exporter);
    assert_eq!(spans.len(), 1);
    let span = &spans[0];
    assert_eq!(span.name, "GET");
    assert_eq!(span.span_kind, SpanKind::Client);
    assert_eq!(span.parent_span_id.to_string(), "00f067aa0ba902b7");
    let url = attr_str(span, URL_FULL).unwrap();
    assert!(
        url.starts_with("https://api.example.com:443/v1/charge?api_key="),
        "{url}"
    );
    assert!(!url.contains("sk_live_abcdef1234567890"), "{url}");
    assert_eq!(
        attr_str(span, SERVER_ADDRESS).as_deref(),
        Some("api.example.com")
    );
    assert_eq!(
        attr(span, SERVER_PORT),
        Some(&opentelemetry::Value::I64(443))
    );
    assert_eq!(
        attr(span, HTTP_RESPONSE_STATUS_CODE),
        Some(&opentelemetry::Value::I64(503))
    );
    assert_eq!(attr_str(span, ERROR_TYPE).as_deref(), Some("503"));
    assert!(matches!(span.status, Status::Error { .. }));
    assert_eq!(attr_str(span, TENANT_ID).as_deref(), Some("acme"));

    let headers = &seen.lock().unwrap()[0];
    let traceparent = headers["traceparent"].to_str().unwrap();
    assert_eq!(
        traceparent,
        format!(
            "00-{}-{}-01",
            span.span_context.trace_id(),
            span.span_context.span_id()
        )
    );
    assert_eq!(headers["x-tenant-id"], "acme");
}

#[tokio::test]
async fn the_tenant_is_not_forwarded_when_off_and_a_callers_own_header_is_kept() {
    let (tracer, _exporter, _p) = tracer();
    let seen = Seen::default();
    let ok = || Response::new(Reply::text("ok"));
    let third_party = ClientLayer::new()
        .tracer(tracer.clone())
        .forward_tenant(false);
    let client = ServiceBuilder::new()
        .layer(third_party)
        .service(server(&seen, ok));
    let request = Request::get("http://example.com/").body(()).unwrap();
    client.oneshot(request).in_context(sampled()).await.unwrap();
    let own = ServiceBuilder::new()
        .layer(ClientLayer::new().tracer(tracer))
        .service(server(&seen, ok));
    let request = Request::get("http://example.com/")
        .header("x-tenant-id", "other")
        .body(())
        .unwrap();
    own.oneshot(request).in_context(sampled()).await.unwrap();
    let seen = seen.lock().unwrap();
    assert!(seen[0].get("x-tenant-id").is_none());
    assert!(seen[0].get("traceparent").is_some());
    assert_eq!(seen[1]["x-tenant-id"], "other");
}

fn grpc_reply(code: u16) -> Response<Reply> {
    let mut r = Response::new(Reply::grpc(code));
    r.headers_mut()
        .insert("content-type", "application/grpc".parse().unwrap());
    r
}

#[tokio::test]
async fn a_grpc_call_reads_its_status_from_the_trailers() {
    let (tracer, exporter, _p) = tracer();
    let seen = Seen::default();
    let client = ServiceBuilder::new()
        .layer(
            ClientLayer::new()
                .tracer(tracer)
                .without_metrics()
                .rpc_conventions(RpcConventions::Both),
        )
        .service(server(&seen, || grpc_reply(14)));
    let request = grpc_request("http://10.0.0.7:50051/acme.v1.Billing/Charge", None);
    let response = client.oneshot(request).in_context(sampled()).await.unwrap();
    assert!(
        spans(&exporter).is_empty(),
        "the span lasts until the trailers"
    );
    drain(response.into_body()).await;
    let span = &spans(&exporter)[0];
    assert_eq!(span.name, "acme.v1.Billing/Charge");
    assert_eq!(attr_str(span, RPC_SYSTEM).as_deref(), Some("grpc"));
    assert_eq!(attr_str(span, RPC_SYSTEM_NAME).as_deref(), Some("grpc"));
    assert_eq!(
        attr_str(span, RPC_SERVICE).as_deref(),
        Some("acme.v1.Billing")
    );
    assert_eq!(
        attr(span, RPC_GRPC_STATUS_CODE),
        Some(&opentelemetry::Value::I64(14))
    );
    assert_eq!(
        attr_str(span, RPC_RESPONSE_STATUS_CODE).as_deref(),
        Some("UNAVAILABLE")
    );
    assert_eq!(attr_str(span, ERROR_TYPE).as_deref(), Some("UNAVAILABLE"));
    assert_eq!(
        attr(span, SERVER_PORT),
        Some(&opentelemetry::Value::I64(50051))
    );
}

#[tokio::test]
async fn a_call_dropped_by_its_caller_ends_as_cancelled() {
    let (tracer, exporter, _p) = tracer();
    let pending = tower::service_fn(|_: Request<()>| {
        std::future::pending::<Result<Response<Reply>, Infallible>>()
    });
    let mut client = ServiceBuilder::new()
        .layer(ClientLayer::new().tracer(tracer).without_metrics())
        .service(pending);
    let request = grpc_request("http://h/acme.v1.Billing/Charge", None);
    let call = tower::Service::call(&mut client, request);
    let _ = tokio::time::timeout(
        std::time::Duration::from_millis(5),
        call.in_context(sampled()),
    )
    .await;
    let span = &spans(&exporter)[0];
    assert_eq!(
        attr(span, CANCELLED),
        Some(&opentelemetry::Value::Bool(true))
    );

    // A stream dropped before its trailers.
    let (tracer, exporter, _p) = self::tracer();
    let seen = Seen::default();
    let client = ServiceBuilder::new()
        .layer(ClientLayer::new().tracer(tracer).without_metrics())
        .service(server(&seen, || grpc_reply(0)));
    let request = grpc_request("http://h/acme.v1.Billing/Watch", None);
    let response = client.oneshot(request).in_context(sampled()).await.unwrap();
    drop(response);
    let span = &spans(&exporter)[0];
    assert_eq!(
        attr(span, CANCELLED),
        Some(&opentelemetry::Value::Bool(true))
    );
}

#[tokio::test]
async fn a_failed_call_records_the_error_redacted() {
    let (tracer, exporter, _p) = tracer();
    let failing = tower::service_fn(|_: Request<()>| async {
        Err::<Response<Reply>, _>("connect failed for https://u:password=hunter2@db".to_owned())
    });
    let client = ServiceBuilder::new()
        .layer(ClientLayer::new().tracer(tracer).without_metrics())
        .service(failing);
    let request = Request::get("http://db/").body(()).unwrap();
    assert!(client.oneshot(request).in_context(sampled()).await.is_err());
    let span = &spans(&exporter)[0];
    assert_eq!(attr_str(span, ERROR_TYPE).as_deref(), Some(OTHER));
    let Status::Error { description } = &span.status else {
        panic!("{:?}", span.status)
    };
    assert!(description.contains("connect failed"), "{description}");
    assert!(!description.contains("hunter2"), "{description}");
}

/// The client layers an unsampled call goes through: a tracer asked for every span, one
/// told that its sampler follows the parent, and one told the whole sampler (the last
/// two start no span: they make the context the callee is sent without the tracer).
/// Each with the exporter its spans would reach.
fn unsampled_ways() -> Vec<(
    &'static str,
    ClientLayer,
    opentelemetry_sdk::trace::InMemorySpanExporter,
    opentelemetry_sdk::trace::SdkTracerProvider,
)> {
    let (asked, exporter, provider) = tracer();
    let (told, told_exporter, told_provider) = tracer();
    #[cfg_attr(not(feature = "sdk"), allow(unused_mut))]
    let mut ways = vec![
        (
            "asked",
            ClientLayer::new().tracer(asked),
            exporter,
            provider,
        ),
        (
            "parent_based_tracer",
            ClientLayer::new().parent_based_tracer(told),
            told_exporter,
            told_provider,
        ),
    ];
    #[cfg(feature = "sdk")]
    {
        let (whole, whole_exporter, whole_provider) = tracer();
        ways.push((
            "tracer_sampled_by",
            ClientLayer::new().tracer_sampled_by(
                whole,
                instrument_core::pipeline::SamplerConfig::ParentBasedAlwaysOn,
            ),
            whole_exporter,
            whole_provider,
        ));
    }
    ways
}

#[test]
fn an_unsampled_call_records_nothing_but_still_propagates_and_is_measured() {
    const PARENT: &str = "00f067aa0ba902b7";
    for (way, layer, exporter, _provider) in unsampled_ways() {
        // `02`: the parent's random trace id flag goes on with it.
        for flags in ["00", "02"] {
            let recorder = DebuggingRecorder::new();
            let seen = Seen::default();
            run(&recorder, async {
                let client = ServiceBuilder::new()
                    .layer(layer.clone())
                    .service(server(&seen, || grpc_reply(0)));
                let unsampled = acme(
                    &restore(Some(&format!(
                        "00-4bf92f3577b34da6a3ce929d0e0e4736-{PARENT}-{flags}"
                    )))
                    .to_context(),
                );
                let request = grpc_request("http://billing:50051/acme.v1.Billing/Charge", None);
                let response = client.oneshot(request).in_context(unsampled).await.unwrap();
                drain(response.into_body()).await;
            });
            assert!(spans(&exporter).is_empty(), "{way}");
            let headers = &seen.lock().unwrap()[0];
            let traceparent = headers["traceparent"].to_str().unwrap();
            assert!(
                traceparent.starts_with("00-4bf92f3577b34da6a3ce929d0e0e4736-"),
                "{way}: {traceparent}"
            );
            assert!(
                traceparent.ends_with(&format!("-{flags}")),
                "{way}: {traceparent}"
            );
            // The callee's parent is the (dropped) client span, not the caller's.
            let span_id = &traceparent[36..52];
            assert_ne!(span_id, PARENT, "{way}");
            assert_ne!(span_id, "0000000000000000", "{way}");
            assert_eq!(headers["x-tenant-id"], "acme", "{way}");
            let metrics = snapshot(&recorder);
            assert_eq!(
                metrics.get(
                    "rpc_client_call_duration_seconds{rpc_method=acme.v1.Billing/Charge,rpc_response_status_code=OK,rpc_system_name=grpc,server_address=billing,server_port=50051}"
                ).map(String::as_str),
                Some("1 samples"),
                "{way}: {metrics:#?}"
            );
        }
    }
}

/// Told the sampler, the layer still records a sampled parent's and a root's calls.
#[cfg(feature = "sdk")]
#[test]
fn told_the_sampler_sampled_and_root_calls_are_recorded() {
    use instrument_core::pipeline::SamplerConfig;
    let (tracer, exporter, _provider) = tracer();
    let layer = ClientLayer::new().tracer_sampled_by(tracer, SamplerConfig::ParentBasedAlwaysOn);
    let recorder = DebuggingRecorder::new();
    let seen = Seen::default();
    run(&recorder, async {
        let sampled = acme(
            &restore(Some(
                "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
            ))
            .to_context(),
        );
        for cx in [sampled, acme(&Context::new())] {
            let client = ServiceBuilder::new()
                .layer(layer.clone())
                .service(server(&seen, || grpc_reply(0)));
            let request = grpc_request("http://billing:50051/acme.v1.Billing/Charge", None);
            let response = client.oneshot(request).in_context(cx).await.unwrap();
            drain(response.into_body()).await;
        }
    });
    let spans = spans(&exporter);
    assert_eq!(spans.len(), 2);
    for span in &spans {
        assert_eq!(span.name, "acme.v1.Billing/Charge");
        assert_eq!(span.span_kind, SpanKind::Client);
        assert!(span
            .attributes
            .iter()
            .any(|kv| kv.key.as_str() == SERVER_ADDRESS && kv.value.as_str() == "billing"));
    }
    assert!(spans[0].parent_span_id != opentelemetry::trace::SpanId::INVALID);
    assert_eq!(
        spans[1].parent_span_id,
        opentelemetry::trace::SpanId::INVALID
    );
}

#[test]
fn http_failures_and_cancellations_are_labelled_in_the_duration_metric() {
    let recorder = DebuggingRecorder::new();
    let seen = Seen::default();
    run(&recorder, async {
        let client = ServiceBuilder::new()
            .layer(ClientLayer::new())
            .service(server(&seen, || {
                let mut r = Response::new(Reply::text("missing"));
                *r.status_mut() = http::StatusCode::NOT_FOUND;
                r
            }));
        let request = Request::post("http://api:8080/x").body(()).unwrap();
        let response = client.oneshot(request).await.unwrap();
        drain(response.into_body()).await;
        let pending = tower::service_fn(|_: Request<()>| {
            std::future::pending::<Result<Response<Reply>, Infallible>>()
        });
        let mut client = ServiceBuilder::new()
            .layer(ClientLayer::new())
            .service(pending);
        let call = tower::Service::call(
            &mut client,
            Request::get("http://api:8080/y").body(()).unwrap(),
        );
        drop(call);
    });
    let metrics = snapshot(&recorder);
    assert!(metrics.contains_key("http_client_request_duration_seconds{error_type=404,http_request_method=POST,http_response_status_code=404,server_address=api,server_port=8080}"), "{metrics:#?}");
    assert!(metrics.contains_key("http_client_request_duration_seconds{error_type=cancelled,http_request_method=GET,server_address=api,server_port=8080}"), "{metrics:#?}");
}

/// Retries 503s up to twice.
#[derive(Clone)]
struct RetryUnavailable(u8);

impl tower::retry::Policy<Request<()>, Response<crate::client::ResponseBody<Reply>>, Infallible>
    for RetryUnavailable
{
    type Future = std::future::Ready<()>;

    fn retry(
        &mut self,
        _: &mut Request<()>,
        result: &mut Result<Response<crate::client::ResponseBody<Reply>>, Infallible>,
    ) -> Option<Self::Future> {
        let unavailable =
            matches!(result, Ok(r) if r.status() == http::StatusCode::SERVICE_UNAVAILABLE);
        (unavailable && self.0 > 0).then(|| {
            self.0 -= 1;
            std::future::ready(())
        })
    }

    fn clone_request(&mut self, request: &Request<()>) -> Option<Request<()>> {
        let mut clone = Request::new(());
        *clone.uri_mut() = request.uri().clone();
        Some(clone)
    }
}

#[tokio::test]
async fn each_retry_is_a_span_of_its_own_under_the_same_parent() {
    let (tracer, exporter, _p) = tracer();
    let seen = Seen::default();
    let client = ServiceBuilder::new()
        .retry(RetryUnavailable(2))
        .layer(ClientLayer::new().tracer(tracer).without_metrics())
        .service(server(&seen, || {
            let mut r = Response::new(Reply::text("busy"));
            *r.status_mut() = http::StatusCode::SERVICE_UNAVAILABLE;
            r
        }));
    let request = Request::get("http://api/x").body(()).unwrap();
    let response = client.oneshot(request).in_context(sampled()).await.unwrap();
    drain(response.into_body()).await;
    let spans = spans(&exporter);
    assert_eq!(spans.len(), 3, "one span per attempt");
    let ids: std::collections::HashSet<_> =
        spans.iter().map(|s| s.span_context.span_id()).collect();
    assert_eq!(ids.len(), 3);
    assert!(spans
        .iter()
        .all(|s| s.parent_span_id.to_string() == "00f067aa0ba902b7"));
    // Each attempt sent its own span as the parent.
    let sent: std::collections::HashSet<String> = seen
        .lock()
        .unwrap()
        .iter()
        .map(|h| h["traceparent"].to_str().unwrap().to_owned())
        .collect();
    assert_eq!(sent.len(), 3);
}

#[tokio::test]
async fn non_utf8_and_hostile_request_parts_never_panic() {
    let (tracer, exporter, _p) = tracer();
    let seen = Seen::default();
    let client = ServiceBuilder::new()
        .layer(ClientLayer::new().tracer(tracer).without_metrics())
        .service(server(&seen, || Response::new(Reply::text("ok"))));
    let mut request = Request::builder()
        .method(http::Method::from_bytes(b"X-CUSTOM").unwrap())
        .uri("/relative/only?card=4111111111111111")
        .body(())
        .unwrap();
    let headers = request.headers_mut();
    headers.insert("host", http::HeaderValue::from_bytes(b"h\xffst").unwrap());
    headers.insert(
        "x-note",
        http::HeaderValue::from_bytes(b"\xfe\xff").unwrap(),
    );
    headers.insert("traceparent", http::HeaderValue::from_static("00-garbage"));
    headers.insert("tracestate", http::HeaderValue::from_static("stale=1"));
    let response = client.oneshot(request).in_context(sampled()).await.unwrap();
    drain(response.into_body()).await;
    let span = &spans(&exporter)[0];
    assert_eq!(span.name, "HTTP");
    assert_eq!(attr_str(span, HTTP_REQUEST_METHOD).as_deref(), Some(OTHER));
    assert_eq!(
        attr_str(span, HTTP_REQUEST_METHOD_ORIGINAL).as_deref(),
        Some("X-CUSTOM")
    );
    assert!(!attr_str(span, URL_FULL)
        .unwrap()
        .contains("4111111111111111"));
    // The caller's garbage traceparent is replaced by the client span's.
    let sent = &seen.lock().unwrap()[0];
    assert!(sent["traceparent"].to_str().unwrap().ends_with("-01"));
    assert!(
        sent.get("tracestate").is_none(),
        "the stale tracestate is gone"
    );
    assert_eq!(sent["x-note"].as_bytes(), b"\xfe\xff");
}

#[test]
fn a_path_only_request_records_no_server_address_or_port() {
    let (tracer, exporter, _p) = tracer();
    let recorder = DebuggingRecorder::new();
    let seen = Seen::default();
    run(&recorder, async {
        let client = ServiceBuilder::new()
            .layer(ClientLayer::new().tracer(tracer))
            .service(server(&seen, || grpc_reply(0)));
        let request = grpc_request("/acme.v1.Billing/Charge", None);
        let response = client.oneshot(request).in_context(sampled()).await.unwrap();
        drain(response.into_body()).await;
    });
    let span = &spans(&exporter)[0];
    assert!(attr(span, SERVER_ADDRESS).is_none() && attr(span, SERVER_PORT).is_none());
    let metrics = snapshot(&recorder);
    assert!(metrics.contains_key("rpc_client_call_duration_seconds{rpc_method=acme.v1.Billing/Charge,rpc_response_status_code=OK,rpc_system_name=grpc,server_address=,server_port=}"), "{metrics:#?}");
}

/// Like every middleware service of the crate: the wrapped service reachable, and a
/// `Debug` that shows it.
#[test]
fn the_client_gives_access_to_the_wrapped_service() {
    #[derive(Debug, PartialEq)]
    struct Inner(u8);
    let mut client = tower::Layer::layer(&ClientLayer::new(), Inner(1));
    assert_eq!(client.get_ref(), &Inner(1));
    client.get_mut().0 = 2;
    assert_eq!(format!("{client:?}"), "Client { inner: Inner(2), .. }");
    assert_eq!(client.into_inner(), Inner(2));
}

/// A client span under a sampled parent waits in the export queue with its attributes'
/// vector as the layer built it: room for what its end adds, not much more, never
/// grown to twice its size.
#[cfg(feature = "sdk")]
#[tokio::test]
async fn a_client_span_keeps_no_more_room_for_attributes_than_its_end_uses() {
    use instrument_core::pipeline::TenantProcessor;
    use opentelemetry::trace::TracerProvider as _;

    for rpc in [
        RpcConventions::Old,
        RpcConventions::Current,
        RpcConventions::Both,
    ] {
        for failing in [false, true] {
            let room = Room::default();
            let provider = opentelemetry_sdk::trace::SdkTracerProvider::builder()
                .with_span_processor(TenantProcessor::stamping(room.clone()))
                .build();
            let layer = ClientLayer::new()
                .tracer(provider.tracer("test"))
                .rpc_conventions(rpc)
                .without_metrics();
            let seen = Seen::default();
            let reply = if failing {
                || Response::new(Reply::grpc(14))
            } else {
                || Response::new(Reply::grpc(0))
            };
            let grpc = ServiceBuilder::new()
                .layer(layer.clone())
                .service(server(&seen, reply));
            let request = Request::post("http://payments.internal:50051/pay.Payments/Charge")
                .header("content-type", "application/grpc")
                .body(())
                .unwrap();
            let response = grpc.oneshot(request).in_context(sampled()).await.unwrap();
            drain(response.into_body()).await;
            let reply = if failing {
                || {
                    let mut r = Response::new(Reply::text("no"));
                    *r.status_mut() = http::StatusCode::SERVICE_UNAVAILABLE;
                    r
                }
            } else {
                || Response::new(Reply::text("ok"))
            };
            let plain = ServiceBuilder::new()
                .layer(layer)
                .service(server(&seen, reply));
            let request = Request::get("https://api.example.com/v1/charge?id=7")
                .body(())
                .unwrap();
            let response = plain.oneshot(request).in_context(sampled()).await.unwrap();
            drain(response.into_body()).await;
            room.assert_snug(2, &format!("{rpc:?} failing {failing}"));
        }
    }
}
