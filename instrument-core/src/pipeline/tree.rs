//! [`TreeExporter`]: finished traces printed as indented trees, for development.

use std::collections::HashMap;
use std::fmt::Write as _;
use std::io::Write;
use std::sync::{Arc, Mutex, PoisonError, Weak};
use std::time::{Duration, Instant};

use opentelemetry::trace::{SpanId, Status, TraceId};
use opentelemetry::KeyValue;
use opentelemetry_sdk::error::{OTelSdkError, OTelSdkResult};
use opentelemetry_sdk::trace::{SpanData, SpanExporter};

use crate::semconv;

/// Attributes shown first beside each span, in this order; every other attribute
/// follows in the order it was set, but for [`HIDDEN`].
const FIRST: &[&str] = &[
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
];

/// Connection details every server span has, and the source location and thread
/// times tracing-opentelemetry adds, left out to keep a line readable (the OTLP and
/// in-memory exporters have them).
const HIDDEN: &[&str] = &[
    "network.peer.address",
    "network.peer.port",
    "network.protocol.name",
    "network.protocol.version",
    "network.transport",
    "server.address",
    "server.port",
    "client.address",
    "client.port",
    "url.scheme",
    "user_agent.original",
    "rpc.system",
    "rpc.service",
    "rpc.method",
    "http.request.header.user-agent",
    // What tracing-opentelemetry adds to a `tracing` span.
    "code.file.path",
    "code.filepath",
    "code.module.name",
    "code.namespace",
    "code.line.number",
    "code.lineno",
    "thread.id",
    "thread.name",
    "target",
    "busy_ns",
    "idle_ns",
];

/// Longest attribute value printed; longer ones are cut with `…`.
const MAX_VALUE_CHARS: usize = 120;

/// Spans held while waiting for their trace to settle; beyond this the oldest trace is
/// printed as it is, so memory stays bounded.
const MAX_BUFFERED: usize = 10_000;

/// How long a trace must see no new span before it is printed, by default.
const DEFAULT_QUIET: Duration = Duration::from_millis(500);

/// The longest a trace is held waiting for a parent span still running in this
/// process; then what is held is printed as it is.
const MAX_HOLD: Duration = Duration::from_secs(10);

/// How often held traces are looked at.
const TICK: Duration = Duration::from_millis(100);

/// Prints each finished trace as an indented tree: name, duration, the span's
/// attributes (tenant and workflow first; connection details left out), its events
/// (an error's `exception.type` and message among them) and error status.
///
/// A trace is printed once it has been quiet for a moment (half a second, see
/// [`quiet_for`](Self::quiet_for)) and every span held is either a root or the child of
/// a remote parent (a caller, a traceparent restored from a database row): a span whose
/// parent is still running here waits for it (at most 10 seconds). So a request that
/// calls another service in the same process, or a span reported through the span
/// proxy, is drawn under its remote parent in one tree, not split in two. A trace that
/// goes on later (a workflow that runs for days) prints again under the same trace id.
///
/// ```text
/// trace 4bf92f3577b34da6a3ce929d0e0e4736
/// └─ instrument.example.v1.WorkflowService/StartWorkflow  3.1 ms  tenant.id=acme  rpc.grpc.status_code=0
///    ├─ db.insert  0.4 ms  tenant.id=acme  db.system.name=sqlite
///    └─ workflow.start  0.2 ms  tenant.id=acme  workflow.id=wf-1
/// ```
#[derive(Debug)]
pub struct TreeExporter<W> {
    shared: Arc<Shared<W>>,
}

#[derive(Debug)]
struct Shared<W> {
    out: Mutex<W>,
    buffered: Mutex<Buffered>,
    /// One tree per trace, printed at flush or shutdown only.
    whole: bool,
    quiet: Duration,
    /// Whether the thread that prints settled traces runs.
    ticking: std::sync::Once,
}

#[derive(Debug, Default)]
struct Buffered {
    traces: HashMap<TraceId, Held>,
    count: usize,
}

#[derive(Debug)]
struct Held {
    spans: Vec<SpanData>,
    first: Instant,
    last: Instant,
}

impl TreeExporter<std::io::Stdout> {
    /// Prints to standard output.
    pub fn stdout() -> Self {
        Self::new(std::io::stdout())
    }
}

impl<W: Write + Send + 'static> TreeExporter<W> {
    /// Prints to `out`.
    pub fn new(out: W) -> Self {
        Self {
            shared: Arc::new(Shared {
                out: Mutex::new(out),
                buffered: Mutex::new(Buffered::default()),
                whole: false,
                quiet: DEFAULT_QUIET,
                ticking: std::sync::Once::new(),
            }),
        }
    }

    /// Prints each trace whole, as one tree, at flush or shutdown only (a short-lived
    /// program such as the demo, whose traces span several of its steps).
    pub fn whole_traces(self) -> Self {
        self.with(|shared| shared.whole = true)
    }

    /// How long a trace must see no new span before it is printed (default half
    /// a second): longer joins spans that end further apart into one tree,
    /// shorter prints sooner. Keep it above the batch processor's delay.
    pub fn quiet_for(self, quiet: Duration) -> Self {
        self.with(|shared| shared.quiet = quiet)
    }

    fn with(self, change: impl FnOnce(&mut Shared<W>)) -> Self {
        let mut shared = Arc::try_unwrap(self.shared)
            .unwrap_or_else(|_| unreachable!("configured before it is shared"));
        change(&mut shared);
        Self {
            shared: Arc::new(shared),
        }
    }

    /// Starts the thread that prints traces once they settle (once per exporter; it
    /// ends when the exporter is dropped).
    fn tick(&self) {
        if self.shared.whole {
            return;
        }
        self.shared.ticking.call_once(|| {
            let shared: Weak<Shared<W>> = Arc::downgrade(&self.shared);
            let spawned = std::thread::Builder::new()
                .name("instrument-tree".into())
                .spawn(move || loop {
                    std::thread::sleep(TICK);
                    let Some(shared) = shared.upgrade() else {
                        return;
                    };
                    let text = shared.settled(Instant::now());
                    let _ = shared.write(&text);
                });
            // Without the thread, traces print at each export and at flush.
            drop(spawned);
        });
    }
}

impl<W: Write> Shared<W> {
    /// Adds finished spans; returns the text of every trace that settled, or was
    /// pushed out by the bound.
    fn accept(&self, batch: Vec<SpanData>, now: Instant) -> String {
        let mut text = String::new();
        {
            let mut guard = self.buffered.lock().unwrap_or_else(PoisonError::into_inner);
            let buffered = &mut *guard;
            for span in batch {
                let held = buffered
                    .traces
                    .entry(span.span_context.trace_id())
                    .or_insert_with(|| Held {
                        spans: Vec::new(),
                        first: now,
                        last: now,
                    });
                held.last = now;
                held.spans.push(span);
                buffered.count += 1;
            }
            while buffered.count > MAX_BUFFERED {
                let Some(oldest) = buffered
                    .traces
                    .iter()
                    .min_by_key(|(_, held)| held.first)
                    .map(|(trace, _)| *trace)
                else {
                    break;
                };
                if let Some(held) = buffered.traces.remove(&oldest) {
                    buffered.count -= held.spans.len();
                    render(&mut text, oldest, &held.spans);
                }
            }
        }
        if !self.whole {
            text.push_str(&self.settled(now));
        }
        text
    }

    /// The text of every trace settled at `now`: quiet for long enough, and each span
    /// held a root or the child of a remote parent (else held up to [`MAX_HOLD`]).
    fn settled(&self, now: Instant) -> String {
        let mut guard = self.buffered.lock().unwrap_or_else(PoisonError::into_inner);
        let buffered = &mut *guard;
        let mut ready: Vec<(Instant, TraceId)> = buffered
            .traces
            .iter()
            .filter(|(_, held)| {
                now.saturating_duration_since(held.last) >= self.quiet
                    && (only_local_roots_on_top(&held.spans)
                        || now.saturating_duration_since(held.first) >= MAX_HOLD)
            })
            .map(|(trace, held)| (held.first, *trace))
            .collect();
        ready.sort_by_key(|(first, _)| *first);
        let mut text = String::new();
        for (_, trace) in ready {
            if let Some(held) = buffered.traces.remove(&trace) {
                buffered.count -= held.spans.len();
                render(&mut text, trace, &held.spans);
            }
        }
        text
    }

    /// Everything still held, as text, oldest trace first.
    fn drain(&self) -> String {
        let mut guard = self.buffered.lock().unwrap_or_else(PoisonError::into_inner);
        let buffered = &mut *guard;
        let mut held: Vec<(TraceId, Held)> = buffered.traces.drain().collect();
        held.sort_by_key(|(_, held)| held.first);
        buffered.count = 0;
        let mut text = String::new();
        for (trace, held) in held {
            render(&mut text, trace, &held.spans);
        }
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

/// Whether every span of `spans` whose parent is not among them is a root here: it
/// has no parent, or a remote one. A span whose local parent is missing waits for it.
fn only_local_roots_on_top(spans: &[SpanData]) -> bool {
    spans.iter().all(|span| {
        span.parent_span_id == SpanId::INVALID
            || span.parent_span_is_remote
            || spans
                .iter()
                .any(|s| s.span_context.span_id() == span.parent_span_id)
    })
}

/// Appends the tree of `spans` (one trace) to `text`: each span under its parent, local
/// or remote, when the parent is among them.
fn render(text: &mut String, trace: TraceId, spans: &[SpanData]) {
    let ids: Vec<SpanId> = spans.iter().map(|s| s.span_context.span_id()).collect();
    let _ = writeln!(text, "trace {trace}");
    let mut roots: Vec<&SpanData> = spans
        .iter()
        .filter(|s| !ids.contains(&s.parent_span_id))
        .collect();
    roots.sort_by_key(|s| s.start_time);
    let count = roots.len();
    for (i, root) in roots.into_iter().enumerate() {
        render_span(text, spans, root, "", i + 1 == count);
    }
}

fn render_span(text: &mut String, spans: &[SpanData], span: &SpanData, indent: &str, last: bool) {
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
    for key in FIRST {
        if let Some(kv) = span.attributes.iter().find(|kv| kv.key.as_str() == *key) {
            write_attribute(text, kv);
        }
    }
    for kv in &span.attributes {
        let key = kv.key.as_str();
        if !FIRST.contains(&key) && !HIDDEN.contains(&key) {
            write_attribute(text, kv);
        }
    }
    if let Status::Error { description } = &span.status {
        text.push_str("  ERROR");
        if !description.is_empty() {
            let _ = write!(text, ": {description}");
        }
    }
    for link in span.links.iter() {
        let _ = write!(text, "  link={}", link.span_context.trace_id());
    }
    for event in span.events.iter() {
        let _ = write!(text, "  [{}", event.name);
        for kv in &event.attributes {
            write_attribute(text, kv);
        }
        text.push(']');
    }
    text.push('\n');
    let id = span.span_context.span_id();
    let mut children: Vec<&SpanData> = spans.iter().filter(|s| s.parent_span_id == id).collect();
    children.sort_by_key(|s| s.start_time);
    let child_indent = format!("{indent}{}", if last { "   " } else { "│  " });
    let count = children.len();
    for (i, child) in children.into_iter().enumerate() {
        render_span(text, spans, child, &child_indent, i + 1 == count);
    }
}

/// `  key=value`, the value cut at [`MAX_VALUE_CHARS`] and on one line.
fn write_attribute(text: &mut String, kv: &KeyValue) {
    let value = kv.value.as_str();
    let _ = write!(text, "  {}=", kv.key.as_str());
    for (i, c) in value.chars().enumerate() {
        if i == MAX_VALUE_CHARS {
            text.push('…');
            break;
        }
        text.push(if c.is_control() { ' ' } else { c });
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

impl<W: Write + Send + std::fmt::Debug + 'static> SpanExporter for TreeExporter<W> {
    fn export(
        &self,
        batch: Vec<SpanData>,
    ) -> impl std::future::Future<Output = OTelSdkResult> + Send {
        self.tick();
        let result = self
            .shared
            .write(&self.shared.accept(batch, Instant::now()));
        std::future::ready(result)
    }

    fn force_flush(&self) -> OTelSdkResult {
        self.shared.write(&self.shared.drain())
    }

    fn shutdown_with_timeout(&self, _timeout: Duration) -> OTelSdkResult {
        self.shared.write(&self.shared.drain())
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
        let exporter = TreeExporter::new(out).quiet_for(Duration::ZERO);
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

    /// A request that calls a service in the same process: the downstream server span
    /// (its parent remote) ends first, then the client span, then the request. Printed
    /// once quiet, as one tree, every attribute and event shown but connection details.
    #[test]
    fn a_remote_parent_in_the_same_process_joins_one_tree_once_the_trace_is_quiet() {
        use opentelemetry_sdk::trace::InMemorySpanExporter;
        let memory = InMemorySpanExporter::default();
        let provider = SdkTracerProvider::builder()
            .with_simple_exporter(memory.clone())
            .build();
        let tracer = provider.tracer("t");
        let mut root = tracer.start("GET /orders");
        root.set_attribute(KeyValue::new("url.query", "card=[REDACTED]"));
        root.set_attribute(KeyValue::new("server.address", "127.0.0.1"));
        root.set_attribute(KeyValue::new("mine", "x".repeat(300)));
        let root_cx = Context::new().with_span(root);
        let client = tracer.start_with_context("GET", &root_cx);
        let client_cx = root_cx.with_span(client);
        let remote =
            Context::new().with_remote_span_context(client_cx.span().span_context().clone());
        let mut downstream = tracer.start_with_context("GET /stock", &remote);
        downstream.add_event(
            "exception",
            vec![KeyValue::new("exception.type", "io::Error")],
        );
        downstream.end();
        client_cx.span().end();
        root_cx.span().end();
        let spans = memory.get_finished_spans().unwrap();

        let out = Shared::default();
        let exporter = TreeExporter::new(out.clone());
        let t0 = Instant::now();
        let mut spans = spans.into_iter();
        // The downstream span alone, then the rest 100 ms later: not yet quiet.
        let text = exporter.shared.accept(vec![spans.next().unwrap()], t0);
        assert_eq!(text, "");
        assert_eq!(exporter.shared.settled(t0 + Duration::from_millis(100)), "");
        let later = t0 + Duration::from_millis(100);
        assert_eq!(exporter.shared.accept(spans.collect(), later), "");
        assert_eq!(
            exporter.shared.settled(later + Duration::from_millis(400)),
            ""
        );
        let text = exporter.shared.settled(later + DEFAULT_QUIET);
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines.len(), 4, "{text}");
        assert!(lines[1].starts_with("└─ GET /orders  "), "{text}");
        assert!(lines[1].contains("  url.query=card=[REDACTED]"), "{text}");
        assert!(!lines[1].contains("server.address"), "{text}");
        assert!(
            lines[1].ends_with(&format!("mine={}…", "x".repeat(120))),
            "{text}"
        );
        assert!(lines[2].starts_with("   └─ GET  "), "{text}");
        assert!(lines[3].starts_with("      └─ GET /stock  "), "{text}");
        assert!(
            lines[3].ends_with("[exception  exception.type=io::Error]"),
            "{text}"
        );
        assert_eq!(exporter.shared.drain(), "", "printed once");
    }

    /// A span whose local parent still runs waits for it, at most `MAX_HOLD`.
    #[test]
    fn a_child_waits_for_its_running_parent_at_most_the_hold() {
        let exporter = TreeExporter::new(Shared::default());
        let t0 = Instant::now();
        let memory = opentelemetry_sdk::trace::InMemorySpanExporter::default();
        let provider = SdkTracerProvider::builder()
            .with_simple_exporter(memory.clone())
            .build();
        let tracer = provider.tracer("t");
        let root_cx = Context::new().with_span(tracer.start("long.running"));
        tracer.start_with_context("child", &root_cx).end();
        exporter
            .shared
            .accept(memory.get_finished_spans().unwrap(), t0);
        assert_eq!(exporter.shared.settled(t0 + Duration::from_secs(9)), "");
        assert!(exporter
            .shared
            .settled(t0 + MAX_HOLD)
            .contains("└─ child  "));
    }
}
