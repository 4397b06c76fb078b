//! The `/metrics` endpoint over a real socket: bearer-token protection, the
//! cardinality cap and redaction of what it serves, and `promtool check metrics`.

#[path = "support/promtool.rs"]
mod promtool;

use std::sync::{Arc, Mutex};

use instrument::cardinality::LabelGuard;
use instrument::pipeline::{prometheus_recorder, serve_metrics};
use instrument::semconv::MetricNames;
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
use tokio::sync::oneshot;

const TOKEN: &str = "s3cr3t-scrape-token";

/// One HTTP/1.1 request over a fresh connection; returns (status, headers and body).
async fn http(addr: std::net::SocketAddr, request: &str) -> (u16, String) {
    let mut stream = tokio::net::TcpStream::connect(addr).await.unwrap();
    stream.write_all(request.as_bytes()).await.unwrap();
    let mut response = String::new();
    stream.read_to_string(&mut response).await.unwrap();
    let status = response
        .split(' ')
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(0);
    (status, response)
}

fn get(path: &str, authorization: Option<&str>) -> String {
    let auth = authorization
        .map(|a| format!("Authorization: {a}\r\n"))
        .unwrap_or_default();
    format!("GET {path} HTTP/1.1\r\nHost: localhost\r\n{auth}Connection: close\r\n\r\n")
}

/// A `tracing` writer the test can read.
#[derive(Clone, Default)]
struct Captured(Arc<Mutex<Vec<u8>>>);

impl std::io::Write for Captured {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

#[tokio::test]
async fn metrics_endpoint_is_protected_capped_redacted_and_valid_for_promtool() {
    // Logs of this (current-thread) runtime, to check the token never reaches them.
    let logs = Captured::default();
    let writer = logs.clone();
    let _logging = tracing::subscriber::set_default(
        tracing_subscriber::fmt()
            .with_writer(move || writer.clone())
            .with_ansi(false)
            .finish(),
    );

    let names = MetricNames::default();
    let guard = LabelGuard::builder()
        .max_label_sets(1000)
        .label_cap("tenant_id", 500)
        .build();
    let (recorder, handle) = prometheus_recorder(guard, &names).unwrap();
    metrics::with_local_recorder(&recorder, || {
        let (workflows, tasks) = (names.workflows(), names.tasks());
        for i in 0..2_000 {
            let tenant = format!("tenant-{i}");
            metrics::counter!(workflows.started.clone(), "tenant_id" => tenant.clone(), "workflow_kind" => "order", "task_queue" => "default").increment(1);
            metrics::counter!(workflows.completed.clone(), "tenant_id" => tenant.clone(), "workflow_kind" => "order", "status" => "completed").increment(1);
            metrics::histogram!(workflows.duration.clone(), "tenant_id" => tenant.clone(), "workflow_kind" => "order", "status" => "completed").record(42.0);
            metrics::counter!(tasks.failed.clone(), "tenant_id" => tenant.clone(), "task_type" => "charge", "status" => "failed").increment(1);
            metrics::histogram!(tasks.duration.clone(), "tenant_id" => tenant, "task_type" => "charge", "status" => "failed").record(0.2);
        }
        metrics::histogram!(names.http_duration(), "tenant_id" => "bob@example.com").record(0.1);
    });

    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let (stop, stopped) = oneshot::channel::<()>();
    let server = tokio::spawn(serve_metrics(
        listener,
        handle,
        "/metrics",
        Some(TOKEN.to_owned()),
        async {
            let _ = stopped.await;
        },
    ));

    let (status, response) = http(addr, &get("/metrics", None)).await;
    assert_eq!(status, 401, "{response}");
    assert!(response
        .to_ascii_lowercase()
        .contains("www-authenticate: bearer"));
    let (status, _) = http(addr, &get("/metrics", Some("Bearer wrong-token-value"))).await;
    assert_eq!(status, 401);
    let (status, _) = http(addr, &get("/other", Some(&format!("Bearer {TOKEN}")))).await;
    assert_eq!(status, 404);
    let (status, _) = http(addr, &format!("POST /metrics HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {TOKEN}\r\nContent-Length: 0\r\nConnection: close\r\n\r\n")).await;
    assert_eq!(status, 405);
    let (status, response) = http(addr, &get("/metrics", Some(&format!("Bearer {TOKEN}")))).await;
    assert_eq!(status, 200, "{response}");
    assert!(response.contains("text/plain; version=0.0.4"));
    let body = response
        .split_once("\r\n\r\n")
        .map(|(_, b)| b)
        .unwrap_or_default();

    // Capped: at most 500 tenants per label and 1000 label sets per metric, the rest
    // counted as overflow; nothing personal in label values.
    let started: Vec<&str> = body
        .lines()
        .filter(|l| l.starts_with("instrument_workflows_started_total{"))
        .collect();
    assert!(started.len() <= 1001, "{}", started.len());
    assert!(body.contains("tenant_id=\"__overflow__\""));
    assert!(body.contains(
        "instrument_metric_label_overflow_total{metric=\"instrument_workflows_started_total\"}"
    ));
    assert!(!body.contains("bob@example.com"));

    // The real promtool (Debian package `prometheus`, installed by .ci/run).
    promtool::check_metrics(body);

    let _ = stop.send(());
    server.await.unwrap().unwrap();
    let logged = String::from_utf8(logs.0.lock().unwrap().clone()).unwrap();
    assert!(
        logged.contains("refused a request without a valid bearer token"),
        "{logged}"
    );
    assert!(
        !logged.contains("wrong-token-value") && !logged.contains(TOKEN),
        "{logged}"
    );
}

/// 500 clients that send their headers one byte a second: a normal scrape still
/// answers at once, and every slow connection is closed within the header timeout.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn slow_clients_neither_block_a_scrape_nor_stay_connected() {
    use instrument::pipeline::{serve_metrics_with, MetricsLimits, MetricsService};
    use std::time::{Duration, Instant};

    let (_recorder, handle) =
        prometheus_recorder(LabelGuard::default(), &MetricNames::default()).unwrap();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let mut limits = MetricsLimits::default();
    limits.header_read_timeout = Duration::from_secs(2);
    let service = MetricsService::new(handle, "/metrics", Some(TOKEN.into()));
    let (stop, stopped) = oneshot::channel::<()>();
    let server = tokio::spawn(serve_metrics_with(listener, service, limits, async {
        let _ = stopped.await;
    }));

    let opened = Instant::now();
    let mut slow = tokio::task::JoinSet::new();
    for _ in 0..500 {
        let mut stream = tokio::net::TcpStream::connect(addr).await.unwrap();
        slow.spawn(async move {
            // One byte a second until the server hangs up; how long that took.
            for byte in b"GET /metrics HTTP/1.1\r\nHost: localhost\r\n"
                .iter()
                .cycle()
            {
                if stream.write_all(&[*byte]).await.is_err() {
                    break;
                }
                let mut buf = [0u8; 256];
                let read = tokio::time::timeout(Duration::from_secs(1), stream.read(&mut buf));
                if let Ok(Ok(0) | Err(_)) = read.await {
                    break;
                }
            }
        });
    }

    // A scrape among them answers at once.
    let started = Instant::now();
    let (status, body) = tokio::time::timeout(
        Duration::from_secs(1),
        http(addr, &get("/metrics", Some(&format!("Bearer {TOKEN}")))),
    )
    .await
    .expect("a scrape answers while slow clients are connected");
    assert_eq!(status, 200, "{body}");
    assert!(started.elapsed() < Duration::from_secs(1));

    // Every slow connection is closed within the header timeout (and a margin).
    let closed = tokio::time::timeout(Duration::from_secs(6), async {
        while let Some(done) = slow.join_next().await {
            done.unwrap();
        }
    })
    .await;
    assert!(
        closed.is_ok(),
        "slow connections still open after {:?}",
        opened.elapsed()
    );

    let _ = stop.send(());
    server.await.unwrap().unwrap();
}

/// A request head larger than the limit is refused, and the server goes on serving.
#[tokio::test]
async fn an_oversized_request_head_is_refused() {
    let (_recorder, handle) =
        prometheus_recorder(LabelGuard::default(), &MetricNames::default()).unwrap();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let (stop, stopped) = oneshot::channel::<()>();
    let server = tokio::spawn(serve_metrics(listener, handle, "/metrics", None, async {
        let _ = stopped.await;
    }));
    let huge = format!(
        "GET /metrics HTTP/1.1\r\nHost: localhost\r\nX-Pad: {}\r\nConnection: close\r\n\r\n",
        "a".repeat(64 * 1024)
    );
    let mut stream = tokio::net::TcpStream::connect(addr).await.unwrap();
    let _ = stream.write_all(huge.as_bytes()).await;
    let mut response = Vec::new();
    let _ = stream.read_to_end(&mut response).await;
    let response = String::from_utf8_lossy(&response);
    assert!(
        response.is_empty() || response.starts_with("HTTP/1.1 431"),
        "{response}"
    );
    let (status, _) = http(addr, &get("/metrics", None)).await;
    assert_eq!(status, 200);
    let _ = stop.send(());
    server.await.unwrap().unwrap();
}
