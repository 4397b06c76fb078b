//! OTLP export over each transport, to real receivers on 127.0.0.1 started here:
//! OTLP/HTTP protobuf (gzip, headers, plain and TLS) on hyper, OTLP/gRPC over TLS
//! verified with a CA made in the test, and mTLS with a client certificate required.
//! Every exporter is chosen by `OTEL_*` variables only.

#[path = "support/otlp.rs"]
mod otlp;
#[path = "support/tls.rs"]
mod tls;

use std::io::Read as _;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt as _, Full};
use instrument::pipeline::{build, ExportStats, PipelineConfig, SamplerConfig, Telemetry};
use instrument::tenant::{with_tenant, TenantId};
use opentelemetry::trace::{TraceContextExt as _, Tracer as _, TracerProvider as _};
use opentelemetry::Context;
use opentelemetry_proto::tonic::collector::logs::v1::ExportLogsServiceRequest;
use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
use opentelemetry_proto::tonic::logs::v1::LogRecord;
use otlp::Receiver;
use prost::Message as _;

/// The log lines of this test binary (a global subscriber: exports log from the
/// batch processor's own thread).
fn logs() -> Arc<Mutex<Vec<u8>>> {
    static LINES: std::sync::OnceLock<Arc<Mutex<Vec<u8>>>> = std::sync::OnceLock::new();
    Arc::clone(LINES.get_or_init(|| {
        #[derive(Clone)]
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
        use tracing_subscriber::layer::SubscriberExt as _;
        let lines = Lines(Arc::default());
        let writer = lines.clone();
        let subscriber =
            tracing_subscriber::registry().with(instrument::pipeline::JsonLogLayer::new(
                instrument::redact::Redactor::default(),
                move || writer.clone(),
            ));
        tracing::subscriber::set_global_default(subscriber).unwrap();
        lines.0
    }))
}

/// The self-observability counter `otel_sdk_exporter_span_exported_total` of the
/// collector on `port`, by `error_type` (`""`: exported), from a recorder installed
/// for this binary (exports record from the batch processor's thread).
fn exported(port: u16) -> std::collections::BTreeMap<String, u64> {
    use metrics_util::debugging::{DebugValue, DebuggingRecorder, Snapshotter};
    type Seen = Mutex<std::collections::BTreeMap<(String, String), u64>>;
    static RECORDED: std::sync::OnceLock<(Snapshotter, Seen)> = std::sync::OnceLock::new();
    let (snapshotter, seen) = RECORDED.get_or_init(|| {
        let recorder = DebuggingRecorder::new();
        let snapshotter = recorder.snapshotter();
        recorder.install().unwrap();
        (snapshotter, Seen::default())
    });
    // A snapshot drains the recorder's counters: keep what each one saw.
    let mut seen = seen.lock().unwrap();
    for (key, _, _, value) in snapshotter.snapshot().into_vec() {
        let key = key.key();
        let label = |name: &str| {
            key.labels()
                .find(|l| l.key() == name)
                .map(|l| l.value().to_owned())
                .unwrap_or_default()
        };
        if key.name() == "otel_sdk_exporter_span_exported_total" {
            if let DebugValue::Counter(n) = value {
                *seen
                    .entry((label("server_port"), label("error_type")))
                    .or_default() += n;
            }
        } else if key.name() == "otel_sdk_processor_span_processed_total"
            && label("error_type") == "queue_full"
        {
            if let DebugValue::Counter(n) = value {
                *QUEUE_FULL.lock().unwrap() += n;
            }
        }
    }
    seen.iter()
        .filter(|((p, _), _)| *p == port.to_string())
        .map(|((_, kind), n)| (kind.clone(), *n))
        .collect()
}

/// The self-observability counter `otel_sdk_processor_span_processed_total` with
/// `error_type="queue_full"`, summed (only one test in this binary fills its queue).
fn dropped_for_queue_full() -> u64 {
    exported(0);
    let seen = QUEUE_FULL.lock().unwrap();
    *seen
}

static QUEUE_FULL: Mutex<u64> = Mutex::new(0);

/// The log lines so far that mention `needle`.
fn logged(needle: &str) -> Vec<String> {
    let bytes = logs().lock().unwrap().clone();
    String::from_utf8_lossy(&bytes)
        .lines()
        .filter(|l| l.contains(needle))
        .map(str::to_owned)
        .collect()
}

/// The pipeline the variables give (every span sampled, a short batch delay).
fn pipeline(vars: &[(&str, String)]) -> Telemetry {
    let mut all: Vec<(&str, String)> = vec![
        ("OTEL_SERVICE_NAME", "transport-test".to_owned()),
        ("OTEL_BSP_SCHEDULE_DELAY", "50".to_owned()),
        ("OTEL_EXPORTER_OTLP_TIMEOUT", "2000".to_owned()),
    ];
    all.extend(vars.iter().cloned());
    let config = PipelineConfig::from_vars(all)
        .expect("a valid configuration")
        .with_sampler(SamplerConfig::ParentBasedTraceIdRatio(1.0))
        .with_shutdown_timeout(Duration::from_secs(5));
    build(&config).expect("the pipeline builds")
}

/// Records one span for acme, then shuts the pipeline down and returns its counts.
async fn one_span(telemetry: Telemetry, name: &'static str) -> ExportStats {
    let tracer = telemetry.tracer_provider().unwrap().tracer("test");
    let cx = with_tenant(&Context::new(), TenantId::parse("acme").unwrap());
    let span = tracer.start_with_context(name, &cx);
    drop(cx.with_span(span));
    tokio::task::spawn_blocking(move || telemetry.shutdown())
        .await
        .unwrap()
        .unwrap_or_else(|e| e.stats)
}

/// What an OTLP/HTTP receiver saw of one request.
#[derive(Debug, Clone, Default)]
struct Seen {
    path: String,
    content_type: String,
    content_encoding: String,
    api_key: String,
    spans: Vec<String>,
    logs: Vec<LogRecord>,
}

/// An OTLP/HTTP receiver: hyper, HTTP/1.1, plain or over TLS with `server`'s
/// certificate.
async fn http_receiver(server: Option<&tls::Pem>) -> (SocketAddr, Arc<Mutex<Vec<Seen>>>) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let seen: Arc<Mutex<Vec<Seen>>> = Arc::default();
    let acceptor = server.map(|pem| {
        use rustls::pki_types::pem::PemObject as _;
        use rustls::pki_types::{CertificateDer, PrivateKeyDer};
        let chain = CertificateDer::pem_slice_iter(pem.cert.as_bytes())
            .collect::<Result<Vec<_>, _>>()
            .unwrap();
        let key = PrivateKeyDer::from_pem_slice(pem.key.as_bytes()).unwrap();
        // The receiver's crypto; rustls 0.23.48 deprecates *ring*'s provider (no
        // post-quantum groups), which a test receiver does not need.
        #[allow(deprecated)]
        let ring = rustls::crypto::ring::default_provider();
        let config = rustls::ServerConfig::builder_with_provider(Arc::new(ring))
            .with_safe_default_protocol_versions()
            .unwrap()
            .with_no_client_auth()
            .with_single_cert(chain, key)
            .unwrap();
        tokio_rustls::TlsAcceptor::from(Arc::new(config))
    });
    let recorded = Arc::clone(&seen);
    tokio::spawn(async move {
        loop {
            let Ok((stream, _)) = listener.accept().await else {
                return;
            };
            let recorded = Arc::clone(&recorded);
            let acceptor = acceptor.clone();
            tokio::spawn(async move {
                let service = hyper::service::service_fn(move |request| {
                    let recorded = Arc::clone(&recorded);
                    async move { receive(request, &recorded).await }
                });
                let http = hyper::server::conn::http1::Builder::new();
                match acceptor {
                    Some(acceptor) => {
                        if let Ok(stream) = acceptor.accept(stream).await {
                            let io = hyper_util::rt::TokioIo::new(stream);
                            let _ = http.serve_connection(io, service).await;
                        }
                    }
                    None => {
                        let io = hyper_util::rt::TokioIo::new(stream);
                        let _ = http.serve_connection(io, service).await;
                    }
                }
            });
        }
    });
    (addr, seen)
}

async fn receive(
    request: http::Request<hyper::body::Incoming>,
    recorded: &Mutex<Vec<Seen>>,
) -> Result<http::Response<Full<Bytes>>, hyper::Error> {
    let header = |name: &str| {
        request
            .headers()
            .get(name)
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
            .to_owned()
    };
    let mut seen = Seen {
        path: request.uri().path().to_owned(),
        content_type: header("content-type"),
        content_encoding: header("content-encoding"),
        api_key: header("x-api-key"),
        spans: Vec::new(),
        logs: Vec::new(),
    };
    let body = request.into_body().collect().await?.to_bytes();
    let body = if seen.content_encoding == "gzip" {
        let mut plain = Vec::new();
        flate2::read::GzDecoder::new(&body[..])
            .read_to_end(&mut plain)
            .unwrap();
        plain
    } else {
        body.to_vec()
    };
    if seen.path == "/v1/logs" {
        let export = ExportLogsServiceRequest::decode(&body[..]).unwrap();
        seen.logs = export
            .resource_logs
            .into_iter()
            .flat_map(|r| r.scope_logs)
            .flat_map(|s| s.log_records)
            .collect();
        recorded.lock().unwrap().push(seen);
        return Ok(http::Response::builder()
            .header("content-type", "application/x-protobuf")
            .body(Full::new(Bytes::new()))
            .unwrap());
    }
    seen.spans = if seen.content_type == "application/json" {
        // OTLP/JSON: the same message, its fields in lowerCamelCase.
        let export: serde_json::Value = serde_json::from_slice(&body).unwrap();
        export["resourceSpans"]
            .as_array()
            .into_iter()
            .flatten()
            .flat_map(|r| r["scopeSpans"].as_array().cloned().unwrap_or_default())
            .flat_map(|s| s["spans"].as_array().cloned().unwrap_or_default())
            .filter_map(|span| span["name"].as_str().map(str::to_owned))
            .collect()
    } else {
        let export = ExportTraceServiceRequest::decode(&body[..]).unwrap();
        export
            .resource_spans
            .iter()
            .flat_map(|r| &r.scope_spans)
            .flat_map(|s| &s.spans)
            .map(|s| s.name.clone())
            .collect()
    };
    recorded.lock().unwrap().push(seen);
    Ok(http::Response::builder()
        .header("content-type", "application/x-protobuf")
        .body(Full::new(Bytes::new()))
        .unwrap())
}

/// An OTLP/gRPC receiver over TLS with `pki`'s server certificate, requiring a client
/// certificate signed by its CA when `mutual`.
async fn grpc_tls_receiver(pki: &tls::Pki, mutual: bool) -> (SocketAddr, Receiver) {
    let client_ca = mutual.then_some(pki.ca.as_str());
    otlp::start_tls_receiver(&pki.server.cert, &pki.server.key, client_ca).await
}

fn received(receiver: &Receiver) -> Vec<String> {
    receiver
        .spans
        .lock()
        .unwrap()
        .iter()
        .map(|s| s.name.clone())
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn http_protobuf_sends_gzip_with_headers_to_the_signals_path() {
    exported(0);
    let (addr, seen) = http_receiver(None).await;
    let telemetry = pipeline(&[
        ("OTEL_EXPORTER_OTLP_PROTOCOL", "http/protobuf".to_owned()),
        ("OTEL_EXPORTER_OTLP_ENDPOINT", format!("http://{addr}")),
        ("OTEL_EXPORTER_OTLP_COMPRESSION", "gzip".to_owned()),
        ("OTEL_EXPORTER_OTLP_HEADERS", "x-api-key=k3y".to_owned()),
    ]);
    let stats = one_span(telemetry, "over.http").await;
    assert_eq!(stats.lost(), 0, "{stats:?}");
    let seen = seen.lock().unwrap().clone();
    assert_eq!(seen.len(), 1, "{seen:?}");
    let request = &seen[0];
    assert_eq!(request.path, "/v1/traces");
    assert_eq!(request.content_type, "application/x-protobuf");
    assert_eq!(request.content_encoding, "gzip");
    assert_eq!(request.api_key, "k3y");
    assert_eq!(request.spans, ["over.http"]);
    // Counted in the SDK self-observability metrics, by collector.
    assert_eq!(
        exported(addr.port()),
        std::collections::BTreeMap::from([(String::new(), 1)])
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn http_json_sends_otlp_json() {
    let (addr, seen) = http_receiver(None).await;
    let telemetry = pipeline(&[
        ("OTEL_EXPORTER_OTLP_PROTOCOL", "http/json".to_owned()),
        ("OTEL_EXPORTER_OTLP_ENDPOINT", format!("http://{addr}")),
    ]);
    let stats = one_span(telemetry, "over.json").await;
    assert_eq!(stats.lost(), 0, "{stats:?}");
    let seen = seen.lock().unwrap().clone();
    assert_eq!(seen[0].path, "/v1/traces");
    assert_eq!(seen[0].content_type, "application/json");
    assert_eq!(seen[0].spans, ["over.json"]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn http_protobuf_over_tls_verifies_the_collector_with_the_configured_ca() {
    let pki = tls::pki("http-tls");
    let (addr, seen) = http_receiver(Some(&pki.server)).await;
    let endpoint = format!("https://localhost:{}/v1/traces", addr.port());
    let telemetry = pipeline(&[
        (
            "OTEL_EXPORTER_OTLP_TRACES_PROTOCOL",
            "http/protobuf".to_owned(),
        ),
        ("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", endpoint.clone()),
        (
            "OTEL_EXPORTER_OTLP_CERTIFICATE",
            pki.ca_file().display().to_string(),
        ),
    ]);
    let stats = one_span(telemetry, "over.https").await;
    assert_eq!(stats.lost(), 0, "{stats:?}");
    assert_eq!(seen.lock().unwrap()[0].spans, ["over.https"]);

    // Without the CA the certificate does not verify: the span is lost, counted, and
    // one error line says where and why.
    logs();
    let telemetry = pipeline(&[
        (
            "OTEL_EXPORTER_OTLP_TRACES_PROTOCOL",
            "http/protobuf".to_owned(),
        ),
        ("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", endpoint.clone()),
    ]);
    let stats = one_span(telemetry, "unverified").await;
    assert_eq!(stats.lost(), 1, "{stats:?}");
    assert_eq!(seen.lock().unwrap().len(), 1, "nothing more arrived");
    let lines = logged(&endpoint);
    assert_eq!(lines.len(), 1, "{lines:?}");
    assert!(
        lines[0].contains("span export failed") && lines[0].contains("\"level\":\"ERROR\""),
        "{}",
        lines[0]
    );
    assert!(
        lines[0].contains("UnknownIssuer"),
        "the reason: {}",
        lines[0]
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn grpc_over_tls_verifies_the_collector_with_the_configured_ca() {
    let pki = tls::pki("grpc-tls");
    let (addr, receiver) = grpc_tls_receiver(&pki, false).await;
    let endpoint = format!("https://localhost:{}", addr.port());
    let telemetry = pipeline(&[
        ("OTEL_EXPORTER_OTLP_ENDPOINT", endpoint.clone()),
        (
            "OTEL_EXPORTER_OTLP_CERTIFICATE",
            pki.ca_file().display().to_string(),
        ),
        ("OTEL_EXPORTER_OTLP_COMPRESSION", "gzip".to_owned()),
    ]);
    let stats = one_span(telemetry, "over.grpc.tls").await;
    assert_eq!(stats.lost(), 0, "{stats:?}");
    assert_eq!(received(&receiver), ["over.grpc.tls"]);

    logs();
    let telemetry = pipeline(&[("OTEL_EXPORTER_OTLP_ENDPOINT", endpoint.clone())]);
    let stats = one_span(telemetry, "unverified").await;
    assert_eq!(stats.lost(), 1, "{stats:?}");
    assert_eq!(received(&receiver), ["over.grpc.tls"]);
    let lines = logged(&endpoint);
    assert_eq!(lines.len(), 1, "{lines:?}");
    assert!(
        lines[0].contains("UnknownIssuer"),
        "the reason: {}",
        lines[0]
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn grpc_mtls_presents_the_client_certificate_and_without_it_is_refused() {
    let pki = tls::pki("grpc-mtls");
    let (addr, receiver) = grpc_tls_receiver(&pki, true).await;
    let endpoint = format!("https://localhost:{}", addr.port());
    let ca = pki.ca_file().display().to_string();
    let telemetry = pipeline(&[
        ("OTEL_EXPORTER_OTLP_ENDPOINT", endpoint.clone()),
        ("OTEL_EXPORTER_OTLP_CERTIFICATE", ca.clone()),
        (
            "OTEL_EXPORTER_OTLP_CLIENT_CERTIFICATE",
            pki.client_cert_file().display().to_string(),
        ),
        (
            "OTEL_EXPORTER_OTLP_CLIENT_KEY",
            pki.client_key_file().display().to_string(),
        ),
    ]);
    let stats = one_span(telemetry, "with.client.cert").await;
    assert_eq!(stats.lost(), 0, "{stats:?}");
    assert_eq!(received(&receiver), ["with.client.cert"]);

    let telemetry = pipeline(&[
        ("OTEL_EXPORTER_OTLP_ENDPOINT", endpoint),
        ("OTEL_EXPORTER_OTLP_CERTIFICATE", ca),
    ]);
    let stats = one_span(telemetry, "without.client.cert").await;
    assert_eq!(stats.lost(), 1, "{stats:?}");
    assert_eq!(received(&receiver), ["with.client.cert"]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_certificate_file_that_cannot_be_read_fails_at_start_naming_it() {
    let config = PipelineConfig::from_vars([
        ("OTEL_EXPORTER_OTLP_ENDPOINT", "https://localhost:4317"),
        ("OTEL_EXPORTER_OTLP_CERTIFICATE", "/nonexistent/ca.pem"),
    ])
    .unwrap();
    let err = build(&config).expect_err("no CA, no exporter");
    assert!(err.to_string().contains("/nonexistent/ca.pem"), "{err}");
}

/// A collector that answers 503 and one that accepts connections and never answers:
/// the span is lost and counted, and shutdown returns within its timeout.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failing_or_silent_collector_costs_the_span_not_the_shutdown() {
    exported(0);
    // 503 to everything.
    let unavailable = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let unavailable_addr = unavailable.local_addr().unwrap();
    tokio::spawn(async move {
        while let Ok((stream, _)) = unavailable.accept().await {
            tokio::spawn(async move {
                let service = hyper::service::service_fn(|_request| async {
                    Ok::<_, hyper::Error>(
                        http::Response::builder()
                            .status(503)
                            .body(Full::new(Bytes::new()))
                            .unwrap(),
                    )
                });
                let io = hyper_util::rt::TokioIo::new(stream);
                let _ = hyper::server::conn::http1::Builder::new()
                    .serve_connection(io, service)
                    .await;
            });
        }
    });
    // Accepts, reads nothing, answers nothing.
    let silent = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let silent_addr = silent.local_addr().unwrap();
    tokio::spawn(async move {
        let mut held = Vec::new();
        while let Ok((stream, _)) = silent.accept().await {
            held.push(stream);
        }
    });
    for (protocol, endpoint) in [
        ("http/protobuf", format!("http://{unavailable_addr}")),
        ("http/protobuf", format!("http://{silent_addr}")),
        ("grpc", format!("http://{silent_addr}")),
    ] {
        let telemetry = pipeline(&[
            ("OTEL_EXPORTER_OTLP_PROTOCOL", protocol.to_owned()),
            ("OTEL_EXPORTER_OTLP_ENDPOINT", endpoint.clone()),
            ("OTEL_EXPORTER_OTLP_TIMEOUT", "300".to_owned()),
        ]);
        let started = std::time::Instant::now();
        let stats = one_span(telemetry, "lost").await;
        assert_eq!(stats.ended, 1, "{protocol} {endpoint}: {stats:?}");
        assert_eq!(stats.lost(), 1, "{protocol} {endpoint}: {stats:?}");
        // The shutdown timeout is 5 s; the export gives up after 300 ms.
        assert!(
            started.elapsed() < Duration::from_secs(8),
            "{protocol} {endpoint}: {:?}",
            started.elapsed()
        );
    }
    // Each failure counted against its collector, with its class.
    let failed: u64 = exported(unavailable_addr.port())
        .iter()
        .filter(|(kind, _)| !kind.is_empty())
        .map(|(_, n)| n)
        .sum();
    assert_eq!(failed, 1);
    let silent = exported(silent_addr.port());
    assert_eq!(silent.get(""), None, "{silent:?}");
    assert_eq!(silent.values().sum::<u64>(), 2, "{silent:?}");
}

/// A queue with no room left drops the newest spans and counts them, in the stats and
/// in `otel_sdk_processor_span_processed_total{error_type="queue_full"}`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_full_queue_drops_spans_and_counts_them() {
    exported(0);
    // Accepts, answers nothing: each export waits for its 300 ms timeout.
    let silent = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = silent.local_addr().unwrap();
    tokio::spawn(async move {
        let mut held = Vec::new();
        while let Ok((stream, _)) = silent.accept().await {
            held.push(stream);
        }
    });
    let telemetry = pipeline(&[
        ("OTEL_EXPORTER_OTLP_ENDPOINT", format!("http://{addr}")),
        ("OTEL_EXPORTER_OTLP_TIMEOUT", "300".to_owned()),
        ("OTEL_BSP_MAX_QUEUE_SIZE", "2".to_owned()),
        ("OTEL_BSP_MAX_EXPORT_BATCH_SIZE", "1".to_owned()),
    ]);
    let tracer = telemetry.tracer_provider().unwrap().tracer("test");
    let cx = with_tenant(&Context::new(), TenantId::parse("acme").unwrap());
    for _ in 0..10 {
        drop(cx.with_span(tracer.start_with_context("burst", &cx)));
    }
    let stats = tokio::task::spawn_blocking(move || telemetry.shutdown())
        .await
        .unwrap()
        .unwrap_or_else(|e| e.stats);
    assert_eq!(stats.ended, 10, "{stats:?}");
    assert_eq!(stats.queue_full, 8, "the queue held two: {stats:?}");
    assert_eq!(stats.lost(), 10, "{stats:?}");
    assert_eq!(dropped_for_queue_full(), 8);
}

/// Emits `n` log lines for acme inside one span of `telemetry` (and one outside any
/// span), each with a secret in its message and its fields, through `telemetry`'s
/// log layer; the span's trace and span ids.
fn emit_logs(telemetry: &Telemetry, n: usize) -> (Vec<u8>, Vec<u8>) {
    use tracing_subscriber::layer::SubscriberExt as _;
    let subscriber = tracing_subscriber::registry().with(telemetry.log_layer());
    let tracer = telemetry.tracer_provider().unwrap().tracer("test");
    tracing::subscriber::with_default(subscriber, || {
        let cx = with_tenant(&Context::new(), TenantId::parse("acme").unwrap());
        let cx = cx.with_span(tracer.start_with_context("request", &cx));
        let ids = {
            let sc = cx.span().span_context().clone();
            (
                sc.trace_id().to_bytes().to_vec(),
                sc.span_id().to_bytes().to_vec(),
            )
        };
        {
            let _attached = cx.clone().attach();
            for i in 0..n {
                tracing::info!(
                    attempt = i,
                    password = "hunter2",
                    "login for ada@example.com with card 4111 1111 1111 1111"
                );
            }
        }
        tracing::error!("outside any request");
        cx.span().end();
        ids
    })
}

/// The log stats of `telemetry` once everything waiting was exported; then shuts it
/// down.
async fn flushed_log_stats(telemetry: Telemetry) -> instrument::pipeline::LogStats {
    tokio::task::spawn_blocking(move || {
        telemetry.force_flush();
        let stats = telemetry.log_stats();
        drop(telemetry.shutdown());
        stats
    })
    .await
    .unwrap()
}

/// A collector that is down: the records lost are counted.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn log_records_to_a_collector_that_is_down_are_counted_as_lost() {
    let closed = {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        listener.local_addr().unwrap()
    };
    let telemetry = pipeline(&[
        ("OTEL_TRACES_EXPORTER", "none".to_owned()),
        (
            "OTEL_EXPORTER_OTLP_LOGS_ENDPOINT",
            format!("http://{closed}"),
        ),
        ("OTEL_EXPORTER_OTLP_LOGS_TIMEOUT", "500".to_owned()),
        ("OTEL_BLRP_SCHEDULE_DELAY", "50".to_owned()),
    ]);
    emit_logs(&telemetry, 10);
    let stats = flushed_log_stats(telemetry).await;
    assert_eq!(stats.emitted, 11);
    assert_eq!(stats.exported, 0);
    assert_eq!(stats.failed + stats.dropped(), 11, "{stats:?}");
}

/// What a log record says, as text: its body and attributes.
fn log_text(record: &LogRecord) -> String {
    format!("{:?} {:?}", record.body, record.attributes)
}

fn log_attribute(record: &LogRecord, key: &str) -> Option<String> {
    use opentelemetry_proto::tonic::common::v1::any_value::Value;
    record
        .attributes
        .iter()
        .find(|kv| kv.key == key)
        .and_then(|kv| match kv.value.as_ref()?.value.as_ref()? {
            Value::StringValue(s) => Some(s.clone()),
            Value::IntValue(i) => Some(i.to_string()),
            other => Some(format!("{other:?}")),
        })
}

/// Checks the records received for `emit_logs(.., n)`: every one arrived, those of
/// the request with its trace, span and tenant, none with a secret.
fn check_logs(records: &[LogRecord], (trace, span): &(Vec<u8>, Vec<u8>), n: usize) {
    assert_eq!(records.len(), n + 1, "every record arrives");
    let (inside, outside): (Vec<_>, Vec<_>) = records.iter().partition(|r| !r.trace_id.is_empty());
    assert_eq!(inside.len(), n);
    for record in &inside {
        assert_eq!(&record.trace_id, trace);
        assert_eq!(&record.span_id, span);
        assert_eq!(log_attribute(record, "tenant.id").as_deref(), Some("acme"));
        assert_eq!(record.severity_number, 9, "INFO");
        assert_eq!(record.severity_text, "INFO");
        let text = log_text(record);
        for secret in ["hunter2", "ada@example.com", "4111 1111 1111 1111"] {
            assert!(!text.contains(secret), "{secret} exported: {text}");
        }
        assert!(text.contains("**** **** **** 1111"), "{text}");
    }
    assert_eq!(outside[0].severity_number, 17, "ERROR");
    assert_eq!(log_attribute(outside[0], "tenant.id"), None);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn log_records_over_http_tls_carry_their_trace_and_tenant_and_no_secret() {
    let pki = tls::pki("logs-http");
    let (addr, seen) = http_receiver(Some(&pki.server)).await;
    let telemetry = pipeline(&[
        ("OTEL_TRACES_EXPORTER", "none".to_owned()),
        ("OTEL_LOGS_EXPORTER", "otlp".to_owned()),
        (
            "OTEL_EXPORTER_OTLP_LOGS_PROTOCOL",
            "http/protobuf".to_owned(),
        ),
        (
            "OTEL_EXPORTER_OTLP_LOGS_ENDPOINT",
            format!("https://localhost:{}/v1/logs", addr.port()),
        ),
        (
            "OTEL_EXPORTER_OTLP_LOGS_CERTIFICATE",
            pki.ca_file().display().to_string(),
        ),
        ("OTEL_BLRP_SCHEDULE_DELAY", "50".to_owned()),
    ]);
    let ids = emit_logs(&telemetry, 20);
    let stats = flushed_log_stats(telemetry).await;
    assert_eq!(
        (stats.emitted, stats.exported, stats.dropped()),
        (21, 21, 0)
    );
    let records: Vec<LogRecord> = seen
        .lock()
        .unwrap()
        .iter()
        .flat_map(|s| s.logs.clone())
        .collect();
    check_logs(&records, &ids, 20);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn log_records_over_grpc_follow_the_generic_endpoint_and_are_counted() {
    let (addr, receiver) = otlp::start_logs_receiver().await;
    // Only the generic endpoint: traces and logs both go there.
    let telemetry = pipeline(&[
        ("OTEL_EXPORTER_OTLP_ENDPOINT", format!("http://{addr}")),
        ("OTEL_BLRP_SCHEDULE_DELAY", "50".to_owned()),
    ]);
    let ids = emit_logs(&telemetry, 50);
    let stats = flushed_log_stats(telemetry).await;
    assert_eq!(
        (stats.emitted, stats.exported, stats.dropped()),
        (51, 51, 0)
    );
    let records = receiver.logs.lock().unwrap().clone();
    check_logs(&records, &ids, 50);
}
