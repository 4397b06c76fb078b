//! End-to-end cost, against the peers, in one run: unary tonic calls over 127.0.0.1 to
//! the same trivial server five ways, each in a process of its own.
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
//! caller sampled. Every call carries a new `traceparent` and `x-tenant-id`, from
//! `--concurrency` tasks over one HTTP/2 connection per server.
//!
//! The servers are pinned to one core and the client to the other (when there are
//! two), and take turns in short slices (`--rounds`), so drift on a shared machine hits
//! all of them alike. Server CPU is read from `/proc/<pid>/task/*/schedstat` (every
//! thread of the server's process) around each slice. Prints, per server, p50 and p99
//! latency, throughput and CPU per call, each against `plain`; with `--runs N`, the
//! medians of N runs.
//!
//! ```text
//! cargo run --release -p instrument-examples --example loadgen -- \
//!     [--requests 40000] [--concurrency 32] [--rounds 20] [--runs 1]
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
    install_prometheus, MissingTenant, RedactingProcessor, TenantProcessor,
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

/// Answers `SubmitTask` at once; every other method is unimplemented.
struct Trivial;

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
        Ok(Response::new(SubmitTaskResponse {
            task_id: format!("{}-{}", request.workflow_id, request.task_type),
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
    let batch = BatchSpanProcessor::builder(Discard).build();
    let builder = SdkTracerProvider::builder()
        .with_sampler(ParentBasedSampler::new(Sampler::TraceIdRatioBased(ratio)));
    if ours {
        builder
            .with_span_processor(TenantProcessor::new(
                MissingTenant::MarkMissing,
                RedactingProcessor::new(redact::global().clone(), batch),
            ))
            .build()
    } else {
        builder.with_span_processor(batch).build()
    }
}

/// Serves `kind` on an ephemeral port of 127.0.0.1, printing the address on stdout,
/// until stdin closes (the driver exited).
async fn serve(kind: Kind) -> Result<(), Box<dyn std::error::Error>> {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let addr = listener.local_addr()?;
    // Without TCP_NODELAY, small responses wait out delayed ACKs (40 ms tails).
    let incoming = tonic::transport::server::TcpIncoming::from(listener).with_nodelay(Some(true));
    let service = WorkflowServiceServer::new(Trivial);
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
                    .layer(InstrumentLayer::builder().build())
                    .add_service(service)
                    .serve_with_incoming(incoming)
                    .await
            }
            Kind::InstrumentUntracked => {
                Server::builder()
                    .layer(InstrumentLayer::builder().no_tracking_header().build())
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
            }
            let handle = install_prometheus(LabelGuard::default(), &MetricNames::default())?;
            keep.push(Box::new(telemetry));
            keep.push(Box::new(handle));
        }
    }
    Ok(keep)
}

fn server_main(kind: Kind, core: Option<usize>) -> Result<(), Box<dyn std::error::Error>> {
    if let Some(core) = core {
        pin(core);
    }
    // One worker per core the process may use: one when pinned.
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    let keep = runtime.block_on(async { telemetry(kind) })?;
    runtime.block_on(serve(kind))?;
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
    rounds: usize,
    runs: usize,
    servers: Vec<Kind>,
}

const USAGE: &str = "usage: loadgen [--requests N] [--concurrency N] [--rounds N] [--runs N] \
     [--servers plain,usual,oit,instrument,instrument-1,instrument-untracked]";

fn options(args: &[String]) -> Result<Options, String> {
    let mut options = Options {
        requests: 40_000,
        concurrency: 32,
        rounds: 20,
        runs: 1,
        servers: Kind::ALL.to_vec(),
    };
    let mut args = args.iter();
    while let Some(flag) = args.next() {
        let value = args.next().ok_or_else(|| format!("{flag} needs a value"))?;
        if flag == "--servers" {
            // `plain` always runs first: the others are read against it.
            let mut servers = vec![Kind::Plain];
            for name in value.split(',').filter(|n| *n != "plain") {
                servers.push(Kind::from_arg(name).ok_or_else(|| format!("unknown server {name}"))?);
            }
            options.servers = servers;
            continue;
        }
        let number: usize = value
            .parse()
            .ok()
            .filter(|&n| n > 0)
            .ok_or_else(|| format!("{flag}: expected a positive number, got {value:?}"))?;
        match flag.as_str() {
            "--requests" => options.requests = number,
            "--concurrency" => options.concurrency = number,
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
}

impl Drop for Remote {
    fn drop(&mut self) {
        drop(self.child.stdin.take());
        let _ = self.child.wait();
    }
}

async fn start(kind: Kind, core: Option<usize>) -> Result<Remote, Box<dyn std::error::Error>> {
    let mut command = Command::new(std::env::current_exe()?);
    command.args(["--serve", kind.arg()]);
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
    let client = WorkflowServiceClient::connect(format!("http://{addr}")).await?;
    Ok(Remote {
        kind,
        child,
        client,
    })
}

/// splitmix64: a new trace id per call without a random-number crate.
fn mix(mut x: u64) -> u64 {
    x = x.wrapping_add(0x9e37_79b9_7f4a_7c15);
    x = (x ^ (x >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    x = (x ^ (x >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    x ^ (x >> 31)
}

/// The `traceparent` of call `n`: sampled for one call in `one_in`.
fn traceparent(n: u64, one_in: u64) -> MetadataValue<tonic::metadata::Ascii> {
    let (high, low, span) = (mix(n), mix(n ^ 0x5555), mix(n ^ 0xaaaa));
    let flags = if (low / 7) % one_in == 0 { "01" } else { "00" };
    let text = format!("00-{high:016x}{low:016x}-{span:016x}-{flags}");
    MetadataValue::try_from(text).unwrap_or_else(|_| MetadataValue::from_static(""))
}

/// Sends `requests` calls from `concurrency` tasks; returns each call's latency.
async fn load(
    remote: &Remote,
    requests: usize,
    concurrency: usize,
    first: u64,
) -> Result<Vec<Duration>, Status> {
    let mut tasks = tokio::task::JoinSet::new();
    let one_in = remote.kind.sampled_one_in();
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

/// What one server did in one run.
#[derive(Default)]
struct Tally {
    latencies: Vec<Duration>,
    busy: Duration,
    cpu_ns: u64,
}

/// One server's figures in one run.
#[derive(Clone, Copy, Default)]
struct Figures {
    p50_us: f64,
    p99_us: f64,
    calls_per_s: f64,
    cpu_us_per_call: f64,
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
        }
    }
}

async fn run_once(
    remotes: &[Remote],
    options: &Options,
) -> Result<Vec<Figures>, Box<dyn std::error::Error>> {
    let mut tallies: Vec<Tally> = remotes.iter().map(|_| Tally::default()).collect();
    let per_round = (options.requests / options.rounds).max(options.concurrency);
    let mut next = 1u64 << 40;
    for _ in 0..options.rounds {
        for (remote, tally) in remotes.iter().zip(&mut tallies) {
            let (cpu, start) = (remote.cpu_ns(), Instant::now());
            let latencies = load(remote, per_round, options.concurrency, next).await?;
            tally.busy += start.elapsed();
            tally.cpu_ns += remote.cpu_ns().saturating_sub(cpu);
            tally.latencies.extend(latencies);
            next += per_round as u64 * 2;
        }
    }
    Ok(tallies.into_iter().map(Tally::figures).collect())
}

fn median(mut values: Vec<f64>) -> f64 {
    values.sort_by(f64::total_cmp);
    values.get(values.len() / 2).copied().unwrap_or(0.0)
}

fn print(remotes: &[Remote], figures: &[Figures]) {
    println!(
        "{:<27} {:>9} {:>9} {:>9} {:>10} {:>9} {:>10} {:>17}",
        "server", "p50 µs", "p99 µs", "calls/s", "CPU µs", "p50", "throughput", "CPU per call"
    );
    let plain = figures[0];
    for (remote, f) in remotes.iter().zip(figures) {
        let pct = |x: f64, base: f64| 100.0 * (x / base.max(f64::EPSILON) - 1.0);
        let (p50, rate, cpu) = if remote.kind == Kind::Plain {
            (String::new(), String::new(), String::new())
        } else {
            (
                format!("{:+.1} %", pct(f.p50_us, plain.p50_us)),
                format!("{:+.1} %", pct(f.calls_per_s, plain.calls_per_s)),
                format!(
                    "{:+.1} % ({:+.1} µs)",
                    pct(f.cpu_us_per_call, plain.cpu_us_per_call),
                    f.cpu_us_per_call - plain.cpu_us_per_call
                ),
            )
        };
        println!(
            "{:<27} {:>9.1} {:>9.1} {:>9.0} {:>10.2} {p50:>9} {rate:>10} {cpu:>17}",
            remote.kind.label(),
            f.p50_us,
            f.p99_us,
            f.calls_per_s,
            f.cpu_us_per_call,
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
        remotes.push(start(kind, server_core).await?);
    }
    for remote in &remotes {
        // Warm-up: connection, allocator, caches, metric handles.
        load(remote, 4_000, options.concurrency, 0).await?;
    }
    // Under `benches/server-instructions`: count only the measured calls.
    let callgrind = std::env::var_os("LOADGEN_CALLGRIND").is_some();
    if callgrind {
        callgrind_control(&remotes, "--zero")?;
    }
    let per_round = (options.requests / options.rounds).max(options.concurrency);
    println!(
        "{} unary calls per server and run, {} in flight, {} slices, {} run(s); servers on \
         core {}, client on core {}\n",
        per_round * options.rounds,
        options.concurrency,
        options.rounds,
        options.runs,
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
        let medians: Vec<Figures> = (0..remotes.len())
            .map(|i| {
                let of = |f: fn(&Figures) -> f64| median(runs.iter().map(|r| f(&r[i])).collect());
                Figures {
                    p50_us: of(|f| f.p50_us),
                    p99_us: of(|f| f.p99_us),
                    calls_per_s: of(|f| f.calls_per_s),
                    cpu_us_per_call: of(|f| f.cpu_us_per_call),
                }
            })
            .collect();
        println!("medians of {} runs", options.runs);
        print(&remotes, &medians);
    }
    Ok(())
}

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    if args.first().map(String::as_str) == Some("--serve") {
        let kind = args.get(1).and_then(|a| Kind::from_arg(a));
        let core = match args.get(2).map(String::as_str) {
            Some("--core") => args.get(3).and_then(|c| c.parse().ok()),
            _ => None,
        };
        let Some(kind) = kind else {
            eprintln!(
                "loadgen --serve: expected one of plain, usual, oit, instrument, instrument-1, instrument-untracked"
            );
            return ExitCode::from(2);
        };
        return match server_main(kind, core) {
            Ok(()) => ExitCode::SUCCESS,
            Err(e) => {
                eprintln!("loadgen server {}: {e}", kind.arg());
                ExitCode::FAILURE
            }
        };
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
