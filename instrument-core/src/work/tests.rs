use std::collections::BTreeMap;
use std::time::Duration;

use metrics_util::debugging::{DebugValue, DebuggingRecorder};
use opentelemetry::trace::{SpanId, Status, TraceId, TracerProvider as _};
use opentelemetry::Value;
use opentelemetry_sdk::trace::{InMemorySpanExporter, SdkTracerProvider, SpanData};

use super::*;
use crate::tenant::current_tenant;

const STORED: &str = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";

/// A tracer exporting to memory, and what it exported.
fn tracer() -> (BoxedTracer, InMemorySpanExporter, SdkTracerProvider) {
    let exporter = InMemorySpanExporter::default();
    let provider = SdkTracerProvider::builder()
        .with_simple_exporter(exporter.clone())
        .build();
    let tracer = BoxedTracer::new(Box::new(provider.tracer("test")));
    (tracer, exporter, provider)
}

/// Runs `f` under a local recorder: its result and the metrics, as
/// `name{label=value,...} -> value` (histograms as their sample count).
fn with_metrics<R>(f: impl FnOnce() -> R) -> (R, BTreeMap<String, f64>) {
    let recorder = DebuggingRecorder::new();
    let snapshotter = recorder.snapshotter();
    let result = metrics::with_local_recorder(&recorder, f);
    let mut metrics = BTreeMap::new();
    for (key, _, _, value) in snapshotter.snapshot().into_vec() {
        let mut labels: Vec<String> = key
            .key()
            .labels()
            .map(|l| format!("{}={}", l.key(), l.value()))
            .collect();
        labels.sort();
        let value = match value {
            DebugValue::Counter(n) => n as f64,
            DebugValue::Gauge(g) => g.into_inner(),
            DebugValue::Histogram(samples) => samples.len() as f64,
        };
        metrics.insert(
            format!("{}{{{}}}", key.key().name(), labels.join(",")),
            value,
        );
    }
    (result, metrics)
}

fn span<'a>(spans: &'a [SpanData], name: &str) -> &'a SpanData {
    spans
        .iter()
        .find(|s| s.name == name)
        .unwrap_or_else(|| panic!("no span {name} in {:?}", names(spans)))
}

fn names(spans: &[SpanData]) -> Vec<&str> {
    spans.iter().map(|s| &*s.name).collect()
}

fn attr(span: &SpanData, key: &str) -> Option<Value> {
    span.attributes
        .iter()
        .find(|kv| kv.key.as_str() == key)
        .map(|kv| kv.value.clone())
}

fn start(tracer: BoxedTracer, site: &'static Site, parent: Parent<'_>) -> Call {
    Call::start_with(tracer, site, tenant("acme"), parent, None, || {
        (field("task.id", "task-1"), [field("task.queue", "main")])
    })
}

#[test]
fn a_completed_call_ends_its_span_adds_a_completion_span_and_counts_both_events() {
    static SITE: Site = Site::new("task", "task.run");
    let (tracer, exporter, _provider) = tracer();
    let (value, metrics) = with_metrics(|| {
        let call = start(tracer, &SITE, Parent::Current);
        call.run_sync(
            || current_tenant().map(|t| t.as_str().to_owned()),
            |_| Outcome::Completed,
        )
    });
    assert_eq!(
        value.as_deref(),
        Some("acme"),
        "the tenant is in the body's context"
    );
    let spans = exporter.get_finished_spans().unwrap();
    assert_eq!(names(&spans), ["task.run", "task.completed"]);
    let handler = span(&spans, "task.run");
    assert_eq!(attr(handler, "tenant.id"), Some(Value::from("acme")));
    assert_eq!(attr(handler, "task.id"), Some(Value::from("task-1")));
    assert_eq!(attr(handler, "task.queue"), Some(Value::from("main")));
    let completed = span(&spans, "task.completed");
    assert_eq!(
        completed.parent_span_id,
        handler.span_context.span_id(),
        "a root's child"
    );
    assert_eq!(attr(completed, "task.id"), Some(Value::from("task-1")));
    assert_eq!(
        attr(completed, "task.queue"),
        Some(Value::from("main")),
        "the handler's fields too"
    );
    assert!(attr(completed, "execution_duration_ms").is_some());
    assert!(
        attr(completed, "total_duration_ms").is_none(),
        "no started_at"
    );
    assert_eq!(
        metrics.get("instrument_tasks_started_total{name=task.run,tenant_id=acme}"),
        Some(&1.0)
    );
    assert_eq!(
        metrics.get("instrument_tasks_completed_total{name=task.run,tenant_id=acme}"),
        Some(&1.0)
    );
    assert_eq!(
        metrics
            .get("instrument_task_duration_seconds{name=task.run,status=completed,tenant_id=acme}"),
        Some(&1.0)
    );
    assert_eq!(
        metrics
            .get("instrument_task_handler_seconds{name=task.run,status=completed,tenant_id=acme}"),
        Some(&1.0)
    );
    assert_eq!(metrics.len(), 4, "{metrics:?}");
}

/// One workflow seen by three handlers, as a workflow server sees it: each lifecycle
/// event is counted once, by the handler that sees it.
#[test]
fn start_step_and_end_handlers_count_each_lifecycle_event_once() {
    static START: Site = Site::with_event("workflow", "workflow.start", Event::Start);
    static POLL: Site = Site::with_event("workflow", "workflow.poll", Event::Step);
    static END: Site = Site::with_event("workflow", "workflow.end", Event::End);
    let (_, exporter, provider) = tracer();
    let created = SystemTime::now() - Duration::from_secs(3600);
    let call = |site: &'static Site, started_at: Option<SystemTime>, outcome: Outcome| {
        let tracer = BoxedTracer::new(Box::new(provider.tracer("test")));
        Call::start_with(
            tracer,
            site,
            tenant("acme"),
            Parent::Current,
            started_at,
            || (field("workflow.id", "wf-1"), []),
        )
        .run_sync(|| (), move |_| outcome)
    };
    let (_, metrics) = with_metrics(|| {
        // A start refused (bad input) starts nothing; the next one starts the workflow.
        call(&START, None, Outcome::failed("kind is required"));
        call(&START, None, Outcome::Completed);
        call(&POLL, Some(created), Outcome::Completed);
        call(&POLL, Some(created), Outcome::Completed);
        call(&END, Some(created), Outcome::Completed);
    });
    let count = |name: &str| metrics.get(name).copied();
    assert_eq!(
        count("instrument_workflows_started_total{name=workflow.start,tenant_id=acme}"),
        Some(1.0)
    );
    assert_eq!(
        count("instrument_workflows_completed_total{name=workflow.end,tenant_id=acme}"),
        Some(1.0)
    );
    assert_eq!(
        count("instrument_workflow_duration_seconds{name=workflow.end,status=completed,tenant_id=acme}"),
        Some(1.0),
        "the lifetime, once"
    );
    let lifecycle: Vec<&String> = metrics
        .keys()
        .filter(|k| !k.starts_with("instrument_workflow_handler_seconds"))
        .collect();
    assert_eq!(lifecycle.len(), 3, "nothing else counted: {metrics:?}");
    for (name, status, calls) in [
        ("workflow.start", "failed", 1.0),
        ("workflow.start", "completed", 1.0),
        ("workflow.poll", "completed", 2.0),
        ("workflow.end", "completed", 1.0),
    ] {
        let class = if status == "failed" {
            "error_type=_OTHER,"
        } else {
            ""
        };
        assert_eq!(
            count(&format!(
                "instrument_workflow_handler_seconds{{{class}name={name},status={status},tenant_id=acme}}"
            )),
            Some(calls),
            "every call's run time: {name} {status}"
        );
    }
    let spans = exporter.get_finished_spans().unwrap();
    let completion: Vec<&str> = names(&spans)
        .into_iter()
        .filter(|n| !n.starts_with("workflow.start") && !n.starts_with("workflow.poll"))
        .collect();
    assert_eq!(completion, ["workflow.end", "workflow.completed"]);
    let completed = span(&spans, "workflow.completed");
    let Some(Value::I64(total)) = attr(completed, "total_duration_ms") else {
        panic!("no total_duration_ms");
    };
    assert!(total >= 3_600_000, "from the workflow's creation: {total}");
}

/// An end handler's own outcome is the work's ending; without `started_at` the
/// lifetime is unknown and not recorded.
#[test]
fn an_end_handler_that_fails_fails_the_work_and_needs_started_at_for_a_lifetime() {
    static END: Site = Site::with_event("task", "task.end", Event::End);
    let (tracer, exporter, _provider) = tracer();
    let (_, metrics) = with_metrics(|| {
        start(tracer, &END, Parent::Current)
            .run_sync(|| (), |_| Outcome::failed("worker reported: timeout"))
    });
    assert_eq!(
        metrics
            .get("instrument_tasks_failed_total{error_type=_OTHER,name=task.end,tenant_id=acme}"),
        Some(&1.0)
    );
    assert!(
        metrics
            .keys()
            .all(|k| !k.starts_with("instrument_task_duration_seconds")
                && !k.starts_with("instrument_tasks_started_total")),
        "{metrics:?}"
    );
    let spans = exporter.get_finished_spans().unwrap();
    assert!(matches!(
        span(&spans, "task.failed").status,
        Status::Error { .. }
    ));
}

#[test]
fn a_failed_call_records_the_redacted_error_cut_to_one_kib_on_both_spans() {
    static SITE: Site = Site::new("task", "task.fail");
    let (tracer, exporter, _provider) = tracer();
    let long = format!("card 4111 1111 1111 1111 declined {}", "x".repeat(2000));
    let (_, metrics) = with_metrics(|| {
        start(tracer, &SITE, Parent::Current).run_sync(|| (), |_| Outcome::failed(long.clone()))
    });
    let spans = exporter.get_finished_spans().unwrap();
    let failed = span(&spans, "task.failed");
    assert_eq!(attr(failed, "error"), None, "no bare `error` attribute");
    assert_eq!(attr(failed, "error.type"), Some(Value::from("_OTHER")));
    let Some(Value::String(error)) = failed
        .events
        .iter()
        .find(|e| e.name == "exception")
        .and_then(|e| {
            e.attributes
                .iter()
                .find(|kv| kv.key.as_str() == "exception.message")
        })
        .map(|kv| kv.value.clone())
    else {
        panic!("no exception event");
    };
    assert!(error
        .as_str()
        .starts_with("card **** **** **** 1111 declined"));
    assert!(error.as_str().len() <= 1024);
    assert!(matches!(failed.status, Status::Error { .. }));
    assert!(matches!(
        span(&spans, "task.fail").status,
        Status::Error { .. }
    ));
    assert_eq!(
        metrics
            .get("instrument_tasks_failed_total{error_type=_OTHER,name=task.fail,tenant_id=acme}"),
        Some(&1.0)
    );
    assert_eq!(
        metrics
            .get("instrument_task_duration_seconds{error_type=_OTHER,name=task.fail,status=failed,tenant_id=acme}"),
        Some(&1.0)
    );
}

#[test]
fn a_panic_fails_the_call_and_keeps_unwinding() {
    static SITE: Site = Site::new("task", "task.explode");
    let (tracer, exporter, _provider) = tracer();
    let (unwound, metrics) = with_metrics(|| {
        std::panic::catch_unwind(AssertUnwindSafe(|| {
            start(tracer, &SITE, Parent::Current)
                .run_sync(|| -> u8 { panic!("boom") }, |_| Outcome::Completed)
        }))
    });
    assert!(unwound.is_err());
    let spans = exporter.get_finished_spans().unwrap();
    let failed = span(&spans, "task.failed");
    assert_eq!(attr(failed, "error.type"), Some(Value::from("panic")));
    assert_eq!(failed.status, Status::error("panicked: boom"));
    assert_eq!(
        metrics.get(
            "instrument_tasks_failed_total{error_type=panic,name=task.explode,tenant_id=acme}"
        ),
        Some(&1.0)
    );
}

#[test]
fn a_call_dropped_before_it_ends_is_cancelled() {
    static SITE: Site = Site::new("task", "task.wait");
    let (tracer, exporter, _provider) = tracer();
    let (_, metrics) = with_metrics(|| {
        let pending = start(tracer, &SITE, Parent::Current)
            .run_async(std::future::pending::<()>(), |_| Outcome::Completed);
        let mut pending = Box::pin(pending);
        let waker = std::task::Waker::noop();
        let poll = pending.as_mut().poll(&mut TaskContext::from_waker(waker));
        assert!(poll.is_pending());
        drop(pending);
    });
    let spans = exporter.get_finished_spans().unwrap();
    assert_eq!(names(&spans), ["task.wait", "task.cancelled"]);
    assert_eq!(
        metrics.get("instrument_tasks_cancelled_total{name=task.wait,tenant_id=acme}"),
        Some(&1.0)
    );
}

#[test]
fn an_async_body_runs_in_the_calls_context_on_every_poll() {
    static SITE: Site = Site::new("workflow", "workflow.step");
    let (tracer, exporter, _provider) = tracer();
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_time()
        .build()
        .unwrap();
    let seen = runtime.block_on(async {
        let body = async {
            let first = current_tenant();
            tokio::time::sleep(Duration::from_millis(1)).await;
            (first, current_tenant())
        };
        start(tracer, &SITE, Parent::Current)
            .run_async(body, |_| Outcome::Completed)
            .await
    });
    let acme = TenantId::parse("acme").ok();
    assert_eq!(seen, (acme.clone(), acme));
    assert!(current_tenant().is_none(), "nothing leaks out of the call");
    let spans = exporter.get_finished_spans().unwrap();
    assert_eq!(names(&spans), ["workflow.step", "workflow.completed"]);
}

#[test]
fn a_stored_traceparent_is_the_parent_and_a_corrupt_one_starts_fresh() {
    static SITE: Site = Site::new("workflow", "workflow.resume");
    let (tracer, exporter, provider) = tracer();
    with_metrics(|| {
        start(tracer, &SITE, traceparent(&Some(STORED))).run_sync(|| (), |_| Outcome::Completed);
        let again = BoxedTracer::new(Box::new(provider.tracer("test")));
        start(again, &SITE, traceparent("00-corrupt")).run_sync(|| (), |_| Outcome::Completed);
    });
    let spans = exporter.get_finished_spans().unwrap();
    let stored_trace = TraceId::from_hex("4bf92f3577b34da6a3ce929d0e0e4736").unwrap();
    let stored_span = SpanId::from_hex("00f067aa0ba902b7").unwrap();
    for s in &spans[..2] {
        assert_eq!(s.span_context.trace_id(), stored_trace, "{}", s.name);
    }
    // The handler span under the stored one; with no `started_at` before the call, the
    // completion span is its child.
    assert_eq!(spans[0].parent_span_id, stored_span);
    assert_eq!(spans[1].parent_span_id, spans[0].span_context.span_id());
    let (fresh, completed) = (&spans[2], &spans[3]);
    assert_ne!(fresh.span_context.trace_id(), stored_trace);
    assert_eq!(fresh.parent_span_id, SpanId::INVALID);
    assert_eq!(completed.parent_span_id, fresh.span_context.span_id());
}

#[test]
fn started_at_gives_the_total_duration_and_the_completion_start() {
    static SITE: Site = Site::new("workflow", "workflow.end");
    let (tracer, exporter, _provider) = tracer();
    let started_at = SystemTime::now() - Duration::from_secs(3600);
    with_metrics(|| {
        Call::start_with(
            tracer,
            &SITE,
            tenant("acme"),
            Parent::Current,
            Some(started_at),
            || (None, []),
        )
        .run_sync(|| (), |_| Outcome::Completed)
    });
    let spans = exporter.get_finished_spans().unwrap();
    let completed = span(&spans, "workflow.completed");
    assert_eq!(completed.start_time, started_at);
    let Some(Value::I64(total)) = attr(completed, "total_duration_ms") else {
        panic!("no total duration");
    };
    assert!(total >= 3_600_000, "{total}");
}

#[test]
fn an_invalid_tenant_is_unknown_in_metrics_and_absent_from_spans() {
    static SITE: Site = Site::new("task", "task.anonymous");
    let (tracer, exporter, _provider) = tracer();
    let (_, metrics) = with_metrics(|| {
        Call::start_with(
            tracer,
            &SITE,
            tenant("bad tenant!"),
            Parent::Current,
            None,
            || (None, []),
        )
        .run_sync(|| (), |_| Outcome::Completed)
    });
    let spans = exporter.get_finished_spans().unwrap();
    assert!(spans.iter().all(|s| attr(s, "tenant.id").is_none()));
    assert_eq!(
        metrics.get("instrument_tasks_started_total{name=task.anonymous,tenant_id=unknown}"),
        Some(&1.0)
    );
}

#[test]
fn endings_name_their_label_span_and_position() {
    for (i, ending) in Ending::ALL.into_iter().enumerate() {
        assert_eq!(ending.index(), i);
        assert_eq!(ending.span_name("task"), format!("task.{}", ending.label()));
    }
    assert_eq!(
        Ending::ALL.map(Ending::label),
        ["completed", "failed", "cancelled"]
    );
}

/// A call sampled out (parent-based sampling under an unsampled stored parent): its
/// metrics count, its body runs with the tenant and the trace in its context, and the
/// id and fields, which only spans would carry, are never made.
#[test]
fn a_call_sampled_out_counts_its_metrics_and_makes_no_attribute() {
    static SITE: Site = Site::new("task", "task.sampled_out");
    let exporter = InMemorySpanExporter::default();
    let provider = SdkTracerProvider::builder()
        .with_sampler(opentelemetry_sdk::trace::Sampler::ParentBased(Box::new(
            opentelemetry_sdk::trace::Sampler::AlwaysOn,
        )))
        .with_simple_exporter(exporter.clone())
        .build();
    let tracer = BoxedTracer::new(Box::new(provider.tracer("test")));
    let unsampled = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-00";
    let made = std::cell::Cell::new(false);
    let ((tenant, trace), metrics) = with_metrics(|| {
        Call::start_with(
            tracer,
            &SITE,
            tenant("acme"),
            Parent::Stored(Some(unsampled)),
            None,
            || {
                made.set(true);
                (field("task.id", "task-9"), [field("task.queue", "main")])
            },
        )
        .run_sync(
            || {
                let trace = Context::map_current(|cx| cx.span().span_context().trace_id());
                (current_tenant(), trace)
            },
            |_| Outcome::Completed,
        )
    });
    assert!(
        !made.get(),
        "the id and fields were made for a span nobody records"
    );
    assert_eq!(
        tenant.map(|t| t.as_str().to_owned()).as_deref(),
        Some("acme")
    );
    assert_eq!(
        trace,
        TraceId::from_hex("4bf92f3577b34da6a3ce929d0e0e4736").unwrap()
    );
    assert!(exporter.get_finished_spans().unwrap().is_empty());
    assert_eq!(
        metrics.get("instrument_tasks_started_total{name=task.sampled_out,tenant_id=acme}"),
        Some(&1.0)
    );
    assert_eq!(
        metrics.get("instrument_tasks_completed_total{name=task.sampled_out,tenant_id=acme}"),
        Some(&1.0)
    );
}

#[test]
fn every_event_name_parses_to_a_distinct_event() {
    let events: Vec<Event> = Event::NAMES
        .iter()
        .filter_map(|n| Event::parse(n))
        .collect();
    assert_eq!(
        events,
        [Event::Run, Event::Start, Event::End, Event::Step],
        "in the order the macro's error lists them"
    );
    for unknown in ["", "Run", "finish", "end "] {
        assert_eq!(Event::parse(unknown), None, "{unknown:?}");
    }
}
