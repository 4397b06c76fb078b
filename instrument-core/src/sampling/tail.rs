//! Tail bias: a request the head sampler dropped is still exported when its server
//! span ends failed or slow.
//!
//! How it works, and what it costs:
//! - The tower layers give each sampled-out request a [`TailWatch`] in its context
//!   (the watch, with what the request's end needs: one allocation; the context value:
//!   three, as opentelemetry's `Context::with_value` copies its map). Nothing is
//!   recorded for the request's own span until its end.
//! - A span started under that context (a `#[workflow_span]`, a `ClientLayer` call, any
//!   span made through the OpenTelemetry tracer with the request's context as parent)
//!   is recorded but not sampled (`RecordOnly`) and, once ended, held in the watch
//!   (at most [`TailBias::max_spans_per_request`] per request and
//!   [`TailBias::max_spans`] in the process; past either, spans are dropped and
//!   counted). Such spans cost what a sampled span costs, less the export.
//! - Events the request's handler logs (through `SpanEventLayer`) are held too (32 at
//!   most), and an `ERROR` event counts as a failure.
//! - At the end the layer decides: failed (`error.type` set, an `ERROR` event, or a
//!   held span that ended with an error status, such as a failed `#[workflow_span]`) or
//!   slower than the threshold for its span name → the server span is made then, with
//!   the ids the request already had (so the held children stay attached), its start
//!   time, the target's attributes, its URL, peer and outcome; it and the held spans
//!   are exported with [`KEPT_FOR`](crate::semconv::SAMPLING_KEPT_FOR) and no `th`
//!   (their probability is unknown). Otherwise everything held is dropped.
//! - A span of the request that ends after the decision follows it (exported when
//!   kept, dropped when not). Spans of tasks the request spawned without its context
//!   are not held.
//! - A request that was sampled at the head is untouched.

use std::any::Any;
use std::borrow::Cow;
use std::collections::HashMap;
use std::fmt;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, SystemTime};

use opentelemetry::trace::{
    Link, SpanContext, SpanId, SpanKind, TraceContextExt as _, TraceId, TraceState,
};
use opentelemetry::{Context, KeyValue};
use opentelemetry_sdk::error::OTelSdkResult;
use opentelemetry_sdk::trace::{
    SamplingDecision, SamplingResult, ShouldSample, Span, SpanData, SpanProcessor,
};

use super::threshold::without_threshold;
use crate::semconv::{SAMPLING_KEPT_FOR, TAIL_REQUESTS_KEPT, TAIL_SPANS_DROPPED};

/// Most events held for a sampled-out request.
const MAX_EVENTS: usize = 32;

/// When a request the head sampler dropped is exported anyway: failed, or slower than
/// a threshold (one for all requests, others by span name). Off unless
/// [`errors`](Self::errors) or a slow threshold is set.
///
/// ```
/// use std::time::Duration;
/// use instrument_core::pipeline::PipelineConfig;
/// use instrument_core::sampling::TailBias;
///
/// let tail = TailBias::default()
///     .errors(true)
///     .slow(Duration::from_millis(500))
///     .slow_for("POST /orders", Duration::from_secs(2));
/// let config = PipelineConfig::default().with_tail_bias(tail);
/// # let _ = config;
/// ```
#[derive(Debug, Clone, PartialEq)]
pub struct TailBias {
    errors: bool,
    slow: Option<Duration>,
    slow_for: Vec<(String, Duration)>,
    max_spans: usize,
    max_spans_per_request: usize,
}

impl Default for TailBias {
    fn default() -> Self {
        Self {
            errors: false,
            slow: None,
            slow_for: Vec::new(),
            max_spans: 2048,
            max_spans_per_request: 64,
        }
    }
}

impl TailBias {
    /// Keeps failed requests: `error.type` set on the server span, an `ERROR` event
    /// logged in the request's span, or a span of the request that ended with an error
    /// status (a failed `#[workflow_span]` or client call).
    pub fn errors(mut self, on: bool) -> Self {
        self.errors = on;
        self
    }

    /// Keeps requests that took at least `threshold`.
    pub fn slow(mut self, threshold: Duration) -> Self {
        self.slow = Some(threshold);
        self
    }

    /// Keeps requests to `name` that took at least `threshold`, instead of the global
    /// threshold. `name` is the server span's name (`GET /users/{id}`,
    /// `workflow.v1.WorkflowService/StartWorkflow`) or, for HTTP, the route alone
    /// (`/users/{id}`).
    pub fn slow_for(mut self, name: impl Into<String>, threshold: Duration) -> Self {
        let name = name.into();
        self.slow_for.retain(|(n, _)| *n != name);
        self.slow_for.push((name, threshold));
        self
    }

    /// Most spans held in the process for sampled-out requests not yet decided
    /// (2048 by default); past it they are dropped and counted.
    pub fn max_spans(mut self, n: usize) -> Self {
        self.max_spans = n;
        self
    }

    /// Most spans held for one request (64 by default).
    pub fn max_spans_per_request(mut self, n: usize) -> Self {
        self.max_spans_per_request = n;
        self
    }

    /// Whether anything is kept.
    pub fn is_enabled(&self) -> bool {
        self.errors || self.slow.is_some() || !self.slow_for.is_empty()
    }

    /// The slow threshold for a server span named `name`.
    pub fn slow_threshold(&self, name: &str) -> Option<Duration> {
        let route = name.split_once(' ').map(|(_, route)| route);
        self.slow_for
            .iter()
            .find(|(n, _)| n == name || Some(n.as_str()) == route)
            .map(|(_, t)| *t)
            .or(self.slow)
    }

    /// Why a request that took `elapsed` to end, `failed` or not, is kept; `None` when
    /// it is not. `name()` (its server span's name) is asked for only when a threshold
    /// is set by name.
    pub fn verdict<N: AsRef<str>>(
        &self,
        failed: bool,
        elapsed: Duration,
        name: impl FnOnce() -> N,
    ) -> Option<KeptFor> {
        if failed && self.errors {
            return Some(KeptFor::Error);
        }
        let threshold = match self.slow_for.is_empty() {
            true => self.slow,
            false => self.slow_threshold(name().as_ref()),
        };
        threshold.filter(|t| elapsed >= *t).map(|_| KeptFor::Slow)
    }
}

/// Why a sampled-out request was exported: the value of
/// [`SAMPLING_KEPT_FOR`](crate::semconv::SAMPLING_KEPT_FOR).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum KeptFor {
    /// It failed.
    Error,
    /// It was slow.
    Slow,
}

impl KeptFor {
    /// `error` or `slow`.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Error => "error",
            Self::Slow => "slow",
        }
    }
}

impl fmt::Display for KeptFor {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// What tail bias did since the pipeline started.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct TailStats {
    /// Sampled-out requests exported because they failed.
    pub kept_errors: u64,
    /// Sampled-out requests exported because they were slow.
    pub kept_slow: u64,
    /// Spans of sampled-out requests held and then exported with their request.
    pub spans_kept: u64,
    /// Spans not held because a cap was reached.
    pub spans_dropped: u64,
    /// Spans held now, waiting for their request's end.
    pub spans_held: u64,
}

/// A tail bias at work: its settings, counts, the held spans' budget, and where kept
/// spans go; shared by its sampler, its processor and the layers' watches.
pub(crate) struct Shared {
    pub(crate) config: TailBias,
    held: AtomicUsize,
    kept_errors: AtomicU64,
    kept_slow: AtomicU64,
    spans_kept: AtomicU64,
    spans_dropped: AtomicU64,
    /// The span id of each open span held for a watch.
    open: [Mutex<HashMap<SpanId, TailWatch>>; SHARDS],
    /// Where kept spans go: the processors after the tail's.
    sink: OnceLock<Arc<dyn SpanProcessor>>,
}

const SHARDS: usize = 16;

impl fmt::Debug for Shared {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Shared")
            .field("config", &self.config)
            .field("stats", &self.stats())
            .finish_non_exhaustive()
    }
}

impl Shared {
    pub(crate) fn new(config: TailBias) -> Arc<Self> {
        Arc::new(Self {
            config,
            held: AtomicUsize::new(0),
            kept_errors: AtomicU64::new(0),
            kept_slow: AtomicU64::new(0),
            spans_kept: AtomicU64::new(0),
            spans_dropped: AtomicU64::new(0),
            open: Default::default(),
            sink: OnceLock::new(),
        })
    }

    pub(crate) fn stats(&self) -> TailStats {
        TailStats {
            kept_errors: self.kept_errors.load(Ordering::Relaxed),
            kept_slow: self.kept_slow.load(Ordering::Relaxed),
            spans_kept: self.spans_kept.load(Ordering::Relaxed),
            spans_dropped: self.spans_dropped.load(Ordering::Relaxed),
            spans_held: self.held.load(Ordering::Relaxed) as u64,
        }
    }

    fn shard(&self, id: SpanId) -> &Mutex<HashMap<SpanId, TailWatch>> {
        let bytes = id.to_bytes();
        &self.open[usize::from(bytes[7]) % SHARDS]
    }

    fn dropped(&self, n: u64) {
        self.spans_dropped.fetch_add(n, Ordering::Relaxed);
        metrics::counter!(TAIL_SPANS_DROPPED).increment(n);
    }

    fn forward(&self, span: SpanData, why: KeptFor) {
        if let Some(sink) = self.sink.get() {
            self.spans_kept.fetch_add(1, Ordering::Relaxed);
            sink.on_end(kept(span, why));
        }
    }
}

/// `span`, sampled, without `th`, marked with why it was kept.
fn kept(mut span: SpanData, why: KeptFor) -> SpanData {
    let sc = &span.span_context;
    span.span_context = SpanContext::new(
        sc.trace_id(),
        sc.span_id(),
        sc.trace_flags().with_sampled(true),
        sc.is_remote(),
        without_threshold(sc.trace_state()),
    );
    span.attributes
        .push(KeyValue::new(SAMPLING_KEPT_FOR, why.as_str()));
    span
}

static INSTALLED: OnceLock<Arc<Shared>> = OnceLock::new();

/// A tail bias at work, for a tracer provider built by hand (`pipeline::init` does all
/// of this itself): its [`sampler`](Self::sampler) wraps the head sampler, its
/// [`processor`](Self::processor) goes after the tenant processor and before
/// redaction and export, the provider needs the
/// [`PresetIdGenerator`](crate::pipeline::PresetIdGenerator) (a kept request's span
/// keeps the ids it already had), and [`install`](Self::install) makes it the one the
/// tower layers watch requests for.
///
/// ```
/// use instrument_core::pipeline::{PresetIdGenerator, TenantProcessor, MissingTenant};
/// use instrument_core::sampling::TailBias;
/// use opentelemetry_sdk::trace::{
///     InMemorySpanExporter, ParentBasedSampler, Sampler, SdkTracerProvider, SimpleSpanProcessor,
/// };
///
/// let tail = TailBias::default().errors(true).start();
/// let head = ParentBasedSampler::new(Sampler::TraceIdRatioBased(0.01));
/// let export = SimpleSpanProcessor::new(InMemorySpanExporter::default());
/// let provider = SdkTracerProvider::builder()
///     .with_sampler(tail.sampler(head))
///     .with_id_generator(PresetIdGenerator::default())
///     .with_span_processor(TenantProcessor::new(MissingTenant::MarkMissing, tail.processor(export)))
///     .build();
/// tail.install();
/// # let _ = provider;
/// ```
#[derive(Debug, Clone)]
pub struct Tail(pub(crate) Arc<Shared>);

impl TailBias {
    /// Puts these settings to work (see [`Tail`]).
    pub fn start(self) -> Tail {
        Tail(Shared::new(self))
    }
}

impl Tail {
    /// `head` with tail bias: a span it drops under a watched request is recorded to
    /// be held; a kept request's span is sampled.
    pub fn sampler(&self, head: impl Into<Box<dyn ShouldSample>>) -> TailSampler {
        TailSampler { head: head.into() }
    }

    /// The processor that holds the spans of watched requests until they are decided
    /// and passes every sampled span to `inner`.
    pub fn processor<P: SpanProcessor + 'static>(&self, inner: P) -> TailProcessor {
        TailProcessor::new(Arc::clone(&self.0), inner)
    }

    /// Makes this the tail bias the tower layers watch sampled-out requests for (the
    /// first one installed in the process stays).
    pub fn install(&self) {
        let _ = INSTALLED.set(Arc::clone(&self.0));
    }

    /// What it kept and dropped so far.
    pub fn stats(&self) -> TailStats {
        self.0.stats()
    }
}

/// The installed tail bias's settings, when one is on.
#[inline]
pub fn installed() -> Option<&'static TailBias> {
    INSTALLED.get().map(|tail| &tail.config)
}

/// A held event: its name, time and attributes.
type HeldEvent = (Cow<'static, str>, SystemTime, Vec<KeyValue>);

/// A sampled-out request under tail bias, in its context: what its spans hold until
/// the request's end decides, and what the layer that made it needs then. Made by the
/// tower layers.
#[derive(Clone)]
pub struct TailWatch(Arc<Watch<dyn Any + Send + Sync>>);

struct Watch<R: ?Sized> {
    tail: Arc<Shared>,
    state: Mutex<State>,
    /// The maker's own record of the request (one allocation with the rest).
    request: R,
}

#[derive(Default)]
struct State {
    decided: Option<Option<KeptFor>>,
    spans: Vec<SpanData>,
    events: Vec<HeldEvent>,
    failed_inside: bool,
}

impl fmt::Debug for TailWatch {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TailWatch").finish_non_exhaustive()
    }
}

impl<R: ?Sized> Drop for Watch<R> {
    fn drop(&mut self) {
        let held = self.state.get_mut().map(|s| s.spans.len()).unwrap_or(0);
        if held > 0 {
            self.tail.held.fetch_sub(held, Ordering::AcqRel);
        }
    }
}

impl TailWatch {
    /// A watch for a sampled-out request, carrying the maker's `request()` (what it
    /// needs at the request's end, see [`request`](Self::request)); `None` (and
    /// `request` never called) when no tail bias is installed.
    pub fn begin<R: Any + Send + Sync>(request: impl FnOnce() -> R) -> Option<Self> {
        let tail = INSTALLED.get()?;
        let watch: Arc<Watch<dyn Any + Send + Sync>> = Arc::new(Watch {
            tail: Arc::clone(tail),
            state: Mutex::new(State::default()),
            request: request(),
        });
        Some(Self(watch))
    }

    /// The maker's record of the request, when it is an `R`.
    pub fn request<R: Any>(&self) -> Option<&R> {
        self.0.request.downcast_ref()
    }

    /// The settings.
    pub fn config(&self) -> &TailBias {
        &self.0.tail.config
    }

    fn state(&self) -> std::sync::MutexGuard<'_, State> {
        self.0
            .state
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Whether an `ERROR` event was logged in the request's span, or one of its spans
    /// held so far ended failed (status `Error`: a failed `#[workflow_span]`, a failed
    /// client call).
    pub fn failed_inside(&self) -> bool {
        self.state().failed_inside
    }

    /// Holds an event logged in the request's span (the first 32).
    pub fn hold_event(
        &self,
        name: Cow<'static, str>,
        time: SystemTime,
        attributes: Vec<KeyValue>,
        error: bool,
    ) {
        let mut state = self.state();
        state.failed_inside |= error;
        if state.decided.is_some() {
            return;
        }
        // Past the cap an event is left out (as the span's own event limit would).
        if state.events.len() < MAX_EVENTS {
            state.events.push((name, time, attributes));
        }
    }

    /// The events held, taken.
    pub fn take_events(&self) -> Vec<(Cow<'static, str>, SystemTime, Vec<KeyValue>)> {
        std::mem::take(&mut self.state().events)
    }

    /// Decides: the spans held are exported, marked `why`, when `why` is given, else
    /// dropped; the request's spans that end later follow. Counted.
    pub fn decide(&self, why: Option<KeptFor>) {
        let tail = &self.0.tail;
        let spans = {
            let mut state = self.state();
            if state.decided.is_some() {
                return;
            }
            state.decided = Some(why);
            state.events.clear();
            std::mem::take(&mut state.spans)
        };
        if !spans.is_empty() {
            tail.held.fetch_sub(spans.len(), Ordering::AcqRel);
        }
        let Some(why) = why else { return };
        match why {
            KeptFor::Error => tail.kept_errors.fetch_add(1, Ordering::Relaxed),
            KeptFor::Slow => tail.kept_slow.fetch_add(1, Ordering::Relaxed),
        };
        metrics::counter!(TAIL_REQUESTS_KEPT, "reason" => why.as_str()).increment(1);
        for span in spans {
            tail.forward(span, why);
        }
    }

    /// A context in which the server span made at a kept request's end is sampled, with
    /// `why` on it and no `th`.
    pub fn keep_in(cx: &Context, why: KeptFor) -> Context {
        cx.with_value(Kept(why))
    }

    /// Whether one more span may be held.
    fn has_room(&self) -> bool {
        let tail = &self.0.tail;
        tail.held.load(Ordering::Acquire) < tail.config.max_spans
    }

    /// A span of the request ended: held, exported or dropped as decided.
    fn ended(&self, span: SpanData) {
        let tail = &self.0.tail;
        let mut state = self.state();
        match state.decided {
            Some(Some(why)) => {
                drop(state);
                tail.forward(span, why);
            }
            Some(None) => {}
            None => {
                state.failed_inside |=
                    matches!(span.status, opentelemetry::trace::Status::Error { .. });
                let per_request = state.spans.len() < tail.config.max_spans_per_request;
                if per_request && tail.held.fetch_add(1, Ordering::AcqRel) < tail.config.max_spans {
                    state.spans.push(span);
                } else {
                    if per_request {
                        tail.held.fetch_sub(1, Ordering::AcqRel);
                    }
                    drop(state);
                    tail.dropped(1);
                }
            }
        }
    }
}

/// Marks the context of a kept request's server span.
#[derive(Debug, Clone, Copy)]
struct Kept(KeptFor);

/// The head sampler with tail bias ([`Tail::sampler`]): a span under a [`TailWatch`]
/// that the head drops is recorded (not sampled) while there is room to hold it, and
/// the server span of a kept request is sampled with why it was kept.
#[derive(Debug, Clone)]
pub struct TailSampler {
    head: Box<dyn ShouldSample>,
}

impl ShouldSample for TailSampler {
    fn should_sample(
        &self,
        parent_context: Option<&Context>,
        trace_id: TraceId,
        name: &str,
        span_kind: &SpanKind,
        attributes: &[KeyValue],
        links: &[Link],
    ) -> SamplingResult {
        if let Some(cx) = parent_context {
            if let Some(Kept(why)) = cx.get::<Kept>() {
                let span = cx.span();
                let sc = span.span_context();
                let state = if sc.is_valid() {
                    without_threshold(sc.trace_state())
                } else {
                    TraceState::NONE
                };
                return SamplingResult {
                    decision: SamplingDecision::RecordAndSample,
                    attributes: vec![KeyValue::new(SAMPLING_KEPT_FOR, why.as_str())],
                    trace_state: state,
                };
            }
        }
        let mut result =
            self.head
                .should_sample(parent_context, trace_id, name, span_kind, attributes, links);
        if result.decision == SamplingDecision::Drop {
            if let Some(watch) = parent_context.and_then(|cx| cx.get::<TailWatch>()) {
                if watch.has_room() {
                    result.decision = SamplingDecision::RecordOnly;
                } else {
                    watch.0.tail.dropped(1);
                }
            }
        }
        result
    }
}

/// Holds the spans of sampled-out requests under a [`TailWatch`] until their request
/// decides; every sampled span passes straight to its inner processor
/// ([`Tail::processor`]). Sits after the tenant processor (held spans carry their
/// tenant) and before redaction and export.
pub struct TailProcessor {
    tail: Arc<Shared>,
    inner: Arc<dyn SpanProcessor>,
}

impl fmt::Debug for TailProcessor {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TailProcessor")
            .field("tail", &self.tail)
            .finish_non_exhaustive()
    }
}

impl TailProcessor {
    fn new<P: SpanProcessor + 'static>(tail: Arc<Shared>, inner: P) -> Self {
        Self {
            tail,
            inner: Arc::new(inner),
        }
    }

    /// Makes `inner` where kept spans go: once the provider is built (its
    /// `set_resource` needs `inner` unshared), at the first span.
    fn sink(&self) {
        self.tail.sink.get_or_init(|| Arc::clone(&self.inner));
    }
}

impl SpanProcessor for TailProcessor {
    fn on_start(&self, span: &mut Span, cx: &Context) {
        use opentelemetry::trace::Span as _;
        self.sink();
        let sc = span.span_context();
        if !sc.is_sampled() {
            if let Some(watch) = cx.get::<TailWatch>() {
                let id = sc.span_id();
                self.tail
                    .shard(id)
                    .lock()
                    .unwrap_or_else(std::sync::PoisonError::into_inner)
                    .insert(id, watch.clone());
            }
        }
        self.inner.on_start(span, cx);
    }

    fn on_end(&self, span: SpanData) {
        if span.span_context.is_sampled() {
            self.inner.on_end(span);
            return;
        }
        let id = span.span_context.span_id();
        let watch = self
            .tail
            .shard(id)
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .remove(&id);
        if let Some(watch) = watch {
            watch.ended(span);
        }
    }

    fn force_flush(&self) -> OTelSdkResult {
        self.inner.force_flush()
    }

    fn shutdown_with_timeout(&self, timeout: Duration) -> OTelSdkResult {
        self.inner.shutdown_with_timeout(timeout)
    }

    fn set_resource(&mut self, resource: &opentelemetry_sdk::Resource) {
        if let Some(inner) = Arc::get_mut(&mut self.inner) {
            inner.set_resource(resource);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_request_is_kept_for_failing_or_for_its_names_threshold() {
        let ms = Duration::from_millis;
        let tail = TailBias::default()
            .errors(true)
            .slow(ms(500))
            .slow_for("/users/{id}", ms(100))
            .slow_for("pkg.Svc/Call", ms(2000));
        assert!(tail.is_enabled());
        assert_eq!(
            tail.verdict(true, ms(1), || "GET /orders"),
            Some(KeptFor::Error)
        );
        assert_eq!(tail.verdict(false, ms(499), || "GET /orders"), None);
        assert_eq!(
            tail.verdict(false, ms(500), || "GET /orders"),
            Some(KeptFor::Slow)
        );
        // By route alone, whatever the method.
        assert_eq!(
            tail.verdict(false, ms(100), || "POST /users/{id}"),
            Some(KeptFor::Slow)
        );
        assert_eq!(tail.verdict(false, ms(1999), || "pkg.Svc/Call"), None);
        let slow_only = TailBias::default().slow(ms(10));
        assert_eq!(
            slow_only.verdict(true, ms(1), || -> &str {
                unreachable!("no threshold by name")
            }),
            None,
            "errors not asked for"
        );
        assert!(!TailBias::default().is_enabled());
        // The same name twice: the later threshold.
        let again = TailBias::default()
            .slow_for("a", ms(1))
            .slow_for("a", ms(2));
        assert_eq!(again, TailBias::default().slow_for("a", ms(2)));
    }

    #[test]
    fn a_kept_span_is_sampled_marked_and_loses_th_only() {
        use opentelemetry::trace::{SpanKind, Status, TraceFlags};
        use opentelemetry::InstrumentationScope;
        use opentelemetry_sdk::trace::{SpanEvents, SpanLinks};
        let state =
            TraceState::from_key_value([("ot", "th:8;rv:00000000000001"), ("v", "1")]).unwrap();
        let span = SpanData {
            span_context: SpanContext::new(
                TraceId::from(1u128),
                SpanId::from(2u64),
                TraceFlags::default(),
                false,
                state,
            ),
            parent_span_id: SpanId::from(3u64),
            parent_span_is_remote: false,
            span_kind: SpanKind::Internal,
            name: "child".into(),
            start_time: SystemTime::UNIX_EPOCH,
            end_time: SystemTime::UNIX_EPOCH,
            attributes: Vec::new(),
            dropped_attributes_count: 0,
            events: SpanEvents::default(),
            links: SpanLinks::default(),
            status: Status::Unset,
            instrumentation_scope: InstrumentationScope::default(),
        };
        let kept = kept(span, KeptFor::Slow);
        assert!(kept.span_context.is_sampled());
        assert_eq!(
            kept.span_context.trace_state().get("ot"),
            Some("rv:00000000000001")
        );
        assert_eq!(kept.span_context.trace_state().get("v"), Some("1"));
        assert_eq!(
            kept.attributes,
            vec![KeyValue::new(SAMPLING_KEPT_FOR, "slow")]
        );
    }
}
