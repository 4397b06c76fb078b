//! The span proxy: spans workers report (`ReportExecutionSpans`) become real spans of
//! their workflow's trace, so workers need no collector credentials.
//!
//! [`SpanProxy::report`] takes the reporting tenant (the one the tenant layer admitted),
//! the SDK's description and the spans, and answers one
//! [`SpanVerdict`] per span, in order. For each span it
//! - refuses everything past the first 100 (`too_many_spans`) and repeated ids;
//! - looks the workflow up through the same [`TraceSource`] (and cache) the layers
//!   use, and refuses a workflow of another tenant (`other_tenant`, counted) or none
//!   (`unknown_workflow`);
//! - checks the span against the [`ReportRules`]: id shape, span type and attribute
//!   keys on the allow-lists, timestamps (no end before start, nothing in the future
//!   beyond the skew, nothing before the workflow started), sizes; every kept value
//!   goes through the redactor, an error is cut at 1 KiB;
//! - records it with its reported span id and timestamps, as a child of its reported
//!   parent or else of the workflow's stored span, always in the workflow's trace,
//!   with `sdk.language`, `sdk.version`, `sdk.os`, `sdk.arch` and the tenant (stamped
//!   by the pipeline as `tenant.id`).
//!
//! Accepted and refused spans are counted (`<prefix>_reported_spans_accepted_total
//! {tenant_id}`, `<prefix>_reported_spans_refused_total{tenant_id,reason}`).
//!
//! Reports are idempotent: a span id recorded for a workflow is recorded once, however
//! often a report carrying it arrives within [`REPEAT_WINDOW`] (a gRPC retry policy
//! sends a report again when an answer is lost). Sent again, it is answered `Accepted`,
//! as the first time, and neither recorded nor counted again. At most
//! [`MAX_REMEMBERED_SPANS`] ids are remembered (the oldest forgotten first).
//!
//! The reported span ids are kept only under a tracer provider whose id generator is
//! the pipeline's `PresetIdGenerator` (the pipeline's `init` installs it); under
//! another, each reported span gets a fresh id, and spans other services made under a
//! reported one (the callee of a worker's call) lose their parent.
//!
//! ```
//! use std::future::{ready, Ready};
//! use std::time::{Duration, SystemTime};
//! use instrument_core::report::{ExecutionSpan, SdkInfo, SpanVerdict};
//! use instrument_core::tenant::TenantId;
//! use instrument_tower::proxy::SpanProxy;
//! use instrument_tower::source::{SourceError, StoredTrace, TraceSource};
//!
//! struct Workflows;
//!
//! impl TraceSource for Workflows {
//!     type Lookup = Ready<Result<Option<StoredTrace>, SourceError>>;
//!     fn lookup(&self, id: &str) -> Self::Lookup {
//!         let acme = TenantId::parse("acme").expect("valid");
//!         ready(Ok((id == "wf-1").then(|| StoredTrace::new(acme, Some("00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01")))))
//!     }
//! }
//!
//! # #[tokio::main(flavor = "current_thread")] async fn main() {
//! let proxy = SpanProxy::new(Workflows);
//! let now = SystemTime::now();
//! let span = ExecutionSpan::new("b7ad6b7169203331", "task.execute", "wf-1", now - Duration::from_secs(1), now);
//! let tenant = TenantId::parse("acme").unwrap();
//! let verdicts = proxy.report(&tenant, &SdkInfo::rust("1.0.0"), &[span]).await;
//! assert_eq!(verdicts, [SpanVerdict::Accepted { dropped: vec![] }]);
//! # }
//! ```

use std::collections::hash_map::RandomState;
use std::collections::{HashMap, HashSet};
use std::fmt;
use std::hash::BuildHasher as _;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use instrument_core::context::with_preset_ids;
use instrument_core::report::{
    CheckedSpan, ExecutionSpan, Refusal, ReportRules, SdkInfo, SpanVerdict,
};
use instrument_core::semconv::{
    MetricNames, LABEL_REASON, LABEL_TENANT_ID, REPORTED_DROPPED_ATTRIBUTES,
};
use instrument_core::tenant::{with_tenant, TenantId};
use opentelemetry::trace::{
    Span as _, SpanContext, SpanId, Status, TraceContextExt as _, TraceFlags, TraceId, TraceState,
    Tracer as _,
};
use opentelemetry::{Context, KeyValue, StringValue, Value};

use crate::source::{Found, StoredTrace, TraceSource};
use crate::tracer::LayerTracer;

/// The span proxy (see the [module docs](self)).
pub struct SpanProxy<S> {
    source: Arc<S>,
    rules: Arc<ReportRules>,
    tracer: LayerTracer,
    accepted: String,
    refused: String,
    /// The spans recorded lately, by workflow and span id: a report sent again (a
    /// retried call) records none of them twice.
    recorded: moka::sync::Cache<(Box<str>, SpanId), ()>,
}

/// How long a recorded span's id is remembered: the default lifetime of the trace cache
/// in front of the workflow store (`CachedSource`), within which a retry comes.
pub const REPEAT_WINDOW: Duration = Duration::from_secs(300);

/// Recorded span ids remembered at most (the oldest forgotten first).
pub const MAX_REMEMBERED_SPANS: u64 = 65_536;

impl<S> Clone for SpanProxy<S> {
    fn clone(&self) -> Self {
        Self {
            source: Arc::clone(&self.source),
            rules: Arc::clone(&self.rules),
            tracer: self.tracer.clone(),
            accepted: self.accepted.clone(),
            refused: self.refused.clone(),
            recorded: self.recorded.clone(),
        }
    }
}

impl<S> fmt::Debug for SpanProxy<S> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SpanProxy")
            .field("rules", &self.rules)
            .finish_non_exhaustive()
    }
}

/// What a lookup found for a workflow id of the report.
enum Owner {
    Found(StoredTrace),
    Refused(Refusal),
}

impl<S: TraceSource> SpanProxy<S> {
    /// A proxy finding workflows through `source` (the layers' `CachedSource`, cloned),
    /// with the default [`ReportRules`], the global tracer provider and the
    /// process-wide metric names.
    pub fn new(source: S) -> Self {
        let names = MetricNames::global();
        Self {
            source: Arc::new(source),
            rules: Arc::new(ReportRules::default()),
            tracer: LayerTracer::default(),
            accepted: names.reported_spans_accepted_total(),
            refused: names.reported_spans_refused_total(),
            recorded: moka::sync::Cache::builder()
                .max_capacity(MAX_REMEMBERED_SPANS)
                .time_to_live(REPEAT_WINDOW)
                .build(),
        }
    }

    /// Checks reports against `rules`.
    pub fn rules(mut self, rules: ReportRules) -> Self {
        self.rules = Arc::new(rules);
        self
    }

    /// Records with `tracer` instead of the global provider's.
    pub fn tracer<T>(mut self, tracer: T) -> Self
    where
        T: opentelemetry::trace::Tracer + Send + Sync + 'static,
        T::Span: opentelemetry::trace::Span + Send + Sync + 'static,
    {
        self.tracer = LayerTracer::of(tracer);
        self
    }

    /// Names the counters after `names`.
    pub fn metric_names(mut self, names: &MetricNames) -> Self {
        self.accepted = names.reported_spans_accepted_total();
        self.refused = names.reported_spans_refused_total();
        self
    }

    /// Renamed [`metric_names`](Self::metric_names), as on every builder.
    #[deprecated(since = "0.1.0", note = "renamed `metric_names`")]
    pub fn names(self, names: &MetricNames) -> Self {
        self.metric_names(names)
    }

    /// Records what `tenant` reported (see the [module docs](self)); one verdict per
    /// span, in order.
    pub async fn report(
        &self,
        tenant: &TenantId,
        sdk: &SdkInfo,
        spans: &[ExecutionSpan],
    ) -> Vec<SpanVerdict> {
        let now = SystemTime::now();
        let max = self.rules.max_spans;
        let mut owners: HashMap<&str, Owner> = HashMap::new();
        for span in spans.iter().take(max) {
            let id = span.workflow_id.as_str();
            if !owners.contains_key(id) {
                let owner = self.owner(tenant, id).await;
                owners.insert(id, owner);
            }
        }
        let sdk = self.rules.sdk_attributes(sdk);
        let mut fresh: HashMap<&str, TraceId> = HashMap::new();
        let mut seen = HashSet::new();
        let mut refused: HashMap<Refusal, u64> = HashMap::new();
        let mut accepted = 0;
        let verdicts: Vec<SpanVerdict> = spans
            .iter()
            .enumerate()
            .map(|(i, span)| {
                let verdict = self.judge(i, span, now, &owners, &mut seen);
                match verdict {
                    Ok((checked, stored)) => {
                        // Idempotent: a span this proxy recorded lately (the same
                        // report sent again) is accepted again, not recorded twice.
                        let key = (span.workflow_id.as_str().into(), checked.span_id);
                        if !self.recorded.entry(key).or_insert(()).is_fresh() {
                            return SpanVerdict::Accepted {
                                dropped: checked.dropped,
                            };
                        }
                        let trace_id = match stored.parent() {
                            Some(parent) => parent.trace_id(),
                            None => *fresh
                                .entry(span.workflow_id.as_str())
                                .or_insert_with(random_trace_id),
                        };
                        let dropped = checked.dropped.clone();
                        self.record(checked, span, stored, trace_id, tenant, &sdk);
                        accepted += 1;
                        SpanVerdict::Accepted { dropped }
                    }
                    Err(reason) => {
                        *refused.entry(reason).or_default() += 1;
                        SpanVerdict::Refused(reason)
                    }
                }
            })
            .collect();
        if accepted > 0 {
            metrics::counter!(self.accepted.clone(), LABEL_TENANT_ID => tenant.to_string())
                .increment(accepted);
        }
        for (reason, n) in refused {
            metrics::counter!(
                self.refused.clone(),
                LABEL_TENANT_ID => tenant.to_string(),
                LABEL_REASON => reason.as_str(),
            )
            .increment(n);
        }
        verdicts
    }

    /// Whose the workflow `id` is, as the tenant layer would check it.
    async fn owner(&self, tenant: &TenantId, id: &str) -> Owner {
        if id.is_empty() {
            return Owner::Refused(Refusal::UnknownWorkflow);
        }
        let found = match self.source.find(id) {
            Found::Ready(found) => found,
            Found::Pending(lookup) => lookup.await,
        };
        match found {
            Ok(Some(stored)) if stored.tenant() == tenant => Owner::Found(stored),
            Ok(Some(_)) => Owner::Refused(Refusal::OtherTenant),
            Ok(None) => Owner::Refused(Refusal::UnknownWorkflow),
            Err(e) => {
                tracing::warn!(
                    error = %self.rules.redactor_in_use().error_text(&e.to_string()),
                    "span proxy: workflow lookup failed; the reported spans are refused"
                );
                Owner::Refused(Refusal::LookupFailed)
            }
        }
    }

    /// The verdict on the `i`-th span: checked, with its workflow's stored trace.
    fn judge<'o>(
        &self,
        i: usize,
        span: &ExecutionSpan,
        now: SystemTime,
        owners: &'o HashMap<&str, Owner>,
        seen: &mut HashSet<String>,
    ) -> Result<(CheckedSpan, &'o StoredTrace), Refusal> {
        if i >= self.rules.max_spans {
            return Err(Refusal::TooManySpans);
        }
        let stored = match owners.get(span.workflow_id.as_str()) {
            Some(Owner::Found(stored)) => stored,
            Some(Owner::Refused(reason)) => return Err(*reason),
            None => return Err(Refusal::UnknownWorkflow),
        };
        let checked = self.rules.check(span, now, stored.started())?;
        if !seen.insert(span.span_id.clone()) {
            return Err(Refusal::DuplicateId);
        }
        Ok((checked, stored))
    }

    /// Records `checked` in the trace `trace_id` of its workflow.
    fn record(
        &self,
        checked: CheckedSpan,
        span: &ExecutionSpan,
        stored: &StoredTrace,
        trace_id: TraceId,
        tenant: &TenantId,
        sdk: &[KeyValue],
    ) {
        let flags = stored
            .parent()
            .map_or(TraceFlags::SAMPLED, SpanContext::trace_flags);
        let parent = match checked.parent_span_id {
            Some(id) => Some(SpanContext::new(
                trace_id,
                id,
                flags,
                true,
                TraceState::default(),
            )),
            None => stored.parent().cloned(),
        };
        let cx = match parent {
            Some(parent) => Context::new().with_remote_span_context(parent),
            None => Context::new(),
        };
        let cx = with_tenant(&cx, tenant.clone());
        let mut attributes = checked.attributes;
        attributes.extend(sdk.iter().cloned());
        if !checked.dropped.is_empty() {
            let keys: Vec<StringValue> = checked.dropped.into_iter().map(Into::into).collect();
            attributes.push(KeyValue::new(
                REPORTED_DROPPED_ATTRIBUTES,
                Value::Array(keys.into()),
            ));
        }
        let tracer = self.tracer.get();
        let builder = tracer
            .span_builder(checked.name)
            .with_kind(checked.kind)
            .with_start_time(span.start)
            .with_attributes(attributes);
        let mut recorded = with_preset_ids(Some(trace_id), checked.span_id, || {
            tracer.build_with_context(builder, &cx)
        });
        if let Some(error) = checked.error {
            recorded.set_status(Status::error(error));
        }
        recorded.end_with_timestamp(span.end);
    }
}

/// A random trace id, for the spans of a workflow that has no stored trace.
fn random_trace_id() -> TraceId {
    let state = RandomState::new();
    let high = u128::from(state.hash_one(1u8));
    let low = u128::from(state.hash_one(2u8));
    TraceId::from((high << 64) | low)
}

#[cfg(test)]
mod tests;
