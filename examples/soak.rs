//! Soak: the example workflow server (its own process, as deployed) under a fixed rate
//! of real gRPC calls, many tenants, workflows and methods, sampled and unsampled
//! callers, while its collector is healthy, then down, then answering errors, then
//! slow, then healthy again. The driver calls through the client layer (client spans,
//! context and tenant sent), and one operation in four also acts as a worker: its
//! execution spans go through a `SpanCollector` to the server's span proxy; one in 25
//! sends a hostile report (another workflow's id, a repeated span id, a span from
//! 1970). Reports, per phase: requests and failed requests, p50 and p99 latency against
//! the healthy phase, spans exported, failed and dropped (from the server's own
//! self-observability metrics), reported spans accepted and refused, and the server's
//! resident memory; then checks that every span is accounted for (finished = exported
//! + failed + dropped) and that the proxy refused exactly the hostile spans.
//!
//! ```sh
//! cargo run --release --example soak -- [--seconds 20] [--rate 300] [--tenants 500]
//! ```
//!
//! It builds `examples/workflow_server` if it is not next to it. Bounded: five phases
//! of `--seconds` each plus a few seconds of drain. Prints a Markdown table (the one in
//! `benches/README.md`) and exits non-zero when a request failed or a span is missing.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use instrument::context::{restore, InContextExt as _};
use instrument::report::SpanCollector;
use instrument::semconv::{SPAN_TASK_EXECUTE, SPAN_WORKFLOW_EXECUTE};
use instrument::tenant::{with_tenant, TenantId};
use instrument::tower::client::{Client as Traced, ClientLayer};
use instrument_examples::pb::workflow_service_client::WorkflowServiceClient;
use instrument_examples::pb::*;
use instrument_examples::worker::ProxySink;
use instrument_examples::workflow::call;
use opentelemetry::trace::TracerProvider as _;
use opentelemetry_proto::tonic::collector::trace::v1::trace_service_server::{
    TraceService, TraceServiceServer,
};
use opentelemetry_proto::tonic::collector::trace::v1::{
    ExportTraceServiceRequest, ExportTraceServiceResponse,
};
use opentelemetry_sdk::trace::{Sampler, SdkTracerProvider, SpanData, SpanExporter};
use tokio::sync::watch;

/// What the collector does in a phase.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Collector {
    Healthy,
    /// Connections reset, new ones refused.
    Down,
    /// Every export answered `UNAVAILABLE`.
    Errors,
    /// Every export answered after 3 s (the server's export timeout is 1 s).
    Slow,
}

impl Collector {
    fn label(self) -> &'static str {
        match self {
            Self::Healthy => "collector healthy",
            Self::Down => "collector down",
            Self::Errors => "collector answering errors",
            Self::Slow => "collector slow (3 s, timeout 1 s)",
        }
    }
}

/// The receiver behind the proxy: counts the spans it accepted.
#[derive(Clone)]
struct Receiver {
    mode: watch::Receiver<Collector>,
    accepted: Arc<AtomicU64>,
}

#[tonic::async_trait]
impl TraceService for Receiver {
    async fn export(
        &self,
        request: tonic::Request<ExportTraceServiceRequest>,
    ) -> Result<tonic::Response<ExportTraceServiceResponse>, tonic::Status> {
        let mode = *self.mode.borrow();
        match mode {
            Collector::Errors => return Err(tonic::Status::unavailable("soak: errors phase")),
            Collector::Slow => tokio::time::sleep(Duration::from_secs(3)).await,
            Collector::Healthy | Collector::Down => {}
        }
        let spans: usize = request
            .into_inner()
            .resource_spans
            .iter()
            .flat_map(|r| &r.scope_spans)
            .map(|s| s.spans.len())
            .sum();
        self.accepted.fetch_add(spans as u64, Ordering::Relaxed);
        Ok(tonic::Response::new(ExportTraceServiceResponse {
            partial_success: None,
        }))
    }
}

/// Starts the receiver and a TCP proxy in front of it that, while the collector is
/// down, resets every connection. Returns the proxy's address (the server's endpoint).
async fn start_collector(
    mode: watch::Receiver<Collector>,
    accepted: Arc<AtomicU64>,
) -> std::io::Result<SocketAddr> {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let backend = listener.local_addr()?;
    let receiver = Receiver {
        mode: mode.clone(),
        accepted,
    };
    tokio::spawn(
        tonic::transport::Server::builder()
            .add_service(TraceServiceServer::new(receiver))
            .serve_with_incoming(tonic::transport::server::TcpIncoming::from(listener)),
    );
    let proxy = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let front = proxy.local_addr()?;
    tokio::spawn(async move {
        while let Ok((mut inbound, _)) = proxy.accept().await {
            if *mode.borrow() == Collector::Down {
                drop(inbound);
                continue;
            }
            let mut mode = mode.clone();
            tokio::spawn(async move {
                let Ok(mut outbound) = tokio::net::TcpStream::connect(backend).await else {
                    return;
                };
                tokio::select! {
                    _ = tokio::io::copy_bidirectional(&mut inbound, &mut outbound) => {}
                    _ = mode.wait_for(|m| *m == Collector::Down) => {}
                }
            });
        }
    });
    Ok(front)
}

fn free_addr() -> std::io::Result<SocketAddr> {
    std::net::TcpListener::bind("127.0.0.1:0")?.local_addr()
}

/// The `workflow_server` example next to this program, built if it is missing.
fn server_binary() -> Result<PathBuf, Box<dyn std::error::Error>> {
    let exe = std::env::current_exe()?;
    let dir = exe.parent().ok_or("no directory for the soak binary")?;
    let server = dir.join(format!("workflow_server{}", std::env::consts::EXE_SUFFIX));
    if !server.exists() {
        let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
        let mut build = Command::new(cargo);
        build.args([
            "build",
            "-q",
            "-p",
            "instrument-examples",
            "--example",
            "workflow_server",
        ]);
        if dir.components().any(|c| c.as_os_str() == "release") {
            build.arg("--release");
        }
        if !build.status()?.success() {
            return Err("building examples/workflow_server failed".into());
        }
    }
    Ok(server)
}

/// The server process's resident set, in MiB (Linux; 0 elsewhere).
fn rss_mib(pid: u32) -> f64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .ok()
        .and_then(|status| {
            let line = status.lines().find(|l| l.starts_with("VmRSS:"))?;
            line.split_whitespace().nth(1)?.parse::<f64>().ok()
        })
        .map_or(0.0, |kib| kib / 1024.0)
}

/// The sums of the self-observability counters in the server's `/metrics`.
#[derive(Debug, Default, Clone, Copy)]
struct Spans {
    /// Finished spans the batch processor took (handed on, or dropped).
    processed: f64,
    dropped: f64,
    exported: f64,
    failed: f64,
    /// Spans workers reported that the span proxy recorded, and refused.
    reported: f64,
    refused: f64,
    /// The size of the exposition (`/metrics` body) this scrape read, in bytes.
    exposition: f64,
}

impl std::ops::Sub for Spans {
    type Output = Spans;

    fn sub(self, before: Spans) -> Spans {
        Spans {
            processed: self.processed - before.processed,
            dropped: self.dropped - before.dropped,
            exported: self.exported - before.exported,
            failed: self.failed - before.failed,
            reported: self.reported - before.reported,
            refused: self.refused - before.refused,
            exposition: self.exposition,
        }
    }
}

/// The driver's client spans: counted, not kept.
#[derive(Debug, Clone, Default)]
struct Count(Arc<AtomicU64>);

impl SpanExporter for Count {
    fn export(
        &self,
        batch: Vec<SpanData>,
    ) -> impl std::future::Future<Output = opentelemetry_sdk::error::OTelSdkResult> + Send {
        self.0.fetch_add(batch.len() as u64, Ordering::Relaxed);
        std::future::ready(Ok(()))
    }
}

async fn scrape(addr: SocketAddr) -> Result<Spans, Box<dyn std::error::Error>> {
    use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
    let mut stream = tokio::net::TcpStream::connect(addr).await?;
    stream
        .write_all(b"GET /metrics HTTP/1.1\r\nhost: soak\r\nconnection: close\r\n\r\n")
        .await?;
    let mut body = String::new();
    stream.read_to_string(&mut body).await?;
    let mut spans = Spans {
        exposition: body.len() as f64,
        ..Spans::default()
    };
    for line in body.lines().filter(|l| !l.starts_with('#')) {
        let Some((series, value)) = line.rsplit_once(' ') else {
            continue;
        };
        let value: f64 = value.parse().unwrap_or(0.0);
        let failed = series.contains("error_type=");
        if series.starts_with("otel_sdk_processor_span_processed_total") {
            spans.processed += value;
            if failed {
                spans.dropped += value;
            }
        } else if series.starts_with("otel_sdk_exporter_span_exported_total") {
            if failed {
                spans.failed += value;
            } else {
                spans.exported += value;
            }
        } else if series.starts_with("instrument_reported_spans_accepted_total") {
            spans.reported += value;
        } else if series.starts_with("instrument_reported_spans_refused_total") {
            spans.refused += value;
        }
    }
    Ok(spans)
}

/// One phase's measurements.
#[derive(Debug, Default)]
struct Phase {
    latencies: Vec<Duration>,
    failed: u64,
    rss_max: f64,
    rss_end: f64,
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    if sorted.is_empty() {
        return Duration::ZERO;
    }
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[i.min(sorted.len() - 1)]
}

/// The context a caller is in: none, sampled or not (one in ten sampled).
fn traceparent(n: u64) -> Option<String> {
    match n % 10 {
        0 => None,
        1 => Some(format!("00-{n:032x}-{:016x}-01", n + 1)),
        _ => Some(format!("00-{n:032x}-{:016x}-00", n + 1)),
    }
}

/// The driver's client: tonic over the client layer.
type Client = WorkflowServiceClient<Traced<tonic::transport::Channel>>;

/// What an operation works with.
#[derive(Clone)]
struct Driver {
    client: Client,
    /// The same server without the client layer: hostile reports.
    plain: WorkflowServiceClient<tonic::transport::Channel>,
    collector: Arc<SpanCollector>,
    tenants: u64,
    /// Hostile spans sent (each must be refused).
    hostile: Arc<AtomicU64>,
}

/// One operation of the mix, in the context of tenant `n % tenants` under the caller's
/// trace: starts a workflow and sometimes works on it (tasks, completion); one in four
/// also runs as a worker (its execution spans recorded when the workflow's trace is
/// sampled, and reported through the proxy), one in 25 sends a hostile report. Errors are what
/// a client would see.
async fn operation(driver: Driver, n: u64) -> Result<(), tonic::Status> {
    let tenant = format!("tenant-{}", n % driver.tenants);
    let tenant_id = TenantId::parse(&tenant).map_err(|e| tonic::Status::internal(e.to_string()))?;
    let cx = with_tenant(
        &restore(traceparent(n).as_deref()).to_context(),
        tenant_id.clone(),
    );
    let mut client = driver.client.clone();
    async move {
        let start = StartWorkflowRequest {
            kind: format!("kind-{}", n % 12),
            task_queue: format!("queue-{}", n % 4),
            input_json: format!(r#"{{"order":{n},"card":"4111 1111 1111 1111"}}"#),
        };
        let started = client
            .start_workflow(call(start, &tenant, None))
            .await?
            .into_inner();
        let workflow = started.workflow_id;
        // Odd, so one in five is in a sampled trace (the worker records only those).
        if n % 4 == 1 {
            let run = driver
                .collector
                .execution(SPAN_WORKFLOW_EXECUTE, &workflow, &tenant_id)
                .traceparent(Some(started.traceparent.as_str()).filter(|t| !t.is_empty()))
                .start();
            run.child(SPAN_TASK_EXECUTE, None).end(None);
            run.end(None);
        }
        if n.is_multiple_of(25) {
            hostile_report(driver.plain.clone(), &tenant, &workflow, n).await?;
            driver.hostile.fetch_add(3, Ordering::Relaxed);
        }
        if n.is_multiple_of(3) {
            let submit = SubmitTaskRequest {
                workflow_id: workflow.clone(),
                task_type: format!("task-{}", n % 7),
                input_json: "{}".into(),
            };
            let task = client
                .submit_task(call(submit, &tenant, Some(&workflow)))
                .await?
                .into_inner()
                .task_id;
            let done = CompleteTaskRequest {
                task_id: task,
                output_json: "{}".into(),
            };
            client
                .complete_task(call(done, &tenant, Some(&workflow)))
                .await?;
        }
        if n.is_multiple_of(2) {
            let done = CompleteWorkflowRequest {
                workflow_id: workflow.clone(),
                output_json: "{}".into(),
            };
            client
                .complete_workflow(call(done, &tenant, Some(&workflow)))
                .await?;
        }
        Ok(())
    }
    .in_context(cx)
    .await
}

/// Three spans the proxy must refuse, and one it must accept: another tenant's (made
/// up) workflow, a span from 1970, a repeated id.
async fn hostile_report(
    mut plain: WorkflowServiceClient<tonic::transport::Channel>,
    tenant: &str,
    workflow: &str,
    n: u64,
) -> Result<(), tonic::Status> {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_nanos()).unwrap_or(u64::MAX));
    let span = |id: u64, workflow: &str, start: u64| ExecutionSpan {
        span_id: format!("{:016x}", (n << 8) | id),
        span_type: SPAN_TASK_EXECUTE.into(),
        workflow_id: workflow.into(),
        start_time_unix_nano: start,
        end_time_unix_nano: now,
        ..ExecutionSpan::default()
    };
    let second = now.saturating_sub(1_000_000_000);
    let spans = vec![
        span(1, "wf-not-yours", second),
        span(2, workflow, 0),
        span(3, workflow, second),
        span(3, workflow, second),
    ];
    let request = ReportExecutionSpansRequest { sdk: None, spans };
    let results = plain
        .report_execution_spans(call(request, tenant, None))
        .await?
        .into_inner()
        .results;
    let refused = results.iter().filter(|r| !r.accepted).count();
    if refused != 3 {
        return Err(tonic::Status::internal(format!(
            "the proxy refused {refused} of 3 hostile spans"
        )));
    }
    Ok(())
}

struct Args {
    seconds: u64,
    rate: u64,
    tenants: u64,
    phases: Vec<Collector>,
}

impl Collector {
    fn parse(name: &str) -> Option<Self> {
        match name {
            "healthy" => Some(Self::Healthy),
            "down" => Some(Self::Down),
            "errors" => Some(Self::Errors),
            "slow" => Some(Self::Slow),
            _ => None,
        }
    }
}

fn parse_args() -> Result<Args, String> {
    let usage = "usage: soak [--seconds N] [--rate PER_SECOND] [--tenants N] [--phases healthy,down,errors,slow,healthy]";
    let mut args = Args {
        seconds: 20,
        rate: 300,
        tenants: 500,
        phases: vec![
            Collector::Healthy,
            Collector::Down,
            Collector::Errors,
            Collector::Slow,
            Collector::Healthy,
        ],
    };
    let mut it = std::env::args().skip(1);
    while let Some(flag) = it.next() {
        let mut number = || -> Result<u64, String> {
            it.next()
                .and_then(|v| v.parse().ok())
                .filter(|v| *v > 0)
                .ok_or_else(|| format!("{flag} needs a positive number\n{usage}"))
        };
        match flag.as_str() {
            "--seconds" => args.seconds = number()?.min(600),
            "--rate" => args.rate = number()?.min(5_000),
            "--tenants" => args.tenants = number()?,
            "--phases" => {
                let list = it.next().unwrap_or_default();
                let phases: Option<Vec<Collector>> =
                    list.split(',').map(Collector::parse).collect();
                args.phases = phases
                    .filter(|p| !p.is_empty() && p.len() <= 20)
                    .ok_or_else(|| format!("--phases: {list:?}\n{usage}"))?;
            }
            "-h" | "--help" => return Err(usage.to_owned()),
            other => return Err(format!("unknown argument {other:?}\n{usage}")),
        }
    }
    Ok(args)
}

/// Kills the server when the soak ends, however it ends.
struct Server(Child);

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args = match parse_args() {
        Ok(args) => args,
        Err(e) => {
            eprintln!("{e}");
            std::process::exit(2)
        }
    };
    let (set_mode, mode) = watch::channel(Collector::Healthy);
    let accepted = Arc::new(AtomicU64::new(0));
    let collector = start_collector(mode, Arc::clone(&accepted)).await?;

    let (grpc, metrics) = (free_addr()?, free_addr()?);
    let dir = std::env::temp_dir().join(format!("instrument-soak-{}", std::process::id()));
    std::fs::create_dir_all(&dir)?;
    let server = Command::new(server_binary()?)
        .args(["--db", &dir.join("soak.sqlite3").display().to_string()])
        .args(["--addr", &grpc.to_string()])
        .args(["--metrics-addr", &metrics.to_string()])
        .env("OTEL_SERVICE_NAME", "soak-workflow-server")
        .env("OTEL_EXPORTER_OTLP_ENDPOINT", format!("http://{collector}"))
        .env("OTEL_EXPORTER_OTLP_PROTOCOL", "grpc")
        .env("OTEL_EXPORTER_OTLP_TIMEOUT", "1000")
        .env("OTEL_BSP_SCHEDULE_DELAY", "200")
        .env("OTEL_LOG_LEVEL", "error")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()?;
    let server = Server(server);
    let pid = server.0.id();

    let endpoint = format!("http://{grpc}");
    let deadline = Instant::now() + Duration::from_secs(30);
    let channel = loop {
        match tonic::transport::Endpoint::from_shared(endpoint.clone())?
            .connect()
            .await
        {
            Ok(channel) => break channel,
            Err(_) if Instant::now() < deadline => {
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
            Err(e) => return Err(format!("the workflow server did not start: {e}").into()),
        }
    };
    // The driver's client spans (one in ten roots sampled, parents followed).
    let client_spans = Count::default();
    let provider = SdkTracerProvider::builder()
        .with_sampler(Sampler::ParentBased(Box::new(Sampler::TraceIdRatioBased(
            0.1,
        ))))
        .with_simple_exporter(client_spans.clone())
        .build();
    let layered = tower::ServiceBuilder::new()
        .layer(ClientLayer::new().tracer(provider.tracer("soak")))
        .service(channel.clone());
    let collector = SpanCollector::builder(ProxySink::new(channel.clone()))
        .every(Duration::from_millis(200))
        .build()?;
    let driver = Driver {
        client: WorkflowServiceClient::with_origin(layered, endpoint.parse()?),
        plain: WorkflowServiceClient::new(channel),
        collector: Arc::new(collector),
        tenants: args.tenants,
        hostile: Arc::new(AtomicU64::new(0)),
    };

    let phases = args.phases.clone();
    let rss_start = rss_mib(pid);
    let mut results: Vec<(Collector, Phase, Spans)> = Vec::new();
    let mut before = scrape(metrics).await?;
    let mut n = 0u64;
    let period = Duration::from_secs_f64(1.0 / args.rate as f64);
    let limit = Arc::new(tokio::sync::Semaphore::new(512));
    for collector in phases {
        set_mode.send_replace(collector);
        eprintln!("soak: {} for {} s", collector.label(), args.seconds);
        let phase = Arc::new(Mutex::new(Phase::default()));
        let end = Instant::now() + Duration::from_secs(args.seconds);
        let mut tick = tokio::time::interval(period);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Burst);
        let mut calls = tokio::task::JoinSet::new();
        let mut sampled_at = Instant::now();
        while Instant::now() < end {
            tick.tick().await;
            n += 1;
            let permit = Arc::clone(&limit).acquire_owned().await?;
            let (driver, record) = (driver.clone(), Arc::clone(&phase));
            calls.spawn(async move {
                let started = Instant::now();
                let result = operation(driver, n).await;
                let mut phase = record.lock().unwrap_or_else(|e| e.into_inner());
                phase.latencies.push(started.elapsed());
                if let Err(status) = result {
                    phase.failed += 1;
                    if phase.failed <= 3 {
                        eprintln!("soak: request failed: {status}");
                    }
                }
                drop(permit);
            });
            while calls.try_join_next().is_some() {}
            if sampled_at.elapsed() >= Duration::from_secs(1) {
                sampled_at = Instant::now();
                let rss = rss_mib(pid);
                let mut phase = phase.lock().unwrap_or_else(|e| e.into_inner());
                phase.rss_max = phase.rss_max.max(rss);
            }
        }
        while calls.join_next().await.is_some() {}
        let after = scrape(metrics).await?;
        let delta = after - before;
        before = after;
        let mut phase = std::mem::take(&mut *phase.lock().unwrap_or_else(|e| e.into_inner()));
        phase.rss_end = rss_mib(pid);
        phase.rss_max = phase.rss_max.max(phase.rss_end);
        phase.latencies.sort();
        results.push((collector, phase, delta));
    }
    // Drain: no load, the collector healthy, the worker's reports sent, until the
    // queue is empty.
    set_mode.send_replace(Collector::Healthy);
    driver.collector.flush();
    tokio::time::sleep(Duration::from_millis(500)).await;
    let mut last = scrape(metrics).await?;
    for _ in 0..50 {
        tokio::time::sleep(Duration::from_millis(200)).await;
        last = scrape(metrics).await?;
        if last.processed - last.dropped <= last.exported + last.failed {
            break;
        }
    }

    let healthy = results.first().map(|(_, p, _)| {
        (
            percentile(&p.latencies, 0.5),
            percentile(&p.latencies, 0.99),
        )
    });
    println!(
        "\n{} requests per second, {} tenants, {} s per phase; server RSS at start {rss_start:.1} MiB\n",
        args.rate, args.tenants, args.seconds
    );
    println!("| phase | requests | failed | p50 | p99 (vs healthy) | spans exported | export failed | dropped (queue full) | reported spans accepted / refused | `/metrics` size | RSS end / max |");
    println!("|---|---|---|---|---|---|---|---|---|---|---|");
    let mut failed_total = 0;
    for (collector, phase, spans) in &results {
        let (p50, p99) = (
            percentile(&phase.latencies, 0.5),
            percentile(&phase.latencies, 0.99),
        );
        let ratio = healthy.map_or(1.0, |(_, h)| p99.as_secs_f64() / h.as_secs_f64().max(1e-9));
        failed_total += phase.failed;
        println!(
            "| {} | {} | {} | {:.2} ms | {:.2} ms ({ratio:.2}x) | {} | {} | {} | {} / {} | {:.1} MiB | {:.1} / {:.1} MiB |",
            collector.label(),
            phase.latencies.len(),
            phase.failed,
            p50.as_secs_f64() * 1e3,
            p99.as_secs_f64() * 1e3,
            spans.exported,
            spans.failed,
            spans.dropped,
            spans.reported,
            spans.refused,
            spans.exposition / 1_048_576.0,
            phase.rss_end,
            phase.rss_max,
        );
    }
    let handed_on = last.processed - last.dropped;
    let accounted = last.exported + last.failed;
    println!(
        "\nSpans finished {}: exported {}, export failed {}, dropped {}; {} unaccounted. \
         The collector accepted {} (a slow export that timed out may still arrive).",
        last.processed,
        last.exported,
        last.failed,
        last.dropped,
        handed_on - accounted,
        accepted.load(Ordering::Relaxed),
    );
    let hostile = driver.hostile.load(Ordering::Relaxed) as f64;
    println!(
        "Worker: {} execution spans sent through the proxy, {} dropped; the proxy accepted {}, \
         refused {} (hostile spans sent: {hostile}). Driver: {} client spans recorded.",
        driver.collector.sent(),
        driver.collector.dropped(),
        last.reported,
        last.refused,
        client_spans.0.load(Ordering::Relaxed),
    );
    drop(server);
    let _ = std::fs::remove_dir_all(&dir);
    let proxy_right = (last.refused - hostile).abs() < 0.5 && driver.collector.dropped() == 0;
    if failed_total > 0 || (handed_on - accounted).abs() > 0.5 || !proxy_right {
        eprintln!(
            "soak: FAILED ({failed_total} requests failed; proxy as expected: {proxy_right})"
        );
        std::process::exit(1);
    }
    Ok(())
}
