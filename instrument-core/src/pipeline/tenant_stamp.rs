//! [`TenantProcessor`]: `tenant.id` on every span of a request, and never another tenant's.

use std::sync::atomic::{AtomicU64, Ordering};

use opentelemetry::trace::Span as _;
use opentelemetry::{Context, KeyValue, StringValue, Value};
use opentelemetry_sdk::trace::{Span, SpanData, SpanProcessor};

use crate::semconv::{TENANT_ID, TENANT_MISSING, TENANT_STAMPED};
use crate::tenant::tenant_from;

/// What happens to a span started outside any tenant (no tenant in its context and no
/// `tenant.id` attribute of its own).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
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
    inner: P,
}

impl<P> TenantProcessor<P> {
    /// Stamps tenants on spans before handing them to `inner`.
    pub fn new(missing: MissingTenant, inner: P) -> Self {
        Self {
            missing,
            dropped: AtomicU64::new(0),
            inner,
        }
    }

    /// Spans not exported under [`MissingTenant::Drop`].
    pub fn dropped(&self) -> u64 {
        self.dropped.load(Ordering::Relaxed)
    }

    /// Enforces the stamped tenant on a finished span; `false` when it must be dropped.
    fn enforce(&self, span: &mut SpanData) -> bool {
        let stamped: Option<StringValue> = span
            .attributes
            .iter()
            .position(|kv| kv.key.as_str() == TENANT_STAMPED)
            .map(|i| match span.attributes.remove(i).value {
                Value::String(s) => s,
                other => other.as_str().into_owned().into(),
            });
        let mut seen = false;
        match &stamped {
            // Only the stamped value survives, once.
            Some(tenant) => span.attributes.retain(|kv| {
                if kv.key.as_str() != TENANT_ID {
                    return true;
                }
                let keep = !seen && kv.value.as_str() == tenant.as_str();
                seen |= keep;
                keep
            }),
            // No request tenant: the span's own first `tenant.id`, if any, stays.
            None => span.attributes.retain(|kv| {
                if kv.key.as_str() != TENANT_ID {
                    return true;
                }
                let keep = !seen;
                seen = true;
                keep
            }),
        }
        if seen {
            return true;
        }
        match self.missing {
            MissingTenant::Allow => true,
            MissingTenant::MarkMissing => {
                span.attributes.push(KeyValue::new(TENANT_MISSING, true));
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
            let value = StringValue::from(tenant.shared());
            span.set_attribute(KeyValue::new(TENANT_ID, value.clone()));
            span.set_attribute(KeyValue::new(TENANT_STAMPED, value));
        }
        self.inner.on_start(span, cx);
    }

    fn on_end(&self, mut span: SpanData) {
        if self.enforce(&mut span) {
            self.inner.on_end(span);
        }
    }

    forward_to_inner!();
}
