//! End-to-end cost, against the peers, in one run: unary tonic calls over 127.0.0.1 to
//! the same server six ways, each in a process of its own.
//!
//! - `plain`: no layers, no recorder, no tracer;
//! - `usual stack`: tower-http's `TraceLayer` whose `make_span` extracts the caller's
//!   `traceparent` with the SDK's `TraceContextPropagator`, spans through
//!   tracing-subscriber (filter `info`) and tracing-opentelemetry into the SDK, and an
//!   axum-prometheus-style layer (a counter and a histogram by method, endpoint and
//!   status) into metrics-exporter-prometheus;
//! - `otel-instrumentation-tower`: opentelemetry-instrumentation-tower 0.19's layer
//!   (server span with the HTTP attributes, the semantic conventions' four HTTP server
//!   metrics in the SDK's meter provider); no tenant, no redaction;
//! - `instrument 100%`: `InstrumentLayer` (tenant checked and in every span's context,
//!   gRPC status from the trailers, `x-tracking-id`), spans through the pipeline's
//!   tenant and redacting processors, request metrics through the label guard into
//!   metrics-exporter-prometheus;
//! - `instrument 1%`: the same with `parentbased_traceidratio` 0.01, the callers
//!   sampling one trace in a hundred (the `traceparent` flags say so);
//! - `instrument 100% untracked`: `instrument 100%` without the `x-tracking-id`
//!   response header, which no peer sends (like for like with the peers: the header
//!   is a 32-character value HPACK cannot index, new on every response).
//!
//! Every traced server exports through a batch processor into an exporter that drops
//! the spans (the collector's side is not what is measured), and samples what its
//! caller sampled. Every call carries a new `traceparent` and `x-tenant-id`; with
//! `--parent unsampled` every `traceparent` says "not sampled", so every server runs
//! its sampled-out path.
//!
//! The handler answers at once (`--handler trivial`, where the layers' share is as
//! large as it gets), or after about 200 µs of CPU work (`--handler work`: a JSON
//! document built, serialised and parsed back, as a real service's handler spends its
//! time).
//!
//! Each server is measured two ways, taking turns in short slices (`--rounds`) so that
//! drift on a shared machine hits all of them alike:
//! - **one call at a time** (`--serial` calls per slice): the latency a request sees
//!   at an idle server, and the CPU it costs there (cold caches, threads woken);
//! - **under load** (`--concurrency` calls in flight over one HTTP/2 connection):
//!   throughput, p50, p99 and CPU per call.
//!
//! The servers are pinned to one core and the client to the other (when there are
//! two). Server CPU is read from `/proc/<pid>/task/*/schedstat` (every thread of the
//! server's process) around each slice; resident memory from `/proc/<pid>/status`
//! when the server has started (before any call) and at the end of each run. Prints,
//! per server, each figure against `plain`; with `--runs N`, the medians of N runs.
//!
//! ```text
//! cargo run --release -p instrument-examples --example loadgen -- \
//!     [--requests 40000] [--concurrency 32] [--serial 200] [--rounds 20] [--runs 1] \
//!     [--parent sampled|unsampled] [--handler trivial|work] [--servers plain,oit,...]
//! ```

#[path = "../benches/support/usual_stack.rs"]
mod usual_stack;

use std::future::Future;
use std::io::{BufRead as _, BufReader, Write as _};
use std::net::SocketAddr;
use std::process::{Child, Command, ExitCode, Stdio};
use std::time::{Duration, Instant};

use instrument::cardinality::LabelGuard;
use instrument::pipeline::{
    install_prometheus, MissingTenant, RedactingExporter, TenantExporter, TenantProcessor,
};
use instrument::redact;
use instrument::semconv::MetricNames;
use instrument::tower::stack::InstrumentLayer;
use instrument_examples::pb::workflow_service_client::WorkflowServiceClient;
use instrument_examples::pb::workflow_service_server::{WorkflowService, WorkflowServiceServer};
use instrument_examples::pb::*;
use opentelemetry::propagation::TextMapPropagator as _;
use opentelemetry::trace::TracerProvider as _;
use opentelemetry_sdk::error::OTelSdkResult;
use opentelemetry_sdk::metrics::data::ResourceMetrics;
use opentelemetry_sdk::metrics::exporter::PushMetricExporter;
use opentelemetry_sdk::metrics::{PeriodicReader, SdkMeterProvider, Temporality};
use opentelemetry_sdk::propagation::TraceContextPropagator;
use opentelemetry_sdk::trace::{
    BatchSpanProcessor, ParentBasedSampler, Sampler, SdkTracerProvider, SpanData, SpanExporter,
};
use tonic::metadata::MetadataValue;
use tonic::transport::{Channel, Server};
use tonic::{Request, Response, Status};
use tracing_opentelemetry::OpenTelemetrySpanExt as _;
use tracing_subscriber::layer::SubscriberExt as _;
use usual_stack::{Headers, PrometheusMetrics};

/// The ways the same server is run.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Plain,
    Usual,
    Oit,
    Instrument,
    InstrumentOnePercent,
    InstrumentUntracked,
    /// Ours at 100 %, exporting over OTLP to a collector that refuses connections
    /// (`--servers instrument,instrument-down`): what a failing collector costs
    /// the requests. Not in the default set.
    InstrumentCollectorDown,
}

impl Kind {
    const ALL: [Kind; 6] = [
        Kind::Plain,
        Kind::Usual,
        Kind::Oit,
        Kind::Instrument,
        Kind::InstrumentOnePercent,
        Kind::InstrumentUntracked,
    ];

    /// The name on the command line of a server process.
    fn arg(self) -> &'static str {
        match self {
            Kind::Plain => "plain",
            Kind::Usual => "usual",
            Kind::Oit => "oit",
            Kind::Instrument => "instrument",
            Kind::InstrumentOnePercent => "instrument-1",
            Kind::InstrumentUntracked => "instrument-untracked",
            Kind::InstrumentCollectorDown => "instrument-down",
        }
    }

    fn label(self) -> &'static str {
        match self {
            Kind::Plain => "plain",
            Kind::Usual => "usual stack",
            Kind::Oit => "otel-instrumentation-tower",
            Kind::Instrument => "instrument 100%",
            Kind::InstrumentOnePercent => "instrument 1%",
            Kind::InstrumentUntracked => "instrument 100% untracked",
            Kind::InstrumentCollectorDown => "instrument 100%, collector down",
        }
    }

    fn from_arg(arg: &str) -> Option<Self> {
        Self::ALL
            .into_iter()
            .chain([Kind::InstrumentCollectorDown])
            .find(|kind| kind.arg() == arg)
    }

    /// One call in how many is sampled by its caller.
    fn sampled_one_in(self) -> u64 {
        match self {
            Kind::InstrumentOnePercent => 100,
            _ => 1,
        }
    }
}

// --- The server ---------------------------------------------------------------------

/// What `SubmitTask` does before it answers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Handler {
    /// Answers at once.
    Trivial,
    /// About 200 µs of CPU work first (see [`work`]).
    Work,
}

impl Handler {
    fn arg(self) -> &'static str {
        match self {
            Handler::Trivial => "trivial",
            Handler::Work => "work",
        }
    }

    fn from_arg(arg: &str) -> Option<Self> {
        [Handler::Trivial, Handler::Work]
            .into_iter()
            .find(|h| h.arg() == arg)
    }
}

/// Rows in [`work`]'s document: about 200 µs of work on this project's 2-core VMs.
const WORK_ROWS: usize = 100;

/// What a service's handler spends its time on: a document of [`WORK_ROWS`] rows made
/// from the request, serialised to JSON and parsed back, a total taken from it.
fn work(seed: &str) -> u64 {
    let rows: Vec<serde_json::Value> = (0..WORK_ROWS)
        .map(|i| {
            serde_json::json!({
                "id": format!("{seed}-{i}"),
                "quantity": i,
                "price": (i as f64) * 1.25,
                "tags": ["alpha", "beta", seed],
                "note": "a line of text as an order carries, with words in it",
            })
        })
        .collect();
    let text = serde_json::to_string(&rows).unwrap_or_default();
    let parsed: serde_json::Value = serde_json::from_str(&text).unwrap_or_default();
    parsed
        .as_array()
        .map(|rows| rows.iter().filter_map(|r| r["quantity"].as_u64()).sum())
        .unwrap_or(0)
}

/// Answers `SubmitTask` (after [`work`] with [`Handler::Work`]); every other method is
/// unimplemented.
struct Trivial(Handler);

#[tonic::async_trait]
impl WorkflowService for Trivial {
    async fn report_execution_spans(
        &self,
        _: Request<ReportExecutionSpansRequest>,
    ) -> Result<Response<ReportExecutionSpansResponse>, Status> {
        Err(Status::unimplemented("loadgen"))
    }

    async fn start_workflow(
        &self,
        _: Request<StartWorkflowRequest>,
    ) -> Result<Response<StartWorkflowResponse>, Status> {
        Err(Status::unimplemented("loadgen"))
    }

    async fn poll_workflow(
        &self,
        _: Request<PollWorkflowRequest>,
    ) -> Result<Response<PollWorkflowResponse>, Status> {
        Err(Status::unimplemented("loadgen"))
    }

    async fn submit_task(
        &self,
        request: Request<SubmitTaskRequest>,
    ) -> Result<Response<SubmitTaskResponse>, Status> {
        let request = request.into_inner();
        let total = match self.0 {
            Handler::Trivial => 0,
            Handler::Work => work(&request.workflow_id),
        };
        Ok(Response::new(SubmitTaskResponse {
            task_id: format!("{}-{}-{total}", request.workflow_id, request.task_type),
            traceparent: String::new(),
        }))
    }

    async fn complete_task(
        &self,
        _: Request<CompleteTaskRequest>,
    ) -> Result<Response<Ack>, Status> {
        Err(Status::unimplemented("loadgen"))
    }

    async fn fail_task(&self, _: Request<FailTaskRequest>) -> Result<Response<Ack>, Status> {
        Err(Status::unimplemented("loadgen"))
    }

    async fn complete_workflow(
        &self,
        _: Request<CompleteWorkflowRequest>,
    ) -> Result<Response<Ack>, Status> {
        Err(Status::unimplemented("loadgen"))
    }

    async fn fail_workflow(
        &self,
        _: Request<FailWorkflowRequest>,
    ) -> Result<Response<Ack>, Status> {
        Err(Status::unimplemented("loadgen"))
    }

    type WatchWorkflowStream = futures_util::stream::Empty<Result<WorkflowEvent, Status>>;

    async fn watch_workflow(
        &self,
        _: Request<WatchWorkflowRequest>,
    ) -> Result<Response<Self::WatchWorkflowStream>, Status> {
        Err(Status::unimplemented("loadgen"))
    }
}

/// Drops every span.
#[derive(Debug)]
struct Discard;

impl SpanExporter for Discard {
    fn export(&self, batch: Vec<SpanData>) -> impl Future<Output = OTelSdkResult> + Send {
        drop(batch);
        std::future::ready(Ok(()))
    }
}

/// Drops every metric export.
#[derive(Debug)]
struct DiscardMetrics;

impl PushMetricExporter for DiscardMetrics {
    fn export(&self, _: &ResourceMetrics) -> impl Future<Output = OTelSdkResult> + Send {
        std::future::ready(Ok(()))
    }

    fn force_flush(&self) -> OTelSdkResult {
        Ok(())
    }

    fn shutdown_with_timeout(&self, _: Duration) -> OTelSdkResult {
        Ok(())
    }

    fn temporality(&self) -> Temporality {
        Temporality::Cumulative
    }
}

/// A tracer provider sampling what the caller sampled (`ratio` of the roots), through
/// a batch processor into [`Discard`]; with the pipeline's processors when `ours`.
fn tracer_provider(ratio: f64, ours: bool) -> SdkTracerProvider {
    let builder = SdkTracerProvider::builder()
        .with_sampler(ParentBasedSampler::new(Sampler::TraceIdRatioBased(ratio)));
    if ours {
        // As `pipeline::build` chains them: the tenant stamped as a span starts, checked
        // and redacted on the batch's thread.
        let export = TenantExporter::new(
            MissingTenant::MarkMissing,
            RedactingExporter::new(redact::global().clone(), Discard),
        );
        builder
            .with_span_processor(TenantProcessor::stamping(
                BatchSpanProcessor::builder(export).build(),
            ))
            .build()
    } else {
        builder
            .with_span_processor(BatchSpanProcessor::builder(Discard).build())
            .build()
    }
}

/// The tracer provider of our servers, as `telemetry` made it.
static OURS: std::sync::OnceLock<SdkTracerProvider> = std::sync::OnceLock::new();

/// Our layer's builder: spans through [`OURS`], whose sampler is parent-based (as
/// `pipeline::init` installs it, which a layer knows without being told), else through
/// the global provider.
fn ours() -> instrument::tower::stack::InstrumentBuilder {
    match OURS.get() {
        Some(provider) => {
            InstrumentLayer::builder().parent_based_tracer(provider.tracer("loadgen"))
        }
        None => InstrumentLayer::builder(),
    }
}

/// Serves `kind` on an ephemeral port of 127.0.0.1, printing the address on stdout,
/// until stdin closes (the driver exited).
async fn serve(kind: Kind, handler: Handler) -> Result<(), Box<dyn std::error::Error>> {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let addr = listener.local_addr()?;
    // Without TCP_NODELAY, small responses wait out delayed ACKs (40 ms tails).
    let incoming = tonic::transport::server::TcpIncoming::from(listener).with_nodelay(Some(true));
    let service = WorkflowServiceServer::new(Trivial(handler));
    let oit = opentelemetry_instrumentation_tower::http::server::LayerBuilder::builder()
        .build()
        .map_err(|e| e.to_string())?;
    let served = tokio::spawn(async move {
        match kind {
            Kind::Plain => {
                Server::builder()
                    .add_service(service)
                    .serve_with_incoming(incoming)
                    .await
            }
            Kind::Usual => {
                let make_span = |request: &http::Request<tonic::body::Body>| {
                    let parent = TraceContextPropagator::new().extract(&Headers(request.headers()));
                    let span = tracing::info_span!(
                        "request",
                        http.request.method = %request.method(),
                        url.path = %request.uri().path(),
                    );
                    let _ = span.set_parent(parent);
                    span
                };
                Server::builder()
                    .layer(tower_http::trace::TraceLayer::new_for_grpc().make_span_with(make_span))
                    .layer(tower::layer::layer_fn(PrometheusMetrics))
                    .add_service(service)
                    .serve_with_incoming(incoming)
                    .await
            }
            Kind::Oit => {
                Server::builder()
                    .layer(oit)
                    .add_service(service)
                    .serve_with_incoming(incoming)
                    .await
            }
            Kind::Instrument | Kind::InstrumentOnePercent | Kind::InstrumentCollectorDown => {
                Server::builder()
                    .layer(ours().build())
                    .add_service(service)
                    .serve_with_incoming(incoming)
                    .await
            }
            Kind::InstrumentUntracked => {
                Server::builder()
                    .layer(ours().no_tracking_header().build())
                    .add_service(service)
                    .serve_with_incoming(incoming)
                    .await
            }
        }
    });
    println!("{addr}");
    std::io::stdout().flush()?;
    // The driver holds our stdin; its end is ours.
    tokio::task::spawn_blocking(|| std::io::stdin().lines().for_each(drop)).await?;
    served.abort();
    Ok(())
}

/// Sets up `kind`'s telemetry for the process; returns what must live while it serves.
fn telemetry(kind: Kind) -> Result<Vec<Box<dyn std::any::Any>>, Box<dyn std::error::Error>> {
    let mut keep: Vec<Box<dyn std::any::Any>> = Vec::new();
    match kind {
        Kind::Plain => {}
        Kind::Usual => {
            let provider = tracer_provider(1.0, false);
            // As services set it up: `RUST_LOG=info` (without a filter, every h2 and
            // hyper debug event would become a span event, at ten times the cost).
            let subscriber = tracing_subscriber::registry()
                .with(tracing_subscriber::EnvFilter::new("info"))
                .with(tracing_opentelemetry::layer().with_tracer(provider.tracer("usual")));
            tracing::subscriber::set_global_default(subscriber)?;
            let handle =
                metrics_exporter_prometheus::PrometheusBuilder::new().install_recorder()?;
            keep.push(Box::new(provider));
            keep.push(Box::new(handle));
        }
        Kind::Oit => {
            opentelemetry::global::set_text_map_propagator(TraceContextPropagator::new());
            let provider = tracer_provider(1.0, false);
            opentelemetry::global::set_tracer_provider(provider.clone());
            // Metrics are aggregated as they are recorded and exported every 60 s (the
            // SDK's default interval), into an exporter that drops them.
            let meters = SdkMeterProvider::builder()
                .with_reader(PeriodicReader::builder(DiscardMetrics).build())
                .build();
            opentelemetry::global::set_meter_provider(meters.clone());
            keep.push(Box::new(provider));
            keep.push(Box::new(meters));
        }
        Kind::Instrument | Kind::InstrumentOnePercent | Kind::InstrumentUntracked => {
            let ratio = 1.0 / kind.sampled_one_in() as f64;
            let provider = tracer_provider(ratio, true);
            opentelemetry::global::set_tracer_provider(provider.clone());
            let _ = OURS.set(provider.clone());
            let handle = install_prometheus(LabelGuard::default(), &MetricNames::default())?;
            keep.push(Box::new(provider));
            keep.push(Box::new(handle));
        }
        Kind::InstrumentCollectorDown => {
            // The pipeline as a server builds it from OTEL_* variables, pointed at a
            // port nobody listens on.
            let down = std::net::TcpListener::bind("127.0.0.1:0")?.local_addr()?;
            let config = instrument::pipeline::PipelineConfig::from_vars([
                ("OTEL_EXPORTER_OTLP_ENDPOINT", format!("http://{down}")),
                ("OTEL_EXPORTER_OTLP_TIMEOUT", "1000".to_owned()),
            ])?;
            let telemetry = instrument::pipeline::build(&config)?;
            if let Some(provider) = telemetry.tracer_provider() {
                opentelemetry::global::set_tracer_provider(provider.clone());
                // The default sampler, parentbased_always_on.
                let _ = OURS.set(provider.clone());
            }
            let handle = install_prometheus(LabelGuard::default(), &MetricNames::default())?;
            keep.push(Box::new(telemetry));
            keep.push(Box::new(handle));
        }
    }
    Ok(keep)
}

fn server_main(
    kind: Kind,
    handler: Handler,
    core: Option<usize>,
) -> Result<(), Box<dyn std::error::Error>> {
    if let Some(core) = core {
        pin(core);
    }
    // One worker per core the process may use: one when pinned.
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    let keep = runtime.block_on(async { telemetry(kind) })?;
    runtime.block_on(serve(kind, handler))?;
    drop(keep);
    Ok(())
}

/// Pins this thread, and the threads it starts from now on, to `core`.
fn pin(core: usize) {
    if !core_affinity::set_for_current(core_affinity::CoreId { id: core }) {
        eprintln!("loadgen: could not pin to core {core}; running unpinned");
    }
}

// --- The driver ---------------------------------------------------------------------

struct Options {
    requests: usize,
    concurrency: usize,
    serial: usize,
    rounds: usize,
    runs: usize,
    sampled: bool,
    handler: Handler,
    servers: Vec<Kind>,
}

const USAGE: &str = "usage: loadgen [--requests N] [--concurrency N] [--serial N] [--rounds N] \
     [--runs N] [--parent sampled|unsampled] [--handler trivial|work] \
     [--servers plain,usual,oit,instrument,instrument-1,instrument-untracked]";

fn options(args: &[String]) -> Result<Options, String> {
    let mut options = Options {
        requests: 40_000,
        concurrency: 32,
        serial: 200,
        rounds: 20,
        runs: 1,
        sampled: true,
        handler: Handler::Trivial,
        servers: Kind::ALL.to_vec(),
    };
    let mut args = args.iter();
    while let Some(flag) = args.next() {
        let value = args.next().ok_or_else(|| format!("{flag} needs a value"))?;
        match flag.as_str() {
            "--servers" => {
                // `plain` always runs first: the others are read against it.
                let mut servers = vec![Kind::Plain];
                for name in value.split(',').filter(|n| *n != "plain") {
                    servers.push(
                        Kind::from_arg(name).ok_or_else(|| format!("unknown server {name}"))?,
                    );
                }
                options.servers = servers;
                continue;
            }
            "--parent" => {
                options.sampled = match value.as_str() {
                    "sampled" => true,
                    "unsampled" => false,
                    _ => return Err(format!("--parent: sampled or unsampled, got {value:?}")),
                };
                continue;
            }
            "--handler" => {
                options.handler = Handler::from_arg(value)
                    .ok_or_else(|| format!("--handler: trivial or work, got {value:?}"))?;
                continue;
            }
            _ => {}
        }
        let number: usize = value
            .parse()
            .ok()
            .filter(|&n| n > 0)
            .ok_or_else(|| format!("{flag}: expected a positive number, got {value:?}"))?;
        match flag.as_str() {
            "--requests" => options.requests = number,
            "--concurrency" => options.concurrency = number,
            "--serial" => options.serial = number,
            "--rounds" => options.rounds = number,
            "--runs" => options.runs = number,
            _ => return Err(format!("unknown option {flag}")),
        }
    }
    Ok(options)
}

/// A server process and its connection.
struct Remote {
    kind: Kind,
    child: Child,
    client: WorkflowServiceClient<Channel>,
    /// Resident memory once started, before any call, in KiB.
    rss_start_kib: u64,
}

impl Remote {
    /// Nanoseconds every thread of the server has run so far.
    fn cpu_ns(&self) -> u64 {
        let Ok(tasks) = std::fs::read_dir(format!("/proc/{}/task", self.child.id())) else {
            return 0;
        };
        tasks
            .flatten()
            .filter_map(|task| std::fs::read_to_string(task.path().join("schedstat")).ok())
            .filter_map(|line| line.split_whitespace().next()?.parse::<u64>().ok())
            .sum()
    }

    /// Context switches (voluntary and not) of every thread of the server so far.
    fn switches(&self) -> u64 {
        let Ok(tasks) = std::fs::read_dir(format!("/proc/{}/task", self.child.id())) else {
            return 0;
        };
        tasks
            .flatten()
            .filter_map(|task| std::fs::read_to_string(task.path().join("status")).ok())
            .flat_map(|status| {
                status
                    .lines()
                    .filter(|l| l.ends_with("ctxt_switches") || l.contains("ctxt_switches:"))
                    .filter_map(|l| l.split_whitespace().nth(1)?.parse::<u64>().ok())
                    .collect::<Vec<_>>()
            })
            .sum()
    }

    /// The server's resident memory now, in KiB.
    fn rss_kib(&self) -> u64 {
        rss_kib(self.child.id())
    }
}

/// `VmRSS` of process `pid`, in KiB (0 when it cannot be read).
fn rss_kib(pid: u32) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .ok()
        .and_then(|status| {
            let line = status.lines().find(|l| l.starts_with("VmRSS:"))?;
            line.split_whitespace().nth(1)?.parse().ok()
        })
        .unwrap_or(0)
}

/// `VmRSS` of process `pid` once it stops changing: a server prints its address before
/// its accept loop has run, and the code that loop touches is part of every server
/// (read at once, a plain server measured 5.9 MiB, and 7.6 MiB 50 ms later, while a
/// server that set up telemetry first had touched most of that code already).
async fn settled_rss_kib(pid: u32) -> u64 {
    let mut last = rss_kib(pid);
    for _ in 0..50 {
        tokio::time::sleep(Duration::from_millis(20)).await;
        let now = rss_kib(pid);
        if now == last {
            break;
        }
        last = now;
    }
    last
}

impl Drop for Remote {
    fn drop(&mut self) {
        drop(self.child.stdin.take());
        let _ = self.child.wait();
    }
}

async fn start(
    kind: Kind,
    handler: Handler,
    core: Option<usize>,
) -> Result<Remote, Box<dyn std::error::Error>> {
    let mut command = Command::new(std::env::current_exe()?);
    command.args(["--serve", kind.arg(), "--handler", handler.arg()]);
    if let Some(core) = core {
        command.args(["--core", &core.to_string()]);
    }
    let mut child = command
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()?;
    let stdout = child.stdout.take().ok_or("no stdout")?;
    let line = tokio::task::spawn_blocking(move || {
        let mut line = String::new();
        BufReader::new(stdout).read_line(&mut line).map(|_| line)
    })
    .await??;
    let addr: SocketAddr = line
        .trim()
        .parse()
        .map_err(|_| format!("{} server did not start: {line:?}", kind.label()))?;
    let rss_start_kib = settled_rss_kib(child.id()).await;
    let client = WorkflowServiceClient::connect(format!("http://{addr}")).await?;
    Ok(Remote {
        kind,
        child,
        client,
        rss_start_kib,
    })
}

/// splitmix64: a new trace id per call without a random-number crate.
fn mix(mut x: u64) -> u64 {
    x = x.wrapping_add(0x9e37_79b9_7f4a_7c15);
    x = (x ^ (x >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    x = (x ^ (x >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    x ^ (x >> 31)
}

/// The `traceparent` of call `n`: sampled for one call in `one_in` (never when
/// `one_in` is 0).
fn traceparent(n: u64, one_in: u64) -> MetadataValue<tonic::metadata::Ascii> {
    let (high, low, span) = (mix(n), mix(n ^ 0x5555), mix(n ^ 0xaaaa));
    let sampled = one_in != 0 && (low / 7) % one_in == 0;
    let flags = if sampled { "01" } else { "00" };
    let text = format!("00-{high:016x}{low:016x}-{span:016x}-{flags}");
    MetadataValue::try_from(text).unwrap_or_else(|_| MetadataValue::from_static(""))
}

/// Sends `requests` calls from `concurrency` tasks, one call in `one_in` with a sampled
/// parent; returns each call's latency.
async fn load(
    remote: &Remote,
    requests: usize,
    concurrency: usize,
    first: u64,
    one_in: u64,
) -> Result<Vec<Duration>, Status> {
    let mut tasks = tokio::task::JoinSet::new();
    for worker in 0..concurrency {
        let mut client = remote.client.clone();
        let share = requests / concurrency + usize::from(worker < requests % concurrency);
        let first = first + (worker * (requests / concurrency + 1)) as u64;
        tasks.spawn(async move {
            let mut latencies = Vec::with_capacity(share);
            for n in 0..share as u64 {
                let mut request = Request::new(SubmitTaskRequest {
                    workflow_id: "wf-1".into(),
                    task_type: "charge".into(),
                    input_json: "{}".into(),
                });
                let metadata = request.metadata_mut();
                metadata.insert("traceparent", traceparent(first + n, one_in));
                metadata.insert("x-tenant-id", MetadataValue::from_static("acme"));
                let start = Instant::now();
                client.submit_task(request).await?;
                latencies.push(start.elapsed());
            }
            Ok::<_, Status>(latencies)
        });
    }
    let mut all = Vec::with_capacity(requests);
    while let Some(done) = tasks.join_next().await {
        all.extend(done.map_err(|e| Status::internal(e.to_string()))??);
    }
    Ok(all)
}

/// What one server did in one run, one way (one call at a time, or under load).
#[derive(Default)]
struct Tally {
    latencies: Vec<Duration>,
    busy: Duration,
    cpu_ns: u64,
    switches: u64,
}

/// One server's figures in one run, one way.
#[derive(Clone, Copy, Default)]
struct Figures {
    p50_us: f64,
    p99_us: f64,
    calls_per_s: f64,
    cpu_us_per_call: f64,
    switches_per_call: f64,
}

impl Tally {
    fn figures(mut self) -> Figures {
        self.latencies.sort_unstable();
        let at = |p: f64| {
            let last = self.latencies.len().saturating_sub(1);
            let i = ((last as f64) * p).round() as usize;
            self.latencies.get(i).map_or(0.0, |d| d.as_secs_f64() * 1e6)
        };
        let calls = self.latencies.len().max(1) as f64;
        Figures {
            p50_us: at(0.5),
            p99_us: at(0.99),
            calls_per_s: calls / self.busy.as_secs_f64().max(f64::EPSILON),
            cpu_us_per_call: self.cpu_ns as f64 / 1e3 / calls,
            switches_per_call: self.switches as f64 / calls,
        }
    }
}

/// One server's figures in one run: one call at a time, under load, and its memory.
#[derive(Clone, Copy, Default)]
struct Run {
    serial: Figures,
    loaded: Figures,
    rss_end_kib: u64,
}

/// Calls `remote` in one slice (`calls` from `concurrency` tasks) into `tally`.
async fn slice(
    remote: &Remote,
    tally: &mut Tally,
    calls: usize,
    concurrency: usize,
    first: u64,
    one_in: u64,
) -> Result<(), Box<dyn std::error::Error>> {
    let (cpu, switches, start) = (remote.cpu_ns(), remote.switches(), Instant::now());
    let latencies = load(remote, calls, concurrency, first, one_in).await?;
    tally.busy += start.elapsed();
    tally.cpu_ns += remote.cpu_ns().saturating_sub(cpu);
    tally.switches += remote.switches().saturating_sub(switches);
    tally.latencies.extend(latencies);
    Ok(())
}

async fn run_once(
    remotes: &[Remote],
    options: &Options,
) -> Result<Vec<Run>, Box<dyn std::error::Error>> {
    let mut serial: Vec<Tally> = remotes.iter().map(|_| Tally::default()).collect();
    let mut loaded: Vec<Tally> = remotes.iter().map(|_| Tally::default()).collect();
    let per_round = (options.requests / options.rounds).max(options.concurrency);
    let mut next = 1u64 << 40;
    for _ in 0..options.rounds {
        for (i, remote) in remotes.iter().enumerate() {
            let one_in = one_in(remote.kind, options.sampled);
            slice(remote, &mut serial[i], options.serial, 1, next, one_in).await?;
            next += options.serial as u64 * 2;
            let concurrency = options.concurrency;
            slice(remote, &mut loaded[i], per_round, concurrency, next, one_in).await?;
            next += per_round as u64 * 2;
        }
    }
    Ok(serial
        .into_iter()
        .zip(loaded)
        .zip(remotes)
        .map(|((serial, loaded), remote)| Run {
            serial: serial.figures(),
            loaded: loaded.figures(),
            rss_end_kib: remote.rss_kib(),
        })
        .collect())
}

/// One call in how many `kind` is sent with a sampled parent (0: never).
fn one_in(kind: Kind, sampled: bool) -> u64 {
    if sampled {
        kind.sampled_one_in()
    } else {
        0
    }
}

fn median(mut values: Vec<f64>) -> f64 {
    values.sort_by(f64::total_cmp);
    values.get(values.len() / 2).copied().unwrap_or(0.0)
}

fn print(remotes: &[Remote], runs: &[Run]) {
    let pct = |x: f64, base: f64| 100.0 * (x / base.max(f64::EPSILON) - 1.0);
    let plain = runs[0];
    println!(
        "{:<27} {:>31}  {:>44}  {:>30}",
        "", "one call at a time", "under load (in flight: --concurrency)", "resident memory, MiB"
    );
    println!(
        "{:<27} {:>9} {:>12} {:>8}  {:>8} {:>9} {:>8} {:>11} {:>5}  {:>9} {:>9} {:>10}",
        "server",
        "p50",
        "CPU/call",
        "cs/call",
        "p50",
        "p99 µs",
        "calls/s",
        "CPU/call",
        "cs",
        "at start",
        "at end",
        "end-start"
    );
    for (remote, run) in remotes.iter().zip(runs) {
        let (s, l) = (run.serial, run.loaded);
        let mib = |kib: u64| kib as f64 / 1024.0;
        let (start, end) = (mib(remote.rss_start_kib), mib(run.rss_end_kib));
        if remote.kind == Kind::Plain {
            println!(
                "{:<27} {:>7.1}µs {:>10.2}µs {:>8.2}  {:>6.1}µs {:>9.1} {:>8.0} {:>9.2}µs {:>5.2}  {start:>9.1} {end:>9.1} {:>+10.1}",
                remote.kind.label(),
                s.p50_us,
                s.cpu_us_per_call,
                s.switches_per_call,
                l.p50_us,
                l.p99_us,
                l.calls_per_s,
                l.cpu_us_per_call,
                l.switches_per_call,
                end - start,
            );
            continue;
        }
        let base = (mib(remotes[0].rss_start_kib), mib(plain.rss_end_kib));
        println!(
            "{:<27} {:>+8.1}% {:>+10.2}µs {:>+8.2}  {:>+7.1}% {:>9.1} {:>+7.1}% {:>+9.2}µs {:>+5.2}  {:>+9.1} {:>+9.1} {:>+10.1}",
            remote.kind.label(),
            pct(s.p50_us, plain.serial.p50_us),
            s.cpu_us_per_call - plain.serial.cpu_us_per_call,
            s.switches_per_call - plain.serial.switches_per_call,
            pct(l.p50_us, plain.loaded.p50_us),
            l.p99_us,
            pct(l.calls_per_s, plain.loaded.calls_per_s),
            l.cpu_us_per_call - plain.loaded.cpu_us_per_call,
            l.switches_per_call - plain.loaded.switches_per_call,
            start - base.0,
            end - base.1,
            end - start,
        );
    }
}

/// Asks callgrind to zero (`--zero`) or write out (`--dump`) the counts of every server.
fn callgrind_control(remotes: &[Remote], what: &str) -> Result<(), Box<dyn std::error::Error>> {
    for remote in remotes {
        let status = Command::new("callgrind_control")
            .args([what, &remote.child.id().to_string()])
            .stdout(Stdio::null())
            .status()?;
        if !status.success() {
            return Err(format!("callgrind_control {what} failed: {status}").into());
        }
    }
    Ok(())
}

async fn drive(
    options: Options,
    server_core: Option<usize>,
    client_core: Option<usize>,
) -> Result<(), Box<dyn std::error::Error>> {
    let mut remotes = Vec::new();
    for &kind in &options.servers {
        remotes.push(start(kind, options.handler, server_core).await?);
    }
    for remote in &remotes {
        // Warm-up: connection, allocator, caches, metric handles.
        let one_in = one_in(remote.kind, options.sampled);
        load(remote, 4_000, options.concurrency, 0, one_in).await?;
    }
    // Under `benches/server-instructions`: count only the measured calls.
    let callgrind = std::env::var_os("LOADGEN_CALLGRIND").is_some();
    if callgrind {
        callgrind_control(&remotes, "--zero")?;
    }
    let per_round = (options.requests / options.rounds).max(options.concurrency);
    println!(
        "unary calls per server and run: {} one at a time, {} with {} in flight; {} slices, {} \
         run(s); parents {}, handler {}; servers on core {}, client on core {}\n",
        options.serial * options.rounds,
        per_round * options.rounds,
        options.concurrency,
        options.rounds,
        options.runs,
        if options.sampled {
            "sampled"
        } else {
            "unsampled"
        },
        options.handler.arg(),
        server_core.map_or("any".to_owned(), |c| c.to_string()),
        client_core.map_or("any".to_owned(), |c| c.to_string()),
    );
    let mut runs = Vec::new();
    for run in 1..=options.runs {
        let figures = run_once(&remotes, &options).await?;
        if options.runs > 1 {
            println!("run {run}");
        }
        print(&remotes, &figures);
        println!();
        runs.push(figures);
    }
    if callgrind {
        callgrind_control(&remotes, "--dump")?;
    }
    if options.runs > 1 {
        let medians: Vec<Run> = (0..remotes.len())
            .map(|i| {
                let of = |f: fn(&Run) -> f64| median(runs.iter().map(|r| f(&r[i])).collect());
                let figures = |way: fn(&Run) -> Figures| Figures {
                    p50_us: median(runs.iter().map(|r| way(&r[i]).p50_us).collect()),
                    p99_us: median(runs.iter().map(|r| way(&r[i]).p99_us).collect()),
                    calls_per_s: median(runs.iter().map(|r| way(&r[i]).calls_per_s).collect()),
                    cpu_us_per_call: median(
                        runs.iter().map(|r| way(&r[i]).cpu_us_per_call).collect(),
                    ),
                    switches_per_call: median(
                        runs.iter().map(|r| way(&r[i]).switches_per_call).collect(),
                    ),
                };
                Run {
                    serial: figures(|r| r.serial),
                    loaded: figures(|r| r.loaded),
                    rss_end_kib: of(|r| r.rss_end_kib as f64) as u64,
                }
            })
            .collect();
        println!("medians of {} runs", options.runs);
        print(&remotes, &medians);
    }
    Ok(())
}

/// `--serve KIND [--handler H] [--core N]`: the server side.
fn serve_main(args: &[String]) -> ExitCode {
    let kind = args.first().and_then(|a| Kind::from_arg(a));
    let (mut handler, mut core) = (Some(Handler::Trivial), None);
    for pair in args.get(1..).unwrap_or_default().chunks(2) {
        match pair {
            [flag, value] if flag == "--handler" => handler = Handler::from_arg(value),
            [flag, value] if flag == "--core" => core = value.parse().ok(),
            _ => handler = None,
        }
    }
    let (Some(kind), Some(handler)) = (kind, handler) else {
        eprintln!(
            "loadgen --serve: expected one of plain, usual, oit, instrument, instrument-1, \
             instrument-untracked, then --handler trivial|work and --core N"
        );
        return ExitCode::from(2);
    };
    match server_main(kind, handler, core) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("loadgen server {}: {e}", kind.arg());
            ExitCode::FAILURE
        }
    }
}

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    if args.first().map(String::as_str) == Some("--serve") {
        return serve_main(&args[1..]);
    }
    let options = match options(&args) {
        Ok(options) => options,
        Err(e) => {
            eprintln!("{e}\n{USAGE}");
            return ExitCode::from(2);
        }
    };
    // The servers on the first core, the client (this process) on the second.
    let cores = core_affinity::get_core_ids().unwrap_or_default();
    let (server_core, client_core) = match cores.as_slice() {
        [a, b, ..] => (Some(a.id), Some(b.id)),
        _ => (None, None),
    };
    if let Some(core) = client_core {
        pin(core);
    }
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(e) => {
            eprintln!("runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(drive(options, server_core, client_core)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("loadgen: {e}");
            ExitCode::FAILURE
        }
    }
}
