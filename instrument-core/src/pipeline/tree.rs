//! [`TreeExporter`]: finished traces printed as indented trees, for development.

use std::collections::HashMap;
use std::fmt::Write as _;
use std::io::Write;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use opentelemetry::trace::{SpanId, Status, TraceId};
use opentelemetry_sdk::error::{OTelSdkError, OTelSdkResult};
use opentelemetry_sdk::trace::{SpanData, SpanExporter};

use crate::semconv;

/// Attributes shown beside each span, in this order.
const SHOWN: &[&str] = &[
    semconv::TENANT_ID,
    semconv::TENANT_MISSING,
    semconv::WORKFLOW_ID,
    semconv::WORKFLOW_KIND,
    semconv::TASK_ID,
    semconv::TASK_TYPE,
    semconv::WORKER_ID,
    semconv::HTTP_REQUEST_METHOD,
    semconv::HTTP_ROUTE,
    semconv::HTTP_RESPONSE_STATUS_CODE,
    semconv::RPC_GRPC_STATUS_CODE,
    semconv::TOTAL_DURATION_MS,
    semconv::EXECUTION_DURATION_MS,
    semconv::ERROR,
    semconv::REDACTION_MASKED_COUNT,
];

/// Spans buffered while waiting for their local root; beyond this the oldest trace is
/// printed as it is, so memory stays bounded.
const MAX_BUFFERED: usize = 10_000;

/// Prints each finished trace as an indented tree (name, duration, key attributes,
/// error status), one tree per local root: a span with no parent, or whose parent is
/// remote (a caller, or a traceparent restored from a database row).
///
/// A trace's spans are held until its local root ends (children normally end first);
/// whatever is still held at flush or shutdown is printed then.
///
/// ```text
/// trace 4bf92f3577b34da6a3ce929d0e0e4736
/// └─ instrument.example.v1.WorkflowService/StartWorkflow  3.1 ms  tenant.id=acme workflow.id=wf-1
///    ├─ db.insert  0.4 ms  tenant.id=acme
///    └─ workflow.start  0.2 ms  tenant.id=acme workflow.id=wf-1
/// ```
#[derive(Debug)]
pub struct TreeExporter<W> {
    out: Arc<Mutex<W>>,
    buffered: Mutex<Buffered>,
    /// One tree per trace, printed at flush or shutdown.
    whole: bool,
}

#[derive(Debug, Default)]
struct Buffered {
    traces: HashMap<TraceId, Vec<SpanData>>,
    order: Vec<TraceId>,
    count: usize,
}

impl TreeExporter<std::io::Stdout> {
    /// Prints to standard output.
    pub fn stdout() -> Self {
        Self::new(std::io::stdout())
    }
}

impl<W: Write + Send> TreeExporter<W> {
    /// Prints to `out`.
    pub fn new(out: W) -> Self {
        Self {
            out: Arc::new(Mutex::new(out)),
            buffered: Mutex::new(Buffered::default()),
            whole: false,
        }
    }

    /// Prints each trace whole, as one tree, at flush or shutdown instead of one tree per
    /// local root as it ends: a span whose parent is remote (restored from a stored
    /// traceparent, reported through the span proxy) is drawn under that parent when
    /// the parent is in the trace.
    pub fn whole_traces(mut self) -> Self {
        self.whole = true;
        self
    }

    /// Adds finished spans; returns the text of every tree that completed.
    fn accept(&self, batch: Vec<SpanData>) -> String {
        let mut guard = self.buffered.lock().unwrap_or_else(PoisonError::into_inner);
        let buffered = &mut *guard;
        let mut done: Vec<(TraceId, SpanId)> = Vec::new();
        for span in batch {
            let trace = span.span_context.trace_id();
            if !self.whole && is_local_root(&span) {
                done.push((trace, span.span_context.span_id()));
            }
            let spans = buffered.traces.entry(trace).or_default();
            if spans.is_empty() {
                buffered.order.push(trace);
            }
            spans.push(span);
            buffered.count += 1;
        }
        let mut text = String::new();
        for (trace, root) in done {
            let Some(spans) = buffered.traces.get_mut(&trace) else {
                continue;
            };
            let taken = take_subtree(spans, root);
            buffered.count -= taken.len();
            render(&mut text, trace, &taken, false);
            if spans.is_empty() {
                buffered.traces.remove(&trace);
                buffered.order.retain(|t| *t != trace);
            }
        }
        while buffered.count > MAX_BUFFERED {
            let oldest = buffered.order.remove(0);
            if let Some(spans) = buffered.traces.remove(&oldest) {
                buffered.count -= spans.len();
                render(&mut text, oldest, &spans, self.whole);
            }
        }
        text
    }

    /// Everything still held, as text.
    fn drain(&self) -> String {
        let mut guard = self.buffered.lock().unwrap_or_else(PoisonError::into_inner);
        let buffered = &mut *guard;
        let mut text = String::new();
        for trace in std::mem::take(&mut buffered.order) {
            if let Some(spans) = buffered.traces.remove(&trace) {
                render(&mut text, trace, &spans, self.whole);
            }
        }
        buffered.count = 0;
        text
    }

    fn write(&self, text: &str) -> OTelSdkResult {
        if text.is_empty() {
            return Ok(());
        }
        let mut out = self.out.lock().unwrap_or_else(PoisonError::into_inner);
        out.write_all(text.as_bytes())
            .and_then(|()| out.flush())
            .map_err(|e| OTelSdkError::InternalFailure(format!("writing trace trees failed: {e}")))
    }
}

fn is_local_root(span: &SpanData) -> bool {
    span.parent_span_id == SpanId::INVALID || span.parent_span_is_remote
}

/// Removes `root` and its descendants from `spans`.
fn take_subtree(spans: &mut Vec<SpanData>, root: SpanId) -> Vec<SpanData> {
    let mut members = vec![root];
    let mut i = 0;
    while i < members.len() {
        let parent = members[i];
        members.extend(
            spans
                .iter()
                .filter(|s| s.parent_span_id == parent && !s.parent_span_is_remote)
                .map(|s| s.span_context.span_id()),
        );
        i += 1;
    }
    let (taken, kept): (Vec<_>, Vec<_>) = std::mem::take(spans)
        .into_iter()
        .partition(|s| members.contains(&s.span_context.span_id()));
    *spans = kept;
    taken
}

/// Appends the trees of `spans` (one trace) to `text`; `whole`: remote parents in
/// `spans` are drawn as parents too.
fn render(text: &mut String, trace: TraceId, spans: &[SpanData], whole: bool) {
    let ids: Vec<SpanId> = spans.iter().map(|s| s.span_context.span_id()).collect();
    let _ = writeln!(text, "trace {trace}");
    let mut roots: Vec<&SpanData> = spans
        .iter()
        .filter(|s| (!whole && is_local_root(s)) || !ids.contains(&s.parent_span_id))
        .collect();
    roots.sort_by_key(|s| s.start_time);
    let count = roots.len();
    for (i, root) in roots.into_iter().enumerate() {
        render_span(text, spans, root, "", i + 1 == count, whole);
    }
}

fn render_span(
    text: &mut String,
    spans: &[SpanData],
    span: &SpanData,
    indent: &str,
    last: bool,
    whole: bool,
) {
    let branch = if last { "└─ " } else { "├─ " };
    let duration = span
        .end_time
        .duration_since(span.start_time)
        .unwrap_or(Duration::ZERO);
    let _ = write!(
        text,
        "{indent}{branch}{}  {}",
        span.name,
        format_duration(duration)
    );
    for key in SHOWN {
        if let Some(kv) = span.attributes.iter().find(|kv| kv.key.as_str() == *key) {
            let _ = write!(text, "  {key}={}", kv.value.as_str());
        }
    }
    if let Status::Error { description } = &span.status {
        let _ = write!(text, "  ERROR: {description}");
    }
    for link in span.links.iter() {
        let _ = write!(text, "  link={}", link.span_context.trace_id());
    }
    text.push('\n');
    let id = span.span_context.span_id();
    let mut children: Vec<&SpanData> = spans
        .iter()
        .filter(|s| s.parent_span_id == id && (whole || !s.parent_span_is_remote))
        .collect();
    children.sort_by_key(|s| s.start_time);
    let child_indent = format!("{indent}{}", if last { "   " } else { "│  " });
    let count = children.len();
    for (i, child) in children.into_iter().enumerate() {
        render_span(text, spans, child, &child_indent, i + 1 == count, whole);
    }
}

fn format_duration(d: Duration) -> String {
    let micros = d.as_micros();
    match micros {
        0..=999 => format!("{micros} µs"),
        1_000..=999_999 => format!("{:.1} ms", d.as_secs_f64() * 1e3),
        _ => format!("{:.2} s", d.as_secs_f64()),
    }
}

impl<W: Write + Send + std::fmt::Debug> SpanExporter for TreeExporter<W> {
    fn export(
        &self,
        batch: Vec<SpanData>,
    ) -> impl std::future::Future<Output = OTelSdkResult> + Send {
        let result = self.write(&self.accept(batch));
        std::future::ready(result)
    }

    fn force_flush(&self) -> OTelSdkResult {
        self.write(&self.drain())
    }

    fn shutdown_with_timeout(&self, _timeout: Duration) -> OTelSdkResult {
        self.write(&self.drain())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tenant::{with_tenant, TenantId};
    use opentelemetry::trace::{Span as _, TraceContextExt as _, Tracer as _, TracerProvider as _};
    use opentelemetry::Context;
    use opentelemetry_sdk::trace::{SdkTracerProvider, SimpleSpanProcessor};

    use crate::pipeline::test_support::SharedBuffer as Shared;

    fn provider(out: Shared) -> SdkTracerProvider {
        let exporter = TreeExporter::new(out);
        let processor = super::super::TenantProcessor::new(
            super::super::MissingTenant::Allow,
            SimpleSpanProcessor::new(exporter),
        );
        SdkTracerProvider::builder()
            .with_span_processor(processor)
            .build()
    }

    #[test]
    fn a_finished_trace_prints_as_a_tree() {
        let out = Shared::default();
        let provider = provider(out.clone());
        let tracer = provider.tracer("t");
        let cx = with_tenant(&Context::new(), TenantId::parse("acme").unwrap());
        let root = tracer.start_with_context("request", &cx);
        let root_cx = cx.with_span(root);
        let child = tracer.start_with_context("db.insert", &root_cx);
        let grandchild = tracer.start_with_context("db.connect", &root_cx.with_span(child));
        drop(grandchild); // ends
        let mut second = tracer.start_with_context("workflow.start", &root_cx);
        second.set_status(Status::error("boom"));
        second.end();
        assert_eq!(out.text(), "", "nothing printed before the root ends");
        root_cx.span().end();
        let text = out.text();
        let lines: Vec<&str> = text.lines().collect();
        assert!(lines[0].starts_with("trace "), "{text}");
        assert!(
            lines[1].starts_with("└─ request  ") && lines[1].contains("tenant.id=acme"),
            "{text}"
        );
        assert!(lines[2].starts_with("   ├─ db.insert  "), "{text}");
        assert!(lines[3].starts_with("   │  └─ db.connect  "), "{text}");
        assert!(
            lines[4].starts_with("   └─ workflow.start  ") && lines[4].ends_with("ERROR: boom"),
            "{text}"
        );
    }

    #[test]
    fn a_restored_parent_makes_a_local_root_and_leftovers_print_at_shutdown() {
        let out = Shared::default();
        let provider = provider(out.clone());
        let tracer = provider.tracer("t");
        let stored = crate::context::restore(Some(
            "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
        ));
        let cx = stored.apply_to(&Context::new());
        tracer.start_with_context("workflow.completed", &cx).end();
        assert!(
            out.text()
                .contains("trace 4bf92f3577b34da6a3ce929d0e0e4736\n└─ workflow.completed"),
            "{}",
            out.text()
        );

        let root = tracer.start("long.running");
        let root_cx = Context::new().with_span(root);
        tracer.start_with_context("finished.child", &root_cx).end();
        provider.shutdown().unwrap();
        assert!(out.text().contains("finished.child"), "{}", out.text());
    }

    #[test]
    fn durations_read_well() {
        assert_eq!(format_duration(Duration::from_micros(12)), "12 µs");
        assert_eq!(format_duration(Duration::from_micros(1500)), "1.5 ms");
        assert_eq!(format_duration(Duration::from_millis(2500)), "2.50 s");
    }

    #[test]
    fn whole_traces_print_once_at_shutdown_with_remote_parents_drawn_as_parents() {
        let out = Shared::default();
        let provider = SdkTracerProvider::builder()
            .with_span_processor(SimpleSpanProcessor::new(
                TreeExporter::new(out.clone()).whole_traces(),
            ))
            .build();
        let tracer = provider.tracer("t");
        let start = tracer.start("workflow.start");
        let stored = TraceParentOf(start.span_context().clone());
        drop(start);
        // A later request continues from the stored context (a remote parent).
        let cx = Context::new().with_remote_span_context(stored.0);
        drop(tracer.start_with_context("workflow.poll", &cx));
        assert_eq!(out.text(), "", "held until the shutdown");
        provider.shutdown().unwrap();
        let text = out.text();
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines.len(), 3, "{text}");
        assert!(lines[1].starts_with("└─ workflow.start  "), "{text}");
        assert!(lines[2].starts_with("   └─ workflow.poll  "), "{text}");
    }

    struct TraceParentOf(opentelemetry::trace::SpanContext);
}
