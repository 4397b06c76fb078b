//! The shipped dashboard (`ops/grafana/instrument.json`) and alert rules
//! (`ops/prometheus/alerts.yml`) against a real Prometheus server (Debian's
//! `prometheus` package): the example workflow server and an HTTP server behind the
//! instrument layers on 127.0.0.1, scraped with a bearer token every second, known
//! traffic in two phases (so rates are non-zero), then every query of the dashboard and
//! of the rules asked over Prometheus's HTTP API and checked against what the traffic
//! implies.
//!
//! Without the `prometheus` binary the test says so and passes, unless
//! `INSTRUMENT_REQUIRE_PROMTOOL` is set (as `.ci/run` does): then it is required.
//! A test binary of its own: it installs the process-wide metrics recorder.

use std::collections::BTreeMap;
use std::convert::Infallible;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use http::{Request, Response, StatusCode};
use http_body_util::{BodyExt as _, Full};
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;
use instrument::cardinality::LabelGuard;
use instrument::pipeline::{install_prometheus, serve_metrics};
use instrument::semconv::MetricNames;
use instrument::tower::request::NormalizedPath;
use instrument::tower::stack::InstrumentLayer;
use instrument_examples::pb::workflow_service_client::WorkflowServiceClient;
use instrument_examples::pb::*;
use instrument_examples::workflow::{self, call};
use serde_json::Value;
use tower::ServiceBuilder;

const TOKEN: &str = "scrape-token-7f3a";
const SERVICE: &str = "instrument.example.v1.WorkflowService";

type Http = Client<hyper_util::client::legacy::connect::HttpConnector, Full<Bytes>>;
type Grpc = WorkflowServiceClient<tonic::transport::Channel>;

/// The Prometheus server, killed when dropped.
struct Prometheus {
    child: Child,
    addr: SocketAddr,
}

impl Drop for Prometheus {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn ops(file: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../ops")
        .join(file)
}

/// Starts Prometheus scraping `target`'s `/metrics` with the bearer token every second
/// and evaluating the shipped rules; `None` when it is not installed (and not required).
fn start_prometheus(dir: &Path, target: SocketAddr) -> Option<Prometheus> {
    let free = std::net::TcpListener::bind("127.0.0.1:0").expect("a free port");
    let addr = free.local_addr().expect("its address");
    drop(free);
    let config = dir.join("prometheus.yml");
    std::fs::write(
        &config,
        format!(
            "global:\n  scrape_interval: 1s\n  evaluation_interval: 1s\n\
             rule_files:\n  - {rules}\n\
             scrape_configs:\n  - job_name: instrument\n    scrape_interval: 1s\n\
             \x20   authorization:\n      credentials: {TOKEN}\n\
             \x20   static_configs:\n      - targets: ['{target}']\n",
            rules = ops("prometheus/alerts.yml").display(),
        ),
    )
    .expect("config written");
    let spawned = Command::new("prometheus")
        .arg(format!("--config.file={}", config.display()))
        .arg(format!(
            "--storage.tsdb.path={}",
            dir.join("data").display()
        ))
        .arg(format!("--web.listen-address={addr}"))
        .arg("--log.level=warn")
        .stdout(Stdio::null())
        .stderr(Stdio::inherit())
        .spawn();
    match spawned {
        Ok(child) => Some(Prometheus { child, addr }),
        Err(e) if std::env::var_os("INSTRUMENT_REQUIRE_PROMTOOL").is_none() => {
            eprintln!(
                "prometheus not found ({e}): the dashboard and rules are not queried \
                 (apt-get install -y prometheus for the real server)"
            );
            None
        }
        Err(e) => panic!("prometheus is required (INSTRUMENT_REQUIRE_PROMTOOL is set): {e}"),
    }
}

/// Percent-encodes a query parameter.
fn encode(value: &str) -> String {
    value
        .bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}

async fn get(client: &Http, url: String) -> (StatusCode, String) {
    let request = Request::get(url).body(Full::new(Bytes::new())).unwrap();
    match client.request(request).await {
        Ok(response) => {
            let status = response.status();
            let body = response.into_body().collect().await.unwrap().to_bytes();
            (status, String::from_utf8_lossy(&body).into_owned())
        }
        Err(e) => (StatusCode::SERVICE_UNAVAILABLE, e.to_string()),
    }
}

/// An instant query's result: each series' labels and value.
async fn query(
    client: &Http,
    prometheus: &Prometheus,
    promql: &str,
) -> Vec<(BTreeMap<String, String>, f64)> {
    let url = format!(
        "http://{}/api/v1/query?query={}",
        prometheus.addr,
        encode(promql)
    );
    let (status, body) = get(client, url).await;
    assert_eq!(status, StatusCode::OK, "{promql}: {body}");
    let json: Value = serde_json::from_str(&body).unwrap();
    assert_eq!(json["status"], "success", "{promql}: {body}");
    json["data"]["result"]
        .as_array()
        .unwrap_or_else(|| panic!("{promql}: a vector, got {body}"))
        .iter()
        .map(|series| {
            let labels = series["metric"]
                .as_object()
                .unwrap()
                .iter()
                .map(|(k, v)| (k.clone(), v.as_str().unwrap().to_owned()))
                .collect();
            let value = series["value"][1].as_str().unwrap().parse().unwrap();
            (labels, value)
        })
        .collect()
}

/// Waits until `promql` returns a series with `value` at least `at_least`.
async fn wait_for(client: &Http, prometheus: &Prometheus, promql: &str, at_least: f64) {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let ready = get(client, format!("http://{}/-/ready", prometheus.addr))
            .await
            .0;
        if ready == StatusCode::OK {
            let result = query(client, prometheus, promql).await;
            if result.iter().any(|(_, v)| *v >= at_least) {
                return;
            }
        }
        assert!(
            Instant::now() < deadline,
            "timed out waiting for {promql} >= {at_least}"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// An HTTP server behind `InstrumentLayer`: `/jobs/{id}` answers 200, `/fail` 503,
/// anything else 404.
async fn start_http() -> SocketAddr {
    async fn routes(
        request: Request<hyper::body::Incoming>,
    ) -> Result<Response<Full<Bytes>>, Infallible> {
        let path = request.uri().path();
        let status = match path {
            "/fail" => StatusCode::SERVICE_UNAVAILABLE,
            _ if path.starts_with("/jobs/") => StatusCode::OK,
            _ => StatusCode::NOT_FOUND,
        };
        let mut response = Response::new(Full::new(Bytes::from_static(b"ok")));
        *response.status_mut() = status;
        Ok(response)
    }
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let service = ServiceBuilder::new()
        // No router here: routes guessed from the path, learned only when answered.
        .layer(
            InstrumentLayer::builder()
                .route_with(NormalizedPath)
                .build(),
        )
        .service_fn(routes);
    tokio::spawn(instrument_examples::serve_http(listener, service));
    addr
}

async fn http_call(client: &Http, addr: SocketAddr, path: &str) -> StatusCode {
    let request = Request::get(format!("http://{addr}{path}"))
        .header("x-tenant-id", "acme")
        .body(Full::new(Bytes::new()))
        .unwrap();
    let response = client.request(request).await.unwrap();
    let status = response.status();
    response.into_body().collect().await.unwrap();
    status
}

async fn start_workflow(client: &mut Grpc, tenant: &str) -> String {
    let request = StartWorkflowRequest {
        kind: "payment".into(),
        task_queue: "main".into(),
        input_json: "{}".into(),
    };
    client
        .start_workflow(call(request, tenant, None))
        .await
        .unwrap()
        .into_inner()
        .workflow_id
}

/// One phase of traffic: 5 workflows started by acme and 1 by globex, one of acme's
/// completed and one failed, a task completed, one failed and one left pending, a call
/// refused for
/// naming another tenant's workflow; over HTTP 5 found, 1 failed (503), 1 not found.
async fn phase(grpc: &mut Grpc, http: &Http, http_addr: SocketAddr) {
    let mut acme = Vec::new();
    for _ in 0..5 {
        acme.push(start_workflow(grpc, "acme").await);
    }
    let globex = start_workflow(grpc, "globex").await;
    let done = CompleteWorkflowRequest {
        workflow_id: acme[0].clone(),
        output_json: "{}".into(),
    };
    grpc.complete_workflow(call(done, "acme", Some(&acme[0])))
        .await
        .unwrap();
    let failed = FailWorkflowRequest {
        workflow_id: acme[1].clone(),
        error: "card declined".into(),
    };
    grpc.fail_workflow(call(failed, "acme", Some(&acme[1])))
        .await
        .unwrap();
    for ending in [Some(true), Some(false), None] {
        let submit = SubmitTaskRequest {
            workflow_id: acme[2].clone(),
            task_type: "charge".into(),
            input_json: "{}".into(),
        };
        let task = grpc
            .submit_task(call(submit, "acme", Some(&acme[2])))
            .await
            .unwrap()
            .into_inner()
            .task_id;
        if ending == Some(true) {
            let request = CompleteTaskRequest {
                task_id: task,
                output_json: "{}".into(),
            };
            grpc.complete_task(call(request, "acme", Some(&acme[2])))
                .await
                .unwrap();
        } else if ending == Some(false) {
            let request = FailTaskRequest {
                task_id: task,
                error: "timeout".into(),
            };
            grpc.fail_task(call(request, "acme", Some(&acme[2])))
                .await
                .unwrap();
        }
    }
    // acme names globex's workflow: refused by the tenant check.
    let submit = SubmitTaskRequest {
        workflow_id: globex.clone(),
        task_type: "charge".into(),
        input_json: "{}".into(),
    };
    let refused = grpc.submit_task(call(submit, "acme", Some(&globex))).await;
    assert!(refused.is_err());
    for path in ["/jobs/1", "/jobs/2", "/jobs/3", "/jobs/4", "/jobs/5"] {
        assert_eq!(http_call(http, http_addr, path).await, StatusCode::OK);
    }
    assert_eq!(
        http_call(http, http_addr, "/fail").await,
        StatusCode::SERVICE_UNAVAILABLE
    );
    assert_eq!(
        http_call(http, http_addr, "/nope").await,
        StatusCode::NOT_FOUND
    );
}

/// Every query of the dashboard, by panel title, its variables as "All tenants" and a
/// one-minute rate window.
fn dashboard_queries() -> Vec<(String, String)> {
    let text = std::fs::read_to_string(ops("grafana/instrument.json")).unwrap();
    let dashboard: Value = serde_json::from_str(&text).expect("the dashboard is JSON");
    let mut queries = Vec::new();
    for panel in dashboard["panels"].as_array().unwrap() {
        for target in panel["targets"].as_array().into_iter().flatten() {
            let expr = target["expr"].as_str().unwrap();
            let expr = expr
                .replace("$tenant", ".*")
                .replace("$__rate_interval", "1m");
            queries.push((panel["title"].as_str().unwrap().to_owned(), expr));
        }
    }
    queries
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_dashboard_and_alerts_answer_from_a_real_prometheus() {
    let metrics = install_prometheus(LabelGuard::default(), &MetricNames::default()).unwrap();
    let dir = std::env::temp_dir().join(format!("instrument-prom-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();

    let store = Arc::new(workflow::Store::open(&dir.join("workflows.sqlite3")).unwrap());
    let _outstanding = workflow::watch_outstanding(&store, Duration::from_millis(200));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let grpc_addr = listener.local_addr().unwrap();
    tokio::spawn(workflow::serve(listener, store, std::future::pending()));
    let metrics_listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let metrics_addr = metrics_listener.local_addr().unwrap();
    tokio::spawn(serve_metrics(
        metrics_listener,
        metrics,
        "/metrics",
        Some(TOKEN.to_owned()),
        std::future::pending(),
    ));
    let http_addr = start_http().await;
    let http: Http = Client::builder(TokioExecutor::new()).build_http();
    let mut grpc = WorkflowServiceClient::connect(format!("http://{grpc_addr}"))
        .await
        .unwrap();

    let Some(prometheus) = start_prometheus(&dir, metrics_addr) else {
        let _ = std::fs::remove_dir_all(&dir);
        return;
    };

    // Phase one, then two scrapes with its counts; phase two, then its counts scraped:
    // every counter has a sample before and after phase two, so rates are not zero.
    phase(&mut grpc, &http, http_addr).await;
    let started = format!(
        "sum(rpc_server_call_duration_seconds_count{{rpc_method=\"{SERVICE}/StartWorkflow\",tenant_id=\"acme\"}})"
    );
    wait_for(&http, &prometheus, &started, 5.0).await;
    wait_for(
        &http,
        &prometheus,
        "count_over_time(up{job=\"instrument\"}[5m])",
        2.0,
    )
    .await;
    phase(&mut grpc, &http, http_addr).await;
    wait_for(&http, &prometheus, &started, 10.0).await;
    // The outstanding-work poller runs every 200 ms: ten workflows are still open.
    wait_for(
        &http,
        &prometheus,
        "sum(instrument_workflows_outstanding{older_than=\"0\"})",
        8.0,
    )
    .await;

    // The scrape used the token and found valid metrics.
    let up = query(&http, &prometheus, "up{job=\"instrument\"}").await;
    assert_eq!(up.len(), 1);
    assert_eq!(up[0].1, 1.0, "scraped with the bearer token");

    // Values the traffic implies, exactly.
    let one = |result: Vec<(BTreeMap<String, String>, f64)>| -> f64 {
        assert_eq!(result.len(), 1, "{result:?}");
        result[0].1
    };
    assert_eq!(one(query(&http, &prometheus, &started).await), 10.0);
    assert_eq!(
        one(query(
            &http,
            &prometheus,
            "sum(instrument_workflows_started_total{tenant_id=\"acme\"})"
        )
        .await),
        10.0
    );
    assert_eq!(
        one(query(
            &http,
            &prometheus,
            "sum(instrument_workflows_failed_total{tenant_id=\"acme\"})"
        )
        .await),
        2.0
    );
    assert_eq!(
        one(query(
            &http,
            &prometheus,
            "sum(http_server_request_duration_seconds_count{http_route=\"/jobs/{id}\"})"
        )
        .await),
        10.0
    );
    assert_eq!(
        one(query(
            &http,
            &prometheus,
            "sum(http_server_request_duration_seconds_count{error_type=\"503\"})"
        )
        .await),
        2.0
    );
    assert_eq!(
        one(query(
            &http,
            &prometheus,
            "sum(instrument_tenant_rejections_total{reason=\"other_tenant\"})"
        )
        .await),
        2.0
    );
    assert_eq!(
        one(query(
            &http,
            &prometheus,
            "sum(instrument_workflows_outstanding{older_than=\"0\"})"
        )
        .await),
        8.0,
        "12 started, 4 ended"
    );
    assert_eq!(
        one(query(
            &http,
            &prometheus,
            "sum(instrument_tasks_outstanding{older_than=\"0\",state=\"pending\"})"
        )
        .await),
        2.0
    );

    // Every dashboard query runs; those over what the traffic made return series,
    // with values in range; those over what it did not make (no OTLP export, no
    // overflow) return none.
    let empty = [
        "gRPC error ratio by method",
        "Label guard overflow by metric",
        "Spans exported / failed / dropped",
    ];
    let queries = dashboard_queries();
    assert!(queries.len() >= 25, "{} queries", queries.len());
    for (title, expr) in &queries {
        let result = query(&http, &prometheus, expr).await;
        if empty.contains(&title.as_str()) {
            assert!(result.is_empty(), "{title}: {expr} gave {result:?}");
            continue;
        }
        assert!(!result.is_empty(), "{title}: {expr} gave nothing");
        for (labels, value) in &result {
            assert!(
                value.is_finite() && *value >= 0.0,
                "{title}: {labels:?} = {value}"
            );
            if title.contains("p50 / p99") && !title.contains("lifetime") {
                assert!(
                    *value > 0.0 && *value <= 10.0,
                    "{title}: {labels:?} = {value}"
                );
            }
            if title.contains("ratio") {
                assert!(*value <= 1.0, "{title}: {labels:?} = {value}");
            }
        }
        // No raw path and no made-up method ever becomes a label value.
        for (labels, _) in &result {
            if let Some(route) = labels.get("http_route") {
                assert!(
                    ["/jobs/{id}", "/fail", "_OTHER"].contains(&route.as_str()),
                    "{route}"
                );
            }
        }
    }
    // The HTTP error ratio of /fail is 1, of /jobs/{id} absent (no failures there).
    let ratio = query(
        &http,
        &prometheus,
        &queries
            .iter()
            .find(|(t, _)| t == "HTTP error ratio by route")
            .unwrap()
            .1,
    )
    .await;
    assert_eq!(ratio.len(), 1, "{ratio:?}");
    assert_eq!(ratio[0].0["http_route"], "/fail");
    assert_eq!(ratio[0].1, 1.0);

    // The rules: loaded, every one evaluated without error; with this traffic the HTTP
    // error rate (2 of 14 acme requests failed) and the workflow failure rate (half) are
    // over their thresholds, nothing else is.
    let (status, body) = get(&http, format!("http://{}/api/v1/rules", prometheus.addr)).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let rules: Value = serde_json::from_str(&body).unwrap();
    let mut active = Vec::new();
    let mut count = 0;
    for group in rules["data"]["groups"].as_array().unwrap() {
        for rule in group["rules"].as_array().unwrap() {
            count += 1;
            let name = rule["name"].as_str().unwrap();
            assert_eq!(rule["health"], "ok", "{name}: {}", rule["lastError"]);
            let result = query(&http, &prometheus, rule["query"].as_str().unwrap()).await;
            if !result.is_empty() {
                active.push(name.to_owned());
            }
        }
    }
    assert_eq!(count, 12, "{body}");
    active.sort();
    assert_eq!(
        active,
        [
            "InstrumentHttpErrorRateHigh",
            "InstrumentWorkflowFailureRateHigh"
        ]
    );
    drop(prometheus);
    let _ = std::fs::remove_dir_all(&dir);
}
