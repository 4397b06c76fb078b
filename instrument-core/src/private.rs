//! What `#[workflow_span]` expands to: plain functions and types, unit-tested here
//! without the macro. Not a public API: names and signatures follow the macro.
//!
//! A call is [`Call::start`]ed before the body runs (the attribute's expressions are
//! evaluated then), runs the body with its span current ([`Call::run_sync`],
//! [`Call::run_async`]), and ends in exactly one of three ways: the body returned
//! ([`Outcome`] from the return value), panicked (failed, "panicked: ...", then the
//! unwind resumes), or was dropped before finishing (cancelled).

use std::borrow::Cow;
use std::fmt::Display;
use std::future::Future;
use std::panic::{catch_unwind, resume_unwind, AssertUnwindSafe};
use std::pin::Pin;
use std::sync::{Arc, OnceLock};
use std::task::{Context as TaskContext, Poll};
use std::time::{Instant, SystemTime};

use metrics::{Label, SharedString};
use opentelemetry::global::BoxedTracer;
use opentelemetry::trace::{
    SpanKind, Status, TraceContextExt as _, Tracer as _, TracerProvider as _,
};
use opentelemetry::{Context, KeyValue, StringValue, Value};
use pin_project::pin_project;

use crate::cardinality::KeptHandles;
use crate::context::{child_context, restore};
use crate::redact::{self, Redactor};
use crate::semconv::{
    ERROR, EXECUTION_DURATION_MS, LABEL_STATUS, LABEL_TENANT_ID, TENANT_ID, TOTAL_DURATION_MS,
};
use crate::tenant::{with_tenant, TenantId};

/// Name of the instrumentation scope of the spans `#[workflow_span]` starts.
pub const SCOPE: &str = "instrument";
/// Metric label carrying the span name.
pub const LABEL_NAME: &str = "name";
/// `tenant_id` label value when the tenant expression did not give a valid tenant.
pub const UNKNOWN_TENANT: &str = "unknown";

/// Everything about one annotated function the macro knows at compile time.
#[derive(Debug)]
pub struct Site {
    /// The span name (`name = ...`, default `<kind>.<fn name>`).
    pub name: &'static str,
    /// `<kind>.id`.
    pub id_key: &'static str,
    /// `<kind>.completed`.
    pub completed: &'static str,
    /// `<kind>.failed`.
    pub failed: &'static str,
    /// `<kind>.cancelled`.
    pub cancelled: &'static str,
    /// `<prefix>_<kind>s_started_total`.
    pub started_total: &'static str,
    /// `<prefix>_<kind>s_completed_total`.
    pub completed_total: &'static str,
    /// `<prefix>_<kind>s_failed_total`.
    pub failed_total: &'static str,
    /// `<prefix>_<kind>s_cancelled_total`.
    pub cancelled_total: &'static str,
    /// `<prefix>_<kind>_duration_seconds`.
    pub duration: &'static str,
    /// The site's metric handles, registered on first use per recorder and tenant.
    pub handles: SiteHandles,
}

/// Tenants a site keeps metric handles for; past that, calls register their metrics
/// each time (the label guard still caps what reaches the recorder).
pub const SITE_TENANTS: usize = 1024;

/// A site's metric handles per tenant, kept under a lasting recorder (see
/// [`KeptHandles`]): registering a metric builds a `metrics::Key`, hashes it and looks
/// it up in the recorder and in the label guard, and three registrations per call
/// cost more than the rest of the call's metrics.
#[derive(Debug)]
pub struct SiteHandles(KeptHandles<TenantHandles>);

impl Default for SiteHandles {
    fn default() -> Self {
        Self::new()
    }
}

impl SiteHandles {
    /// No handles yet (a `static`'s initialiser).
    pub const fn new() -> Self {
        Self(KeptHandles::new(SITE_TENANTS))
    }

    /// The handles of `tenant` under the current recorder.
    fn get(&self, site: &Site, tenant: Option<&TenantId>) -> Arc<TenantHandles> {
        let name = tenant.map(TenantId::as_str);
        self.0.get(
            &name,
            |kept| kept.tenant.as_ref().map(TenantId::as_str) == name,
            || TenantHandles::register(site, tenant),
        )
    }
}

/// The metrics of one site, recorder and tenant.
#[derive(Debug)]
struct TenantHandles {
    tenant: Option<TenantId>,
    started: metrics::Counter,
    /// Per way of ending (completed, failed, cancelled): its counter and the duration
    /// histogram with that `status`, registered when a call first ends that way.
    ended: [OnceLock<(metrics::Counter, metrics::Histogram)>; 3],
}

impl TenantHandles {
    fn register(site: &Site, tenant: Option<&TenantId>) -> Self {
        Self {
            tenant: tenant.cloned(),
            started: metrics::counter!(site.started_total, labels(site, tenant)),
            ended: Default::default(),
        }
    }

    fn ended(
        &self,
        site: &Site,
        way: usize,
        counter: &'static str,
        status: &'static str,
    ) -> &(metrics::Counter, metrics::Histogram) {
        self.ended[way].get_or_init(|| {
            let mut labels = labels(site, self.tenant.as_ref());
            let counter = metrics::counter!(counter, labels.clone());
            labels.push(Label::from_static_parts(LABEL_STATUS, status));
            (counter, metrics::histogram!(site.duration, labels))
        })
    }
}

/// How a call ended, as its return value says.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// `Ok`, `Some` or any other value.
    Completed,
    /// `Err(e)` (with `e`'s `Display` text), `None`, or a panic; the text is not yet
    /// redacted.
    Failed(String),
}

/// Where the call's span gets its parent.
#[derive(Debug, Clone, Copy)]
pub enum Parent<'a> {
    /// The current OpenTelemetry context (no `traceparent = ...`).
    Current,
    /// A stored traceparent; missing or corrupt starts a fresh trace.
    Stored(Option<&'a str>),
}

/// The redactor attribute values and error texts pass through.
fn redactor() -> &'static Redactor {
    redact::global()
}

// ---------------------------------------------------------------------------------
// Argument conversions. The macro passes `&(expr)`, so a field is borrowed, never
// moved out of an argument the body still uses.

/// A value usable as `tenant = ...`.
#[diagnostic::on_unimplemented(
    message = "`tenant = ...` takes &str, String or TenantId (or an Option of one), not `{Self}`"
)]
pub trait TenantArg {
    /// The tenant, when the value is a valid tenant id.
    fn tenant(&self) -> Option<TenantId>;
}

impl TenantArg for str {
    fn tenant(&self) -> Option<TenantId> {
        TenantId::parse(self).ok()
    }
}

impl TenantArg for String {
    fn tenant(&self) -> Option<TenantId> {
        self.as_str().tenant()
    }
}

impl TenantArg for TenantId {
    fn tenant(&self) -> Option<TenantId> {
        Some(self.clone())
    }
}

impl<T: TenantArg + ?Sized> TenantArg for &T {
    fn tenant(&self) -> Option<TenantId> {
        (**self).tenant()
    }
}

impl<T: TenantArg> TenantArg for Option<T> {
    fn tenant(&self) -> Option<TenantId> {
        self.as_ref().and_then(TenantArg::tenant)
    }
}

/// `tenant = ...`: `None` (recorded as tenant `unknown` in metrics, no `tenant.id` on
/// the span) when the value is not a valid tenant id.
pub fn tenant<T: TenantArg + ?Sized>(value: &T) -> Option<TenantId> {
    value.tenant()
}

/// A value usable as `id = ...` or in `fields(...)`.
#[diagnostic::on_unimplemented(
    message = "`id = ...` and `fields(...)` take strings, integers, floats, booleans or TenantId (or an Option of one), not `{Self}`"
)]
pub trait AttrArg {
    /// The attribute value, redacted for `key`; `None` records nothing.
    fn value(&self, key: &'static str) -> Option<Value>;
}

impl AttrArg for str {
    fn value(&self, key: &'static str) -> Option<Value> {
        // Shared, not owned: the id is recorded on both spans of the call.
        let text: Arc<str> = match redactor().redact_attribute(key, self) {
            Cow::Borrowed(clean) => Arc::from(clean),
            Cow::Owned(masked) => Arc::from(masked),
        };
        Some(Value::String(StringValue::from(text)))
    }
}

impl AttrArg for String {
    fn value(&self, key: &'static str) -> Option<Value> {
        self.as_str().value(key)
    }
}

impl AttrArg for TenantId {
    fn value(&self, _key: &'static str) -> Option<Value> {
        Some(Value::String(StringValue::from(self.shared())))
    }
}

impl AttrArg for bool {
    fn value(&self, _key: &'static str) -> Option<Value> {
        Some(Value::Bool(*self))
    }
}

impl AttrArg for f64 {
    fn value(&self, _key: &'static str) -> Option<Value> {
        Some(Value::F64(*self))
    }
}

macro_rules! int_attr {
    ($($t:ty),*) => {$(
        impl AttrArg for $t {
            fn value(&self, _key: &'static str) -> Option<Value> {
                // Larger than i64 (u64, u128...): recorded as text, not truncated.
                Some(match i64::try_from(*self) {
                    Ok(n) => Value::I64(n),
                    Err(_) => Value::String(StringValue::from(self.to_string())),
                })
            }
        }
    )*};
}
int_attr!(i8, i16, i32, i64, i128, isize, u8, u16, u32, u64, u128, usize);

impl<T: AttrArg + ?Sized> AttrArg for &T {
    fn value(&self, key: &'static str) -> Option<Value> {
        (**self).value(key)
    }
}

impl<T: AttrArg> AttrArg for Option<T> {
    fn value(&self, key: &'static str) -> Option<Value> {
        self.as_ref().and_then(|v| v.value(key))
    }
}

/// `fields(key = ...)` and `id = ...`: the redacted attribute.
pub fn field<T: AttrArg + ?Sized>(key: &'static str, value: &T) -> Option<KeyValue> {
    value.value(key).map(|v| KeyValue::new(key, v))
}

/// A value usable as `traceparent = ...`.
#[diagnostic::on_unimplemented(
    message = "`traceparent = ...` takes Option<&str>, &str or String, not `{Self}`"
)]
pub trait TraceparentArg {
    /// The stored header value, if any.
    fn traceparent(&self) -> Option<&str>;
}

impl TraceparentArg for str {
    fn traceparent(&self) -> Option<&str> {
        Some(self)
    }
}

impl TraceparentArg for String {
    fn traceparent(&self) -> Option<&str> {
        Some(self)
    }
}

impl<T: TraceparentArg + ?Sized> TraceparentArg for &T {
    fn traceparent(&self) -> Option<&str> {
        (**self).traceparent()
    }
}

impl<T: TraceparentArg> TraceparentArg for Option<T> {
    fn traceparent(&self) -> Option<&str> {
        self.as_ref().and_then(TraceparentArg::traceparent)
    }
}

/// `traceparent = ...`.
pub fn traceparent<T: TraceparentArg + ?Sized>(value: &T) -> Parent<'_> {
    Parent::Stored(value.traceparent())
}

/// A value usable as `started_at = ...`.
#[diagnostic::on_unimplemented(
    message = "`started_at = ...` takes a SystemTime (or an Option of one), not `{Self}`"
)]
pub trait StartedAtArg {
    /// The start time, if known.
    fn started_at(&self) -> Option<SystemTime>;
}

impl StartedAtArg for SystemTime {
    fn started_at(&self) -> Option<SystemTime> {
        Some(*self)
    }
}

impl<T: StartedAtArg + ?Sized> StartedAtArg for &T {
    fn started_at(&self) -> Option<SystemTime> {
        (**self).started_at()
    }
}

impl<T: StartedAtArg> StartedAtArg for Option<T> {
    fn started_at(&self) -> Option<SystemTime> {
        self.as_ref().and_then(StartedAtArg::started_at)
    }
}

/// `started_at = ...`.
pub fn started_at<T: StartedAtArg + ?Sized>(value: &T) -> Option<SystemTime> {
    value.started_at()
}

// ---------------------------------------------------------------------------------
// The return value's outcome, by autoref specialization: the macro calls
// `(&Classify(&ret)).__instrument_outcome()` with these three traits in scope; the
// `Result` and `Option` impls take the receiver as it is, the catch-all only after
// one more auto-reference, so it is chosen only when neither of the others applies.

/// The return value being classified.
pub struct Classify<'a, T>(pub &'a T);

/// `Result<T, E: Display>`: `Err` fails with `E`'s text.
pub trait ResultOutcome {
    /// The outcome.
    fn __instrument_outcome(&self) -> Outcome;
}

impl<T, E: Display> ResultOutcome for Classify<'_, Result<T, E>> {
    fn __instrument_outcome(&self) -> Outcome {
        match self.0 {
            Ok(_) => Outcome::Completed,
            Err(e) => Outcome::Failed(e.to_string()),
        }
    }
}

/// `Option<T>`: `None` fails.
pub trait OptionOutcome {
    /// The outcome.
    fn __instrument_outcome(&self) -> Outcome;
}

impl<T> OptionOutcome for Classify<'_, Option<T>> {
    fn __instrument_outcome(&self) -> Outcome {
        match self.0 {
            Some(_) => Outcome::Completed,
            None => Outcome::Failed("returned None".to_owned()),
        }
    }
}

/// Any other value completes.
pub trait PlainOutcome {
    /// The outcome.
    fn __instrument_outcome(&self) -> Outcome;
}

impl<T> PlainOutcome for &Classify<'_, T> {
    fn __instrument_outcome(&self) -> Outcome {
        Outcome::Completed
    }
}

// ---------------------------------------------------------------------------------
// The call.

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
    started: Instant,
    started_wall: SystemTime,
    started_at: Option<SystemTime>,
}

impl Call {
    /// Starts the handler span (parent from `parent`, attributes `tenant.id`, the id,
    /// `fields`) and counts the call as started.
    pub fn start<const N: usize>(
        site: &'static Site,
        tenant: Option<TenantId>,
        id: Option<KeyValue>,
        parent: Parent<'_>,
        started_at: Option<SystemTime>,
        fields: [Option<KeyValue>; N],
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
        // One more than this call's own: the pipeline's tenant processor adds its
        // stamp when the span starts, without a reallocation.
        let mut attributes = Vec::with_capacity(2 + N + 1);
        if let Some(tenant) = &tenant {
            attributes.push(KeyValue::new(TENANT_ID, StringValue::from(tenant.shared())));
        }
        attributes.extend(id.clone());
        attributes.extend(fields.into_iter().flatten());
        let tracer = opentelemetry::global::tracer_provider().tracer(SCOPE);
        let span = tracer
            .span_builder(site.name)
            .with_kind(SpanKind::Internal)
            .with_attributes(attributes)
            .start_with_context(&tracer, &parent_cx);
        let cx = child_context(&parent_cx, span);
        // A sibling of the handler span when there is a parent to share; its child
        // when the handler span is a root.
        let completion_parent = if parent_cx.span().span_context().is_valid() {
            parent_cx
        } else {
            cx.clone()
        };
        let handles = site.handles.get(site, tenant.as_ref());
        handles.started.increment(1);
        Self {
            state: Some(State {
                site,
                tracer,
                cx,
                completion_parent,
                handles,
                id,
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

enum End {
    Returned(Outcome),
    Panicked(String),
    Cancelled,
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

/// The metric labels `tenant_id` and `name`, with room for `status`.
fn labels(site: &Site, tenant: Option<&TenantId>) -> Vec<Label> {
    let tenant = match tenant {
        Some(tenant) => SharedString::from_shared(tenant.shared()),
        None => SharedString::const_str(UNKNOWN_TENANT),
    };
    let mut labels = Vec::with_capacity(3);
    labels.push(Label::new(LABEL_TENANT_ID, tenant));
    labels.push(Label::from_static_parts(LABEL_NAME, site.name));
    labels
}

fn millis(d: std::time::Duration) -> i64 {
    i64::try_from(d.as_millis()).unwrap_or(i64::MAX)
}

impl State {
    fn finish(self, end: End) {
        let site = self.site;
        let (way, name, counter, status, error) = match end {
            End::Returned(Outcome::Completed) => {
                (0, site.completed, site.completed_total, "completed", None)
            }
            End::Returned(Outcome::Failed(text)) | End::Panicked(text) => (
                1,
                site.failed,
                site.failed_total,
                "failed",
                Some(redactor().error_text(&text)),
            ),
            End::Cancelled => (2, site.cancelled, site.cancelled_total, "cancelled", None),
        };
        let execution = self.started.elapsed();
        let handler = self.cx.span();
        if let Some(error) = &error {
            handler.set_status(Status::error(error.clone()));
        }
        handler.end();

        // Up to five of its own, and the tenant processor's stamp.
        let mut attributes = Vec::with_capacity(5 + 1);
        if let Some(tenant) = &self.handles.tenant {
            attributes.push(KeyValue::new(TENANT_ID, StringValue::from(tenant.shared())));
        }
        attributes.extend(self.id);
        attributes.push(KeyValue::new(EXECUTION_DURATION_MS, millis(execution)));
        let now = SystemTime::now();
        if let Some(started_at) = self.started_at {
            let total = now.duration_since(started_at).unwrap_or_default();
            attributes.push(KeyValue::new(TOTAL_DURATION_MS, millis(total)));
        }
        if let Some(error) = &error {
            attributes.push(KeyValue::new(ERROR, error.clone()));
        }
        let tracer = &self.tracer;
        let mut completion = tracer
            .span_builder(name)
            .with_kind(SpanKind::Internal)
            .with_start_time(self.started_at.unwrap_or(self.started_wall))
            .with_attributes(attributes)
            .start_with_context(tracer, &self.completion_parent);
        if let Some(error) = error {
            opentelemetry::trace::Span::set_status(&mut completion, Status::error(error));
        }
        opentelemetry::trace::Span::end_with_timestamp(&mut completion, now);

        let (counter, duration) = self.handles.ended(site, way, counter, status);
        counter.increment(1);
        duration.record(execution.as_secs_f64());
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
