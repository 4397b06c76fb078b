use std::convert::Infallible;

use http::{Request, Response, StatusCode};
use instrument_core::semconv::HTTP_ROUTE;
use metrics_util::debugging::DebuggingRecorder;
use tower::{ServiceBuilder, ServiceExt as _};

use super::InstrumentLayer;
use crate::metrics::RequestMetricsLayer;
use crate::test_support::*;

async fn ok(_: Request<()>) -> Result<Response<Reply>, Infallible> {
    Ok(Response::new(Reply::text("ok")))
}

fn post(path: &str, headers: &[(&str, &str)]) -> Request<()> {
    let mut request = Request::post(path);
    for (name, value) in headers {
        request = request.header(*name, *value);
    }
    request.body(()).unwrap()
}

/// `network.peer.*` from what the server put in the extensions, and an HTTP request's
/// `client.address`: the peer, or the client a trusted proxy names, never a forged
/// header's claim by default.
#[test]
fn peers_and_clients_are_recorded_and_forwarded_headers_only_behind_a_trusted_proxy() {
    let peer: std::net::SocketAddr = "10.1.2.3:51000".parse().unwrap();
    let with_peer = |mut request: Request<()>| {
        request.extensions_mut().insert(peer);
        request
    };
    let recorder = DebuggingRecorder::new();
    let mut seen = Vec::new();
    for trusted in [false, true] {
        let (tracer, exporter, _provider) = tracer();
        let builder = InstrumentLayer::builder().tracer(tracer);
        let layer = if trusted {
            builder.behind_trusted_proxy()
        } else {
            builder
        }
        .build();
        run(&recorder, async {
            let service = ServiceBuilder::new().layer(layer.clone()).service_fn(ok);
            let request = post(
                "/orders",
                &[
                    ("x-tenant-id", "acme"),
                    ("x-forwarded-for", "198.51.100.7, 10.0.0.9"),
                ],
            );
            let response = service.oneshot(with_peer(request)).await.unwrap();
            drain(response.into_body()).await;
            let service = ServiceBuilder::new().layer(layer.clone()).service_fn(ok);
            let call = with_peer(grpc_request("/pkg.Svc/Get", Some("acme")));
            let response = service.oneshot(call).await.unwrap();
            drain(response.into_body()).await;
        });
        seen.push(spans(&exporter));
    }
    for spans in &seen {
        for span in spans {
            assert_eq!(
                attr_str(span, "network.peer.address").as_deref(),
                Some("10.1.2.3")
            );
            assert_eq!(
                attr_str(span, "network.peer.port").as_deref(),
                Some("51000")
            );
        }
        let grpc = spans.iter().find(|s| s.name != "POST").unwrap();
        assert_eq!(
            attr_str(grpc, "client.address"),
            None,
            "HTTP conventions only"
        );
    }
    let http = |i: usize| seen[i].iter().find(|s| s.name == "POST").unwrap().clone();
    assert_eq!(
        attr_str(&http(0), "client.address").as_deref(),
        Some("10.1.2.3")
    );
    assert_eq!(attr_str(&http(0), "client.port").as_deref(), Some("51000"));
    assert_eq!(
        attr_str(&http(1), "client.address").as_deref(),
        Some("198.51.100.7"),
        "the client the trusted proxy names"
    );
    assert_eq!(attr_str(&http(1), "client.port"), None);
}

/// Past the few peers a layer keeps the address attributes of, every request still
/// records its own peer; a layer's redactor masks kept and made ones alike, and a
/// layer given another redactor does not reuse what the first one made.
#[test]
fn many_peers_are_each_recorded_and_redacted_by_the_layers_redactor() {
    use instrument_core::redact::{RedactionPolicy, Redactor, Rule};

    let recorder = DebuggingRecorder::new();
    let peers: Vec<std::net::SocketAddr> = (1..=9)
        .map(|i| format!("10.0.0.{i}:{}", 40_000 + i).parse().unwrap())
        .chain(["[2001:db8::7]:443".parse().unwrap()])
        .collect();
    let masking = Redactor::new(&RedactionPolicy::default().enable(Rule::Ip)).unwrap();
    let (tracer, exporter, _provider) = tracer();
    let plain = InstrumentLayer::builder().tracer(tracer.clone()).build();
    let masked = InstrumentLayer::builder()
        .tracer(tracer)
        .redactor(masking)
        .build();
    run(&recorder, async {
        // Twice round: the second time, the first peers come from the kept values.
        for layer in [&plain, &plain, &masked, &masked] {
            for peer in &peers {
                let service = ServiceBuilder::new().layer(layer.clone()).service_fn(ok);
                let mut request = post("/orders", &[("x-tenant-id", "acme")]);
                request.extensions_mut().insert(*peer);
                let response = service.oneshot(request).await.unwrap();
                drain(response.into_body()).await;
            }
        }
    });
    let spans = spans(&exporter);
    assert_eq!(spans.len(), 4 * peers.len());
    for (i, span) in spans.iter().enumerate() {
        let peer = peers[i % peers.len()];
        let (address, client) = (
            attr_str(span, "network.peer.address"),
            attr_str(span, "client.address"),
        );
        if i < 2 * peers.len() {
            assert_eq!(address.as_deref(), Some(peer.ip().to_string().as_str()));
            assert_eq!(client, address);
        } else {
            for value in [&address, &client] {
                let value = value.as_deref().unwrap();
                assert!(!value.contains(&peer.ip().to_string()), "{value}");
            }
        }
        assert_eq!(
            attr_str(span, "network.peer.port").as_deref(),
            Some(peer.port().to_string().as_str())
        );
    }
}

/// The trace layer reads the tenant and the route once for the three layers: all
/// three follow the builder's tenant header and route function.
#[test]
fn the_layers_read_the_builders_tenant_header_and_route() {
    let (tracer, exporter, _provider) = tracer();
    let recorder = DebuggingRecorder::new();
    let layer = InstrumentLayer::builder()
        .tracer(tracer)
        .tenant_header(http::HeaderName::from_static("x-org"))
        .route(|parts: &http::request::Parts| {
            parts
                .uri
                .path()
                .starts_with("/jobs/")
                .then(|| "/jobs/:job".to_owned())
        })
        .build();
    let statuses = |requests: Vec<Request<()>>| {
        let layer = layer.clone();
        let mut statuses = Vec::new();
        run(&recorder, async {
            for request in requests {
                let service = ServiceBuilder::new().layer(layer.clone()).service_fn(ok);
                let response = service.oneshot(request).await.unwrap();
                statuses.push(response.status());
                drain(response.into_body()).await;
            }
        });
        statuses
    };
    let statuses = statuses(vec![
        post("/jobs/nightly-report", &[("x-org", "acme")]),
        post("/jobs/nightly-report", &[("x-tenant-id", "acme")]),
        post(
            "/jobs/nightly-report",
            &[("x-org", "acme"), ("x-org", "globex")],
        ),
        post("/orders/12345", &[("x-org", "acme")]),
    ]);
    assert_eq!(
        statuses,
        [
            StatusCode::OK,
            StatusCode::UNAUTHORIZED,
            StatusCode::BAD_REQUEST,
            StatusCode::OK
        ]
    );

    let spans = spans(&exporter);
    let names: Vec<&str> = spans.iter().map(|span| &*span.name).collect();
    assert_eq!(
        names,
        [
            "POST /jobs/:job",
            "POST /jobs/:job",
            "POST /jobs/:job",
            // The route hook knows no route: the span is named by the method alone.
            "POST"
        ]
    );
    assert_eq!(attr_str(&spans[3], HTTP_ROUTE), None);
    assert_eq!(
        attr_str(&spans[0], HTTP_ROUTE).as_deref(),
        Some("/jobs/:job")
    );
    assert_eq!(attr_str(&spans[0], "tenant.id").as_deref(), Some("acme"));
    assert_eq!(attr_str(&spans[3], "tenant.id").as_deref(), Some("acme"));

    let m = snapshot(&recorder);
    let requests = |route: &str| {
        m.get(&format!(
            "http_server_request_duration_seconds{{http_request_method=POST,http_response_status_code=200,http_route={route},tenant_id=acme}}"
        ))
        .map(String::as_str)
    };
    assert_eq!(requests("/jobs/:job"), Some("1 samples"));
    // No route: `_OTHER`, one label value whatever the paths.
    assert_eq!(requests("_OTHER"), Some("1 samples"));
    let rejected = |reason: &str| {
        m.get(&format!(
            "instrument_tenant_rejections_total{{protocol=http,reason={reason}}}"
        ))
        .map(String::as_str)
    };
    assert_eq!(rejected("missing"), Some("1"));
    assert_eq!(rejected("malformed"), Some("1"));
}

/// What the stack read is its own: a metrics layer of its own configuration, inside
/// the stack, picks its own route.
#[test]
fn a_metrics_layer_inside_the_stack_keeps_its_own_route() {
    let recorder = DebuggingRecorder::new();
    run(&recorder, async {
        let service = ServiceBuilder::new()
            .layer(
                InstrumentLayer::builder()
                    .route_with(crate::request::NormalizedPath)
                    .build(),
            )
            .layer(
                RequestMetricsLayer::new()
                    .route(|_: &http::request::Parts| Some("/inner".to_owned())),
            )
            .service_fn(ok);
        let request = post("/workflows/wf-1", &[("x-tenant-id", "acme")]);
        let response = service.oneshot(request).await.unwrap();
        assert_eq!(response.status(), StatusCode::OK);
        drain(response.into_body()).await;
    });
    let m = snapshot(&recorder);
    let requests = |route: &str| {
        m.get(&format!(
            "http_server_request_duration_seconds{{http_request_method=POST,http_response_status_code=200,http_route={route},tenant_id=acme}}"
        ))
        .map(String::as_str)
    };
    assert_eq!(
        requests("/workflows/wf-1"),
        Some("1 samples"),
        "the stack's own"
    );
    assert_eq!(requests("/inner"), Some("1 samples"), "the inner layer's");
}

mod fused {
    //! The stack's own request path, through every way a request can go.

    use std::convert::Infallible;
    use std::future::{pending, Future as _};
    use std::pin::Pin;

    use http::{HeaderName, Request, Response, StatusCode};
    use instrument_core::semconv::{CANCELLED, HTTP_REQUEST_ID, TENANT_ID};
    use instrument_core::tenant::{current_tenant, TenantId};
    use metrics_util::debugging::DebuggingRecorder;
    use opentelemetry::trace::Status;
    use tower::{ServiceBuilder, ServiceExt as _};
    use tower_http::classify::{GrpcCode, GrpcErrorsAsFailures, SharedClassifier};

    use super::super::InstrumentLayer;
    use crate::source::{SourceError, StoredTrace, TraceSource};
    use crate::test_support::*;

    const STORED: &str = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";

    /// `wf-acme` is acme's, answered after a lookup future (never at once).
    #[derive(Clone)]
    struct Pending;

    impl TraceSource for Pending {
        type Lookup = Pin<
            Box<dyn std::future::Future<Output = Result<Option<StoredTrace>, SourceError>> + Send>,
        >;

        fn lookup(&self, key: &str) -> Self::Lookup {
            let found = (key == "wf-acme")
                .then(|| StoredTrace::new(TenantId::parse("acme").unwrap(), Some(STORED)));
            Box::pin(async move {
                tokio::task::yield_now().await;
                Ok(found)
            })
        }
    }

    fn request(path: &str, tenant: Option<&str>, workflow: Option<&str>) -> Request<()> {
        let mut b = Request::post(path);
        if let Some(t) = tenant {
            b = b.header("x-tenant-id", t);
        }
        if let Some(w) = workflow {
            b = b.header("x-workflow-id", w);
        }
        b.body(()).unwrap()
    }

    async fn tenant_echo(request: Request<()>) -> Result<Response<Reply>, Infallible> {
        // The admitted tenant is in the extensions and in the context.
        assert_eq!(
            request.extensions().get::<TenantId>().cloned(),
            current_tenant()
        );
        assert!(
            request.extensions().get::<StoredTrace>().is_some()
                || request.headers().get("x-workflow-id").is_none()
        );
        Ok(Response::new(Reply::text("ok")))
    }

    #[test]
    fn a_pending_lookup_continues_the_stored_trace_and_refuses_another_tenant() {
        let (tracer, exporter, _provider) = tracer();
        let recorder = DebuggingRecorder::new();
        let layer = InstrumentLayer::builder()
            .tracer(tracer)
            .source(Pending)
            .route_with(crate::request::NormalizedPath)
            .build();
        let mut statuses = Vec::new();
        run(&recorder, async {
            for tenant in ["acme", "globex"] {
                let service = ServiceBuilder::new()
                    .layer(layer.clone())
                    .service_fn(tenant_echo);
                let response = service
                    .oneshot(request("/x", Some(tenant), Some("wf-acme")))
                    .await
                    .unwrap();
                statuses.push(response.status());
                drain(response.into_body()).await;
            }
        });
        assert_eq!(statuses, [StatusCode::OK, StatusCode::FORBIDDEN]);
        let spans = spans(&exporter);
        assert_eq!(
            spans[0].span_context.trace_id().to_string(),
            "4bf92f3577b34da6a3ce929d0e0e4736"
        );
        assert_ne!(
            spans[1].span_context.trace_id(),
            spans[0].span_context.trace_id(),
            "another tenant's trace is not joined"
        );
        assert_eq!(
            attr_str(&spans[1], "tenant.rejected").as_deref(),
            Some("other_tenant")
        );
        let m = snapshot(&recorder);
        assert_eq!(
            m.get("instrument_tenant_rejections_total{protocol=http,reason=other_tenant}")
                .map(String::as_str),
            Some("1")
        );
        assert_eq!(
            m.get("http_server_request_duration_seconds{http_request_method=POST,http_response_status_code=200,http_route=/x,tenant_id=acme}")
                .map(String::as_str),
            Some("1 samples")
        );
        assert!(
            m.keys().all(|k| !k.contains("globex")),
            "a refused tenant is never a label: {m:?}"
        );
    }

    #[test]
    fn refusals_never_reach_the_service_say_what_to_send_and_are_measured() {
        use http_body_util::BodyExt as _;
        let (tracer, exporter, _provider) = tracer();
        let recorder = DebuggingRecorder::new();
        let layer = InstrumentLayer::builder().tracer(tracer).build();
        let mut answers = Vec::new();
        run(&recorder, async {
            for tenant in [None, Some("not a tenant"), None] {
                let service =
                    ServiceBuilder::new()
                        .layer(layer.clone())
                        .service_fn(|_: Request<()>| async {
                            panic!("a refused request reached the service");
                            #[allow(unreachable_code)]
                            Ok::<_, Infallible>(Response::new(Reply::text("no")))
                        });
                let response = service.oneshot(request("/x", tenant, None)).await.unwrap();
                assert!(response.headers().contains_key("x-tracking-id"));
                assert_eq!(
                    response.headers()["content-type"],
                    "text/plain; charset=utf-8"
                );
                let status = response.status();
                let body = response.into_body().collect().await.unwrap().to_bytes();
                answers.push((status, String::from_utf8(body.to_vec()).unwrap()));
            }
            // gRPC: the same text in `grpc-message`, no body.
            let service = ServiceBuilder::new()
                .layer(layer.clone())
                .service_fn(super::ok);
            let response = service
                .oneshot(grpc_request("/pkg.Svc/Get", None))
                .await
                .unwrap();
            assert_eq!(response.headers()["grpc-status"], "16");
            assert_eq!(
                response.headers()["grpc-message"],
                "a tenant is required: send the tenant id in the `x-tenant-id` metadata"
            );
            let body = response.into_body().collect().await.unwrap().to_bytes();
            assert!(body.is_empty());
        });
        assert_eq!(
            answers,
            [
                (
                    StatusCode::UNAUTHORIZED,
                    "a tenant is required: send the tenant id in the `x-tenant-id` header\n"
                        .to_owned()
                ),
                (
                    StatusCode::BAD_REQUEST,
                    "the tenant id is not valid: send one `x-tenant-id` header of 1 to 128 \
                     characters from A-Z a-z 0-9 . _ : -\n"
                        .to_owned()
                ),
                answers[0].clone(),
            ]
        );
        let spans = spans(&exporter);
        assert_eq!(spans.len(), 4, "each refusal is on its span");
        let m = snapshot(&recorder);
        // In the request metrics with their status, under no tenant (the one sent
        // was not admitted).
        assert_eq!(
            m.get("http_server_request_duration_seconds{http_request_method=POST,http_response_status_code=401,http_route=_OTHER,tenant_id=unknown}")
                .map(String::as_str),
            Some("2 samples"),
            "{m:?}"
        );
        assert_eq!(
            m.get("http_server_request_duration_seconds{http_request_method=POST,http_response_status_code=400,http_route=_OTHER,tenant_id=unknown}")
                .map(String::as_str),
            Some("1 samples")
        );
        assert!(m.keys().all(|k| !k.contains("not a tenant")), "{m:?}");
    }

    /// A client sending no tenant at a high rate writes one warning per period, the
    /// next one saying how many were held back.
    #[test]
    fn refusal_warnings_are_rate_limited() {
        use crate::tenant::check::RateLimit;
        use std::time::Duration;
        let limit = RateLimit::default();
        assert_eq!(limit.admit(Duration::from_secs(3600)), Some(0));
        for _ in 0..1000 {
            assert_eq!(limit.admit(Duration::from_secs(3600)), None);
        }
        assert_eq!(limit.admit(Duration::ZERO), Some(1000));
        assert_eq!(limit.admit(Duration::ZERO), Some(0));
    }

    #[test]
    fn dropped_at_each_await_the_request_is_cancelled_on_its_span_and_metrics() {
        let (tracer, exporter, _provider) = tracer();
        let recorder = DebuggingRecorder::new();
        let layer = InstrumentLayer::builder()
            .tracer(tracer)
            .source(Pending)
            .build();
        run(&recorder, async {
            // Dropped in the lookup, then while the service runs.
            let service = ServiceBuilder::new()
                .layer(layer.clone())
                .service_fn(tenant_echo);
            let mut future =
                Box::pin(service.oneshot(request("/lookup", Some("acme"), Some("wf-acme"))));
            let waker = std::task::Waker::noop();
            assert!(future
                .as_mut()
                .poll(&mut std::task::Context::from_waker(waker))
                .is_pending());
            drop(future);
            let service = ServiceBuilder::new()
                .layer(layer.clone())
                .service_fn(|_: Request<()>| pending::<Result<Response<Reply>, Infallible>>());
            let mut future = Box::pin(service.oneshot(request("/serving", Some("acme"), None)));
            assert!(future
                .as_mut()
                .poll(&mut std::task::Context::from_waker(waker))
                .is_pending());
            drop(future);
            // And refused (no tenant), the answer made but never taken.
            let mut service = ServiceBuilder::new()
                .layer(layer.clone())
                .service_fn(tenant_echo);
            drop(tower::Service::call(
                &mut service,
                request("/refused", None, None),
            ));
        });
        let spans = spans(&exporter);
        assert_eq!(spans.len(), 3);
        for span in &spans {
            assert_eq!(attr(span, CANCELLED), Some(&true.into()), "{}", span.name);
        }
        let m = snapshot(&recorder);
        // The route was never answered, so never recognised: `_OTHER`.
        assert_eq!(
            m.get("http_server_request_duration_seconds{http_request_method=POST,http_route=_OTHER,tenant_id=acme}").map(String::as_str),
            Some("1 samples")
        );
        assert_eq!(
            m.get("http_server_active_requests{tenant_id=acme}")
                .map(String::as_str),
            Some("0")
        );
    }

    #[test]
    fn a_service_error_fails_the_span_redacted_and_counts_as_an_error() {
        let (tracer, exporter, _provider) = tracer();
        let recorder = DebuggingRecorder::new();
        run(&recorder, async {
            let service = ServiceBuilder::new()
                .layer(InstrumentLayer::builder().tracer(tracer).build())
                .service_fn(|_: Request<()>| async {
                    Err::<Response<Reply>, _>("db down for password=hunter2")
                });
            assert!(service
                .oneshot(request("/x", Some("acme"), None))
                .await
                .is_err());
        });
        let spans = spans(&exporter);
        assert_eq!(attr_str(&spans[0], "error.type").as_deref(), Some("_OTHER"));
        let Status::Error { description } = &spans[0].status else {
            panic!("{:?}", spans[0].status)
        };
        assert!(!description.contains("hunter2"), "{description}");
        let m = snapshot(&recorder);
        assert_eq!(
            m.get(
                "http_server_request_duration_seconds{error_type=_OTHER,http_request_method=POST,http_route=_OTHER,tenant_id=acme}"
            )
            .map(String::as_str),
            Some("1 samples")
        );
    }

    #[test]
    fn filtered_requests_pass_untouched_and_exempt_paths_need_no_tenant() {
        let (tracer, exporter, _provider) = tracer();
        let recorder = DebuggingRecorder::new();
        let layer = InstrumentLayer::builder()
            .tracer(tracer)
            .filter(|parts: &http::request::Parts| parts.uri.path() == "/metrics")
            .exempt("/public/")
            .route_with(crate::request::NormalizedPath)
            .build();
        run(&recorder, async {
            for path in ["/metrics", "/public/docs"] {
                let service =
                    ServiceBuilder::new()
                        .layer(layer.clone())
                        .service_fn(|_: Request<()>| async {
                            Ok::<_, Infallible>(Response::new(Reply::text("ok")))
                        });
                let response = service.oneshot(request(path, None, None)).await.unwrap();
                assert_eq!(response.status(), StatusCode::OK, "{path}");
                assert_eq!(
                    response.headers().contains_key("x-tracking-id"),
                    path != "/metrics"
                );
                drain(response.into_body()).await;
            }
        });
        let spans = spans(&exporter);
        assert_eq!(spans.len(), 1, "only the exempt path is traced");
        assert_eq!(attr_str(&spans[0], TENANT_ID), None);
        let m = snapshot(&recorder);
        assert!(m.keys().all(|k| !k.contains("/metrics")), "{m:?}");
        assert_eq!(
            m.get("http_server_request_duration_seconds{http_request_method=POST,http_response_status_code=200,http_route=/public/docs,tenant_id=unknown}").map(String::as_str),
            Some("1 samples")
        );
    }

    #[test]
    fn a_teams_classifier_decides_the_span_status_and_the_error_metric() {
        let (tracer, exporter, _provider) = tracer();
        let recorder = DebuggingRecorder::new();
        // NOT_FOUND (5) is a failure here; INVALID_ARGUMENT (3) is not.
        let classifier = SharedClassifier::new(
            GrpcErrorsAsFailures::new().with_success(GrpcCode::InvalidArgument),
        );
        let layer = InstrumentLayer::builder()
            .tracer(tracer)
            .classifier(classifier)
            .build();
        run(&recorder, async {
            for code in [5u16, 3] {
                let service = ServiceBuilder::new().layer(layer.clone()).service_fn(
                    move |_: Request<()>| async move {
                        Ok::<_, Infallible>(Response::new(Reply::grpc(code)))
                    },
                );
                let response = service
                    .oneshot(grpc_request("/pkg.Svc/Get", Some("acme")))
                    .await
                    .unwrap();
                drain(response.into_body()).await;
            }
        });
        let spans = spans(&exporter);
        assert!(matches!(spans[0].status, Status::Error { .. }), "NOT_FOUND");
        assert!(
            !matches!(spans[1].status, Status::Error { .. }),
            "INVALID_ARGUMENT"
        );
        let m = snapshot(&recorder);
        let errors = |status: &str| {
            m.get(&format!(
                "rpc_server_call_duration_seconds{{error_type={status},rpc_method=pkg.Svc/Get,rpc_response_status_code={status},rpc_system_name=grpc,tenant_id=acme}}"
            ))
            .map(String::as_str)
        };
        assert_eq!(errors("NOT_FOUND"), Some("1 samples"));
        assert_eq!(errors("INVALID_ARGUMENT"), None);
    }

    #[test]
    fn tower_https_sensitive_headers_are_never_recorded_and_its_request_id_is() {
        use tower_http::request_id::{MakeRequestUuid, SetRequestIdLayer};
        use tower_http::sensitive_headers::SetSensitiveRequestHeadersLayer;

        let (tracer, exporter, _provider) = tracer();
        let contact = HeaderName::from_static("x-contact");
        let service = ServiceBuilder::new()
            .layer(SetRequestIdLayer::x_request_id(MakeRequestUuid))
            .layer(SetSensitiveRequestHeadersLayer::new([contact.clone()]))
            .layer(
                InstrumentLayer::builder()
                    .tracer(tracer)
                    .record_headers([contact])
                    .build(),
            )
            .service_fn(|_: Request<()>| async {
                Ok::<_, Infallible>(Response::new(Reply::text("ok")))
            });
        let mut request = request("/x", Some("acme"), None);
        request.headers_mut().insert(
            "x-contact",
            "a plain value the policy would keep".parse().unwrap(),
        );
        let runtime = tokio::runtime::Builder::new_current_thread()
            .build()
            .unwrap();
        runtime.block_on(async {
            let response = service.oneshot(request).await.unwrap();
            drain(response.into_body()).await;
        });
        let spans = spans(&exporter);
        let recorded = format!("{:?}", attr(&spans[0], "http.request.header.x-contact"));
        assert!(
            recorded.contains("[REDACTED]") && !recorded.contains("plain value"),
            "{recorded}"
        );
        let id = format!("{:?}", attr(&spans[0], HTTP_REQUEST_ID));
        assert!(id.len() > 36, "a uuid: {id}");
    }
}

/// tower-http's request id names every log line written while the request is served.
#[test]
fn the_request_id_is_a_field_of_the_requests_log_lines() {
    use std::sync::{Arc, Mutex};

    use instrument_core::pipeline::JsonLogLayer;
    use instrument_core::redact::Redactor;
    use tower_http::request_id::{MakeRequestUuid, PropagateRequestIdLayer, SetRequestIdLayer};
    use tracing_subscriber::layer::SubscriberExt as _;

    #[derive(Clone, Default)]
    struct Lines(Arc<Mutex<Vec<u8>>>);
    impl std::io::Write for Lines {
        fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
            self.0.lock().unwrap().extend_from_slice(buf);
            Ok(buf.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    let (tracer, _exporter, _provider) = tracer();
    let lines = Lines::default();
    let writer = lines.clone();
    let subscriber = tracing_subscriber::registry()
        .with(JsonLogLayer::new(Redactor::default(), move || {
            writer.clone()
        }));
    let service = ServiceBuilder::new()
        .layer(SetRequestIdLayer::x_request_id(MakeRequestUuid))
        .layer(PropagateRequestIdLayer::x_request_id())
        .layer(InstrumentLayer::builder().tracer(tracer).build())
        .service_fn(|_: Request<()>| async {
            tracing::info!("handled");
            Ok::<_, Infallible>(Response::new(Reply::text("ok")))
        });
    let runtime = tokio::runtime::Builder::new_current_thread()
        .build()
        .unwrap();
    tracing::subscriber::with_default(subscriber, || {
        runtime.block_on(async {
            let response = service
                .oneshot(post("/x", &[("x-tenant-id", "acme")]))
                .await
                .unwrap();
            let id = response.headers()["x-request-id"]
                .to_str()
                .unwrap()
                .to_owned();
            drain(response.into_body()).await;
            let logged = String::from_utf8(lines.0.lock().unwrap().clone()).unwrap();
            let line: serde_json::Value =
                serde_json::from_str(logged.lines().next().expect("one line")).unwrap();
            assert_eq!(line["request_id"], id.as_str(), "{logged}");
            assert_eq!(line["tenant.id"], "acme");
        });
    });
}

/// What a client can put in a label: only targets the server recognised.
mod labels {
    use std::collections::BTreeSet;

    use instrument_core::semconv::{OTHER, RPC_METHOD, RPC_METHOD_ORIGINAL, RPC_SERVICE};
    use proptest::prelude::*;

    use super::*;

    /// A gRPC server that declares `pkg.Svc/A` and `pkg.Svc/B` (tonic answers anything
    /// else `UNIMPLEMENTED`).
    async fn declares_a_and_b(request: Request<()>) -> Result<Response<Reply>, Infallible> {
        let code = match request.uri().path() {
            "/pkg.Svc/A" | "/pkg.Svc/B" => 0,
            _ => 12,
        };
        Ok(Response::new(Reply::grpc(code)))
    }

    /// An HTTP server with the routes `/jobs/{id}` and `/health`; anything else is 404.
    async fn two_routes(request: Request<()>) -> Result<Response<Reply>, Infallible> {
        let path = request.uri().path();
        let found = path == "/health" || path.starts_with("/jobs/");
        let mut response = Response::new(Reply::text("x"));
        if !found {
            *response.status_mut() = StatusCode::NOT_FOUND;
        }
        Ok(response)
    }

    /// The label values of `label` across every series of `metrics`.
    fn values_of(
        metrics: &std::collections::BTreeMap<String, String>,
        label: &str,
    ) -> BTreeSet<String> {
        metrics
            .keys()
            .flat_map(|key| {
                let labels = key
                    .split_once('{')
                    .map_or("", |(_, l)| l.trim_end_matches('}'));
                labels
                    .split(',')
                    .filter_map(|pair| pair.split_once('='))
                    .filter(|(k, _)| *k == label)
                    .map(|(_, v)| v.to_owned())
                    .collect::<Vec<_>>()
            })
            .collect()
    }

    #[test]
    fn made_up_grpc_methods_are_other_and_real_ones_named_from_their_first_call() {
        let (tracer, exporter, _provider) = tracer();
        let recorder = DebuggingRecorder::new();
        let layer = InstrumentLayer::builder().tracer(tracer).build();
        run(&recorder, async {
            for path in [
                "/pkg.Svc/A",
                "/pkg.Svc/Probe1",
                "/evil.Service7/M",
                "/pkg.Svc/A",
            ] {
                let service = ServiceBuilder::new()
                    .layer(layer.clone())
                    .service_fn(declares_a_and_b);
                let response = service
                    .oneshot(grpc_request(path, Some("acme")))
                    .await
                    .unwrap();
                drain(response.into_body()).await;
            }
        });
        let spans = spans(&exporter);
        let names: Vec<&str> = spans.iter().map(|s| s.name.as_ref()).collect();
        // The first call of A started as `grpc` and was renamed when answered.
        assert_eq!(names, ["pkg.Svc/A", "grpc", "grpc", "pkg.Svc/A"]);
        for span in [&spans[0], &spans[3]] {
            assert_eq!(attr_str(span, RPC_METHOD).as_deref(), Some("A"));
            assert_eq!(attr_str(span, RPC_SERVICE).as_deref(), Some("pkg.Svc"));
            assert_eq!(attr_str(span, RPC_METHOD_ORIGINAL), None);
        }
        assert_eq!(attr_str(&spans[1], RPC_METHOD).as_deref(), Some(OTHER));
        assert_eq!(attr_str(&spans[1], RPC_SERVICE), None);
        assert_eq!(
            attr_str(&spans[2], RPC_METHOD_ORIGINAL).as_deref(),
            Some("evil.Service7/M")
        );
        let m = snapshot(&recorder);
        assert_eq!(
            values_of(&m, "rpc_method"),
            BTreeSet::from(["pkg.Svc/A".to_owned(), OTHER.to_owned()])
        );
    }

    #[test]
    fn a_listed_method_is_named_at_once_and_an_unlisted_one_never() {
        let (tracer, exporter, _provider) = tracer();
        let recorder = DebuggingRecorder::new();
        let layer = InstrumentLayer::builder()
            .tracer(tracer)
            .grpc_methods(["pkg.Svc/A"])
            .build();
        run(&recorder, async {
            for path in ["/pkg.Svc/A", "/pkg.Svc/B", "/pkg.Svc/B"] {
                let service = ServiceBuilder::new()
                    .layer(layer.clone())
                    .service_fn(declares_a_and_b);
                let response = service
                    .oneshot(grpc_request(path, Some("acme")))
                    .await
                    .unwrap();
                drain(response.into_body()).await;
            }
        });
        let names: Vec<String> = spans(&exporter)
            .iter()
            .map(|s| s.name.to_string())
            .collect();
        assert_eq!(names, ["pkg.Svc/A", "grpc", "grpc"]);
    }

    /// A route hook's bug (unbalanced braces) is no route: no `http.route`, the span
    /// named by its method, `_OTHER` in labels.
    #[test]
    fn a_malformed_route_template_is_no_route() {
        let (tracer, exporter, _provider) = tracer();
        let recorder = DebuggingRecorder::new();
        let layer = InstrumentLayer::builder()
            .tracer(tracer)
            .route(|_: &http::request::Parts| Some("/jobs/{id".to_owned()))
            .build();
        run(&recorder, async {
            for _ in 0..2 {
                let service = ServiceBuilder::new()
                    .layer(layer.clone())
                    .service_fn(two_routes);
                let response = service
                    .oneshot(post("/jobs/7", &[("x-tenant-id", "acme")]))
                    .await
                    .unwrap();
                drain(response.into_body()).await;
            }
        });
        let spans = spans(&exporter);
        assert!(spans
            .iter()
            .all(|s| s.name == "POST" && attr_str(s, HTTP_ROUTE).is_none()));
        let m = snapshot(&recorder);
        assert_eq!(
            values_of(&m, "http_route"),
            BTreeSet::from([OTHER.to_owned()])
        );
    }

    /// A refusal is the tenant check's answer, not the service's: a made-up path that
    /// is refused stays unrecognised (no `http.route`, no span name of its own), so
    /// refused requests cannot grow the names a later admitted request is labelled by.
    #[test]
    fn refused_requests_recognise_no_route() {
        let (tracer, exporter, _provider) = tracer();
        let recorder = DebuggingRecorder::new();
        let layer = InstrumentLayer::builder()
            .tracer(tracer)
            .route_with(crate::request::NormalizedPath)
            .build();
        run(&recorder, async {
            for (path, tenant) in [("/made-up-1", None), ("/made-up-1", Some("acme"))] {
                let service = ServiceBuilder::new()
                    .layer(layer.clone())
                    .service_fn(two_routes);
                let headers: Vec<(&str, &str)> =
                    tenant.map(|t| ("x-tenant-id", t)).into_iter().collect();
                let response = service.oneshot(post(path, &headers)).await.unwrap();
                drain(response.into_body()).await;
            }
        });
        let spans = spans(&exporter);
        let names: Vec<&str> = spans.iter().map(|s| s.name.as_ref()).collect();
        // Refused (401), then admitted and answered 404: never a route.
        assert_eq!(names, ["POST", "POST"]);
        assert!(spans.iter().all(|s| attr_str(s, HTTP_ROUTE).is_none()));
    }

    /// The same through the separate layers: the trace layer outside the tenant layer
    /// does not learn from the tenant layer's refusal.
    #[test]
    fn refusals_of_the_tenant_layer_recognise_no_route_in_the_trace_layer() {
        use crate::tenant::TenantLayer;
        use crate::trace::TraceLayer;
        let (tracer, exporter, _provider) = tracer();
        let recorder = DebuggingRecorder::new();
        let trace = TraceLayer::new()
            .tracer(tracer)
            .route_with(crate::request::NormalizedPath);
        run(&recorder, async {
            for _ in 0..2 {
                let service = ServiceBuilder::new()
                    .layer(trace.clone())
                    .layer(TenantLayer::new())
                    .service_fn(two_routes);
                let response = service.oneshot(post("/jobs/7", &[])).await.unwrap();
                drain(response.into_body()).await;
            }
        });
        let spans = spans(&exporter);
        let names: Vec<&str> = spans.iter().map(|s| s.name.as_ref()).collect();
        assert_eq!(names, ["POST", "POST"], "a refused /jobs/7 is not learned");
    }

    #[test]
    fn not_found_http_routes_are_other_and_the_span_has_no_route() {
        let (tracer, exporter, _provider) = tracer();
        let recorder = DebuggingRecorder::new();
        let layer = InstrumentLayer::builder()
            .tracer(tracer)
            .route_with(crate::request::NormalizedPath)
            .build();
        run(&recorder, async {
            for path in ["/jobs/7", "/nope-1", "/nope-2", "/health"] {
                let service = ServiceBuilder::new()
                    .layer(layer.clone())
                    .service_fn(two_routes);
                let response = service
                    .oneshot(post(path, &[("x-tenant-id", "acme")]))
                    .await
                    .unwrap();
                drain(response.into_body()).await;
            }
        });
        let spans = spans(&exporter);
        let names: Vec<&str> = spans.iter().map(|s| s.name.as_ref()).collect();
        assert_eq!(names, ["POST /jobs/{id}", "POST", "POST", "POST /health"]);
        assert_eq!(attr_str(&spans[1], HTTP_ROUTE), None);
        let m = snapshot(&recorder);
        assert_eq!(
            values_of(&m, "http_route"),
            BTreeSet::from([
                "/jobs/{id}".to_owned(),
                "/health".to_owned(),
                OTHER.to_owned()
            ])
        );
    }

    /// Requests for gRPC or HTTP targets, made up from arbitrary bytes.
    fn request_strategy() -> impl Strategy<Value = (bool, String)> {
        let segment = "[a-zA-Z0-9._~%-]{0,12}";
        (
            any::<bool>(),
            prop_oneof![
                Just("/pkg.Svc/A".to_owned()),
                Just("/pkg.Svc/B".to_owned()),
                Just("/jobs/42".to_owned()),
                Just("/health".to_owned()),
                (segment, segment).prop_map(|(a, b)| format!("/{a}/{b}")),
                (segment, segment, segment).prop_map(|(a, b, c)| format!("/{a}.{b}/{c}")),
            ],
        )
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(24))]

        /// However many made-up targets, the label values are the server's targets and
        /// `_OTHER`.
        #[test]
        fn no_request_sequence_adds_label_values_the_server_did_not_define(
            requests in proptest::collection::vec(request_strategy(), 1..60)
        ) {
            let recorder = DebuggingRecorder::new();
            let layer = InstrumentLayer::builder().route_with(crate::request::NormalizedPath).build();
            run(&recorder, async {
                for (grpc, path) in &requests {
                    let service = ServiceBuilder::new().layer(layer.clone()).service_fn(
                        |request: Request<()>| async move {
                            if request.headers().contains_key("content-type") {
                                declares_a_and_b(request).await
                            } else {
                                two_routes(request).await
                            }
                        },
                    );
                    let request = if *grpc {
                        grpc_request(path, Some("acme"))
                    } else {
                        post(path, &[("x-tenant-id", "acme")])
                    };
                    let response = service.oneshot(request).await.unwrap();
                    drain(response.into_body()).await;
                }
            });
            let m = snapshot(&recorder);
            let allowed = |values: &[&str]| values.iter().map(|v| (*v).to_owned()).collect::<BTreeSet<_>>();
            let methods = values_of(&m, "rpc_method");
            let routes = values_of(&m, "http_route");
            prop_assert!(methods.is_subset(&allowed(&["pkg.Svc/A", "pkg.Svc/B", OTHER])), "{:?}", methods);
            prop_assert!(routes.is_subset(&allowed(&["/jobs/{id}", "/health", OTHER])), "{:?}", routes);
        }
    }
}

/// What a sampled-out request still does, run unsampled: everything a user can observe
/// but the span (answers, refusals, metrics, the tracking header, the context that
/// downstream calls inject and that work stores), with the caller's trace flags.
mod unsampled {
    use std::convert::Infallible;
    use std::sync::{Arc, Mutex};

    use http::{Request, Response, StatusCode};
    use instrument_core::context::{capture, inject, TraceParent};
    use instrument_core::pipeline::SamplerConfig;
    use instrument_core::tenant::{current_tenant, TenantId};
    use metrics_util::debugging::DebuggingRecorder;
    use opentelemetry::Context;
    use opentelemetry_sdk::trace::Sampler;
    use tower::{ServiceBuilder, ServiceExt as _};

    use super::super::InstrumentLayer;
    use crate::source::{SourceError, StoredTrace, TraceSource};
    use crate::test_support::*;

    const TRACE: &str = "4bf92f3577b34da6a3ce929d0e0e4736";
    const CALLER: &str = "00f067aa0ba902b7";

    /// What the handler saw: the stored form of its context, the `traceparent` a
    /// downstream call would carry, and the tenant.
    #[derive(Debug, Clone, PartialEq)]
    struct Seen {
        captured: Option<String>,
        injected: Option<String>,
        /// The `tracestate` a downstream call would carry.
        state: Option<String>,
        tenant: Option<TenantId>,
    }

    type Log = Arc<Mutex<Vec<Seen>>>;

    fn handler(
        log: &Log,
    ) -> impl Fn(Request<()>) -> std::future::Ready<Result<Response<Reply>, Infallible>> + Clone
    {
        let log = log.clone();
        move |_| {
            let (mut injected, mut state) = (None, None);
            inject(&Context::current(), |name, value| match name {
                "traceparent" => injected = Some(value.to_owned()),
                "tracestate" => state = Some(value.to_owned()),
                _ => {}
            });
            log.lock().unwrap().push(Seen {
                captured: capture().map(|tp| tp.to_string()),
                injected,
                state,
                tenant: current_tenant(),
            });
            std::future::ready(Ok(Response::new(Reply::text("ok"))))
        }
    }

    /// `wf-1` is acme's, stored unsampled with the random flag (`-02`).
    #[derive(Clone)]
    struct StoredUnsampled;

    impl TraceSource for StoredUnsampled {
        type Lookup = std::future::Ready<Result<Option<StoredTrace>, SourceError>>;

        fn lookup(&self, key: &str) -> Self::Lookup {
            let stored = format!("00-{TRACE}-{CALLER}-02");
            std::future::ready(Ok((key == "wf-1").then(|| {
                StoredTrace::new(TenantId::parse("acme").unwrap(), Some(&stored))
            })))
        }
    }

    fn request(headers: &[(&str, &str)]) -> Request<()> {
        let mut b = Request::post("/orders");
        for (name, value) in headers {
            b = b.header(*name, *value);
        }
        b.body(()).unwrap()
    }

    /// The SDK's default sampler, and the same as `pipeline::init` names it.
    fn parent_based() -> (Sampler, SamplerConfig) {
        (
            Sampler::ParentBased(Box::new(Sampler::AlwaysOn)),
            SamplerConfig::ParentBasedAlwaysOn,
        )
    }

    /// Follows the parent; samples no root (what 1 % looks like for 99 roots in 100).
    fn no_roots() -> (Sampler, SamplerConfig) {
        (
            Sampler::ParentBased(Box::new(Sampler::TraceIdRatioBased(0.0))),
            SamplerConfig::ParentBasedTraceIdRatio(0.0),
        )
    }

    /// A layer whose tracer (over `sampler`, parent-based) is asked for every span, one
    /// told that the sampler follows the parent (no span started under an unsampled
    /// parent), and one told the whole sampler (`tracer_sampled_by`, as the pipeline's
    /// provider tells it: also whether every root is sampled): everything observable
    /// must be the same. Each with the exporter its spans would reach.
    fn both_ways(
        sampler: fn() -> (Sampler, SamplerConfig),
    ) -> Vec<(
        super::super::InstrumentBuilder,
        opentelemetry_sdk::trace::InMemorySpanExporter,
        opentelemetry_sdk::trace::SdkTracerProvider,
    )> {
        let (asked, exporter, provider) = tracer_sampled_by(sampler().0);
        let (told, told_exporter, told_provider) = tracer_sampled_by(sampler().0);
        #[cfg_attr(not(feature = "sdk"), allow(unused_mut))]
        let mut ways = vec![
            (InstrumentLayer::builder().tracer(asked), exporter, provider),
            (
                InstrumentLayer::builder().parent_based_tracer(told),
                told_exporter,
                told_provider,
            ),
        ];
        #[cfg(feature = "sdk")]
        {
            let (whole, whole_exporter, whole_provider) = tracer_sampled_by(sampler().0);
            ways.push((
                InstrumentLayer::builder().tracer_sampled_by(whole, sampler().1),
                whole_exporter,
                whole_provider,
            ));
        }
        ways
    }

    #[test]
    fn an_unsampled_caller_is_answered_counted_and_continued_with_its_flags() {
        for (builder, exporter, _provider) in both_ways(parent_based) {
            an_unsampled_caller_through(builder, exporter);
        }
    }

    fn an_unsampled_caller_through(
        builder: super::super::InstrumentBuilder,
        exporter: opentelemetry_sdk::trace::InMemorySpanExporter,
    ) {
        let recorder = DebuggingRecorder::new();
        let layer = builder.route_with(crate::request::NormalizedPath).build();
        let log = Log::default();
        run(&recorder, async {
            for flags in ["00", "02"] {
                let traceparent = format!("00-{TRACE}-{CALLER}-{flags}");
                let service = ServiceBuilder::new()
                    .layer(layer.clone())
                    .service_fn(handler(&log));
                let response = service
                    .oneshot(request(&[
                        ("traceparent", &traceparent),
                        ("tracestate", "vendor=abc,ot=th:fd70a4"),
                        ("x-tenant-id", "acme"),
                    ]))
                    .await
                    .unwrap();
                assert_eq!(response.status(), StatusCode::OK);
                assert!(response.headers().contains_key("x-tracking-id"));
                drain(response.into_body()).await;
            }
        });
        assert!(spans(&exporter).is_empty(), "nothing was sampled");
        let seen = log.lock().unwrap().clone();
        for (seen, flags) in seen.iter().zip(["00", "02"]) {
            assert_eq!(seen.tenant.as_ref().map(TenantId::as_str), Some("acme"));
            assert_eq!(seen.state.as_deref(), Some("vendor=abc,ot=th:fd70a4"));
            assert_eq!(
                seen.injected, seen.captured,
                "what goes out is what is stored"
            );
            let tp: TraceParent = seen.captured.as_deref().unwrap().parse().unwrap();
            assert_eq!(tp.trace_id().to_string(), TRACE, "the caller's trace");
            assert_ne!(tp.parent_id().to_string(), CALLER, "the server's own id");
            assert!(
                seen.captured
                    .as_deref()
                    .unwrap()
                    .ends_with(&format!("-{flags}")),
                "{seen:?}: the caller's flags, not sampled"
            );
        }
        let m = snapshot(&recorder);
        assert_eq!(
            m.get("http_server_request_duration_seconds{http_request_method=POST,http_response_status_code=200,http_route=/orders,tenant_id=acme}")
                .map(String::as_str),
            Some("2 samples")
        );
    }

    #[test]
    fn an_unsampled_root_at_one_percent_is_a_new_unsampled_trace() {
        for (builder, exporter, _provider) in both_ways(no_roots) {
            an_unsampled_root_through(builder, exporter);
        }
    }

    fn an_unsampled_root_through(
        builder: super::super::InstrumentBuilder,
        exporter: opentelemetry_sdk::trace::InMemorySpanExporter,
    ) {
        let recorder = DebuggingRecorder::new();
        let log = Log::default();
        run(&recorder, async {
            let service = ServiceBuilder::new()
                .layer(builder.route_with(crate::request::NormalizedPath).build())
                .service_fn(handler(&log));
            let response = service
                .oneshot(request(&[("x-tenant-id", "acme")]))
                .await
                .unwrap();
            assert_eq!(response.status(), StatusCode::OK);
            drain(response.into_body()).await;
        });
        assert!(spans(&exporter).is_empty());
        let seen = log.lock().unwrap()[0].clone();
        assert_eq!(seen.injected, seen.captured);
        let tp: TraceParent = seen
            .captured
            .as_deref()
            .expect("a context to store")
            .parse()
            .unwrap();
        assert!(!tp.is_sampled(), "{tp}");
        let m = snapshot(&recorder);
        assert_eq!(
            m.get("http_server_request_duration_seconds{http_request_method=POST,http_response_status_code=200,http_route=/orders,tenant_id=acme}")
                .map(String::as_str),
            Some("1 samples")
        );
    }

    #[test]
    fn a_stored_unsampled_trace_is_continued_with_its_flags_and_guarded_by_tenant() {
        // The refused tenant's request starts a root of its own: 0 % of roots sampled.
        for (builder, exporter, _provider) in both_ways(no_roots) {
            a_stored_unsampled_trace_through(builder, exporter);
        }
    }

    fn a_stored_unsampled_trace_through(
        builder: super::super::InstrumentBuilder,
        exporter: opentelemetry_sdk::trace::InMemorySpanExporter,
    ) {
        let recorder = DebuggingRecorder::new();
        let layer = builder.source(StoredUnsampled).build();
        let log = Log::default();
        let mut statuses = Vec::new();
        run(&recorder, async {
            for tenant in ["acme", "globex"] {
                let service = ServiceBuilder::new()
                    .layer(layer.clone())
                    .service_fn(handler(&log));
                let response = service
                    .oneshot(request(&[
                        ("x-tenant-id", tenant),
                        ("x-workflow-id", "wf-1"),
                    ]))
                    .await
                    .unwrap();
                assert!(response.headers().contains_key("x-tracking-id"));
                statuses.push(response.status());
                drain(response.into_body()).await;
            }
        });
        assert_eq!(statuses, [StatusCode::OK, StatusCode::FORBIDDEN]);
        assert!(spans(&exporter).is_empty(), "nothing was sampled");
        let seen = log.lock().unwrap().clone();
        assert_eq!(seen.len(), 1, "the other tenant never reached the handler");
        let captured = seen[0].captured.as_deref().unwrap();
        assert!(captured.starts_with(&format!("00-{TRACE}-")), "{captured}");
        assert!(captured.ends_with("-02"), "{captured}");
        let m = snapshot(&recorder);
        assert_eq!(
            m.get("instrument_tenant_rejections_total{protocol=http,reason=other_tenant}")
                .map(String::as_str),
            Some("1")
        );
        assert!(m.keys().all(|k| !k.contains("globex")), "{m:?}");
    }

    #[test]
    fn unsampled_refusals_and_grpc_failures_are_answered_and_counted() {
        for (builder, exporter, _provider) in both_ways(parent_based) {
            unsampled_refusals_through(builder, exporter);
        }
    }

    fn unsampled_refusals_through(
        builder: super::super::InstrumentBuilder,
        exporter: opentelemetry_sdk::trace::InMemorySpanExporter,
    ) {
        let recorder = DebuggingRecorder::new();
        let layer = builder.build();
        let unsampled = format!("00-{TRACE}-{CALLER}-00");
        run(&recorder, async {
            let service =
                ServiceBuilder::new()
                    .layer(layer.clone())
                    .service_fn(|_: Request<()>| async {
                        Ok::<_, Infallible>(Response::new(Reply::text("ok")))
                    });
            let response = service
                .oneshot(request(&[("traceparent", &unsampled)]))
                .await
                .unwrap();
            assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
            assert!(response.headers().contains_key("x-tracking-id"));
            drain(response.into_body()).await;

            let service =
                ServiceBuilder::new()
                    .layer(layer.clone())
                    .service_fn(|_: Request<()>| async {
                        Ok::<_, Infallible>(Response::new(Reply::grpc(13)))
                    });
            let mut call = grpc_request("/pkg.Svc/Get", Some("acme"));
            call.headers_mut()
                .insert("traceparent", unsampled.parse().unwrap());
            let response = service.oneshot(call).await.unwrap();
            assert!(response.headers().contains_key("x-tracking-id"));
            drain(response.into_body()).await;
        });
        assert!(spans(&exporter).is_empty(), "nothing was sampled");
        let m = snapshot(&recorder);
        assert_eq!(
            m.get("instrument_tenant_rejections_total{protocol=http,reason=missing}")
                .map(String::as_str),
            Some("1"),
            "{m:?}"
        );
        assert_eq!(
            m.get("rpc_server_call_duration_seconds{error_type=INTERNAL,rpc_method=pkg.Svc/Get,rpc_response_status_code=INTERNAL,rpc_system_name=grpc,tenant_id=acme}")
                .map(String::as_str),
            Some("1 samples"),
            "{m:?}"
        );
        assert_eq!(
            m.get("instrument_rpc_server_active_calls{tenant_id=acme}")
                .map(String::as_str),
            Some("0")
        );
    }
}

/// A streamed gRPC response with `record_messages`: every message counted and sized,
/// the first 32 as events on the span, the rest counted there; without it, nothing.
#[test]
fn streamed_messages_are_counted_sized_and_capped_on_the_span() {
    use instrument_core::semconv::{RPC_MESSAGE_EVENTS_DROPPED, RPC_MESSAGE_ID};
    async fn stream(_: Request<()>) -> Result<Response<Reply>, Infallible> {
        let mut body = Vec::new();
        for i in 0..40u8 {
            body.push(0);
            body.extend_from_slice(&u32::from(i).to_be_bytes());
            body.extend(std::iter::repeat_n(7, usize::from(i)));
        }
        let mut trailers = http::HeaderMap::new();
        trailers.insert("grpc-status", http::HeaderValue::from(0));
        Ok(Response::new(Reply {
            data: Some(bytes::Bytes::from(body)),
            trailers: Some(trailers),
        }))
    }
    for record in [true, false] {
        let (tracer, exporter, _provider) = tracer();
        let recorder = DebuggingRecorder::new();
        let builder = InstrumentLayer::builder()
            .tracer(tracer)
            .grpc_methods(["pkg.Svc/Watch"]);
        let layer = if record {
            builder.record_messages()
        } else {
            builder
        }
        .build();
        run(&recorder, async {
            let service = ServiceBuilder::new().layer(layer).service_fn(stream);
            let response = service
                .oneshot(grpc_request("/pkg.Svc/Watch", Some("acme")))
                .await
                .unwrap();
            drain(response.into_body()).await;
        });
        let m = snapshot(&recorder);
        let span = &spans(&exporter)[0];
        let events: Vec<_> = span
            .events
            .iter()
            .filter(|e| e.name == "rpc.message")
            .collect();
        if !record {
            assert!(events.is_empty());
            assert!(
                m.keys().all(|k| !k.starts_with("rpc_server_response")),
                "{m:?}"
            );
            continue;
        }
        let labels = "rpc_method=pkg.Svc/Watch,rpc_system_name=grpc,tenant_id=acme";
        assert_eq!(
            m.get(&format!("rpc_server_response_size_bytes{{{labels}}}"))
                .map(String::as_str),
            Some("40 samples"),
            "{m:?}"
        );
        assert_eq!(
            m.get(&format!("rpc_server_responses_per_rpc{{{labels}}}"))
                .map(String::as_str),
            Some("1 samples")
        );
        assert_eq!(events.len(), 32);
        assert!(events[31]
            .attributes
            .contains(&opentelemetry::KeyValue::new(RPC_MESSAGE_ID, 32)));
        assert_eq!(attr(span, RPC_MESSAGE_EVENTS_DROPPED), Some(&8.into()));
    }
}
