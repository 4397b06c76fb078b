//! The run time of `#[workflow_span]`: one call of an annotated handler, from its start
//! to its end, as spans and metrics.
//!
//! The macro generates a [`Site`] per annotated function (what it knows at compile
//! time) and, around the body, a [`Call`]:
//!
//! ```ignore
//! // #[workflow_span(kind = "task", tenant = req.tenant, id = req.task_id)]
//! // async fn complete(req: Request) -> Result<(), Error> { body }
//! async fn complete(req: Request) -> Result<(), Error> {
//!     static SITE: Site = Site::new("task", "task.complete");
//!     let call = Call::start(&SITE, tenant(&(req.tenant)), Parent::Current, None,
//!                            || (field("task.id", &(req.task_id)), []));
//!     call.run_async(async move { body }, |ret| (&Classify(ret)).__instrument_outcome()).await
//! }
//! ```
//!
//! [`Call::start`] starts the handler span (its parent restored from a stored
//! `traceparent` when one is given, `tenant.id`, the id and the fields as attributes,
//! the tenant in its context) and, for an [`Event::Run`] site, counts the work as
//! started. The id and the fields
//! are made only for a span that is recorded: under a sampled parent before the span
//! starts (the sampler sees them), otherwise once the sampler chose to record it, so a
//! call sampled out (99 in 100 at 1 %) captures and redacts nothing it would throw
//! away. The body runs with that
//! context current ([`Call::run_sync`], [`Call::run_async`], every poll). The call ends
//! in exactly one [`Ending`]: completed, failed (`Err`, `None`, or a panic, which then
//! continues) or cancelled (dropped before it finished). Then the handler span ends and
//! its run time is recorded; where the call's ending is the work's ([`Event::Run`],
//! [`Event::End`]) a completion span `<kind>.completed` / `.failed` / `.cancelled`
//! records the durations and the redacted error (at most 1 KiB), and the ending is
//! counted. [`Event`] says which lifecycle events a site's calls are.
//!
//! Metric names come from the process-wide [`MetricNames`] (set by the pipeline, read
//! when a site first records): the lifecycle counters `<prefix>_<kind>s_started_total`,
//! `..._completed_total`, `..._failed_total`, `..._cancelled_total`, the lifetime
//! histogram `<prefix>_<kind>_duration_seconds` and the handler run-time histogram
//! `<prefix>_<kind>_handler_seconds`, labels `tenant_id` and `name` (and `status` on
//! the histograms), each registered when first recorded. A site keeps its
//! metric handles per tenant under a lasting recorder (see
//! [`keep_handles_for`](crate::cardinality::keep_handles_for)).
//!
//! Everything here is public so the macro's expansion can call it, and usable by hand
//! where a macro does not fit:
//!
//! ```
//! use instrument_core::work::{Call, Outcome, Parent, Site, tenant};
//!
//! static SITE: Site = Site::new("task", "task.reconcile");
//! let call = Call::start(&SITE, tenant("acme"), Parent::Current, None, || (None, []));
//! let sum = call.run_sync(|| 40 + 2, |_| Outcome::Completed);
//! assert_eq!(sum, 42);
//! ```

mod args;
mod handles;
mod outcome;

use std::borrow::Cow;
use std::future::Future;
use std::panic::{catch_unwind, resume_unwind, AssertUnwindSafe};
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context as TaskContext, Poll};
use std::time::{Instant, SystemTime};

use opentelemetry::global::{BoxedSpan, BoxedTracer};
use opentelemetry::trace::{
    Span, SpanBuilder, SpanKind, Status, TraceContextExt as _, Tracer as _, TracerProvider as _,
};
use opentelemetry::{Context, KeyValue, StringValue};
use pin_project::pin_project;

/// Moved to [`crate::outstanding`] (the stuck-work gauge is not part of the macro's
/// runtime); these paths go in the next release.
#[doc(hidden)]
pub use crate::outstanding::{
    InvalidThresholds, Outstanding, OutstandingGauge, Poller, WorkState, DEFAULT_THRESHOLDS,
    LABEL_KIND, LABEL_OLDER_THAN, LABEL_STATE,
};
pub use args::{
    field, label, started_at, tenant, traceparent, AttrArg, Parent, StartedAtArg, TenantArg,
    TraceparentArg,
};
pub use outcome::{
    error_type_of, Classify, ErrorType, OptionOutcome, Outcome, PlainOutcome, ResultOutcome,
    TypedOutcome,
};

use self::handles::{SiteMetrics, TenantHandles};
use crate::context::{child_context, restore};
use crate::redact;
#[cfg(doc)]
use crate::semconv::MetricNames;
use crate::semconv::{
    self, ERROR_TYPE, EXCEPTION_EVENT, EXCEPTION_MESSAGE, EXCEPTION_TYPE, EXECUTION_DURATION_MS,
    TENANT_ID, TOTAL_DURATION_MS,
};
use crate::tenant::{with_tenant, TenantId};

/// Metric label carrying the handler span's name.
pub const LABEL_NAME: &str = "name";
/// `tenant_id` label value when the tenant expression did not give a valid tenant.
pub const UNKNOWN_TENANT: &str = "unknown";
/// Tenants a site keeps metric handles for; past that, calls register their metrics
/// each time (the label guard still caps what reaches the recorder).
pub const SITE_TENANTS: usize = 1024;

/// One annotated function: what the macro knows of it at compile time, and the metric
/// handles its calls share.
#[derive(Debug)]
pub struct Site {
    kind: &'static str,
    name: &'static str,
    event: Event,
    metrics: SiteMetrics,
}

impl Site {
    /// The site of a handler of `kind` (`workflow`, `task`, ...: a metric-name word, as
    /// the macro checks) whose span is called `name`; each call is a whole piece of
    /// work ([`Event::Run`]).
    pub const fn new(kind: &'static str, name: &'static str) -> Self {
        Self::with_event(kind, name, Event::Run)
    }

    /// [`Site::new`] whose calls record the lifecycle `event`.
    ///
    /// ```
    /// use instrument_core::work::{Event, Site};
    ///
    /// static END: Site = Site::with_event("workflow", "workflow.end", Event::End);
    /// assert_eq!(END.event(), Event::End);
    /// ```
    pub const fn with_event(kind: &'static str, name: &'static str, event: Event) -> Self {
        Self {
            kind,
            name,
            event,
            metrics: SiteMetrics::new(),
        }
    }

    /// The lifecycle event its calls record.
    pub fn event(&self) -> Event {
        self.event
    }

    /// The kind of work.
    pub fn kind(&self) -> &'static str {
        self.kind
    }

    /// The handler span's name.
    pub fn name(&self) -> &'static str {
        self.name
    }
}

/// What a call of a site means for the piece of work it handles: which lifecycle
/// counters it moves, whether it writes a completion span and records the work's
/// lifetime.
///
/// A piece of work (a workflow that runs for days, a task) is usually seen by several
/// handlers: one starts it, some step it on, one ends it. Each lifecycle event is
/// counted once, by the handler that sees it; every call, whatever its event, has its
/// handler span and its run time in `<prefix>_<kind>_handler_seconds`.
///
/// | event | `..._started_total` | `..._{completed,failed,cancelled}_total`, lifetime, completion span |
/// |---|---|---|
/// | [`Run`](Event::Run) | when the call begins | when it ends, as it ended; lifetime from `started_at`, else from the call's start |
/// | [`Start`](Event::Start) | when the call completes (a start that failed started nothing) | never |
/// | [`End`](Event::End) | never | when it ends, as it ended; lifetime from `started_at` (not recorded without it) |
/// | [`Step`](Event::Step) | never | never |
///
/// An [`End`](Event::End) handler reports the work's ending through its own outcome:
/// `Ok` completed the work, `Err` (or `None`, or a panic) failed it, a call dropped
/// before it finished cancelled it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Event {
    /// Each call is a whole piece of work, started and ended by the call (a task run in
    /// process, a reconciliation pass). The default.
    Run,
    /// The call starts a piece of work (`StartWorkflow`, `SubmitTask`).
    Start,
    /// The call records how a piece of work ended (`CompleteWorkflow`, `FailTask`).
    End,
    /// The call is a step of a piece of work (a poll, a heartbeat, a signal).
    Step,
}

impl Event {
    /// Every event, as the macro's `event = "..."` spells it: `run`, `start`, `end`,
    /// `step`.
    pub const NAMES: [&'static str; 4] = ["run", "start", "end", "step"];

    /// The event `event = "..."` names, if any.
    ///
    /// ```
    /// use instrument_core::work::Event;
    ///
    /// assert_eq!(Event::parse("end"), Some(Event::End));
    /// assert_eq!(Event::parse("finish"), None);
    /// ```
    pub fn parse(name: &str) -> Option<Self> {
        match name {
            "run" => Some(Self::Run),
            "start" => Some(Self::Start),
            "end" => Some(Self::End),
            "step" => Some(Self::Step),
            _ => None,
        }
    }

    /// Whether a call counts the work as started when it begins.
    fn starts_on_entry(self) -> bool {
        self == Self::Run
    }

    /// Whether a call's ending is the work's ending.
    fn ends_work(self) -> bool {
        matches!(self, Self::Run | Self::End)
    }
}

/// How a call ended: one of three, each with its completion span and counter.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Ending {
    /// The body returned a value that is not a failure.
    Completed,
    /// The body returned `Err` or `None`, or panicked.
    Failed,
    /// The call was dropped before the body finished.
    Cancelled,
}

impl Ending {
    /// Every ending, in the order of [`Ending::index`].
    pub const ALL: [Ending; 3] = [Ending::Completed, Ending::Failed, Ending::Cancelled];

    /// `completed`, `failed` or `cancelled`: the `status` label and the last word of the
    /// completion span's name.
    pub fn label(self) -> &'static str {
        match self {
            Self::Completed => "completed",
            Self::Failed => "failed",
            Self::Cancelled => "cancelled",
        }
    }

    /// The position in [`Ending::ALL`].
    pub fn index(self) -> usize {
        self as usize
    }

    /// The completion span's name for `kind`: `<kind>.completed`, ...
    pub fn span_name(self, kind: &str) -> String {
        format!("{kind}.{}", self.label())
    }
}

/// One call of an annotated function, from [`Call::start`] to its end.
#[derive(Debug)]
pub struct Call {
    /// `None` once ended.
    state: Option<State>,
}

#[derive(Debug)]
struct State {
    site: &'static Site,
    /// Looked up once per call, for both spans.
    tracer: BoxedTracer,
    /// The handler span, the tenant: attached while the body runs.
    cx: Context,
    /// The parent of the completion span.
    completion_parent: Context,
    /// The call's metric handles, and its tenant.
    handles: Arc<TenantHandles>,
    id: Option<KeyValue>,
    /// The fields, made only for a recorded handler span: also on the completion span.
    fields: Vec<KeyValue>,
    started: Instant,
    started_wall: SystemTime,
    started_at: Option<SystemTime>,
}

impl Call {
    /// Starts the handler span (parent from `parent`, attributes `tenant.id` and what
    /// `attributes` makes: the id and the fields, made only for a recorded span) with
    /// the global tracer provider, and counts the call as started.
    pub fn start<const N: usize>(
        site: &'static Site,
        tenant: Option<TenantId>,
        parent: Parent<'_>,
        started_at: Option<SystemTime>,
        attributes: impl FnOnce() -> (Option<KeyValue>, [Option<KeyValue>; N]),
    ) -> Self {
        Self::start_labelled(site, tenant, parent, started_at, [], attributes)
    }

    /// [`Call::start`], the site's metrics labelled with `labels` too (`#[workflow_span]`'s
    /// `labels(...)`: keys the macro checked, values as [`label`] made them).
    pub fn start_labelled<const N: usize, const M: usize>(
        site: &'static Site,
        tenant: Option<TenantId>,
        parent: Parent<'_>,
        started_at: Option<SystemTime>,
        labels: [(&'static str, String); M],
        attributes: impl FnOnce() -> (Option<KeyValue>, [Option<KeyValue>; N]),
    ) -> Self {
        let tracer = opentelemetry::global::tracer_provider()
            .tracer_with_scope(semconv::scope(semconv::SCOPE));
        Self::begin(
            tracer,
            site,
            tenant,
            parent,
            started_at,
            Box::new(labels),
            attributes,
        )
    }

    /// [`Call::start`] with `tracer` instead of the global provider's.
    pub fn start_with<const N: usize>(
        tracer: BoxedTracer,
        site: &'static Site,
        tenant: Option<TenantId>,
        parent: Parent<'_>,
        started_at: Option<SystemTime>,
        attributes: impl FnOnce() -> (Option<KeyValue>, [Option<KeyValue>; N]),
    ) -> Self {
        Self::begin(
            tracer,
            site,
            tenant,
            parent,
            started_at,
            Box::new([]),
            attributes,
        )
    }

    fn begin<const N: usize>(
        tracer: BoxedTracer,
        site: &'static Site,
        tenant: Option<TenantId>,
        parent: Parent<'_>,
        started_at: Option<SystemTime>,
        labels: Box<[(&'static str, String)]>,
        attributes: impl FnOnce() -> (Option<KeyValue>, [Option<KeyValue>; N]),
    ) -> Self {
        let base = Context::current();
        let parent_cx = match parent {
            Parent::Current => base,
            Parent::Stored(stored) => restore(stored).apply_to(&base),
        };
        let parent_cx = match &tenant {
            Some(tenant) => with_tenant(&parent_cx, tenant.clone()),
            None => parent_cx,
        };
        // Under a sampled parent the span is almost surely recorded: its attributes
        // go to the sampler. Otherwise they are made once the sampler chose to record.
        // The id and the fields are kept for the completion span (values are shared
        // strings: a clone is a reference count).
        let likely_recorded = parent_cx.span().span_context().is_sampled();
        let (mut id, mut fields) = (None, Vec::new());
        let builder = tracer.span_builder(site.name).with_kind(SpanKind::Internal);
        let span = start_span(&tracer, builder, &parent_cx, likely_recorded, || {
            let (made_id, made) = attributes();
            let mut attributes = Vec::with_capacity(2 + N);
            if let Some(tenant) = &tenant {
                attributes.push(KeyValue::new(TENANT_ID, StringValue::from(tenant.shared())));
            }
            attributes.extend(made_id.clone());
            fields = made.into_iter().flatten().collect();
            attributes.extend(fields.iter().cloned());
            id = made_id;
            attributes
        });
        let cx = child_context(&parent_cx, span);
        // The handler span's child, but when it spans the work's whole life from a
        // `started_at` before this call: then a sibling under the parent they share (a
        // child starting before its parent would be drawn outside it), or the child
        // when the handler span is a root.
        let completion_parent =
            if started_at.is_some() && parent_cx.span().span_context().is_valid() {
                parent_cx
            } else {
                cx.clone()
            };
        let handles = site.metrics.handles(tenant.as_ref(), labels);
        if site.event.starts_on_entry() {
            handles.started(site).increment(1);
        }
        Self {
            state: Some(State {
                site,
                tracer,
                cx,
                completion_parent,
                handles,
                id,
                fields,
                started: Instant::now(),
                started_wall: SystemTime::now(),
                started_at,
            }),
        }
    }

    /// The context the body runs in: the handler span and the tenant.
    pub fn context(&self) -> Option<&Context> {
        self.state.as_ref().map(|s| &s.cx)
    }

    /// Runs a synchronous body with the handler span current, ending the call with the
    /// outcome `classify` reads from its return value, or failed if it panics (the
    /// panic then continues).
    pub fn run_sync<R>(
        mut self,
        body: impl FnOnce() -> R,
        classify: impl FnOnce(&R) -> Outcome,
    ) -> R {
        let guard = self.state.as_ref().map(|s| s.cx.clone().attach());
        let result = catch_unwind(AssertUnwindSafe(body));
        drop(guard);
        match result {
            Ok(value) => {
                self.end(End::Returned(classify(&value)));
                value
            }
            Err(panic) => {
                self.end(End::Panicked(panic_message(&*panic)));
                resume_unwind(panic)
            }
        }
    }

    /// Runs an asynchronous body with the handler span current on every poll; see
    /// [`Instrumented`].
    pub fn run_async<F, C>(self, body: F, classify: C) -> Instrumented<F, C>
    where
        F: Future,
        C: FnOnce(&F::Output) -> Outcome,
    {
        Instrumented {
            body,
            classify: Some(classify),
            call: self,
        }
    }

    fn end(&mut self, end: End) {
        let Some(state) = self.state.take() else {
            return;
        };
        state.finish(end);
    }
}

impl Drop for Call {
    fn drop(&mut self) {
        // Dropped before the body finished: the caller gave up on it.
        self.end(End::Cancelled);
    }
}

/// How the body ended, with the text of a failure.
enum End {
    Returned(Outcome),
    Panicked(String),
    Cancelled,
}

/// A failure as spans and metrics record it.
struct Failure {
    /// Redacted and cut (the status description and `exception.message`).
    message: String,
    /// `error.type` and the `error_type` label: low-cardinality.
    error_type: Cow<'static, str>,
    /// `exception.type`: what failed (`panic` for a panic).
    exception_type: &'static str,
}

/// `exception.type` of a panic.
const PANIC: &str = "panic";

impl End {
    fn ending(self) -> (Ending, Option<Failure>) {
        let failure = |message: String, error_type: Cow<'static, str>, exception_type| {
            Some(Failure {
                message: redact::global().error_text(&message),
                error_type,
                exception_type,
            })
        };
        match self {
            Self::Returned(Outcome::Completed) => (Ending::Completed, None),
            Self::Returned(Outcome::Failed {
                message,
                error_type,
                exception_type,
            }) => (Ending::Failed, failure(message, error_type, exception_type)),
            Self::Panicked(message) => (
                Ending::Failed,
                failure(message, Cow::Borrowed(PANIC), PANIC),
            ),
            Self::Cancelled => (Ending::Cancelled, None),
        }
    }
}

impl Failure {
    /// A failed span's attribute: `error.type` (no bare `error`: some backends read an
    /// `error` tag as a flag).
    fn attributes(&self) -> [KeyValue; 1] {
        [KeyValue::new(ERROR_TYPE, self.error_type.clone())]
    }

    /// The `exception` event's attributes: the error's type and message (the exception
    /// conventions).
    fn exception(&self) -> Vec<KeyValue> {
        vec![
            KeyValue::new(EXCEPTION_TYPE, self.exception_type),
            KeyValue::new(EXCEPTION_MESSAGE, self.message.clone()),
        ]
    }

    /// Marks `span` failed: `error.type`, the `exception` event, the status with the
    /// message.
    fn record_on(&self, span: &mut impl Span) {
        span.set_attributes(self.attributes());
        span.add_event(EXCEPTION_EVENT, self.exception());
        span.set_status(Status::error(self.message.clone()));
    }
}

/// Starts `builder`'s span under `parent`. `make` gives its attributes: to the
/// sampler when the span is `likely_recorded`, otherwise only once the sampler chose
/// to record it, so a span sampled out makes none.
fn start_span(
    tracer: &BoxedTracer,
    builder: SpanBuilder,
    parent: &Context,
    likely_recorded: bool,
    make: impl FnOnce() -> Vec<KeyValue>,
) -> BoxedSpan {
    if likely_recorded {
        return builder
            .with_attributes(make())
            .start_with_context(tracer, parent);
    }
    let mut span = builder.start_with_context(tracer, parent);
    if span.is_recording() {
        span.set_attributes(make());
    }
    span
}

fn panic_message(panic: &(dyn std::any::Any + Send)) -> String {
    let message = panic
        .downcast_ref::<&str>()
        .copied()
        .or_else(|| panic.downcast_ref::<String>().map(String::as_str));
    match message {
        Some(message) => format!("panicked: {message}"),
        None => "panicked".to_owned(),
    }
}

fn millis(d: std::time::Duration) -> i64 {
    i64::try_from(d.as_millis()).unwrap_or(i64::MAX)
}

impl State {
    fn finish(self, end: End) {
        let (ending, failure) = end.ending();
        let error_type = failure.as_ref().map(|f| &*f.error_type);
        let execution = self.started.elapsed();
        let handler = self.cx.span();
        let recorded = handler.is_recording();
        if let Some(failure) = &failure {
            for attribute in failure.attributes() {
                handler.set_attribute(attribute);
            }
            handler.add_event(EXCEPTION_EVENT, failure.exception());
            handler.set_status(Status::error(failure.message.clone()));
        }
        handler.end();
        self.handles
            .handler(self.site, ending, error_type)
            .record(execution.as_secs_f64());
        let event = self.site.event;
        if event == Event::Start && ending == Ending::Completed {
            self.handles.started(self.site).increment(1);
        }
        if !event.ends_work() {
            return;
        }
        let now = SystemTime::now();
        let lifetime = match (self.started_at, event) {
            (Some(started_at), _) => Some(now.duration_since(started_at).unwrap_or_default()),
            (None, Event::Run) => Some(execution),
            (None, _) => None,
        };
        self.handles
            .ended(self.site, ending, error_type)
            .increment(1);
        if let Some(lifetime) = lifetime {
            self.handles
                .lifetime(self.site, ending, error_type)
                .record(lifetime.as_secs_f64());
        }

        // The completion span shares the handler span's trace and sampler: when the
        // handler span was not recorded, its attributes are made only if it is.
        let make = || {
            let mut attributes = Vec::with_capacity(5 + self.fields.len());
            if let Some(tenant) = self.handles.tenant() {
                attributes.push(KeyValue::new(TENANT_ID, StringValue::from(tenant.shared())));
            }
            attributes.extend(self.id);
            attributes.extend(self.fields);
            attributes.push(KeyValue::new(EXECUTION_DURATION_MS, millis(execution)));
            if let Some(started_at) = self.started_at {
                let total = now.duration_since(started_at).unwrap_or_default();
                attributes.push(KeyValue::new(TOTAL_DURATION_MS, millis(total)));
            }
            attributes
        };
        let builder = self
            .tracer
            .span_builder(self.site.metrics.span_name(self.site, ending))
            .with_kind(SpanKind::Internal)
            .with_start_time(self.started_at.unwrap_or(self.started_wall));
        let mut completion = start_span(
            &self.tracer,
            builder,
            &self.completion_parent,
            recorded,
            make,
        );
        if let Some(failure) = &failure {
            if completion.is_recording() {
                failure.record_on(&mut completion);
            }
        }
        completion.end_with_timestamp(now);
    }
}

/// An annotated async body: polled with the handler span current; ends the call when
/// the body returns (outcome from `classify`), panics (failed, then the panic
/// continues) or is dropped before finishing (cancelled).
#[pin_project]
pub struct Instrumented<F, C> {
    #[pin]
    body: F,
    classify: Option<C>,
    call: Call,
}

impl<F, C> Future for Instrumented<F, C>
where
    F: Future,
    C: FnOnce(&F::Output) -> Outcome,
{
    type Output = F::Output;

    fn poll(self: Pin<&mut Self>, cx: &mut TaskContext<'_>) -> Poll<F::Output> {
        let this = self.project();
        let guard = this.call.context().map(|c| c.clone().attach());
        let polled = catch_unwind(AssertUnwindSafe(|| this.body.poll(cx)));
        drop(guard);
        match polled {
            Ok(Poll::Pending) => Poll::Pending,
            Ok(Poll::Ready(value)) => {
                let outcome = match this.classify.take() {
                    Some(classify) => classify(&value),
                    None => Outcome::Completed,
                };
                this.call.end(End::Returned(outcome));
                Poll::Ready(value)
            }
            Err(panic) => {
                this.call.end(End::Panicked(panic_message(&*panic)));
                resume_unwind(panic)
            }
        }
    }
}

#[cfg(test)]
mod tests;
