//! [`TenantProcessor`]: `tenant.id` on every span of a request, and never another tenant's.

use std::sync::atomic::{AtomicU64, Ordering};

use opentelemetry::trace::Span as _;
use opentelemetry::{Context, Key, KeyValue, StringValue};
use opentelemetry_sdk::error::OTelSdkResult;
use opentelemetry_sdk::trace::{Span, SpanData, SpanExporter, SpanProcessor};

use crate::semconv::{TENANT_ID, TENANT_MISSING, TENANT_REJECTED, TENANT_STAMPED};
use crate::tenant::tenant_from;

/// What happens to a span started outside any tenant (no tenant in its context and no
/// `tenant.id` attribute of its own).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
#[non_exhaustive]
pub enum MissingTenant {
    /// Export it as it is.
    Allow,
    /// Export it with `tenant.missing=true`, so it can be found and fixed.
    #[default]
    MarkMissing,
    /// Do not export it (counted in [`TenantProcessor::dropped`]).
    Drop,
}

/// Stamps `tenant.id` on every span started in a context that carries a tenant
/// ([`with_tenant`](crate::tenant::with_tenant), set by the tower tenant layer), including
/// spans made by other libraries below the handler, because the tenant travels in the
/// OpenTelemetry context every child span is started from.
///
/// The stamped tenant wins: any other `tenant.id` value set on the span (by the span's
/// fields or later) is removed before export, so a span never carries a tenant other
/// than its request's. Spans without a tenant follow the [`MissingTenant`] policy.
///
/// ```
/// use instrument_core::pipeline::{MissingTenant, TenantProcessor};
/// use instrument_core::tenant::{with_tenant, TenantId};
/// use opentelemetry::trace::{Span as _, Tracer as _, TracerProvider as _};
/// use opentelemetry_sdk::trace::{InMemorySpanExporter, SdkTracerProvider, SimpleSpanProcessor};
///
/// let exporter = InMemorySpanExporter::default();
/// let provider = SdkTracerProvider::builder()
///     .with_span_processor(TenantProcessor::new(MissingTenant::MarkMissing, SimpleSpanProcessor::new(exporter.clone())))
///     .build();
/// let cx = with_tenant(&opentelemetry::Context::new(), TenantId::parse("acme")?);
/// provider.tracer("demo").start_with_context("db.query", &cx).end();
/// let span = &exporter.get_finished_spans().unwrap()[0];
/// assert!(span.attributes.iter().any(|kv| kv.key.as_str() == "tenant.id" && kv.value.as_str() == "acme"));
/// # Ok::<(), instrument_core::tenant::TenantIdError>(())
/// ```
#[derive(Debug)]
pub struct TenantProcessor<P> {
    missing: MissingTenant,
    dropped: AtomicU64,
    /// Whether a span's end enforces its tenant (else a [`TenantExporter`] does).
    at_end: bool,
    inner: P,
}

impl<P> TenantProcessor<P> {
    /// Stamps tenants on spans before handing them to `inner`.
    pub fn new(missing: MissingTenant, inner: P) -> Self {
        Self {
            missing,
            dropped: AtomicU64::new(0),
            at_end: true,
            inner,
        }
    }

    /// Stamps tenants on spans as they start, and leaves the rest to a
    /// [`TenantExporter`] where they are exported: a span's end hands it to `inner` as
    /// it is, with the stamp (`tenant.stamped`) still on it. What
    /// [`pipeline::build`](super::build) chains, the exporter behind the batch
    /// processor, so that the check runs on the batch's thread and not on the thread
    /// that ends the span.
    ///
    /// ```
    /// use instrument_core::pipeline::{MissingTenant, TenantExporter, TenantProcessor};
    /// use instrument_core::tenant::{with_tenant, TenantId};
    /// use opentelemetry::trace::{Span as _, Tracer as _, TracerProvider as _};
    /// use opentelemetry_sdk::trace::{InMemorySpanExporter, SdkTracerProvider, SimpleSpanProcessor};
    ///
    /// let exporter = InMemorySpanExporter::default();
    /// let export = TenantExporter::new(MissingTenant::MarkMissing, exporter.clone());
    /// let provider = SdkTracerProvider::builder()
    ///     .with_span_processor(TenantProcessor::stamping(SimpleSpanProcessor::new(export)))
    ///     .build();
    /// let cx = with_tenant(&opentelemetry::Context::new(), TenantId::parse("acme")?);
    /// provider.tracer("demo").start_with_context("db.query", &cx).end();
    /// let span = &exporter.get_finished_spans().unwrap()[0];
    /// assert!(span.attributes.iter().any(|kv| kv.key.as_str() == "tenant.id" && kv.value.as_str() == "acme"));
    /// # Ok::<(), instrument_core::tenant::TenantIdError>(())
    /// ```
    pub fn stamping(inner: P) -> Self {
        Self {
            at_end: false,
            ..Self::new(MissingTenant::Allow, inner)
        }
    }

    /// Spans not exported under [`MissingTenant::Drop`].
    pub fn dropped(&self) -> u64 {
        self.dropped.load(Ordering::Relaxed)
    }

    /// Enforces the stamped tenant on a finished span; `false` when it must be dropped.
    ///
    /// The stamp carries the tenant: when the span has no `tenant.id` of the stamp's
    /// value, the stamp becomes it, where it stands; otherwise the stamp goes and the
    /// first such `tenant.id` stays. Every other `tenant.id` goes. Without a stamp, the
    /// span's own first `tenant.id` stays.
    fn enforce(&self, span: &mut SpanData) -> bool {
        // One pass finds the stamps and the `tenant.id`s; the usual spans (the stamp
        // alone, or the stamp and a `tenant.id` of its value, as `#[workflow_span]`
        // sets) then need no comparison of text and at most one removal.
        let mut stamp = None;
        let mut stamps = 0;
        let mut first_id = None;
        let mut ids = 0;
        for (i, kv) in span.attributes.iter().enumerate() {
            match kv.key.as_str() {
                TENANT_ID => {
                    ids += 1;
                    first_id.get_or_insert(i);
                }
                TENANT_STAMPED => {
                    stamps += 1;
                    stamp.get_or_insert(i);
                }
                _ => {}
            }
        }
        let attributes = &mut span.attributes;
        let seen = match (stamp, first_id) {
            (None, _) if ids <= 1 => ids == 1,
            (Some(s), None) if stamps == 1 => {
                attributes[s].key = Key::from_static_str(TENANT_ID);
                true
            }
            (Some(s), Some(t))
                if stamps == 1 && ids == 1 && attributes[s].value == attributes[t].value =>
            {
                attributes.remove(s);
                true
            }
            (stamp, _) => {
                let stamped = stamp.map(|s| attributes[s].value.as_str().into_owned());
                let kept = attributes.iter().position(|kv| {
                    kv.key.as_str() == TENANT_ID
                        && stamped
                            .as_deref()
                            .is_none_or(|tenant| kv.value.as_str() == tenant)
                });
                // With a stamp and no `tenant.id` of its value, the stamp stays, renamed.
                let kept = kept.or(stamp);
                let mut i = 0;
                attributes.retain(|kv| {
                    let keep =
                        Some(i) == kept || !matches!(kv.key.as_str(), TENANT_ID | TENANT_STAMPED);
                    i += 1;
                    keep
                });
                if let Some(kv) = kept.and_then(|_| {
                    attributes
                        .iter_mut()
                        .find(|kv| kv.key.as_str() == TENANT_STAMPED)
                }) {
                    kv.key = Key::from_static_str(TENANT_ID);
                }
                kept.is_some()
            }
        };
        if seen {
            return true;
        }
        match self.missing {
            MissingTenant::Allow => true,
            // A request the tenant check refused for a tenant it sent (malformed, or
            // another tenant's workflow) says so in `tenant.rejected`; it is not marked
            // as one that sent none.
            MissingTenant::MarkMissing => {
                let sent_one = span
                    .attributes
                    .iter()
                    .any(|kv| kv.key.as_str() == TENANT_REJECTED && kv.value.as_str() != "missing");
                if !sent_one {
                    span.attributes.push(KeyValue::new(TENANT_MISSING, true));
                }
                true
            }
            MissingTenant::Drop => {
                self.dropped.fetch_add(1, Ordering::Relaxed);
                false
            }
        }
    }
}

impl<P: SpanProcessor> SpanProcessor for TenantProcessor<P> {
    fn on_start(&self, span: &mut Span, cx: &Context) {
        if let Some(tenant) = tenant_from(cx) {
            // Becomes `tenant.id` at the end (see `enforce`).
            let value = StringValue::from(tenant.shared());
            span.set_attribute(KeyValue::new(TENANT_STAMPED, value));
        }
        self.inner.on_start(span, cx);
    }

    fn on_end(&self, mut span: SpanData) {
        if !self.at_end || self.enforce(&mut span) {
            self.inner.on_end(span);
        }
    }

    forward_to_inner!();
}

/// [`TenantProcessor`]'s check where spans are exported: behind a
/// [`TenantProcessor::stamping`], each span of a batch gets its stamped tenant as
/// `tenant.id` (and no other), and a span without one follows the [`MissingTenant`]
/// policy, before `inner` sees it. Behind a batch processor the check runs on the
/// batch's thread. Put it in front of a [`RedactingExporter`](super::RedactingExporter),
/// which leaves `tenant.id` as it is, so that a stamp is never scanned as a value.
///
/// A span it drops ([`MissingTenant::Drop`]) held a place in the batch processor's
/// queue until its batch: where many spans may lack a tenant, drop them at their end
/// with [`TenantProcessor::new`] instead, as [`pipeline::build`](super::build) does.
#[derive(Debug)]
pub struct TenantExporter<E> {
    tenant: TenantProcessor<()>,
    inner: E,
}

impl<E> TenantExporter<E> {
    /// Enforces the stamped tenants with `missing` for spans without one, before
    /// `inner` exports them.
    pub fn new(missing: MissingTenant, inner: E) -> Self {
        Self {
            tenant: TenantProcessor::new(missing, ()),
            inner,
        }
    }

    /// Spans not exported under [`MissingTenant::Drop`].
    pub fn dropped(&self) -> u64 {
        self.tenant.dropped()
    }

    /// Enforces every span of `batch`, removing the ones to drop; returns how many.
    fn enforce(&self, batch: &mut Vec<SpanData>) -> u64 {
        let before = batch.len();
        batch.retain_mut(|span| self.tenant.enforce(span));
        (before - batch.len()) as u64
    }
}

impl<E: SpanExporter> TenantExporter<E> {
    /// `batch`, enforced, to `inner`; an empty one (every span dropped) is not sent.
    fn forward(
        &self,
        batch: Vec<SpanData>,
    ) -> impl std::future::Future<Output = OTelSdkResult> + Send + '_ {
        let export = (!batch.is_empty()).then(|| self.inner.export(batch));
        async move {
            match export {
                Some(export) => export.await,
                None => Ok(()),
            }
        }
    }
}

impl<E: SpanExporter> SpanExporter for TenantExporter<E> {
    fn export(
        &self,
        mut batch: Vec<SpanData>,
    ) -> impl std::future::Future<Output = OTelSdkResult> + Send {
        self.enforce(&mut batch);
        self.forward(batch)
    }

    fn shutdown_with_timeout(&self, timeout: std::time::Duration) -> OTelSdkResult {
        self.inner.shutdown_with_timeout(timeout)
    }

    fn force_flush(&self) -> OTelSdkResult {
        self.inner.force_flush()
    }

    fn set_resource(&mut self, resource: &opentelemetry_sdk::Resource) {
        self.inner.set_resource(resource);
    }
}

#[cfg(test)]
mod tests {
    use std::borrow::Cow;
    use std::time::SystemTime;

    use opentelemetry::trace::{SpanContext, SpanId, SpanKind, Status};
    use opentelemetry::{InstrumentationScope, KeyValue, Value};
    use opentelemetry_sdk::trace::{SpanData, SpanEvents, SpanLinks};
    use proptest::prelude::*;

    use super::{MissingTenant, TenantProcessor};
    use crate::semconv::{TENANT_ID, TENANT_MISSING, TENANT_REJECTED, TENANT_STAMPED};

    fn span(attributes: Vec<KeyValue>) -> SpanData {
        SpanData {
            span_context: SpanContext::empty_context(),
            parent_span_id: SpanId::INVALID,
            parent_span_is_remote: false,
            span_kind: SpanKind::Internal,
            name: Cow::Borrowed("test"),
            start_time: SystemTime::UNIX_EPOCH,
            end_time: SystemTime::UNIX_EPOCH,
            attributes,
            dropped_attributes_count: 0,
            events: SpanEvents::default(),
            links: SpanLinks::default(),
            status: Status::Unset,
            instrumentation_scope: InstrumentationScope::builder("test").build(),
        }
    }

    fn enforced(attributes: Vec<KeyValue>) -> Option<Vec<KeyValue>> {
        let processor = TenantProcessor::new(MissingTenant::Drop, ());
        let mut span = span(attributes);
        processor.enforce(&mut span).then_some(span.attributes)
    }

    #[test]
    fn the_exporter_drops_and_counts_what_the_processor_would() {
        let exporter = super::TenantExporter::new(MissingTenant::Drop, ());
        let mut batch = vec![
            span(vec![KeyValue::new(TENANT_STAMPED, "acme")]),
            span(vec![]),
            span(vec![KeyValue::new(TENANT_ID, "globex")]),
            span(vec![KeyValue::new("http.route", "/jobs")]),
        ];
        assert_eq!(exporter.enforce(&mut batch), 2);
        assert_eq!(exporter.dropped(), 2);
        let kept: Vec<_> = batch.iter().map(|s| s.attributes.clone()).collect();
        assert_eq!(
            kept,
            [
                vec![KeyValue::new(TENANT_ID, "acme")],
                vec![KeyValue::new(TENANT_ID, "globex")],
            ]
        );
    }

    /// The rule, written plainly: every stamp goes; with a stamp (the first one), the
    /// first `tenant.id` reading as its text stays, or else the stamp's value as
    /// `tenant.id` where the stamp was; without, only the first `tenant.id` stays.
    fn rule(attributes: &[KeyValue]) -> Option<Vec<KeyValue>> {
        let stamp = attributes
            .iter()
            .position(|kv| kv.key.as_str() == TENANT_STAMPED);
        let stamped = stamp.map(|s| attributes[s].value.as_str().into_owned());
        let id = attributes.iter().position(|kv| {
            kv.key.as_str() == TENANT_ID && stamped.as_ref().is_none_or(|t| kv.value.as_str() == *t)
        });
        let out: Vec<KeyValue> = attributes
            .iter()
            .enumerate()
            .filter_map(|(i, kv)| match kv.key.as_str() {
                TENANT_STAMPED if id.is_none() && Some(i) == stamp => {
                    Some(KeyValue::new(TENANT_ID, kv.value.clone()))
                }
                TENANT_STAMPED => None,
                TENANT_ID => (Some(i) == id).then(|| kv.clone()),
                _ => Some(kv.clone()),
            })
            .collect();
        (id.is_some() || stamp.is_some()).then_some(out)
    }

    #[test]
    fn the_stamp_becomes_the_spans_tenant_id() {
        // A request's span: the stamp becomes its `tenant.id`.
        let attributes = vec![
            KeyValue::new("http.route", "/jobs"),
            KeyValue::new(TENANT_STAMPED, "acme"),
            KeyValue::new("http.status", 200),
        ];
        let request = vec![
            KeyValue::new("http.route", "/jobs"),
            KeyValue::new(TENANT_ID, "acme"),
            KeyValue::new("http.status", 200),
        ];
        assert_eq!(enforced(attributes), Some(request.clone()));
        // A span that set the same tenant itself keeps its own.
        let attributes = vec![
            KeyValue::new("http.route", "/jobs"),
            KeyValue::new(TENANT_ID, "acme"),
            KeyValue::new("http.status", 200),
            KeyValue::new(TENANT_STAMPED, "acme"),
        ];
        assert_eq!(enforced(attributes), Some(request));
        // Another tenant's id goes; the stamp's stays.
        let attributes = vec![
            KeyValue::new(TENANT_ID, "globex"),
            KeyValue::new("http.route", "/jobs"),
            KeyValue::new(TENANT_STAMPED, "acme"),
            KeyValue::new("http.status", 200),
        ];
        assert_eq!(
            enforced(attributes),
            Some(vec![
                KeyValue::new("http.route", "/jobs"),
                KeyValue::new(TENANT_ID, "acme"),
                KeyValue::new("http.status", 200),
            ])
        );
        // A second stamp (set by the span's own code) leaves with the first.
        let forged = vec![
            KeyValue::new(TENANT_STAMPED, "acme"),
            KeyValue::new(TENANT_STAMPED, "globex"),
        ];
        assert_eq!(
            enforced(forged),
            Some(vec![KeyValue::new(TENANT_ID, "acme")])
        );
        // No tenant at all: dropped under `Drop`, marked under `MarkMissing`.
        assert_eq!(enforced(vec![KeyValue::new("k", "v")]), None);
        let processor = TenantProcessor::new(MissingTenant::MarkMissing, ());
        let mut marked = span(vec![]);
        assert!(processor.enforce(&mut marked));
        assert_eq!(marked.attributes, [KeyValue::new(TENANT_MISSING, true)]);
        // Refused for a tenant it sent: not marked as one that sent none.
        for (reason, marked_missing) in [
            ("malformed", false),
            ("other_tenant", false),
            ("missing", true),
        ] {
            let rejected = KeyValue::new(TENANT_REJECTED, reason);
            let mut refused = span(vec![rejected.clone()]);
            assert!(processor.enforce(&mut refused));
            let mut expected = vec![rejected];
            if marked_missing {
                expected.push(KeyValue::new(TENANT_MISSING, true));
            }
            assert_eq!(refused.attributes, expected, "{reason}");
        }
    }

    fn attribute() -> impl Strategy<Value = KeyValue> {
        let key = prop_oneof![Just(TENANT_ID), Just(TENANT_STAMPED), Just("other")];
        let value = prop_oneof![
            Just(Value::from("acme")),
            Just(Value::from("globex")),
            Just(Value::from("42")),
            Just(Value::I64(42)),
        ];
        (key, value).prop_map(|(key, value)| KeyValue::new(key, value))
    }

    proptest! {
        #[test]
        fn enforce_follows_the_rule(attributes in proptest::collection::vec(attribute(), 0..8)) {
            prop_assert_eq!(enforced(attributes.clone()), rule(&attributes));
        }
    }
}
