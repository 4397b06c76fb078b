//! `#[workflow_span]` at run time: the exact spans (names, parents, attributes,
//! statuses) through the SDK's in-memory exporter and the exact metrics through a
//! debugging recorder, for every way a call can end.
#![cfg(not(feature = "disabled"))]

use std::collections::HashMap;
use std::fmt;
use std::future::Future;
use std::sync::{Mutex, MutexGuard, OnceLock};
use std::task::{Context as TaskContext, Poll};
use std::time::{Duration, SystemTime};

use instrument::tenant::{current_tenant, TenantId};
use instrument::workflow_span;
use metrics_util::debugging::{DebugValue, DebuggingRecorder, Snapshotter};
use opentelemetry::trace::{SpanId, Status, TraceId};
use opentelemetry::Value;
use opentelemetry_sdk::trace::{InMemorySpanExporter, SdkTracerProvider, SpanData};

const STORED: &str = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";

/// The exporter behind the process-wide provider, installed once.
fn exporter() -> &'static InMemorySpanExporter {
    static EXPORTER: OnceLock<InMemorySpanExporter> = OnceLock::new();
    EXPORTER.get_or_init(|| {
        let exporter = InMemorySpanExporter::default();
        let provider = SdkTracerProvider::builder()
            .with_simple_exporter(exporter.clone())
            .build();
        opentelemetry::global::set_tracer_provider(provider);
        exporter
    })
}

/// Tests share the global provider: one at a time.
fn serial() -> MutexGuard<'static, ()> {
    static LOCK: Mutex<()> = Mutex::new(());
    LOCK.lock().unwrap_or_else(|e| e.into_inner())
}

/// Metric values by `name{label=value,...}` (labels sorted); histograms as sample counts.
type Metrics = HashMap<String, f64>;

/// Runs `f` with a fresh exporter and a local recorder: its result, the spans ended,
/// the metrics recorded.
fn observe<R>(f: impl FnOnce() -> R) -> (R, Vec<SpanData>, Metrics) {
    let _serial = serial();
    let exporter = exporter();
    exporter.reset();
    let recorder = DebuggingRecorder::new();
    let snapshotter = recorder.snapshotter();
    let result = metrics::with_local_recorder(&recorder, f);
    let spans = exporter.get_finished_spans().unwrap();
    (result, spans, metrics_of(&snapshotter))
}

/// What `snapshotter`'s recorder holds, as [`Metrics`].
fn metrics_of(snapshotter: &Snapshotter) -> Metrics {
    let mut metrics = Metrics::new();
    for (key, _, _, value) in snapshotter.snapshot().into_vec() {
        let mut labels: Vec<String> = key
            .key()
            .labels()
            .map(|l| format!("{}={}", l.key(), l.value()))
            .collect();
        labels.sort();
        let name = format!("{}{{{}}}", key.key().name(), labels.join(","));
        let value = match value {
            DebugValue::Counter(n) => n as f64,
            DebugValue::Gauge(g) => g.into_inner(),
            DebugValue::Histogram(samples) => samples.len() as f64,
        };
        metrics.insert(name, value);
    }
    metrics
}

fn block_on<F: Future>(future: F) -> F::Output {
    tokio::runtime::Builder::new_current_thread()
        .enable_time()
        .build()
        .unwrap()
        .block_on(future)
}

fn span<'a>(spans: &'a [SpanData], name: &str) -> &'a SpanData {
    spans
        .iter()
        .find(|s| s.name == name)
        .unwrap_or_else(|| panic!("no span {name} in {:?}", names(spans)))
}

fn names(spans: &[SpanData]) -> Vec<&str> {
    spans.iter().map(|s| s.name.as_ref()).collect()
}

fn attr(span: &SpanData, key: &str) -> Option<Value> {
    span.attributes
        .iter()
        .find(|kv| kv.key.as_str() == key)
        .map(|kv| kv.value.clone())
}

fn attr_str(span: &SpanData, key: &str) -> Option<String> {
    attr(span, key).map(|v| v.as_str().into_owned())
}

/// The message of the span's `exception` event (the exception conventions).
fn exception_message(span: &SpanData) -> Option<String> {
    let event = span.events.iter().find(|e| e.name == "exception")?;
    event
        .attributes
        .iter()
        .find(|kv| kv.key.as_str() == "exception.message")
        .map(|kv| kv.value.as_str().into_owned())
}

fn attr_i64(span: &SpanData, key: &str) -> i64 {
    match attr(span, key) {
        Some(Value::I64(n)) => n,
        other => panic!("{key} = {other:?} on {}", span.name),
    }
}

#[derive(Debug)]
struct Failure(String);

impl fmt::Display for Failure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

struct Request {
    tenant: String,
    workflow_id: String,
    queue: String,
    input: String,
}

fn request() -> Request {
    Request {
        tenant: "acme".into(),
        workflow_id: "wf-1".into(),
        queue: "main".into(),
        input: "{}".into(),
    }
}

#[workflow_span(
    kind = "workflow",
    name = "workflow.complete",
    tenant = req.tenant,
    id = req.workflow_id,
    fields(task.queue = req.queue, password = "hunter2"),
)]
async fn complete(req: Request, fail: Option<String>) -> Result<usize, Failure> {
    // Arguments named in the attribute are still the body's to move.
    let input = req.input;
    assert_eq!(
        current_tenant().as_ref().map(TenantId::as_str),
        Some("acme")
    );
    match fail {
        Some(text) => Err(Failure(text)),
        None => Ok(input.len()),
    }
}

#[test]
fn ok_records_the_handler_span_a_completion_span_and_metrics() {
    let (result, spans, metrics) = observe(|| block_on(complete(request(), None)));
    assert_eq!(result.unwrap(), 2);
    assert_eq!(names(&spans).len(), 2, "{:?}", names(&spans));
    let handler = span(&spans, "workflow.complete");
    let completed = span(&spans, "workflow.completed");
    assert_eq!(attr_str(handler, "tenant.id").as_deref(), Some("acme"));
    assert_eq!(attr_str(handler, "workflow.id").as_deref(), Some("wf-1"));
    assert_eq!(attr_str(handler, "task.queue").as_deref(), Some("main"));
    assert_eq!(attr_str(handler, "password").as_deref(), Some("[REDACTED]"));
    assert_eq!(handler.span_kind, opentelemetry::trace::SpanKind::Internal);
    assert_eq!(handler.status, Status::Unset);
    assert_eq!(handler.parent_span_id, SpanId::INVALID, "a root");
    // The handler span is a root: the completion span is its child, in its trace.
    assert_eq!(
        completed.span_context.trace_id(),
        handler.span_context.trace_id()
    );
    assert_eq!(completed.parent_span_id, handler.span_context.span_id());
    assert_eq!(attr_str(completed, "tenant.id").as_deref(), Some("acme"));
    assert_eq!(attr_str(completed, "workflow.id").as_deref(), Some("wf-1"));
    assert_eq!(attr_str(completed, "task.queue").as_deref(), Some("main"));
    assert_eq!(
        attr_str(completed, "password").as_deref(),
        Some("[REDACTED]")
    );
    assert!(attr_i64(completed, "execution_duration_ms") >= 0);
    assert_eq!(attr(completed, "total_duration_ms"), None);
    assert_eq!(completed.status, Status::Unset);
    assert_eq!(
        metrics["instrument_workflows_started_total{name=workflow.complete,tenant_id=acme}"],
        1.0
    );
    assert_eq!(
        metrics["instrument_workflows_completed_total{name=workflow.complete,tenant_id=acme}"],
        1.0
    );
    assert_eq!(
        metrics["instrument_workflow_duration_seconds{name=workflow.complete,status=completed,tenant_id=acme}"],
        1.0
    );
    assert!(!metrics.keys().any(|k| k.contains("failed")), "{metrics:?}");
}

/// Under a lasting recorder each site keeps its metric handles per tenant and way of
/// ending; counts stay exact across calls, tenants and outcomes.
#[test]
fn a_lasting_recorder_gets_exact_counts_from_kept_handles() {
    let _serial = serial();
    let recorder: &'static DebuggingRecorder = Box::leak(Box::new(DebuggingRecorder::new()));
    assert!(instrument::cardinality::keep_handles_for(recorder));
    let snapshotter = recorder.snapshotter();
    #[workflow_span(kind = "task", tenant = tenant)]
    fn counted(tenant: &str, fail: bool) -> Result<(), Failure> {
        if fail {
            return Err(Failure("boom".into()));
        }
        Ok(())
    }
    metrics::with_local_recorder(recorder, || {
        for tenant in ["acme", "globex", "acme"] {
            counted(tenant, false).unwrap();
        }
        counted("acme", true).unwrap_err();
    });
    let counts = metrics_of(&snapshotter);
    let count = |name: &str, tenant: &str| {
        counts[&format!("instrument_tasks_{name}_total{{name=task.counted,tenant_id={tenant}}}")]
    };
    assert_eq!(count("started", "acme"), 3.0);
    assert_eq!(count("completed", "acme"), 2.0);
    assert_eq!(
        counts["instrument_tasks_failed_total{error_type=workflow_span::Failure,name=task.counted,tenant_id=acme}"],
        1.0
    );
    assert_eq!(count("started", "globex"), 1.0);
    assert_eq!(count("completed", "globex"), 1.0);
}

/// `labels(...)` label the site's metrics, per value, with the handles kept per tenant
/// and label values under a lasting recorder.
#[test]
fn declared_labels_label_the_metrics_per_value() {
    let _serial = serial();
    let recorder: &'static DebuggingRecorder = Box::leak(Box::new(DebuggingRecorder::new()));
    assert!(instrument::cardinality::keep_handles_for(recorder));
    let snapshotter = recorder.snapshotter();
    #[workflow_span(kind = "task", tenant = tenant, labels(task_type = kind, task_queue = "main"))]
    fn typed(tenant: &str, kind: &str) -> Result<(), Failure> {
        Ok(())
    }
    metrics::with_local_recorder(recorder, || {
        for (tenant, kind) in [
            ("acme", "charge"),
            ("acme", "charge"),
            ("acme", "refund"),
            ("globex", "charge"),
        ] {
            typed(tenant, kind).unwrap();
        }
    });
    let counts = metrics_of(&snapshotter);
    let count = |name: &str, tenant: &str, kind: &str| {
        counts[&format!(
            "instrument_tasks_{name}_total{{name=task.typed,task_queue=main,task_type={kind},tenant_id={tenant}}}"
        )]
    };
    assert_eq!(count("started", "acme", "charge"), 2.0);
    assert_eq!(count("completed", "acme", "charge"), 2.0);
    assert_eq!(count("completed", "acme", "refund"), 1.0);
    assert_eq!(count("completed", "globex", "charge"), 1.0);
    assert_eq!(
        counts["instrument_task_handler_seconds{name=task.typed,status=completed,task_queue=main,task_type=refund,tenant_id=acme}"],
        1.0
    );
}

#[test]
fn err_fails_with_the_redacted_error_cut_to_one_kib() {
    let text = format!(
        "charge failed for card 4111 1111 1111 1111, password=hunter2 {}",
        "x".repeat(10 * 1024)
    );
    let (result, spans, metrics) = observe(|| block_on(complete(request(), Some(text))));
    assert!(result.is_err());
    let failed = span(&spans, "workflow.failed");
    assert_eq!(attr_str(failed, "error"), None, "no bare `error` attribute");
    assert_eq!(
        attr_str(failed, "error.type").as_deref(),
        Some("workflow_span::Failure"),
        "the error's type is its class"
    );
    let error = exception_message(failed).expect("an exception event");
    assert!(error.len() <= 1024 && error.len() > 900, "{}", error.len());
    assert!(
        !error.contains("4111 1111") && !error.contains("hunter2"),
        "{error}"
    );
    assert!(error.contains("charge failed"));
    assert_eq!(failed.status, Status::error(error.clone()));
    assert_eq!(
        span(&spans, "workflow.complete").status,
        Status::error(error)
    );
    assert_eq!(
        metrics["instrument_workflows_failed_total{error_type=workflow_span::Failure,name=workflow.complete,tenant_id=acme}"],
        1.0
    );
    assert_eq!(
        metrics["instrument_workflow_duration_seconds{error_type=workflow_span::Failure,name=workflow.complete,status=failed,tenant_id=acme}"],
        1.0
    );
}

#[derive(Debug)]
enum Refusal {
    Busy,
}

impl fmt::Display for Refusal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("the queue is busy")
    }
}

impl instrument::work::ErrorType for Refusal {
    fn error_type(&self) -> std::borrow::Cow<'static, str> {
        match self {
            Self::Busy => "busy".into(),
        }
    }
}

#[workflow_span(kind = "task", tenant = "acme")]
fn refused() -> Result<(), Refusal> {
    Err(Refusal::Busy)
}

#[workflow_span(kind = "task", tenant = "acme")]
fn unavailable() -> Result<(), tonic::Status> {
    Err(tonic::Status::unavailable("the store is down"))
}

#[workflow_span(kind = "task", tenant = "acme")]
fn io_failure() -> Result<(), std::io::Error> {
    Err(std::io::ErrorKind::TimedOut.into())
}

#[workflow_span(kind = "task", tenant = "acme")]
fn stringly() -> Result<(), String> {
    Err("it broke".to_owned())
}

/// `impl Trait` in the `Ok` type: the error is still classed by its type.
#[workflow_span(kind = "task", tenant = "acme")]
fn opaque_ok(fail: bool) -> Result<impl std::fmt::Display, std::io::Error> {
    if fail {
        Err(std::io::ErrorKind::TimedOut.into())
    } else {
        Ok(1u8)
    }
}

#[test]
fn an_opaque_ok_type_is_classed_by_its_error() {
    let (_, spans, _) = observe(|| {
        let _ = opaque_ok(true);
    });
    let handler = span(&spans, "task.opaque_ok");
    assert_eq!(attr_str(handler, "error.type").as_deref(), Some("TimedOut"));
    let failed = span(&spans, "task.failed");
    assert_eq!(attr_str(failed, "error.type").as_deref(), Some("TimedOut"));
}

#[test]
fn failures_are_classed_as_the_layers_class_them_in_spans_and_metrics() {
    let (_, spans, metrics) = observe(|| {
        let _ = (refused(), unavailable(), io_failure(), stringly());
    });
    let classes: Vec<(String, Option<String>)> = spans
        .iter()
        .filter(|s| s.name == "task.failed")
        .map(|s| {
            (
                attr_str(s, "name").unwrap_or_default(),
                attr_str(s, "error.type"),
            )
        })
        .collect();
    let class_of = |name: &str| {
        spans
            .iter()
            .find(|s| s.name == name)
            .and_then(|s| attr_str(s, "error.type"))
    };
    // The handler spans carry the class too.
    assert_eq!(class_of("task.refused").as_deref(), Some("busy"));
    assert_eq!(
        class_of("task.unavailable").as_deref(),
        Some("UNAVAILABLE"),
        "the gRPC code's name, as the layers write it"
    );
    assert_eq!(class_of("task.io_failure").as_deref(), Some("TimedOut"));
    assert_eq!(class_of("task.stringly").as_deref(), Some("_OTHER"));
    // The exception event names what failed: the error's type.
    let exception_type = |name: &str| {
        let span = spans.iter().find(|s| s.name == name)?;
        let event = span.events.iter().find(|e| e.name == "exception")?;
        let kv = event
            .attributes
            .iter()
            .find(|kv| kv.key.as_str() == "exception.type")?;
        Some(kv.value.as_str().into_owned())
    };
    assert_eq!(
        exception_type("task.unavailable").as_deref(),
        Some("tonic::status::Status")
    );
    assert_eq!(
        exception_type("task.stringly").as_deref(),
        Some("alloc::string::String")
    );
    assert_eq!(classes.len(), 4, "{classes:?}");
    for (class, series) in [
        ("busy", "refused"),
        ("UNAVAILABLE", "unavailable"),
        ("TimedOut", "io_failure"),
        ("_OTHER", "stringly"),
    ] {
        assert_eq!(
            metrics[&format!("instrument_tasks_failed_total{{error_type={class},name=task.{series},tenant_id=acme}}")],
            1.0
        );
    }
}

#[workflow_span(kind = "task", tenant = "acme")]
fn lookup(found: bool) -> Option<u8> {
    found.then_some(7)
}

#[test]
fn none_fails_and_some_completes() {
    let (_, spans, metrics) = observe(|| (lookup(true), lookup(false)));
    assert_eq!(
        names(&spans)
            .iter()
            .filter(|n| **n == "task.lookup")
            .count(),
        2
    );
    let failed = span(&spans, "task.failed");
    assert_eq!(exception_message(failed).as_deref(), Some("returned None"));
    assert_eq!(attr_str(failed, "error.type").as_deref(), Some("_OTHER"));
    span(&spans, "task.completed");
    assert_eq!(
        metrics["instrument_tasks_completed_total{name=task.lookup,tenant_id=acme}"],
        1.0
    );
    assert_eq!(
        metrics["instrument_tasks_failed_total{error_type=_OTHER,name=task.lookup,tenant_id=acme}"],
        1.0
    );
}

#[workflow_span(kind = "task", tenant = tenant)]
fn explode(tenant: &str) -> u8 {
    panic!("boom in {tenant}")
}

#[workflow_span(kind = "task", tenant = tenant)]
async fn explode_later(tenant: String) -> u8 {
    tokio::task::yield_now().await;
    panic!("boom later")
}

#[test]
fn a_panic_fails_the_call_and_keeps_unwinding() {
    let (caught, spans, metrics) = observe(|| {
        (
            std::panic::catch_unwind(|| explode("acme")),
            std::panic::catch_unwind(|| block_on(explode_later("acme".into()))),
        )
    });
    assert!(
        caught.0.is_err() && caught.1.is_err(),
        "the panics continued"
    );
    let errors: Vec<String> = spans
        .iter()
        .filter(|s| s.name == "task.failed")
        .filter_map(exception_message)
        .collect();
    assert_eq!(errors, ["panicked: boom in acme", "panicked: boom later"]);
    assert!(spans
        .iter()
        .filter(|s| s.name == "task.failed")
        .all(|s| attr_str(s, "error.type").as_deref() == Some("panic")));
    assert_eq!(
        metrics["instrument_tasks_failed_total{error_type=panic,name=task.explode,tenant_id=acme}"],
        1.0
    );
    assert_eq!(
        metrics["instrument_tasks_failed_total{error_type=panic,name=task.explode_later,tenant_id=acme}"],
        1.0
    );
}

#[workflow_span(kind = "workflow", tenant = "acme", id = id)]
async fn wait_forever(id: u64) {
    std::future::pending::<()>().await
}

#[test]
fn a_dropped_future_is_cancelled() {
    let (_, spans, metrics) = observe(|| {
        let mut future = Box::pin(wait_forever(42));
        let waker = std::task::Waker::noop();
        let polled = future.as_mut().poll(&mut TaskContext::from_waker(waker));
        assert!(matches!(polled, Poll::Pending));
        drop(future);
    });
    let cancelled = span(&spans, "workflow.cancelled");
    assert_eq!(attr(cancelled, "workflow.id"), Some(Value::I64(42)));
    assert_eq!(cancelled.status, Status::Unset);
    assert_eq!(
        metrics["instrument_workflows_cancelled_total{name=workflow.wait_forever,tenant_id=acme}"],
        1.0
    );
    assert_eq!(
        metrics["instrument_workflow_duration_seconds{name=workflow.wait_forever,status=cancelled,tenant_id=acme}"],
        1.0
    );
}

struct Row {
    traceparent: Option<String>,
    created_at: SystemTime,
}

#[workflow_span(
    kind = "workflow",
    tenant = "acme",
    traceparent = row.traceparent.as_deref(),
    started_at = row.created_at,
)]
fn resume(row: Row) -> Result<(), Failure> {
    drop(row);
    Ok(())
}

#[test]
fn a_stored_traceparent_is_the_parent_of_both_spans() {
    let row = Row {
        traceparent: Some(STORED.into()),
        created_at: SystemTime::now(),
    };
    let (_, spans, _) = observe(|| resume(row));
    let stored_trace = TraceId::from_hex("4bf92f3577b34da6a3ce929d0e0e4736").unwrap();
    let stored_span = SpanId::from_hex("00f067aa0ba902b7").unwrap();
    for name in ["workflow.resume", "workflow.completed"] {
        let s = span(&spans, name);
        assert_eq!(s.span_context.trace_id(), stored_trace, "{name}");
        assert_eq!(s.parent_span_id, stored_span, "{name}");
    }
}

#[workflow_span(kind = "task", tenant = "acme", traceparent = stored)]
fn capture_inside(stored: &str) -> Option<String> {
    instrument::context::capture().map(|tp| tp.to_string())
}

#[test]
fn the_random_flag_of_a_stored_traceparent_is_kept_sampled_or_not() {
    for (flags, expected) in [("02", "02"), ("03", "03"), ("00", "00")] {
        let stored = format!("00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-{flags}");
        let (captured, spans, _) = observe(|| capture_inside(&stored));
        let captured = captured.expect("a span is current");
        assert!(
            captured.ends_with(&format!("-{expected}")),
            "{flags}: {captured}"
        );
        assert!(captured.starts_with("00-4bf92f3577b34da6a3ce929d0e0e4736-"));
        // Sampled parents are recorded, unsampled ones are not.
        assert_eq!(!spans.is_empty(), flags != "02" && flags != "00", "{flags}");
    }
}

#[test]
fn a_corrupt_traceparent_starts_a_fresh_trace() {
    let row = Row {
        traceparent: Some("00-not-a-traceparent".into()),
        created_at: SystemTime::now(),
    };
    let (_, spans, _) = observe(|| resume(row));
    let handler = span(&spans, "workflow.resume");
    assert!(handler.span_context.is_valid());
    assert_eq!(handler.parent_span_id, SpanId::INVALID);
    let completed = span(&spans, "workflow.completed");
    assert_eq!(
        completed.span_context.trace_id(),
        handler.span_context.trace_id()
    );
}

#[test]
fn started_at_gives_the_total_duration_and_the_completion_start() {
    let minute_ago = SystemTime::now() - Duration::from_secs(60);
    let row = Row {
        traceparent: Some(STORED.into()),
        created_at: minute_ago,
    };
    let (_, spans, _) = observe(|| resume(row));
    let completed = span(&spans, "workflow.completed");
    assert!(attr_i64(completed, "total_duration_ms") >= 60_000);
    assert!(attr_i64(completed, "execution_duration_ms") < 10_000);
    assert_eq!(completed.start_time, minute_ago);
}

#[test]
fn an_invalid_tenant_is_unknown_in_metrics_and_absent_from_spans() {
    #[workflow_span(kind = "task", tenant = tenant)]
    fn anonymous(tenant: &str) -> u8 {
        1
    }
    let (_, spans, metrics) = observe(|| anonymous("not a tenant!"));
    assert_eq!(attr(span(&spans, "task.anonymous"), "tenant.id"), None);
    assert_eq!(
        metrics["instrument_tasks_completed_total{name=task.anonymous,tenant_id=unknown}"],
        1.0
    );
}

struct Worker {
    id: String,
}

#[tonic::async_trait]
trait Handler {
    async fn handle(&self, tenant: TenantId) -> Result<u8, Failure>;
}

#[tonic::async_trait]
impl Handler for Worker {
    #[workflow_span(kind = "task", tenant = tenant, fields(worker.id = self.id))]
    async fn handle(&self, tenant: TenantId) -> Result<u8, Failure> {
        tokio::task::yield_now().await;
        // A span started in the body is the handler span's child.
        use opentelemetry::trace::{Tracer as _, TracerProvider as _};
        let tracer = opentelemetry::global::tracer_provider().tracer("test");
        drop(tracer.start("inner"));
        assert_eq!(current_tenant(), Some(tenant));
        Ok(1)
    }
}

#[test]
fn async_trait_methods_are_instrumented_around_the_future() {
    let worker = Worker { id: "w-1".into() };
    let tenant = TenantId::parse("acme").unwrap();
    let (_, spans, _) = observe(|| block_on(worker.handle(tenant)));
    let handler = span(&spans, "task.handle");
    assert_eq!(attr_str(handler, "worker.id").as_deref(), Some("w-1"));
    let inner = span(&spans, "inner");
    assert_eq!(inner.parent_span_id, handler.span_context.span_id());
    // The handler span ended after the body's own span: it covered the future.
    assert!(handler.end_time >= inner.end_time);
    span(&spans, "task.completed");
}

/// A workflow's life as a server sees it: one handler starts it, one polls it, one
/// ends it. `event` says which lifecycle event each handler's calls are.
#[workflow_span(kind = "workflow", event = "start", tenant = tenant, id = id)]
fn start_workflow(tenant: &str, id: &str, valid: bool) -> Result<(), Failure> {
    if valid {
        Ok(())
    } else {
        Err(Failure("kind is required".into()))
    }
}

#[workflow_span(kind = "workflow", event = "step", tenant = tenant, id = id)]
async fn poll_workflow(tenant: &str, id: &str) {}

#[workflow_span(
    kind = "workflow",
    event = "end",
    tenant = tenant,
    id = id,
    started_at = created_at,
)]
async fn end_workflow(
    tenant: &str,
    id: &str,
    created_at: SystemTime,
    error: Option<&str>,
) -> Result<(), Failure> {
    match error {
        Some(error) => Err(Failure(error.into())),
        None => Ok(()),
    }
}

#[test]
fn each_lifecycle_event_is_counted_once_by_the_handler_that_sees_it() {
    let created = SystemTime::now() - Duration::from_secs(90);
    let (_, spans, metrics) = observe(|| {
        let _ = start_workflow("acme", "wf-1", false);
        start_workflow("acme", "wf-1", true).unwrap();
        block_on(poll_workflow("acme", "wf-1"));
        block_on(end_workflow("acme", "wf-1", created, None)).unwrap();
        start_workflow("acme", "wf-2", true).unwrap();
        let _ = block_on(end_workflow("acme", "wf-2", created, Some("gave up")));
    });
    let lifecycle: HashMap<&str, f64> = metrics
        .iter()
        .filter(|(k, _)| !k.contains("_handler_seconds"))
        .map(|(k, v)| (k.as_str(), *v))
        .collect();
    let expected = HashMap::from([
        (
            "instrument_workflows_started_total{name=workflow.start_workflow,tenant_id=acme}",
            2.0,
        ),
        (
            "instrument_workflows_completed_total{name=workflow.end_workflow,tenant_id=acme}",
            1.0,
        ),
        (
            "instrument_workflows_failed_total{error_type=workflow_span::Failure,name=workflow.end_workflow,tenant_id=acme}",
            1.0,
        ),
        (
            "instrument_workflow_duration_seconds{name=workflow.end_workflow,status=completed,tenant_id=acme}",
            1.0,
        ),
        (
            "instrument_workflow_duration_seconds{error_type=workflow_span::Failure,name=workflow.end_workflow,status=failed,tenant_id=acme}",
            1.0,
        ),
    ]);
    assert_eq!(lifecycle, expected);
    assert_eq!(
        metrics["instrument_workflow_handler_seconds{error_type=workflow_span::Failure,name=workflow.start_workflow,status=failed,tenant_id=acme}"],
        1.0,
        "a refused start is a handler call, not a started workflow"
    );
    assert_eq!(
        metrics["instrument_workflow_handler_seconds{name=workflow.poll_workflow,status=completed,tenant_id=acme}"],
        1.0
    );
    let mut completion: Vec<&str> = names(&spans)
        .into_iter()
        .filter(|n| n.ends_with("ed"))
        .collect();
    completion.sort_unstable();
    assert_eq!(completion, ["workflow.completed", "workflow.failed"]);
    let failed = span(&spans, "workflow.failed");
    assert!(attr_i64(failed, "total_duration_ms") >= 90_000);
}
