//! Instruction counts of the hot paths under callgrind (gungraun), checked against the
//! budgets in `benches/budgets.txt` by `.ci/check-budgets`: a regression fails CI
//! deterministically, without timing anything.
//!
//! Each benchmark runs once in a process of its own; its setup (building the stack,
//! warming the caches and lazy statics with a few calls) is not counted, only the one
//! measured call is. Setups leak what they build, so that tearing it down (a runtime,
//! a tracer provider, a redactor's automata) is not counted either.
//!
//! ```text
//! cargo install gungraun-runner --version 0.18.2   # once; must match gungraun's version
//! cargo bench --bench budgets
//! ```

use std::hint::black_box;

use gungraun::{library_benchmark, library_benchmark_group, main};
use http::Request;
use instrument::cardinality::LabelGuard;
use instrument::context::TraceParent;
use instrument::pipeline::prometheus_recorder;
use instrument::redact::Redactor;
use instrument::semconv::MetricNames;
use metrics::Key;
use opentelemetry_sdk::trace::Sampler;
use tower::Layer as _;

mod support;
use support::*;

/// A request through the full instrument stack, ready to be measured once.
pub struct Stack {
    call: Box<dyn FnMut(Request<String>) -> usize>,
    request: Option<Request<String>>,
}

impl Stack {
    /// `service` called on a runtime of its own under `recorder` (none: the global
    /// one), warmed with three requests (caches, handles, lazy statics), then leaked
    /// with the one request the benchmark measures. `keep` lives as long.
    fn ready<S>(
        service: S,
        recorder: Option<&'static dyn metrics::Recorder>,
        incoming: &'static str,
        keep: impl Sized + 'static,
    ) -> &'static mut Self
    where
        S: tower::Service<Request<String>> + 'static,
        S::Response: IntoBody,
        S::Error: std::fmt::Debug,
    {
        Self::ready_with(service, recorder, move || request(incoming), keep)
    }

    /// [`ready`](Self::ready) with requests made by `make`.
    fn ready_with<S>(
        mut service: S,
        recorder: Option<&'static dyn metrics::Recorder>,
        make: impl Fn() -> Request<String>,
        keep: impl Sized + 'static,
    ) -> &'static mut Self
    where
        S: tower::Service<Request<String>> + 'static,
        S::Response: IntoBody,
        S::Error: std::fmt::Debug,
    {
        let rt = tokio::runtime::Builder::new_current_thread()
            .build()
            .expect("runtime");
        let mut call = move |request: Request<String>| {
            let _keep = &keep;
            let serve = || rt.block_on(serve_once(&mut service, request));
            match recorder {
                Some(recorder) => metrics::with_local_recorder(recorder, serve),
                None => serve(),
            }
        };
        for _ in 0..3 {
            call(make());
        }
        Box::leak(Box::new(Self {
            call: Box::new(call),
            request: Some(make()),
        }))
    }
}

/// The trivial service alone: the floor the stack's counts are read against.
fn bare_stack() -> &'static mut Stack {
    Stack::ready(bare(), None, INCOMING, ())
}

fn stack(sampled: bool) -> &'static mut Stack {
    stack_with(sampled, instrument_provider)
}

/// The sampled-out request of [`stack`] under tail bias (kept when it fails or takes a
/// second; it does neither).
fn tail_stack() -> &'static mut Stack {
    stack_with(false, instrument_provider_with_tail)
}

fn stack_with(
    sampled: bool,
    provider: fn(Sampler) -> opentelemetry_sdk::trace::SdkTracerProvider,
) -> &'static mut Stack {
    let (recorder, _handle) =
        prometheus_recorder(LabelGuard::default(), &MetricNames::default()).expect("recorder");
    // Lasting, as the recorder a server installs: the layer keeps its metric handles.
    let recorder = lasting(recorder);
    let (sampler, stored, incoming) = if sampled {
        (Sampler::AlwaysOn, STORED, INCOMING)
    } else {
        (
            Sampler::TraceIdRatioBased(0.01),
            STORED_UNSAMPLED,
            INCOMING_UNSAMPLED,
        )
    };
    let provider = provider(sampler);
    let service = full(&provider, stored).layer(bare());
    Stack::ready(service, Some(recorder), incoming, provider)
}

/// A request that starts a trace ([`root_request`]) under the SDK's default sampler
/// (parent-based, every root sampled), the layer told the sampler as `pipeline::init`'s
/// provider tells it.
fn root_stack() -> &'static mut Stack {
    let (recorder, _handle) =
        prometheus_recorder(LabelGuard::default(), &MetricNames::default()).expect("recorder");
    let recorder = lasting(recorder);
    let provider = instrument_provider(Sampler::AlwaysOn);
    let service = full_sampling_roots(&provider, STORED).layer(bare());
    Stack::ready_with(service, Some(recorder), root_request, provider)
}

/// The peer (`support::oit`) given the same request that starts a trace.
fn oit_root_stack() -> &'static mut Stack {
    // The providers first: the layer takes the global meter as it is built.
    let providers = oit_globals();
    Stack::ready_with(oit(), None, root_request, providers)
}

/// What teams use today (`support::alternative`), measured the same way: its
/// instructions over `bare` against the stack's are the issue's 25 % target, counted.
fn alternative_stack(sampled: bool) -> &'static mut Stack {
    let provider = alternative_subscriber();
    let recorder = leaked(metrics_exporter_prometheus::PrometheusBuilder::new().build_recorder());
    let incoming = if sampled {
        INCOMING
    } else {
        INCOMING_UNSAMPLED
    };
    Stack::ready(alternative(), Some(recorder), incoming, provider)
}

/// opentelemetry-instrumentation-tower (`support::oit`), the leanest peer, measured the
/// same way (its metrics go to the SDK's meter provider, not to a `metrics` recorder).
fn oit_stack(sampled: bool) -> &'static mut Stack {
    let providers = oit_globals();
    let incoming = if sampled {
        INCOMING
    } else {
        INCOMING_UNSAMPLED
    };
    Stack::ready(oit(), None, incoming, providers)
}

/// `recorder` for the rest of the program, not declared lasting: nothing of the
/// alternative keeps metric handles anyway (it registers on every request, as
/// axum-prometheus does).
fn leaked<R: metrics::Recorder + 'static>(recorder: R) -> &'static R {
    Box::leak(Box::new(recorder))
}

#[library_benchmark]
#[bench::bare(setup = bare_stack)]
#[bench::sampled(setup = stack, args = (true))]
#[bench::sampled_out(setup = stack, args = (false))]
#[bench::sampled_out_tail(setup = tail_stack)]
#[bench::root(setup = root_stack)]
#[bench::alternative(setup = alternative_stack, args = (true))]
#[bench::alternative_sampled_out(setup = alternative_stack, args = (false))]
#[bench::oit(setup = oit_stack, args = (true))]
#[bench::oit_sampled_out(setup = oit_stack, args = (false))]
#[bench::oit_root(setup = oit_root_stack)]
fn full_stack_request(stack: &'static mut Stack) -> usize {
    let request = stack.request.take().expect("one call per process");
    black_box((stack.call)(request))
}

/// One outgoing call through the client layer (or the usual tracing span +
/// propagator, `usual`), in a task's context, ready to be measured once.
fn client_stack(which: &str) -> &'static mut Stack {
    let (recorder, _handle) =
        prometheus_recorder(LabelGuard::default(), &MetricNames::default()).expect("recorder");
    let recorder = lasting(recorder);
    match which {
        "bare" => Stack::ready_with(
            Under {
                inner: bare(),
                cx: task_context(STORED),
            },
            Some(recorder),
            client_request,
            (),
        ),
        "sampled" | "sampled_out" => {
            let (sampler, stored) = if which == "sampled" {
                (Sampler::AlwaysOn, STORED)
            } else {
                (Sampler::TraceIdRatioBased(0.01), STORED_UNSAMPLED)
            };
            let provider = instrument_provider(sampler);
            let client = Under {
                inner: instrument_client(&provider),
                cx: task_context(stored),
            };
            Stack::ready_with(client, Some(recorder), client_request, provider)
        }
        usual => {
            let provider = alternative_subscriber();
            let stored = if usual == "usual" {
                STORED
            } else {
                STORED_UNSAMPLED
            };
            let client = Under {
                inner: UsualClient(bare()),
                cx: task_context(stored),
            };
            let plain =
                leaked(metrics_exporter_prometheus::PrometheusBuilder::new().build_recorder());
            Stack::ready_with(client, Some(plain), client_request, provider)
        }
    }
}

#[library_benchmark]
#[bench::bare(setup = client_stack, args = ("bare"))]
#[bench::sampled(setup = client_stack, args = ("sampled"))]
#[bench::sampled_out(setup = client_stack, args = ("sampled_out"))]
#[bench::usual(setup = client_stack, args = ("usual"))]
#[bench::usual_sampled_out(setup = client_stack, args = ("usual_sampled_out"))]
fn client_call(stack: &'static mut Stack) -> usize {
    let request = stack.request.take().expect("one call per process");
    black_box((stack.call)(request))
}

#[library_benchmark]
fn traceparent_parse() -> bool {
    black_box(TraceParent::parse(black_box(STORED))).is_ok()
}

/// A redactor warmed with `seen` (automata, lazy statics, the thread's memo of clean
/// values allocated).
fn redactor(seen: &str) -> &'static Redactor {
    let redactor = Box::leak(Box::new(Redactor::default()));
    black_box(redactor.redact_attribute("note", seen));
    redactor
}

// `clean_64b`: a value seen for the first time (scanned, then remembered);
// `clean_64b_repeated`: the same value again (found in the memo).
#[library_benchmark]
#[bench::clean_64b(setup = redactor, args = (CLEAN_64B_OTHER))]
#[bench::clean_64b_repeated(setup = redactor, args = (CLEAN_64B))]
fn redact_clean_attribute(redactor: &Redactor) -> usize {
    black_box(redactor.redact_attribute(black_box("note"), black_box(CLEAN_64B))).len()
}

fn admitted() -> &'static (LabelGuard, Key) {
    let guard = LabelGuard::default();
    let key = requests_key();
    guard.admit(&key).expect("admitted");
    Box::leak(Box::new((guard, key)))
}

#[library_benchmark]
#[bench::admitted(setup = admitted)]
fn guard_fast_path((guard, key): &(LabelGuard, Key)) -> bool {
    black_box(guard.admit(black_box(key))).is_ok()
}

/// A trivial task handler, ready to be called once: plain, with `#[workflow_span]`
/// (through the pipeline's processors and the guarded recorder, declared lasting), or
/// with `#[tracing::instrument]` + tracing-opentelemetry (a plain provider and
/// recorder), as `handler/*` in `overhead.rs`.
pub struct Handler {
    call: Box<dyn FnMut(&Task) -> usize>,
    /// The measured call's task, with an id the warm-up calls did not use.
    task: Task,
}

/// What the handler is wrapped in.
#[derive(Clone, Copy)]
pub enum Wrap {
    Plain,
    WorkflowSpan,
    /// Under an unsampled caller, `parentbased_traceidratio` 0.01: the call at 1 %.
    WorkflowSpanSampledOut,
    TracingInstrument,
}

fn handler(wrap: Wrap) -> &'static mut Handler {
    let rt = tokio::runtime::Builder::new_current_thread()
        .build()
        .expect("runtime");
    let mut call: Box<dyn FnMut(&Task) -> usize> = match wrap {
        Wrap::Plain => Box::new(move |task| rt.block_on(plain(task)).unwrap_or(0)),
        Wrap::WorkflowSpan => {
            opentelemetry::global::set_tracer_provider(instrument_provider(Sampler::AlwaysOn));
            let (recorder, _handle) =
                prometheus_recorder(LabelGuard::default(), &MetricNames::default())
                    .expect("recorder");
            let recorder = lasting(recorder);
            Box::new(move |task| {
                metrics::with_local_recorder(recorder, || {
                    rt.block_on(with_workflow_span(task)).unwrap_or(0)
                })
            })
        }
        Wrap::WorkflowSpanSampledOut => {
            let provider = instrument_provider(Sampler::TraceIdRatioBased(0.01));
            opentelemetry::global::set_tracer_provider(provider);
            let (recorder, _handle) =
                prometheus_recorder(LabelGuard::default(), &MetricNames::default())
                    .expect("recorder");
            let recorder = lasting(recorder);
            let caller = instrument::context::restore(Some(INCOMING_UNSAMPLED)).to_context();
            Box::new(move |task| {
                let _caller = caller.clone().attach();
                metrics::with_local_recorder(recorder, || {
                    rt.block_on(with_workflow_span(task)).unwrap_or(0)
                })
            })
        }
        Wrap::TracingInstrument => {
            let provider = alternative_subscriber();
            let recorder = metrics_exporter_prometheus::PrometheusBuilder::new().build_recorder();
            Box::new(move |task| {
                let _keep = &provider;
                metrics::with_local_recorder(&recorder, || {
                    rt.block_on(with_tracing_instrument(task)).unwrap_or(0)
                })
            })
        }
    };
    for n in 0..3 {
        call(&task(n));
    }
    Box::leak(Box::new(Handler {
        call,
        task: task(3),
    }))
}

#[library_benchmark]
#[bench::plain(setup = handler, args = (Wrap::Plain))]
#[bench::workflow_span(setup = handler, args = (Wrap::WorkflowSpan))]
#[bench::workflow_span_sampled_out(setup = handler, args = (Wrap::WorkflowSpanSampledOut))]
#[bench::tracing_instrument_otel(setup = handler, args = (Wrap::TracingInstrument))]
fn handler_call(handler: &'static mut Handler) -> usize {
    black_box((handler.call)(&handler.task))
}

library_benchmark_group!(
    name = hot_paths;
    benchmarks = full_stack_request, client_call, handler_call, traceparent_parse, redact_clean_attribute,
        guard_fast_path
);

main!(library_benchmark_groups = hot_paths);
