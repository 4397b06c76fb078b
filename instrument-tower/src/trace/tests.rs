use std::convert::Infallible;
use std::future::{ready, Ready};
use std::time::Duration;

use http::{Request, Response, StatusCode};
use instrument_core::semconv::*;
use instrument_core::tenant::{current_tenant, TenantId};
use opentelemetry::trace::{SpanKind, Status, TraceContextExt as _};
use tower::{ServiceBuilder, ServiceExt as _};

use super::TraceLayer;
use crate::source::{Found, SourceError, StoredTrace, TraceSource};
use crate::tenant::TenantLayer;
use crate::test_support::*;

/// Workflows `wf-acme` (tenant acme, stored TP), `wf-corrupt` (acme, garbage), and a
/// failing database for `wf-down`.
struct Store;

impl TraceSource for Store {
    type Lookup = Ready<Result<Option<StoredTrace>, SourceError>>;

    fn lookup(&self, key: &str) -> Self::Lookup {
        let acme = || TenantId::parse("acme").unwrap();
        ready(match key {
            "wf-acme" => Ok(Some(StoredTrace::new(acme(), Some(TP)))),
            "wf-corrupt" => Ok(Some(StoredTrace::new(acme(), Some("00-garbage")))),
            "wf-down" => Err("connection refused for password=hunter2".into()),
            _ => Ok(None),
        })
    }
}

/// [`Store`] answering every key at once, as a [`CachedSource`](crate::source::CachedSource)
/// answers a hit: the layer must take the answer and never ask for the lookup future.
struct StoreNow;

impl TraceSource for StoreNow {
    type Lookup = Ready<Result<Option<StoredTrace>, SourceError>>;

    fn lookup(&self, key: &str) -> Self::Lookup {
        panic!("{key} was answered now; its lookup future is not needed")
    }

    fn find(&self, key: &str) -> Found<Self::Lookup> {
        Found::Ready(Store.lookup(key).into_inner())
    }
}

fn http(path: &str) -> http::request::Builder {
    Request::builder().uri(path).header("x-tenant-id", "acme")
}

async fn ok(_: Request<()>) -> Result<Response<Reply>, Infallible> {
    Ok(Response::new(Reply::text("ok")))
}

#[tokio::test]
async fn http_span_name_attributes_status_and_tracking_header() {
    let (tracer, exporter, _p) = tracer();
    let service = ServiceBuilder::new()
        .layer(
            TraceLayer::new()
                .tracer(tracer)
                .route_with(crate::request::NormalizedPath),
        )
        .service_fn(|_: Request<()>| async {
            let mut r = Response::new(Reply::text("boom"));
            *r.status_mut() = StatusCode::SERVICE_UNAVAILABLE;
            Ok::<_, Infallible>(r)
        });
    let request = http("/workflows/8f14e45f-ceea-467f-a0e5-4f2b3c1d2e3f/tasks?x=1")
        .body(())
        .unwrap();
    let response = service.oneshot(request).await.unwrap();
    let tracking = response.headers()["x-tracking-id"]
        .to_str()
        .unwrap()
        .to_owned();
    assert!(
        spans(&exporter).is_empty(),
        "the span lasts until the body ends"
    );
    drain(response.into_body()).await;

    let spans = spans(&exporter);
    let span = &spans[0];
    assert_eq!(span.name, "GET /workflows/{id}/tasks");
    assert_eq!(span.span_kind, SpanKind::Server);
    assert_eq!(attr_str(span, HTTP_REQUEST_METHOD).as_deref(), Some("GET"));
    assert_eq!(
        attr_str(span, HTTP_ROUTE).as_deref(),
        Some("/workflows/{id}/tasks")
    );
    assert_eq!(attr(span, HTTP_RESPONSE_STATUS_CODE), Some(&503i64.into()));
    assert_eq!(attr_str(span, TENANT_ID).as_deref(), Some("acme"));
    assert!(matches!(span.status, Status::Error { .. }));
    assert_eq!(tracking, span.span_context.trace_id().to_string());
    assert_eq!(tracking.len(), 32);
}

#[tokio::test]
async fn grpc_status_from_trailers_decides_the_span_status() {
    let (tracer, exporter, _p) = tracer();
    for code in [0u16, 5, 13] {
        let service = ServiceBuilder::new()
            .layer(TraceLayer::new().tracer(tracer.clone()))
            .service_fn(move |_: Request<()>| async move {
                Ok::<_, Infallible>(Response::new(Reply::grpc(code)))
            });
        let request = grpc_request(
            "/instrument.example.v1.WorkflowService/StartWorkflow",
            Some("acme"),
        );
        drain(service.oneshot(request).await.unwrap().into_body()).await;
    }
    let spans = spans(&exporter);
    assert_eq!(spans.len(), 3);
    for (span, code) in spans.iter().zip([0i64, 5, 13]) {
        assert_eq!(
            span.name,
            "instrument.example.v1.WorkflowService/StartWorkflow"
        );
        assert_eq!(attr_str(span, RPC_SYSTEM).as_deref(), Some("grpc"));
        assert_eq!(
            attr_str(span, RPC_SERVICE).as_deref(),
            Some("instrument.example.v1.WorkflowService")
        );
        assert_eq!(attr_str(span, RPC_METHOD).as_deref(), Some("StartWorkflow"));
        assert_eq!(attr(span, RPC_GRPC_STATUS_CODE), Some(&code.into()));
        // NOT_FOUND is the caller's problem; INTERNAL the server's.
        assert_eq!(
            matches!(span.status, Status::Error { .. }),
            code == 13,
            "{code}"
        );
    }
}

#[tokio::test]
async fn stored_trace_is_the_parent_the_caller_a_link_and_the_record_reaches_the_service() {
    stored_trace_is_the_parent(Store).await;
    stored_trace_is_the_parent(StoreNow).await;
}

async fn stored_trace_is_the_parent(source: impl TraceSource) {
    let (tracer, exporter, _p) = tracer();
    let service = ServiceBuilder::new()
        .layer(TraceLayer::new().tracer(tracer).source(source))
        .service_fn(|request: Request<()>| async move {
            let stored = request.extensions().get::<StoredTrace>().cloned();
            assert_eq!(stored.unwrap().tenant().as_str(), "acme");
            tokio::task::yield_now().await;
            assert_eq!(current_tenant().unwrap().as_str(), "acme");
            let cx = opentelemetry::Context::current();
            assert_eq!(cx.span().span_context().trace_id().to_string(), &TP[3..35]);
            Ok::<_, Infallible>(Response::new(Reply::default()))
        });
    let request = http("/workflows")
        .header("x-workflow-id", "wf-acme")
        .header("traceparent", TP_CALLER)
        .body(())
        .unwrap();
    let response = service.oneshot(request).await.unwrap();
    assert_eq!(response.headers()["x-tracking-id"], &TP[3..35]);
    drop(response);
    let span = &spans(&exporter)[0];
    assert_eq!(span.span_context.trace_id().to_string(), &TP[3..35]);
    assert_eq!(span.parent_span_id.to_string(), &TP[36..52]);
    assert_eq!(span.links.len(), 1);
    assert_eq!(
        span.links[0].span_context.trace_id().to_string(),
        &TP_CALLER[3..35]
    );
}

#[tokio::test]
async fn another_tenants_stored_trace_is_never_joined_and_the_tenant_layer_refuses() {
    let (tracer, exporter, _p) = tracer();
    let service = ServiceBuilder::new()
        .layer(TraceLayer::new().tracer(tracer).source(Store))
        .layer(TenantLayer::new())
        .service_fn(ok);
    let request = Request::builder()
        .uri("/workflows")
        .header("x-tenant-id", "globex")
        .header("x-workflow-id", "wf-acme")
        .body(())
        .unwrap();
    let response = service.oneshot(request).await.unwrap();
    assert_eq!(response.status(), StatusCode::FORBIDDEN);
    assert_ne!(
        response.headers()["x-tracking-id"],
        &TP[3..35],
        "no trace id of acme leaks"
    );
    drop(response);
    let span = &spans(&exporter)[0];
    assert_ne!(span.span_context.trace_id().to_string(), &TP[3..35]);
    assert_eq!(
        attr_str(span, STORED_PARENT_UNUSED).as_deref(),
        Some("another tenant")
    );
    assert_eq!(attr_str(span, TENANT_ID).as_deref(), Some("globex"));
    assert_eq!(
        attr_str(span, TENANT_REJECTED).as_deref(),
        Some("other_tenant")
    );
    assert_eq!(span.events.len(), 1);
}

#[tokio::test]
async fn corrupt_stored_or_incoming_context_and_failed_lookups_start_fresh_traces() {
    fresh_traces(Store).await;
    fresh_traces(StoreNow).await;
}

async fn fresh_traces(source: impl TraceSource) {
    let (tracer, exporter, _p) = tracer();
    let layer = TraceLayer::new().tracer(tracer).source(source);
    for (workflow, traceparent) in [
        ("wf-corrupt", None),
        ("wf-down", None),
        (
            "wf-unknown",
            Some("00-00000000000000000000000000000000-b7ad6b7169203331-01"),
        ),
    ] {
        let mut b = http("/workflows").header("x-workflow-id", workflow);
        if let Some(tp) = traceparent {
            b = b.header("traceparent", tp);
        }
        let service = ServiceBuilder::new().layer(layer.clone()).service_fn(ok);
        drop(service.oneshot(b.body(()).unwrap()).await.unwrap());
    }
    let spans = spans(&exporter);
    assert_eq!(spans.len(), 3);
    for span in &spans {
        assert_eq!(span.parent_span_id, opentelemetry::trace::SpanId::INVALID);
        assert!(span.links.is_empty());
    }
    let unused: Vec<_> = spans
        .iter()
        .map(|s| attr_str(s, STORED_PARENT_UNUSED).unwrap())
        .collect();
    assert!(
        unused[0].starts_with("stored traceparent is invalid"),
        "{}",
        unused[0]
    );
    assert_eq!(unused[1], "lookup failed");
    assert_eq!(unused[2], "not found");
    assert!(attr_str(&spans[2], INCOMING_PARENT_INVALID).is_some());
}

#[tokio::test]
async fn service_errors_are_recorded_redacted() {
    let (tracer, exporter, _p) = tracer();
    let service = ServiceBuilder::new()
        .layer(TraceLayer::new().tracer(tracer))
        .service_fn(|_: Request<()>| async {
            Err::<Response<Reply>, _>(format!(
                "db login failed: password=hunter2 {}",
                "x".repeat(5000)
            ))
        });
    assert!(service.oneshot(http("/x").body(()).unwrap()).await.is_err());
    let span = &spans(&exporter)[0];
    let Status::Error { description } = &span.status else {
        panic!("{:?}", span.status)
    };
    assert!(!description.contains("hunter2"), "{description}");
    assert!(description.len() <= MAX_ERROR_LEN);
    // The class in `error.type`; no bare `error` attribute (some backends read it as
    // a flag).
    assert_eq!(attr_str(span, "error.type").as_deref(), Some("_OTHER"));
    assert_eq!(attr_str(span, "error"), None);
}

#[tokio::test]
async fn dropped_futures_end_their_span_as_cancelled() {
    let (tracer, exporter, _p) = tracer();
    let service = ServiceBuilder::new()
        .layer(TraceLayer::new().tracer(tracer))
        .service_fn(|_: Request<()>| async {
            tokio::time::sleep(Duration::from_secs(3600)).await;
            Ok::<_, Infallible>(Response::new(Reply::default()))
        });
    let call = service.oneshot(http("/slow").body(()).unwrap());
    assert!(tokio::time::timeout(Duration::from_millis(10), call)
        .await
        .is_err());
    let span = &spans(&exporter)[0];
    assert_eq!(attr(span, CANCELLED), Some(&true.into()));
    assert_eq!(attr(span, HTTP_RESPONSE_STATUS_CODE), None);
}

/// A source that never answers.
struct Stuck;

impl TraceSource for Stuck {
    type Lookup = std::future::Pending<Result<Option<StoredTrace>, SourceError>>;

    fn lookup(&self, _: &str) -> Self::Lookup {
        std::future::pending()
    }
}

#[tokio::test]
async fn dropped_during_lookup_still_records_the_request() {
    let (tracer, exporter, _p) = tracer();
    let service = ServiceBuilder::new()
        .layer(TraceLayer::new().tracer(tracer).source(Stuck))
        .service_fn(ok);
    let call = service.oneshot(
        http("/workflows")
            .header("x-workflow-id", "wf")
            .body(())
            .unwrap(),
    );
    assert!(tokio::time::timeout(Duration::from_millis(10), call)
        .await
        .is_err());
    let span = &spans(&exporter)[0];
    // Never answered, the route was never recognised: the span is named by the method.
    assert_eq!(span.name, "GET");
    assert_eq!(attr(span, CANCELLED), Some(&true.into()));
}

#[tokio::test]
async fn recorded_headers_never_show_credentials() {
    let (tracer, exporter, _p) = tracer();
    let layer = TraceLayer::new().tracer(tracer).record_headers(
        [
            "user-agent",
            "authorization",
            "cookie",
            "x-api-key",
            "x-note",
        ]
        .map(http::HeaderName::from_static),
    );
    let service = ServiceBuilder::new().layer(layer).service_fn(ok);
    let request = http("/x")
        .header("user-agent", "grpcurl/1.9")
        .header(
            "authorization",
            "Bearer eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxIn0.c2lnbmF0dXJl",
        )
        .header("cookie", "session=abc123")
        .header("x-api-key", "plainvalue")
        .header("x-note", "mail bob@example.com")
        .body(())
        .unwrap();
    drop(service.oneshot(request).await.unwrap());
    let span = &spans(&exporter)[0];
    let header =
        |name: &str| attr(span, &format!("http.request.header.{name}")).map(|v| v.to_string());
    assert_eq!(header("user-agent").as_deref(), Some("[\"grpcurl/1.9\"]"));
    for (name, secret) in [
        ("authorization", "eyJhbGciOiJIUzI1NiJ9"),
        ("cookie", "abc123"),
        ("x-api-key", "plainvalue"),
        ("x-note", "bob@example.com"),
    ] {
        let value = header(name).unwrap();
        assert!(!value.contains(secret), "{name}: {value}");
    }
    assert!(header("authorization").unwrap().contains("Bearer"));
}

#[tokio::test]
async fn tracking_header_can_be_renamed_or_off() {
    let (tracer, _exporter, _p) = tracer();
    let layer = TraceLayer::new().tracer(tracer);
    let renamed = layer
        .clone()
        .tracking_header(http::HeaderName::from_static("x-trace"));
    let off = layer.no_tracking_header();
    let response = ServiceBuilder::new()
        .layer(renamed)
        .service_fn(ok)
        .oneshot(http("/").body(()).unwrap())
        .await
        .unwrap();
    assert!(response.headers().contains_key("x-trace"));
    let response = ServiceBuilder::new()
        .layer(off)
        .service_fn(ok)
        .oneshot(http("/").body(()).unwrap())
        .await
        .unwrap();
    assert!(!response.headers().contains_key("x-tracking-id"));
}

#[tokio::test]
async fn random_flag_and_whole_tracestate_reach_the_handler_context_sampled_or_not() {
    use instrument_core::context::{capture, inject};
    let (tracer, _exporter, _p) = tracer();
    let service = ServiceBuilder::new()
        .layer(TraceLayer::new().tracer(tracer))
        .service_fn(|_: Request<()>| async {
            // What a handler stores with a new row, and what it sends downstream.
            let stored = capture().map(|tp| tp.to_string()).unwrap_or_default();
            let mut sent = Vec::new();
            inject(&opentelemetry::Context::current(), |name, value| {
                sent.push(format!("{name}: {value}"))
            });
            let mut response = Response::new(Reply::text("ok"));
            response
                .headers_mut()
                .insert("x-stored", stored.parse().unwrap());
            response
                .headers_mut()
                .insert("x-sent", sent.join("; ").parse().unwrap());
            Ok::<_, Infallible>(response)
        });
    for (flags, expected) in [("02", "02"), ("03", "03"), ("00", "00"), ("ff", "03")] {
        let request = http("/x")
            .header(
                "traceparent",
                format!("00-12345678901234567890123456789012-1234567890123456-{flags}"),
            )
            .header("tracestate", "foo@@bar=1,t@vvvvvvvvvvvvvvv=2")
            .body(())
            .unwrap();
        let response = service.clone().oneshot(request).await.unwrap();
        let stored = response.headers()["x-stored"].to_str().unwrap();
        assert!(stored.starts_with("00-12345678901234567890123456789012-"));
        assert!(
            stored.ends_with(&format!("-{expected}")),
            "{flags}: {stored}"
        );
        let sent = response.headers()["x-sent"].to_str().unwrap();
        assert!(sent.contains(&format!("-{expected}; ")), "{flags}: {sent}");
        assert!(
            sent.ends_with("tracestate: foo@@bar=1,t@vvvvvvvvvvvvvvv=2"),
            "{flags}: {sent}"
        );
    }
}

/// The HTTP server conventions' attributes: everything the request tells, values a
/// client chose redacted; `HTTP` as the name for a method the conventions do not know;
/// `error.type` the status code of a failure.
#[tokio::test]
async fn http_spans_carry_the_conventions_attributes() {
    let (tracer, exporter, _p) = tracer();
    let service = ServiceBuilder::new()
        .layer(TraceLayer::new().tracer(tracer))
        .service_fn(|request: Request<()>| async move {
            let mut response = Response::new(Reply::default());
            if request.uri().path() == "/fail" {
                *response.status_mut() = StatusCode::SERVICE_UNAVAILABLE;
            }
            Ok::<_, Infallible>(response)
        });
    let requests = [
        Request::get("/jobs/7?token=sk_live_4eC39HqLyjWDarjtT1zdp7dc&page=2")
            .header("host", "api.example.com:8443")
            .header("user-agent", "curl/8.5.0")
            .version(http::Version::HTTP_11)
            .body(())
            .unwrap(),
        Request::builder()
            .method("PURGE")
            .uri("https://cache.example.com/fail")
            .version(http::Version::HTTP_2)
            .body(())
            .unwrap(),
    ];
    for request in requests {
        let response = service.clone().oneshot(request).await.unwrap();
        drain(response.into_body()).await;
    }
    let spans = spans(&exporter);
    let get = &spans[0];
    // No route given: none made from the path (the conventions' rule).
    assert_eq!(get.name, "GET");
    assert_eq!(attr_str(get, HTTP_ROUTE), None);
    assert_eq!(attr_str(get, URL_PATH).as_deref(), Some("/jobs/7"));
    let query = attr_str(get, URL_QUERY).unwrap();
    assert!(
        query.contains("page=2") && !query.contains("4eC39HqLyjWDarjtT1zdp7dc"),
        "{query}"
    );
    assert_eq!(attr_str(get, URL_SCHEME).as_deref(), Some("http"));
    assert_eq!(
        attr_str(get, NETWORK_PROTOCOL_VERSION).as_deref(),
        Some("1.1")
    );
    assert_eq!(
        attr_str(get, USER_AGENT_ORIGINAL).as_deref(),
        Some("curl/8.5.0")
    );
    assert_eq!(
        attr_str(get, SERVER_ADDRESS).as_deref(),
        Some("api.example.com")
    );
    assert_eq!(
        attr(get, SERVER_PORT),
        Some(&opentelemetry::Value::I64(8443))
    );
    assert_eq!(attr_str(get, HTTP_REQUEST_METHOD_ORIGINAL), None);
    assert_eq!(attr_str(get, ERROR_TYPE), None);

    let purge = &spans[1];
    assert_eq!(attr_str(purge, HTTP_REQUEST_METHOD).as_deref(), Some(OTHER));
    assert_eq!(
        attr_str(purge, HTTP_REQUEST_METHOD_ORIGINAL).as_deref(),
        Some("PURGE")
    );
    assert!(purge.name.starts_with("HTTP"), "{}", purge.name);
    assert_eq!(attr_str(purge, URL_SCHEME).as_deref(), Some("https"));
    assert_eq!(
        attr_str(purge, NETWORK_PROTOCOL_VERSION).as_deref(),
        Some("2")
    );
    assert_eq!(
        attr_str(purge, SERVER_ADDRESS).as_deref(),
        Some("cache.example.com")
    );
    assert_eq!(attr(purge, SERVER_PORT), None, "no port named");
    assert_eq!(attr_str(purge, ERROR_TYPE).as_deref(), Some("503"));
    assert!(matches!(purge.status, Status::Error { .. }));
}

/// gRPC spans by `OTEL_SEMCONV_STABILITY_OPT_IN`'s three choices.
#[tokio::test]
async fn grpc_spans_follow_the_rpc_conventions_asked_for() {
    for rpc in [
        RpcConventions::Old,
        RpcConventions::Current,
        RpcConventions::Both,
    ] {
        let (tracer, exporter, _p) = tracer();
        let service = ServiceBuilder::new()
            .layer(TraceLayer::new().tracer(tracer).rpc_conventions(rpc))
            .service_fn(|_: Request<()>| async {
                Ok::<_, Infallible>(Response::new(Reply::grpc(13)))
            });
        let response = service
            .oneshot(grpc_request("/pkg.Svc/Get", Some("acme")))
            .await
            .unwrap();
        drain(response.into_body()).await;
        let span = &spans(&exporter)[0];
        let has = |key: &str| attr(span, key).is_some();
        assert_eq!(has(RPC_SYSTEM), rpc.old(), "{rpc:?}");
        assert_eq!(has(RPC_SERVICE), rpc.old(), "{rpc:?}");
        assert_eq!(has(RPC_GRPC_STATUS_CODE), rpc.old(), "{rpc:?}");
        assert_eq!(has(RPC_SYSTEM_NAME), rpc.current(), "{rpc:?}");
        assert_eq!(
            attr_str(span, RPC_RESPONSE_STATUS_CODE).as_deref(),
            rpc.current().then_some("INTERNAL"),
            "{rpc:?}"
        );
        let method = if rpc.current() { "pkg.Svc/Get" } else { "Get" };
        assert_eq!(
            attr_str(span, RPC_METHOD).as_deref(),
            Some(method),
            "{rpc:?}"
        );
        assert_eq!(
            attr_str(span, ERROR_TYPE).as_deref(),
            Some("INTERNAL"),
            "{rpc:?}"
        );
        assert_eq!(span.name, "pkg.Svc/Get");
    }
}

/// A span waits in the export queue with its attributes' vector as the layer built it:
/// room for what its end usually adds, and not much more (nor grown to twice its
/// size). So under a sampled parent, and for a root when the tracer is known to sample
/// every root (the pipeline's default sampler). (Under another sampler a root's
/// attributes are made once the sampler chose to record it, into the SDK's vector.)
#[cfg(feature = "sdk")]
#[tokio::test]
async fn a_span_keeps_no_more_room_for_attributes_than_its_end_uses() {
    use instrument_core::pipeline::{SamplerConfig, TenantProcessor};
    use opentelemetry::trace::TracerProvider as _;

    let peer: std::net::SocketAddr = "10.1.2.3:51000".parse().unwrap();
    let cases = [RpcConventions::Current, RpcConventions::Both]
        .into_iter()
        .flat_map(|rpc| [(rpc, 0, 200), (rpc, 13, 500)])
        .flat_map(|case| [(case, Some(TP_CALLER)), (case, None)]);
    for ((rpc, code, http_status), parent) in cases {
        // From a peer, under the caller's sampled parent or as a root.
        let from_peer = |request: &mut Request<()>| {
            request.extensions_mut().insert(peer);
            if let Some(parent) = parent {
                request
                    .headers_mut()
                    .insert("traceparent", parent.parse().unwrap());
            }
        };
        let room = Room::default();
        let provider = opentelemetry_sdk::trace::SdkTracerProvider::builder()
            .with_span_processor(TenantProcessor::stamping(room.clone()))
            .build();
        let layer = TraceLayer::new().rpc_conventions(rpc);
        let layer = match parent {
            Some(_) => layer.tracer(provider.tracer("test")),
            None => {
                layer.tracer_sampled_by(provider.tracer("test"), SamplerConfig::ParentBasedAlwaysOn)
            }
        };
        let grpc =
            ServiceBuilder::new().layer(layer.clone()).service_fn(
                move |_: Request<()>| async move {
                    Ok::<_, Infallible>(Response::new(Reply::grpc(code)))
                },
            );
        let mut request = grpc_request("/pkg.Svc/Get", Some("acme"));
        from_peer(&mut request);
        drain(grpc.oneshot(request).await.unwrap().into_body()).await;
        let plain =
            ServiceBuilder::new()
                .layer(layer)
                .service_fn(move |_: Request<()>| async move {
                    let mut response = Response::new(Reply::text("done"));
                    *response.status_mut() = StatusCode::from_u16(http_status).unwrap();
                    Ok::<_, Infallible>(response)
                });
        let mut request = http("/orders?id=7")
            .header("user-agent", "curl/8")
            .header("host", "shop.example:8443")
            .body(())
            .unwrap();
        from_peer(&mut request);
        drain(plain.oneshot(request).await.unwrap().into_body()).await;
        room.assert_snug(2, &format!("{rpc:?} {code} {parent:?}"));
    }
}
