//! [`SpanCollector`]: a worker's execution spans, batched and sent to the server's span
//! proxy, fire-and-forget.

use std::collections::HashMap;
use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use opentelemetry::trace::{
    Span as _, SpanId, SpanKind, Status, TraceContextExt as _, Tracer as _, TracerProvider as _,
};
use opentelemetry::{Context, KeyValue, Value};
use opentelemetry_sdk::error::OTelSdkResult;
use opentelemetry_sdk::trace::{
    BatchConfigBuilder, BatchSpanProcessor, SdkTracer, SdkTracerProvider, Span, SpanData,
    SpanExporter, SpanProcessor,
};

use super::{ExecutionSpan, SdkInfo};
use crate::context::restore;
use crate::pipeline::{MissingTenant, TenantProcessor};
use crate::semconv::{
    self, MetricNames, CANCELLED, HTTP_REQUEST_METHOD, LABEL_REASON, STORED_PARENT_UNUSED, TASK_ID,
    TENANT_ID, WORKFLOW_ID,
};
use crate::tenant::{with_tenant, TenantId};

/// Why a report could not be sent.
pub type SinkError = Box<dyn std::error::Error + Send + Sync>;

/// The spans of one tenant, sent in one request to the server's span proxy.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Report {
    /// The tenant the spans belong to (the request's tenant header).
    pub tenant: TenantId,
    /// The reporting SDK.
    pub sdk: SdkInfo,
    /// The spans, at most the batch size.
    pub spans: Vec<ExecutionSpan>,
}

/// Where a [`SpanCollector`] sends its reports: the server's `ReportExecutionSpans`,
/// through the application's gRPC client.
pub trait SpanSink: Send + Sync + 'static {
    /// Sends `report`. An error drops the report's spans (counted); it is never retried.
    fn send(&self, report: Report) -> Pin<Box<dyn Future<Output = Result<(), SinkError>> + Send>>;
}

/// A worker's execution spans (see the [module docs](super)): started with
/// [`execution`](Self::execution) or [`tracer`](Self::tracer), batched (50 spans by
/// default), sent on a timer (1 s), when a batch is full and when an [`Execution`]
/// ends, to a [`SpanSink`], fire-and-forget.
///
/// It never blocks or fails the work it records: sends run on the tokio runtime the
/// collector was built on, one batch at a time, each for at most 5 s, waited for by the
/// batch processor's own thread. At most 2,048 spans wait for a batch; spans past that,
/// a send that fails or times out, and spans without a tenant or a workflow are dropped
/// and counted (`<prefix>_execution_spans_dropped_total{reason}`: `queue_full`,
/// `unreachable`, `timeout`, `no_tenant_or_workflow`; and [`dropped`](Self::dropped)).
///
/// ```
/// use std::future::Future;
/// use std::pin::Pin;
/// use instrument_core::report::{Report, SdkInfo, SinkError, SpanCollector, SpanSink};
/// use instrument_core::semconv::SPAN_TASK_EXECUTE;
/// use instrument_core::tenant::TenantId;
///
/// struct Server; // the application's gRPC client
///
/// impl SpanSink for Server {
///     fn send(&self, report: Report) -> Pin<Box<dyn Future<Output = Result<(), SinkError>> + Send>> {
///         Box::pin(async move { /* client.report_execution_spans(...).await */ Ok(()) })
///     }
/// }
///
/// # #[tokio::main(flavor = "current_thread")] async fn main() -> Result<(), Box<dyn std::error::Error>> {
/// let collector = SpanCollector::builder(Server).sdk(SdkInfo::rust("1.2.0")).build()?;
/// // A task handed out by a poll, with the workflow's traceparent.
/// let tenant = TenantId::parse("acme")?;
/// let run = collector
///     .execution(SPAN_TASK_EXECUTE, "wf-1", &tenant)
///     .traceparent(Some("00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"))
///     .task("task-7")
///     .start();
/// // ... run the task under `run.context()` (`InContextExt::in_context`) ...
/// run.end(None);
/// # Ok(()) }
/// ```
pub struct SpanCollector {
    provider: Flusher,
    tracer: SdkTracer,
    stats: Arc<Stats>,
}

impl fmt::Debug for SpanCollector {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SpanCollector")
            .field("sent", &self.sent())
            .field("dropped", &self.dropped())
            .finish_non_exhaustive()
    }
}

/// Counts of what became of the collected spans.
#[derive(Debug, Default)]
struct Stats {
    sent: AtomicU64,
    dropped: AtomicU64,
    /// Spans handed to the batch processor and not yet sent or dropped.
    pending: AtomicU64,
}

/// Builds a [`SpanCollector`].
pub struct SpanCollectorBuilder {
    sink: Arc<dyn SpanSink>,
    sdk: SdkInfo,
    batch: usize,
    every: Duration,
    queue: usize,
    timeout: Duration,
    names: MetricNames,
}

impl fmt::Debug for SpanCollectorBuilder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SpanCollectorBuilder")
            .field("sdk", &self.sdk)
            .field("batch", &self.batch)
            .field("every", &self.every)
            .finish_non_exhaustive()
    }
}

/// A [`SpanCollector`] needs a tokio runtime to send on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NoRuntime;

impl fmt::Display for NoRuntime {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a SpanCollector must be built inside a tokio runtime, which its sends run on")
    }
}

impl std::error::Error for NoRuntime {}

impl SpanCollectorBuilder {
    /// Describes the reporting SDK (default: [`SdkInfo::rust`] with this crate's version).
    pub fn sdk(mut self, sdk: SdkInfo) -> Self {
        self.sdk = sdk;
        self
    }

    /// Spans per report (default 50; at most the proxy's 100).
    pub fn batch(mut self, spans: usize) -> Self {
        self.batch = spans.clamp(1, 100);
        self
    }

    /// How long a span waits for a batch at most (default 1 s).
    pub fn every(mut self, period: Duration) -> Self {
        self.every = period;
        self
    }

    /// Spans waiting for a batch at most (default 2,048).
    pub fn queue(mut self, spans: usize) -> Self {
        self.queue = spans.max(1);
        self
    }

    /// How long one send may take (default 5 s).
    pub fn timeout(mut self, timeout: Duration) -> Self {
        self.timeout = timeout;
        self
    }

    /// Names the collector's counters after `names`.
    pub fn metric_names(mut self, names: &MetricNames) -> Self {
        self.names = names.clone();
        self
    }

    /// Renamed [`metric_names`](Self::metric_names), which every builder has.
    #[deprecated(
        since = "0.1.0",
        note = "renamed `metric_names`, taking `&MetricNames`"
    )]
    pub fn names(self, names: MetricNames) -> Self {
        self.metric_names(&names)
    }

    /// The collector, sending on the current tokio runtime.
    pub fn build(self) -> Result<SpanCollector, NoRuntime> {
        let handle = tokio::runtime::Handle::try_current().map_err(|_| NoRuntime)?;
        let stats = Arc::new(Stats::default());
        let export = Export {
            sink: self.sink,
            sdk: self.sdk,
            handle,
            timeout: self.timeout,
            stats: Arc::clone(&stats),
            sent: self.names.execution_spans_sent_total(),
            dropped: self.names.execution_spans_dropped_total(),
        };
        let batch = BatchSpanProcessor::builder(export)
            .with_batch_config(
                BatchConfigBuilder::default()
                    .with_max_export_batch_size(self.batch)
                    .with_max_queue_size(self.queue.max(self.batch))
                    .with_scheduled_delay(self.every)
                    .build(),
            )
            .build();
        let queue = self.queue.max(self.batch);
        let provider = SdkTracerProvider::builder()
            .with_span_processor(TenantProcessor::new(
                MissingTenant::MarkMissing,
                Collect {
                    stats: Arc::clone(&stats),
                    capacity: queue as u64,
                    dropped: self.names.execution_spans_dropped_total(),
                    inner: batch,
                },
            ))
            .build();
        let tracer = provider.tracer_with_scope(semconv::scope(semconv::SCOPE));
        Ok(SpanCollector {
            provider: Flusher {
                provider,
                running: Arc::default(),
            },
            tracer,
            stats,
        })
    }
}

impl SpanCollector {
    /// A collector sending to `sink`, with the defaults above.
    pub fn builder(sink: impl SpanSink) -> SpanCollectorBuilder {
        SpanCollectorBuilder {
            sink: Arc::new(sink),
            sdk: SdkInfo::rust(env!("CARGO_PKG_VERSION")),
            batch: 50,
            every: Duration::from_secs(1),
            queue: 2048,
            timeout: Duration::from_secs(5),
            names: MetricNames::global().clone(),
        }
    }

    /// The collector's tracer, for spans of its own (a timer, a child workflow) and
    /// for the client layer's spans (`ClientLayer::tracer`): spans started under an
    /// [`Execution`]'s context are reported with it.
    pub fn tracer(&self) -> SdkTracer {
        self.tracer.clone()
    }

    /// Starts describing a piece of work of `span_type` (`task.execute`, ...) for
    /// `workflow_id` of `tenant`.
    pub fn execution<'a>(
        &'a self,
        span_type: &'static str,
        workflow_id: &'a str,
        tenant: &'a TenantId,
    ) -> ExecutionBuilder<'a> {
        ExecutionBuilder {
            collector: self,
            span_type,
            workflow_id,
            tenant,
            traceparent: None,
            task_id: None,
        }
    }

    /// Spans delivered to the sink so far.
    pub fn sent(&self) -> u64 {
        self.stats.sent.load(Ordering::Relaxed)
    }

    /// Spans dropped so far (sink failed or timed out, too many sends under way, no
    /// tenant or workflow).
    pub fn dropped(&self) -> u64 {
        self.stats.dropped.load(Ordering::Relaxed)
    }

    /// Hands every finished span to the sink now, without waiting: on a tokio runtime
    /// the flush runs on its blocking pool (it waits for the sends, which run on the
    /// runtime), elsewhere on the calling thread.
    pub fn flush(&self) {
        self.provider.flush();
    }

    /// Flushes and stops; spans started later are not recorded. Waits for the last
    /// sends: call it off the runtime's threads (`spawn_blocking`), or after the
    /// runtime's work is done on a multi-threaded runtime.
    pub fn shutdown(&self) {
        let _ = self.provider.provider.shutdown();
    }
}

/// Describes an [`Execution`] before it starts.
#[derive(Debug)]
pub struct ExecutionBuilder<'a> {
    collector: &'a SpanCollector,
    span_type: &'static str,
    workflow_id: &'a str,
    tenant: &'a TenantId,
    traceparent: Option<&'a str>,
    task_id: Option<&'a str>,
}

impl<'a> ExecutionBuilder<'a> {
    /// Continues the workflow's trace from `traceparent` (as the poll response carried
    /// it). A missing or corrupt one starts a fresh trace, with the reason recorded as
    /// `instrument.stored_parent.unused`; the span proxy still puts the spans in the
    /// workflow's trace.
    pub fn traceparent(mut self, traceparent: Option<&'a str>) -> Self {
        self.traceparent = traceparent;
        self
    }

    /// The task being run.
    pub fn task(mut self, task_id: &'a str) -> Self {
        self.task_id = Some(task_id);
        self
    }

    /// Starts the span.
    pub fn start(self) -> Execution {
        let restored = restore(self.traceparent);
        let base = with_tenant(&restored.to_context(), self.tenant.clone()).with_value(Work {
            workflow: Arc::from(self.workflow_id),
            task: self.task_id.map(Arc::from),
        });
        let mut builder = self.collector.tracer.span_builder(self.span_type);
        if let Some(reason) = restored.fresh_reason() {
            builder =
                builder.with_attributes([KeyValue::new(STORED_PARENT_UNUSED, reason.to_string())]);
        }
        let span = self.collector.tracer.build_with_context(builder, &base);
        Execution {
            cx: Some(base.with_span(span)),
            provider: self.collector.provider.clone(),
            tracer: self.collector.tracer.clone(),
        }
    }
}

/// The collector's provider, flushed without blocking a runtime thread, one flush at a
/// time: a flush asked for while one runs is covered by it or by the next timer tick,
/// so a slow server never ties up more than one blocking thread.
#[derive(Debug, Clone)]
struct Flusher {
    provider: SdkTracerProvider,
    running: Arc<std::sync::atomic::AtomicBool>,
}

impl Flusher {
    fn flush(&self) {
        if self.running.swap(true, Ordering::AcqRel) {
            return;
        }
        let this = self.clone();
        let flush = move || {
            let _ = this.provider.force_flush();
            this.running.store(false, Ordering::Release);
        };
        match tokio::runtime::Handle::try_current() {
            Ok(handle) => drop(handle.spawn_blocking(flush)),
            Err(_) => flush(),
        }
    }
}

/// What the spans under a context are about; stamped on each at its start.
#[derive(Debug, Clone)]
struct Work {
    workflow: Arc<str>,
    task: Option<Arc<str>>,
}

/// A running piece of work (see [`SpanCollector::execution`]). Dropped without
/// [`end`](Self::end), its span ends as cancelled.
pub struct Execution {
    cx: Option<Context>,
    provider: Flusher,
    tracer: SdkTracer,
}

impl fmt::Debug for Execution {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Execution").finish_non_exhaustive()
    }
}

impl Execution {
    /// The context to run the work in: its span, the tenant and the workflow. Calls
    /// through the client layer made under it continue the trace.
    pub fn context(&self) -> Context {
        self.cx.clone().unwrap_or_default()
    }

    /// A piece of work inside this one, of `span_type` (a task of a workflow, a timer,
    /// ...), about `task_id` when given.
    pub fn child(&self, span_type: &'static str, task_id: Option<&str>) -> Execution {
        let parent = self.context();
        let parent = match (task_id, parent.get::<Work>()) {
            (Some(task), Some(work)) => {
                let work = Work {
                    workflow: Arc::clone(&work.workflow),
                    task: Some(Arc::from(task)),
                };
                parent.with_value(work)
            }
            _ => parent,
        };
        let span = self.tracer.start_with_context(span_type, &parent);
        Execution {
            cx: Some(parent.with_span(span)),
            provider: self.provider.clone(),
            tracer: self.tracer.clone(),
        }
    }

    /// Ends the span (failed with `error`, if given) and sends the finished spans
    /// without waiting for them.
    pub fn end(mut self, error: Option<&str>) {
        if let Some(cx) = self.cx.take() {
            let span = cx.span();
            if let Some(error) = error {
                span.set_status(Status::error(error.to_owned()));
            }
            span.end();
        }
        self.provider.flush();
    }
}

impl Drop for Execution {
    fn drop(&mut self) {
        if let Some(cx) = self.cx.take() {
            let span = cx.span();
            span.set_attribute(KeyValue::new(CANCELLED, true));
            span.end();
        }
    }
}

/// In front of the batch processor: stamps `workflow.id` and `task.id` from the context
/// on every span at its start, and drops (and counts) at its end the spans the queue has
/// no room for, so every span is sent or counted.
#[derive(Debug)]
struct Collect<P> {
    stats: Arc<Stats>,
    capacity: u64,
    dropped: String,
    inner: P,
}

impl<P: SpanProcessor> SpanProcessor for Collect<P> {
    fn on_start(&self, span: &mut Span, cx: &Context) {
        if let Some(work) = cx.get::<Work>() {
            span.set_attribute(KeyValue::new(
                WORKFLOW_ID,
                Value::from(Arc::clone(&work.workflow)),
            ));
            if let Some(task) = &work.task {
                span.set_attribute(KeyValue::new(TASK_ID, Value::from(Arc::clone(task))));
            }
        }
        self.inner.on_start(span, cx);
    }

    fn on_end(&self, span: SpanData) {
        if self.stats.pending.fetch_add(1, Ordering::AcqRel) >= self.capacity {
            self.stats.pending.fetch_sub(1, Ordering::AcqRel);
            drop_spans(&self.stats, &self.dropped, 1, "queue_full");
            return;
        }
        self.inner.on_end(span);
    }

    fn force_flush(&self) -> OTelSdkResult {
        self.inner.force_flush()
    }

    fn shutdown_with_timeout(&self, timeout: Duration) -> OTelSdkResult {
        self.inner.shutdown_with_timeout(timeout)
    }

    fn set_resource(&mut self, resource: &opentelemetry_sdk::Resource) {
        self.inner.set_resource(resource);
    }
}

/// The exporter behind the batch processor: spans to reports, reports to the sink.
/// Each export waits for its sends (run on the collector's runtime, each for at most
/// the timeout): the batch processor's thread waits, never the work; spans arriving
/// meanwhile wait in its bounded queue.
struct Export {
    sink: Arc<dyn SpanSink>,
    sdk: SdkInfo,
    handle: tokio::runtime::Handle,
    timeout: Duration,
    stats: Arc<Stats>,
    sent: String,
    dropped: String,
}

impl fmt::Debug for Export {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Export").finish_non_exhaustive()
    }
}

impl Export {
    fn drop_spans(&self, n: usize, reason: &'static str) {
        drop_spans(&self.stats, &self.dropped, n, reason);
    }
}

fn drop_spans(stats: &Stats, name: &str, n: usize, reason: &'static str) {
    if n == 0 {
        return;
    }
    let n = n as u64;
    stats.dropped.fetch_add(n, Ordering::Relaxed);
    metrics::counter!(name.to_owned(), LABEL_REASON => reason).increment(n);
}

impl SpanExporter for Export {
    fn export(&self, batch: Vec<SpanData>) -> impl Future<Output = OTelSdkResult> + Send {
        let stats = Arc::clone(&self.stats);
        let total = batch.len() as u64;
        let mut sends = Vec::new();
        let mut by_tenant: HashMap<String, Vec<ExecutionSpan>> = HashMap::new();
        let mut unowned = 0;
        for span in batch {
            match to_execution(span) {
                Some((tenant, span)) => by_tenant.entry(tenant).or_default().push(span),
                None => unowned += 1,
            }
        }
        self.drop_spans(unowned, "no_tenant_or_workflow");
        for (tenant, spans) in by_tenant {
            let Ok(tenant) = TenantId::parse(&tenant) else {
                self.drop_spans(spans.len(), "no_tenant_or_workflow");
                continue;
            };
            let n = spans.len();
            let report = Report {
                tenant,
                sdk: self.sdk.clone(),
                spans,
            };
            let send = self.sink.send(report);
            let timeout = self.timeout;
            let stats = Arc::clone(&self.stats);
            let (sent, dropped) = (self.sent.clone(), self.dropped.clone());
            sends.push(self.handle.spawn(async move {
                let reason = match tokio::time::timeout(timeout, send).await {
                    Ok(Ok(())) => None,
                    Ok(Err(_)) => Some("unreachable"),
                    Err(_) => Some("timeout"),
                };
                match reason {
                    None => {
                        stats.sent.fetch_add(n as u64, Ordering::Relaxed);
                        metrics::counter!(sent).increment(n as u64);
                    }
                    Some(reason) => drop_spans(&stats, &dropped, n, reason),
                }
            }));
        }
        async move {
            for send in sends {
                // A send that panicked lost its spans: nothing to count them by but
                // the pending total below.
                let _ = send.await;
            }
            stats.pending.fetch_sub(total, Ordering::AcqRel);
            Ok(())
        }
    }
}

/// A finished span as reported: its tenant, and the span; `None` without either a
/// tenant or a workflow.
fn to_execution(span: SpanData) -> Option<(String, ExecutionSpan)> {
    let mut tenant = None;
    let mut workflow = None;
    let mut task = String::new();
    let mut attributes = Vec::with_capacity(span.attributes.len());
    let mut http = false;
    for kv in span.attributes {
        match kv.key.as_str() {
            TENANT_ID => tenant = Some(kv.value.as_str().into_owned()),
            WORKFLOW_ID => workflow = Some(kv.value.as_str().into_owned()),
            TASK_ID => task = kv.value.as_str().into_owned(),
            key => {
                http |= key == HTTP_REQUEST_METHOD;
                attributes.push((key.to_owned(), kv.value.as_str().into_owned()));
            }
        }
    }
    let (span_type, name) = match span.span_kind {
        SpanKind::Client if http => (semconv::SPAN_HTTP_CLIENT.to_owned(), span.name.into_owned()),
        SpanKind::Client => (semconv::SPAN_RPC_CLIENT.to_owned(), span.name.into_owned()),
        _ => (span.name.into_owned(), String::new()),
    };
    let parent = span.parent_span_id;
    let execution = ExecutionSpan {
        span_id: span.span_context.span_id().to_string(),
        parent_span_id: if parent == SpanId::INVALID {
            String::new()
        } else {
            parent.to_string()
        },
        span_type,
        name,
        workflow_id: workflow?,
        task_id: task,
        start: span.start_time,
        end: span.end_time,
        error: match span.status {
            Status::Error { description } => Some(description.into_owned()),
            _ => None,
        },
        attributes,
    };
    Some((tenant?, execution))
}

#[cfg(test)]
mod tests {
    use std::sync::Mutex;

    use super::*;
    use crate::semconv::SPAN_TASK_EXECUTE;

    const TP: &str = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";

    /// Keeps what it is sent; fails when `fail` is set.
    #[derive(Clone, Default)]
    struct Keep {
        reports: Arc<Mutex<Vec<Report>>>,
        fail: bool,
    }

    impl SpanSink for Keep {
        fn send(
            &self,
            report: Report,
        ) -> Pin<Box<dyn Future<Output = Result<(), SinkError>> + Send>> {
            let reports = Arc::clone(&self.reports);
            let fail = self.fail;
            Box::pin(async move {
                if fail {
                    return Err("connection refused".into());
                }
                reports.lock().unwrap().push(report);
                Ok(())
            })
        }
    }

    async fn settle(collector: &SpanCollector, total: u64) {
        for _ in 0..200 {
            if collector.sent() + collector.dropped() >= total {
                return;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        panic!("sent {} dropped {}", collector.sent(), collector.dropped());
    }

    #[tokio::test]
    async fn an_execution_and_a_call_under_it_are_reported_as_one_tree_of_the_workflow() {
        let sink = Keep::default();
        let collector = SpanCollector::builder(sink.clone()).build().unwrap();
        let tenant = TenantId::parse("acme").unwrap();
        let run = collector
            .execution(SPAN_TASK_EXECUTE, "wf-1", &tenant)
            .traceparent(Some(TP))
            .task("task-7")
            .start();
        let tracer = collector.tracer();
        let call = tracer
            .span_builder("GET")
            .with_kind(SpanKind::Client)
            .with_attributes([KeyValue::new(HTTP_REQUEST_METHOD, "GET")])
            .start_with_context(&tracer, &run.context());
        drop(call);
        let execution_id = run.context().span().span_context().span_id().to_string();
        run.end(Some("card declined"));
        settle(&collector, 2).await;
        let reports = sink.reports.lock().unwrap();
        assert_eq!(reports.len(), 1);
        let report = &reports[0];
        assert_eq!(report.tenant.as_str(), "acme");
        assert_eq!(report.sdk.language, "rust");
        let call = report
            .spans
            .iter()
            .find(|s| s.span_type == "http.client")
            .unwrap();
        let execution = report
            .spans
            .iter()
            .find(|s| s.span_type == SPAN_TASK_EXECUTE)
            .unwrap();
        assert_eq!(call.name, "GET");
        assert_eq!(call.parent_span_id, execution_id);
        assert_eq!(call.workflow_id, "wf-1");
        assert_eq!(call.task_id, "task-7");
        assert_eq!(execution.span_id, execution_id);
        assert_eq!(execution.parent_span_id, "00f067aa0ba902b7");
        assert_eq!(execution.error.as_deref(), Some("card declined"));
        assert!(execution.attributes.iter().all(|(k, _)| k != "tenant.id"));
    }

    #[tokio::test]
    async fn an_unreachable_server_drops_and_counts_and_a_corrupt_traceparent_is_noted() {
        let sink = Keep {
            fail: true,
            ..Keep::default()
        };
        let collector = SpanCollector::builder(sink).build().unwrap();
        let tenant = TenantId::parse("acme").unwrap();
        for _ in 0..3 {
            let run = collector
                .execution(SPAN_TASK_EXECUTE, "wf-1", &tenant)
                .traceparent(Some("00-garbage"))
                .start();
            run.end(None);
        }
        // A span outside any execution has no workflow: dropped too.
        drop(collector.tracer().start("stray"));
        collector.flush();
        settle(&collector, 4).await;
        assert_eq!((collector.sent(), collector.dropped()), (0, 4));

        let sink = Keep::default();
        let collector = SpanCollector::builder(sink.clone()).build().unwrap();
        collector
            .execution(SPAN_TASK_EXECUTE, "wf-1", &tenant)
            .traceparent(Some("00-garbage"))
            .start()
            .end(None);
        settle(&collector, 1).await;
        let reports = sink.reports.lock().unwrap();
        let span = &reports[0].spans[0];
        assert_eq!(span.parent_span_id, "");
        assert!(span
            .attributes
            .iter()
            .any(|(k, _)| k == STORED_PARENT_UNUSED));
    }

    #[test]
    fn building_outside_a_runtime_is_a_clear_error() {
        let error = SpanCollector::builder(Keep::default()).build().unwrap_err();
        assert!(error.to_string().contains("tokio runtime"));
    }
}
