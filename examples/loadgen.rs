//! End-to-end overhead: unary tonic calls over 127.0.0.1 to a plain server and to the
//! same server behind `InstrumentLayer`, in one run.
//!
//! Three servers answer `SubmitTask` of the example workflow service at once, with a
//! trivial handler (so the figure is the toolkit's share of the whole request, an upper
//! bound for any handler that does real work):
//! - `plain`: no layers, no recorder;
//! - `instrument 1%`: `InstrumentLayer`, `parentbased_traceidratio` 0.01, spans through
//!   the pipeline's tenant and redacting processors into a batch processor and an
//!   exporter that drops them, metrics through the guarded Prometheus recorder;
//! - `instrument 100%`: the same, every trace sampled.
//!
//! Clients send calls with `x-tenant-id` (no incoming trace, so the sampler decides) from
//! `--concurrency` tasks over one HTTP/2 connection per server. The servers take turns
//! in short rounds, so drift on a shared machine hits all three alike. Prints p50/p99
//! latency and throughput of each, and the overhead against `plain`.
//!
//! ```text
//! cargo run --release --example loadgen -- [--requests 60000] [--concurrency 16] [--rounds 20]
//! ```

use std::future::Future;
use std::net::SocketAddr;
use std::process::ExitCode;
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
use opentelemetry::trace::TracerProvider as _;
use opentelemetry_sdk::error::OTelSdkResult;
use opentelemetry_sdk::trace::{
    BatchSpanProcessor, ParentBasedSampler, Sampler, SdkTracerProvider, SpanData, SpanExporter,
};
use tonic::transport::{Channel, Server};
use tonic::{Request, Response, Status};

/// Answers `SubmitTask` at once; every other method is unimplemented.
struct Trivial;

#[tonic::async_trait]
impl WorkflowService for Trivial {
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

/// Drops every span (the collector's side is not what is measured).
#[derive(Debug)]
struct Discard;

impl SpanExporter for Discard {
    fn export(&self, batch: Vec<SpanData>) -> impl Future<Output = OTelSdkResult> + Send {
        drop(batch);
        std::future::ready(Ok(()))
    }
}

/// The pipeline's chain (tenant, redaction, batch) sampling `ratio` of the roots.
fn provider(ratio: f64) -> SdkTracerProvider {
    let batch = BatchSpanProcessor::builder(Discard).build();
    SdkTracerProvider::builder()
        .with_sampler(ParentBasedSampler::new(Sampler::TraceIdRatioBased(ratio)))
        .with_span_processor(TenantProcessor::new(
            MissingTenant::MarkMissing,
            RedactingProcessor::new(redact::global().clone(), batch),
        ))
        .build()
}

struct Options {
    requests: usize,
    concurrency: usize,
    rounds: usize,
}

fn options() -> Result<Options, String> {
    let mut options = Options {
        requests: 60_000,
        concurrency: 16,
        rounds: 20,
    };
    let mut args = std::env::args().skip(1);
    while let Some(flag) = args.next() {
        let value = args.next().ok_or_else(|| format!("{flag} needs a value"))?;
        let number: usize = value
            .parse()
            .ok()
            .filter(|&n| n > 0)
            .ok_or_else(|| format!("{flag}: expected a positive number, got {value:?}"))?;
        match flag.as_str() {
            "--requests" => options.requests = number,
            "--concurrency" => options.concurrency = number,
            "--rounds" => options.rounds = number,
            _ => return Err(format!("unknown option {flag}")),
        }
    }
    Ok(options)
}

/// Starts a server on an ephemeral port of 127.0.0.1.
async fn serve(layer: Option<InstrumentLayer>) -> std::io::Result<SocketAddr> {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let addr = listener.local_addr()?;
    // Without TCP_NODELAY, small responses wait out delayed ACKs (40 ms tails).
    let incoming = tonic::transport::server::TcpIncoming::from(listener).with_nodelay(Some(true));
    let service = WorkflowServiceServer::new(Trivial);
    tokio::spawn(async move {
        let served = match layer {
            Some(layer) => {
                Server::builder()
                    .layer(layer)
                    .add_service(service)
                    .serve_with_incoming(incoming)
                    .await
            }
            None => {
                Server::builder()
                    .add_service(service)
                    .serve_with_incoming(incoming)
                    .await
            }
        };
        if let Err(e) = served {
            eprintln!("server on {addr}: {e}");
        }
    });
    Ok(addr)
}

/// Sends `requests` calls from `concurrency` tasks; returns each call's latency.
async fn load(
    client: &WorkflowServiceClient<Channel>,
    requests: usize,
    concurrency: usize,
) -> Result<Vec<Duration>, Status> {
    let mut tasks = tokio::task::JoinSet::new();
    for worker in 0..concurrency {
        let mut client = client.clone();
        let share = requests / concurrency + usize::from(worker < requests % concurrency);
        tasks.spawn(async move {
            let mut latencies = Vec::with_capacity(share);
            for _ in 0..share {
                let mut request = Request::new(SubmitTaskRequest {
                    workflow_id: "wf-1".into(),
                    task_type: "charge".into(),
                    input_json: "{}".into(),
                });
                request.metadata_mut().insert(
                    "x-tenant-id",
                    tonic::metadata::MetadataValue::from_static("acme"),
                );
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

#[derive(Default)]
struct Tally {
    latencies: Vec<Duration>,
    busy: Duration,
}

impl Tally {
    fn percentile(&mut self, p: f64) -> Duration {
        self.latencies.sort_unstable();
        let last = self.latencies.len().saturating_sub(1);
        let i = ((last as f64) * p).round() as usize;
        self.latencies.get(i).copied().unwrap_or_default()
    }

    fn throughput(&self) -> f64 {
        self.latencies.len() as f64 / self.busy.as_secs_f64().max(f64::EPSILON)
    }
}

fn main() -> ExitCode {
    let options = match options() {
        Ok(options) => options,
        Err(e) => {
            eprintln!("{e}\nusage: loadgen [--requests N] [--concurrency N] [--rounds N]");
            return ExitCode::from(2);
        }
    };
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
    match runtime.block_on(run(options)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("loadgen: {e}");
            ExitCode::FAILURE
        }
    }
}

async fn run(options: Options) -> Result<(), Box<dyn std::error::Error>> {
    let _metrics = install_prometheus(LabelGuard::default(), &MetricNames::default())?;
    let (one_percent, all) = (provider(0.01), provider(1.0));
    let layer = |provider: &SdkTracerProvider| {
        InstrumentLayer::builder()
            .tracer(provider.tracer("loadgen"))
            .build()
    };
    let servers = [
        ("plain", serve(None).await?),
        ("instrument 1%", serve(Some(layer(&one_percent))).await?),
        ("instrument 100%", serve(Some(layer(&all))).await?),
    ];
    let mut clients = Vec::new();
    for (_, addr) in &servers {
        let client = WorkflowServiceClient::connect(format!("http://{addr}")).await?;
        // Warm-up: connections, allocator, caches.
        load(&client, 2_000, options.concurrency).await?;
        clients.push(client);
    }
    let mut tallies: Vec<Tally> = servers.iter().map(|_| Tally::default()).collect();
    let per_round = (options.requests / options.rounds).max(options.concurrency);
    println!(
        "{} unary calls per server, {} concurrent, {} rounds, trivial handler\n",
        per_round * options.rounds,
        options.concurrency,
        options.rounds
    );
    for _ in 0..options.rounds {
        for (client, tally) in clients.iter().zip(&mut tallies) {
            let start = Instant::now();
            let latencies = load(client, per_round, options.concurrency).await?;
            tally.busy += start.elapsed();
            tally.latencies.extend(latencies);
        }
    }
    println!(
        "{:<16} {:>10} {:>10} {:>12} {:>14} {:>14}",
        "server", "p50", "p99", "calls/s", "p50 overhead", "throughput"
    );
    let (plain_p50, plain_rate) = (tallies[0].percentile(0.5), tallies[0].throughput());
    for ((name, _), tally) in servers.iter().zip(&mut tallies) {
        let (p50, p99, rate) = (
            tally.percentile(0.5),
            tally.percentile(0.99),
            tally.throughput(),
        );
        let p50_overhead = 100.0 * (p50.as_secs_f64() / plain_p50.as_secs_f64() - 1.0);
        let rate_change = 100.0 * (rate / plain_rate - 1.0);
        println!(
            "{name:<16} {:>8.1}us {:>8.1}us {rate:>12.0} {p50_overhead:>+13.1}% {rate_change:>+13.1}%",
            p50.as_secs_f64() * 1e6,
            p99.as_secs_f64() * 1e6,
        );
    }
    let _ = one_percent.shutdown();
    let _ = all.shutdown();
    Ok(())
}
