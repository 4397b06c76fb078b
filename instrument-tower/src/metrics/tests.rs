use std::convert::Infallible;
use std::time::Duration;

use http::{Request, Response, StatusCode};
use instrument_core::tenant::TenantId;
use metrics_util::debugging::DebuggingRecorder;
use tower::{ServiceBuilder, ServiceExt as _};

use super::RequestMetricsLayer;
use crate::test_support::*;
use instrument_core::cardinality::keep_handles_for;

fn with_tenant(mut request: Request<()>) -> Request<()> {
    request
        .extensions_mut()
        .insert(TenantId::parse("acme").unwrap());
    request
}

#[test]
fn grpc_requests_are_counted_by_service_method_status_and_tenant() {
    let recorder = DebuggingRecorder::new();
    run(&recorder, async {
        for code in [0u16, 0, 5, 13] {
            let service = ServiceBuilder::new()
                .layer(RequestMetricsLayer::new())
                .service_fn(move |_: Request<()>| async move {
                    Ok::<_, Infallible>(Response::new(Reply::grpc(code)))
                });
            let request = with_tenant(grpc_request("/pkg.Workflows/Start", None));
            let response = service.oneshot(request).await.unwrap();
            drain(response.into_body()).await;
        }
    });
    let m = snapshot(&recorder);
    // The conventions' histogram: its count is the call count; `error_type` marks the
    // failures (the classifier's: INTERNAL is one, NOT_FOUND is not).
    let key = |status: &str, error: bool| {
        let error = if error {
            format!("error_type={status},")
        } else {
            String::new()
        };
        format!("rpc_server_call_duration_seconds{{{error}rpc_method=pkg.Workflows/Start,rpc_response_status_code={status},rpc_system_name=grpc,tenant_id=acme}}")
    };
    assert_eq!(m[&key("OK", false)], "2 samples");
    assert_eq!(m[&key("NOT_FOUND", false)], "1 samples");
    assert_eq!(m[&key("INTERNAL", true)], "1 samples");
    assert!(!m.contains_key(&key("INTERNAL", false)));
    assert_eq!(m.len(), 4, "{m:#?}");
    // In flight by tenant only: what a call is for is known when it ends.
    assert_eq!(m["instrument_rpc_server_active_calls{tenant_id=acme}"], "0");
}

#[test]
fn http_requests_use_the_normalized_route_and_status_class() {
    let recorder = DebuggingRecorder::new();
    run(&recorder, async {
        let service = ServiceBuilder::new()
            .layer(RequestMetricsLayer::new().route_with(crate::request::NormalizedPath))
            .service_fn(|_: Request<()>| async {
                let mut r = Response::new(Reply::text("x"));
                *r.status_mut() = StatusCode::BAD_GATEWAY;
                Ok::<_, Infallible>(r)
            });
        let request = Request::builder().uri("/orders/12345").body(()).unwrap();
        drain(service.oneshot(request).await.unwrap().into_body()).await;
    });
    let m = snapshot(&recorder);
    let labels = "error_type=502,http_request_method=GET,http_response_status_code=502,http_route=/orders/{id},tenant_id=unknown";
    assert_eq!(
        m[&format!("http_server_request_duration_seconds{{{labels}}}")],
        "1 samples"
    );
}

#[test]
fn in_flight_counts_running_requests_and_drops_cancelled_ones() {
    let recorder = DebuggingRecorder::new();
    let in_flight = "http_server_active_requests{tenant_id=acme}";
    let snapshots = std::sync::Mutex::new(Vec::new());
    run(&recorder, async {
        let service = ServiceBuilder::new()
            .layer(RequestMetricsLayer::new())
            .service_fn(|_: Request<()>| async {
                tokio::time::sleep(Duration::from_secs(3600)).await;
                Ok::<_, Infallible>(Response::new(Reply::default()))
            });
        let request = with_tenant(Request::builder().uri("/slow").body(()).unwrap());
        let mut call = Box::pin(service.oneshot(request));
        assert!(tokio::time::timeout(Duration::from_millis(5), &mut call)
            .await
            .is_err());
        snapshots
            .lock()
            .unwrap()
            .push(snapshot(&recorder)[in_flight].clone());
        drop(call);
    });
    assert_eq!(snapshots.lock().unwrap()[0], "1");
    let m = snapshot(&recorder);
    // The debugging recorder's snapshot drains values: -1 since the reading of 1
    // means the gauge is back at 0.
    assert_eq!(m[in_flight], "-1");
    // Never answered, so the route was never recognised: `_OTHER`; no status code,
    // and not a server error.
    assert_eq!(
        m["http_server_request_duration_seconds{http_request_method=GET,http_route=_OTHER,tenant_id=acme}"],
        "1 samples"
    );
}

#[test]
fn service_errors_count_as_errors_in_the_seeds_scheme_too() {
    let recorder = DebuggingRecorder::new();
    run(&recorder, async {
        let names = instrument_core::semconv::MetricNames::prefixed("flows").unwrap();
        let service = ServiceBuilder::new()
            .layer(RequestMetricsLayer::new().metric_names(&names))
            .service_fn(|_: Request<()>| async { Err::<Response<Reply>, _>("down") });
        assert!(service.oneshot(Request::new(())).await.is_err());
    });
    let m = snapshot(&recorder);
    // A service error answers nothing: the route is not recognised by it.
    let labels = "method=GET,route=_OTHER,status=error,tenant_id=unknown";
    assert_eq!(m[&format!("flows_request_errors_total{{{labels}}}")], "1");
    assert_eq!(m[&format!("flows_requests_total{{{labels}}}")], "1");
    assert_eq!(
        m[&format!("flows_request_duration_seconds{{{labels}}}")],
        "1 samples"
    );
    assert_eq!(m["flows_requests_in_flight{tenant_id=unknown}"], "0");
}

#[test]
fn service_errors_have_an_error_type_in_the_conventions_scheme() {
    let recorder = DebuggingRecorder::new();
    run(&recorder, async {
        let service = ServiceBuilder::new()
            .layer(RequestMetricsLayer::new())
            .service_fn(|_: Request<()>| async { Err::<Response<Reply>, _>("down") });
        assert!(service.oneshot(Request::new(())).await.is_err());
    });
    let m = snapshot(&recorder);
    assert_eq!(
        m["http_server_request_duration_seconds{error_type=_OTHER,http_request_method=GET,http_route=_OTHER,tenant_id=unknown}"],
        "1 samples"
    );
}

/// One layer serving many requests keeps its handles per recorder and per label set,
/// and past its cache's capacity still records every request.
#[test]
fn handles_are_kept_per_recorder_and_label_set() {
    let grpc_ok = |_: Request<()>| async { Ok::<_, Infallible>(Response::new(Reply::grpc(0))) };
    let service = ServiceBuilder::new()
        .layer(RequestMetricsLayer::new())
        .service_fn(grpc_ok);
    let call = |tenant: String| {
        let service = service.clone();
        async move {
            let mut request = grpc_request("/pkg.Workflows/Start", None);
            request
                .extensions_mut()
                .insert(TenantId::parse(&tenant).unwrap());
            drain(service.oneshot(request).await.unwrap().into_body()).await;
        }
    };
    // Handles are kept only for recorders that live as long as the program.
    let first: &'static DebuggingRecorder = Box::leak(Box::new(DebuggingRecorder::new()));
    let second: &'static DebuggingRecorder = Box::leak(Box::new(DebuggingRecorder::new()));
    assert!(keep_handles_for(first) && keep_handles_for(second));
    run(first, async {
        for _ in 0..3 {
            call("acme".into()).await;
        }
    });
    run(second, async {
        for _ in 0..2 {
            call("acme".into()).await;
        }
        // More label sets than the cache holds.
        for i in 0..instrument_core::measure::MAX_LABEL_SETS + 10 {
            call(format!("tenant-{i}")).await;
        }
        call("tenant-0".into()).await;
    });
    let key = |tenant: &str| {
        format!("rpc_server_call_duration_seconds{{rpc_method=pkg.Workflows/Start,rpc_response_status_code=OK,rpc_system_name=grpc,tenant_id={tenant}}}")
    };
    let (first, second) = (snapshot(first), snapshot(second));
    assert_eq!(first[&key("acme")], "3 samples");
    assert_eq!(second[&key("acme")], "2 samples");
    assert_eq!(second[&key("tenant-0")], "2 samples");
    let last = format!("tenant-{}", instrument_core::measure::MAX_LABEL_SETS + 9);
    assert_eq!(second[&key(&last)], "1 samples");
}

/// Recorders made one after another (likely at one address) and dropped, as tests do:
/// none is lasting, so each gets its own metrics, never another's kept handles.
#[test]
fn passing_recorders_each_get_their_own_metrics() {
    let service = ServiceBuilder::new()
        .layer(RequestMetricsLayer::new())
        .service_fn(|_: Request<()>| async { Ok::<_, Infallible>(Response::new(Reply::grpc(0))) });
    for _ in 0..3 {
        let recorder = DebuggingRecorder::new();
        run(&recorder, async {
            let request = grpc_request("/pkg.Workflows/Start", None);
            let response = service.clone().oneshot(request).await.unwrap();
            drain(response.into_body()).await;
        });
        let counts = snapshot(&recorder);
        assert_eq!(
            counts["rpc_server_call_duration_seconds{rpc_method=pkg.Workflows/Start,rpc_response_status_code=OK,rpc_system_name=grpc,tenant_id=unknown}"],
            "1 samples"
        );
    }
}
