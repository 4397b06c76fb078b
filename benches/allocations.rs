//! Heap allocations per request, ours beside the peers', counted by `dhat`'s heap
//! statistics: a request at an idle server pays for every allocation (and the cache
//! lines it brings in) in a way an instruction count does not show.
//!
//! Each stack runs in a process of its own (the peers set global state): the same
//! stacks, request and exporter as `budgets.rs` and `overhead.rs` (`support`), warmed
//! with 50 requests, then 200 requests counted. Prints one line per stack,
//! `allocations/<stack> <allocations per request> <bytes per request>`, which
//! `.ci/check-budgets` reads against `benches/budgets.txt`.
//!
//! ```text
//! cargo bench --bench allocations
//! ```

use std::process::{Command, ExitCode};

use http::Request;
use instrument::cardinality::LabelGuard;
use instrument::pipeline::prometheus_recorder;
use instrument::semconv::MetricNames;
use opentelemetry_sdk::trace::Sampler;
use tower::{Layer as _, Service};

mod support;
use support::*;

#[global_allocator]
static ALLOC: dhat::Alloc = dhat::Alloc;

/// The stacks counted, as `budgets.rs` names them.
const STACKS: [&str; 10] = [
    "bare",
    "sampled",
    "sampled_out",
    "sampled_out_tail",
    "root",
    "oit",
    "oit_sampled_out",
    "oit_root",
    "alternative",
    "alternative_sampled_out",
];

const WARM_UP: u64 = 50;
const COUNTED: u64 = 200;

/// Allocations and bytes per request of `service`, requests made by `make`.
fn count<S>(
    mut service: S,
    recorder: Option<&'static dyn metrics::Recorder>,
    make: impl Fn() -> Request<String>,
) -> (f64, f64)
where
    S: Service<Request<String>>,
    S::Response: IntoBody,
    S::Error: std::fmt::Debug,
{
    let rt = tokio::runtime::Builder::new_current_thread()
        .build()
        .expect("runtime");
    let mut call = |request| {
        let serve = || rt.block_on(serve_once(&mut service, request));
        match recorder {
            Some(recorder) => metrics::with_local_recorder(recorder, serve),
            None => serve(),
        }
    };
    for _ in 0..WARM_UP {
        call(make());
    }
    let requests: Vec<_> = (0..COUNTED).map(|_| make()).collect();
    let before = dhat::HeapStats::get();
    for request in requests {
        call(request);
    }
    let after = dhat::HeapStats::get();
    let per = |n: u64| n as f64 / COUNTED as f64;
    (
        per(after.total_blocks - before.total_blocks),
        per(after.total_bytes - before.total_bytes),
    )
}

/// Counts `stack` in this process.
fn run(stack: &str) -> Option<(f64, f64)> {
    let sampled = !stack.contains("sampled_out");
    let incoming = if sampled {
        INCOMING
    } else {
        INCOMING_UNSAMPLED
    };
    let make = move || request(incoming);
    Some(match stack {
        "bare" => count(bare(), None, make),
        "sampled" | "sampled_out" | "sampled_out_tail" => {
            let (recorder, _handle) =
                prometheus_recorder(LabelGuard::default(), &MetricNames::default())
                    .expect("recorder");
            let recorder = lasting(recorder);
            let (sampler, stored) = if sampled {
                (Sampler::AlwaysOn, STORED)
            } else {
                (Sampler::TraceIdRatioBased(0.01), STORED_UNSAMPLED)
            };
            let provider = if stack == "sampled_out_tail" {
                instrument_provider_with_tail(sampler)
            } else {
                instrument_provider(sampler)
            };
            let counted = count(full(&provider, stored).layer(bare()), Some(recorder), make);
            drop(provider);
            counted
        }
        "root" => {
            let (recorder, _handle) =
                prometheus_recorder(LabelGuard::default(), &MetricNames::default())
                    .expect("recorder");
            let provider = instrument_provider(Sampler::AlwaysOn);
            let service = full_sampling_roots(&provider, STORED).layer(bare());
            let counted = count(service, Some(lasting(recorder)), root_request);
            drop(provider);
            counted
        }
        "oit" | "oit_sampled_out" => {
            let _providers = oit_globals();
            count(oit(), None, make)
        }
        "oit_root" => {
            let _providers = oit_globals();
            count(oit(), None, root_request)
        }
        "alternative" | "alternative_sampled_out" => {
            let _provider = alternative_subscriber();
            let recorder: &'static _ = Box::leak(Box::new(
                metrics_exporter_prometheus::PrometheusBuilder::new().build_recorder(),
            ));
            count(alternative(), Some(recorder), make)
        }
        _ => return None,
    })
}

fn main() -> ExitCode {
    // `ALLOCATIONS_PROFILE=1 .../allocations --stack sampled` writes `dhat-heap.json`
    // (every allocation site, for `dh_view` or a script) instead of only counting.
    let _profiler = if std::env::var_os("ALLOCATIONS_PROFILE").is_some() {
        dhat::Profiler::new_heap()
    } else {
        dhat::Profiler::builder().testing().build()
    };
    let args: Vec<String> = std::env::args().skip(1).collect();
    if let [flag, stack] = args.as_slice() {
        if flag == "--stack" {
            let Some((allocations, bytes)) = run(stack) else {
                eprintln!("allocations: unknown stack {stack}");
                return ExitCode::from(2);
            };
            println!("allocations/{stack} {allocations:.0} {bytes:.0}");
            return ExitCode::SUCCESS;
        }
    }
    // `cargo bench` passes `--bench` (and a filter, when given): run every stack.
    let Ok(exe) = std::env::current_exe() else {
        eprintln!("allocations: no path to this program");
        return ExitCode::FAILURE;
    };
    for stack in STACKS {
        match Command::new(&exe).args(["--stack", stack]).output() {
            Ok(out) if out.status.success() => print!("{}", String::from_utf8_lossy(&out.stdout)),
            Ok(out) => {
                eprintln!(
                    "allocations: {stack} failed: {}",
                    String::from_utf8_lossy(&out.stderr)
                );
                return ExitCode::FAILURE;
            }
            Err(e) => {
                eprintln!("allocations: {stack}: {e}");
                return ExitCode::FAILURE;
            }
        }
    }
    ExitCode::SUCCESS
}
