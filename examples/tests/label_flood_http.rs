//! A hostile client against a plain HTTP server behind `InstrumentLayer` over real
//! sockets: thousands of requests to made-up paths (each answered 404) add a handful of
//! series to `/metrics` and leave the real routes' series as they were. A test binary
//! of its own: it installs the process-wide metrics recorder.

#[path = "../../tests/support/exposition.rs"]
mod exposition;
#[path = "../../tests/support/promtool.rs"]
mod promtool;

use std::convert::Infallible;

use bytes::Bytes;
use exposition::series;
use http::{Request, Response, StatusCode};
use http_body_util::{BodyExt as _, Full};
use hyper_util::client::legacy::Client;
use hyper_util::rt::{TokioExecutor, TokioIo};
use hyper_util::service::TowerToHyperService;
use instrument::cardinality::LabelGuard;
use instrument::pipeline::install_prometheus;
use instrument::semconv::{MetricNames, OVERFLOW_LABEL};
use instrument::tower::request::NormalizedPath;
use instrument::tower::stack::InstrumentLayer;
use tower::ServiceBuilder;

/// Two routes, `/jobs/{id}` and `/health`; anything else is 404.
async fn two_routes(
    request: Request<hyper::body::Incoming>,
) -> Result<Response<Full<Bytes>>, Infallible> {
    let path = request.uri().path();
    let found = path == "/health" || path.starts_with("/jobs/");
    let mut response = Response::new(Full::new(Bytes::from_static(b"ok")));
    if !found {
        *response.status_mut() = StatusCode::NOT_FOUND;
    }
    Ok(response)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn made_up_paths_add_a_handful_of_series_whatever_their_number() {
    let metrics = install_prometheus(LabelGuard::default(), &MetricNames::default()).unwrap();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let service = ServiceBuilder::new()
        // No router here: routes guessed from the path, learned only when answered.
        .layer(
            InstrumentLayer::builder()
                .route_with(NormalizedPath)
                .build(),
        )
        .service_fn(two_routes);
    let server = tokio::spawn(async move {
        loop {
            let Ok((stream, _)) = listener.accept().await else {
                return;
            };
            let service = TowerToHyperService::new(service.clone());
            tokio::spawn(
                hyper::server::conn::http1::Builder::new()
                    .serve_connection(TokioIo::new(stream), service),
            );
        }
    });
    let client = Client::builder(TokioExecutor::new()).build_http::<Full<Bytes>>();
    let get = move |path: String| {
        let client = client.clone();
        async move {
            let request = Request::get(format!("http://{addr}{path}"))
                .header("x-tenant-id", "acme")
                .body(Full::new(Bytes::new()))
                .unwrap();
            let response = client.request(request).await.unwrap();
            let status = response.status();
            response.into_body().collect().await.unwrap();
            status
        }
    };

    for path in ["/jobs/1", "/jobs/2", "/health"] {
        assert_eq!(get(path.to_owned()).await, StatusCode::OK);
    }
    let real = series(&metrics.render());
    for n in 0..20 {
        assert_eq!(get(format!("/probe-{n}/x")).await, StatusCode::NOT_FOUND);
    }
    let before = series(&metrics.render());
    let first: Vec<&String> = before.difference(&real).collect();
    assert!(
        first.len() <= 25,
        "the first made-up paths added {first:#?}"
    );
    assert!(real.is_subset(&before));

    let mut calls = tokio::task::JoinSet::new();
    for worker in 0..16 {
        let get = get.clone();
        calls.spawn(async move {
            for n in (20 + worker..5_020).step_by(16) {
                assert_eq!(
                    get(format!("/made-up/{n}/path")).await,
                    StatusCode::NOT_FOUND
                );
            }
        });
    }
    while let Some(done) = calls.join_next().await {
        done.unwrap();
    }
    let exposition = metrics.render();
    assert_eq!(series(&exposition), before, "the flood changed the series");
    assert!(!exposition.contains(OVERFLOW_LABEL));
    assert!(!exposition.contains("made-up") && !exposition.contains("probe"));
    assert!(exposition.contains(r#"http_route="/jobs/{id}""#));
    promtool::check_metrics(&exposition);
    server.abort();
}
