//! Continuing a workflow's trace from a `traceparent` stored with its database row.

use std::fmt;
use std::future::Future;

use opentelemetry::baggage::{Baggage, BaggageExt as _, KeyValueMetadata};
use opentelemetry::context::{FutureExt as _, WithContext};
use opentelemetry::trace::{SpanContext, TraceContextExt, TraceState};
use opentelemetry::Context;

use super::traceparent::{trim_ows, TraceParent, TraceParentError};
use crate::tenant::TenantId;

/// The outcome of [`restore`]: the stored parent, or a fresh trace and why.
#[derive(Debug, Clone, PartialEq)]
pub enum Restored {
    /// The stored traceparent was valid: work continues in its trace.
    Parent(SpanContext),
    /// Nothing usable was stored: work starts a fresh trace.
    Fresh {
        /// Why the stored value was not used.
        reason: FreshReason,
    },
}

/// Why [`restore`] started a fresh trace.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum FreshReason {
    /// No traceparent was stored (`NULL` or empty column).
    Missing,
    /// The stored value was corrupt.
    Invalid(TraceParentError),
}

impl fmt::Display for FreshReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Missing => f.write_str("no stored traceparent"),
            Self::Invalid(e) => write!(f, "stored traceparent is invalid: {e}"),
        }
    }
}

/// The context to continue a workflow whose `traceparent` was stored in a database row
/// (typically a `VARCHAR(55)` column).
///
/// A missing or corrupt value never fails the caller: the result is
/// [`Restored::Fresh`] with the reason, and spans started under it begin a new trace.
/// Padding a fixed-width `CHAR(55)` column may add is ignored.
///
/// ```
/// use instrument_core::context::{restore, FreshReason, Restored};
///
/// let stored = Some("00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01");
/// let Restored::Parent(parent) = restore(stored) else { panic!() };
/// assert_eq!(parent.trace_id().to_string(), "4bf92f3577b34da6a3ce929d0e0e4736");
///
/// assert_eq!(restore(None), Restored::Fresh { reason: FreshReason::Missing });
/// assert!(matches!(restore(Some("garbage")), Restored::Fresh { reason: FreshReason::Invalid(_) }));
/// ```
pub fn restore(stored: Option<&str>) -> Restored {
    let Some(raw) = stored else {
        return Restored::Fresh {
            reason: FreshReason::Missing,
        };
    };
    let trimmed = trim_ows(raw.as_bytes());
    if trimmed.is_empty() {
        return Restored::Fresh {
            reason: FreshReason::Missing,
        };
    }
    match TraceParent::parse_header(trimmed) {
        Ok(parent) => Restored::Parent(parent.to_span_context(TraceState::NONE)),
        Err(e) => Restored::Fresh {
            reason: FreshReason::Invalid(e),
        },
    }
}

impl Restored {
    /// The restored parent, if there is one.
    pub fn span_context(&self) -> Option<&SpanContext> {
        match self {
            Self::Parent(sc) => Some(sc),
            Self::Fresh { .. } => None,
        }
    }

    /// Why a fresh trace was started, if it was.
    pub fn fresh_reason(&self) -> Option<FreshReason> {
        match self {
            Self::Parent(_) => None,
            Self::Fresh { reason } => Some(*reason),
        }
    }

    /// `base` with its span replaced by the restored parent, or by no span at all when
    /// fresh, so that the next span is a root. The tenant and the baggage of `base` are
    /// kept; a fresh context keeps nothing else (the OpenTelemetry context cannot drop
    /// its span otherwise, and an invalid span in its place would count as an unsampled
    /// parent for the SDK's `Sampler::ParentBased`, dropping the new trace).
    pub fn apply_to(&self, base: &Context) -> Context {
        match self {
            Self::Parent(sc) => base.with_remote_span_context(sc.clone()),
            Self::Fresh { .. } => {
                let mut fresh = Context::new();
                if let Some(tenant) = base.get::<TenantId>() {
                    fresh = fresh.with_value(tenant.clone());
                }
                let baggage = base.baggage();
                if !baggage.is_empty() {
                    let kept: Baggage = baggage
                        .iter()
                        .map(|(k, (v, m))| KeyValueMetadata::new(k.clone(), v.clone(), m.clone()))
                        .collect();
                    fresh = fresh.with_baggage(kept);
                }
                fresh
            }
        }
    }

    /// [`Restored::apply_to`] the current context.
    pub fn to_context(&self) -> Context {
        Context::map_current(|cx| self.apply_to(cx))
    }
}

/// The traceparent of the span active in `cx`, to store with a new workflow or task row.
///
/// `None` when `cx` has no valid span.
pub fn capture_from(cx: &Context) -> Option<TraceParent> {
    TraceParent::from_context(cx)
}

/// The traceparent of the currently active span, to store with a new workflow or task
/// row (`TraceParent` displays as the 55-character header value).
///
/// ```
/// use instrument_core::context::{capture, in_context, restore};
///
/// let stored = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";
/// let cx = restore(Some(stored)).to_context();
/// let captured = in_context(&cx, capture).map(|tp| tp.to_string());
/// assert_eq!(captured.as_deref(), Some(stored));
/// ```
pub fn capture() -> Option<TraceParent> {
    Context::map_current(capture_from)
}

/// Runs `f` with `cx` as the current OpenTelemetry context.
pub fn in_context<R>(cx: &Context, f: impl FnOnce() -> R) -> R {
    let _guard = cx.clone().attach();
    f()
}

/// Runs futures under a given OpenTelemetry context, on every poll.
///
/// ```
/// use instrument_core::context::{restore, InContextExt};
/// # async fn work() {}
/// # async fn run() {
/// let cx = restore(Some("00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01")).to_context();
/// work().in_context(cx).await;
/// # }
/// ```
pub trait InContextExt: Future + Sized {
    /// Polls `self` with `cx` attached as the current context.
    fn in_context(self, cx: Context) -> WithContext<Self> {
        self.with_context(cx)
    }
}

impl<F: Future> InContextExt for F {}

#[cfg(test)]
mod tests {
    use super::*;

    const STORED: &str = "00-12345678901234567890123456789012-1234567890123456-01";

    #[test]
    fn stored_value_restores_a_remote_parent() {
        let r = restore(Some(STORED));
        let sc = r.span_context().unwrap();
        assert!(sc.is_remote());
        assert_eq!(
            TraceParent::from_span_context(sc).unwrap().to_string(),
            STORED
        );
        assert_eq!(r.fresh_reason(), None);
    }

    #[test]
    fn char_column_padding_is_ignored() {
        assert!(restore(Some(&format!("{STORED}  ")))
            .span_context()
            .is_some());
        assert_eq!(
            restore(Some("   ")).fresh_reason(),
            Some(FreshReason::Missing)
        );
    }

    #[test]
    fn corrupt_value_starts_fresh_with_reason() {
        let r = restore(Some(
            "00-00000000000000000000000000000000-1234567890123456-01",
        ));
        assert_eq!(
            r.fresh_reason(),
            Some(FreshReason::Invalid(TraceParentError::ZeroTraceId))
        );
        assert!(!r.to_context().span().span_context().is_valid());
        assert!(r.fresh_reason().unwrap().to_string().contains("all zeros"));
    }

    #[test]
    fn fresh_context_drops_the_current_span_but_keeps_tenant_and_baggage() {
        use opentelemetry::KeyValue;
        let tenant = TenantId::parse("acme").unwrap();
        let base = restore(Some(STORED))
            .apply_to(&Context::new().with_value(tenant.clone()))
            .with_baggage([KeyValue::new("region", "eu")]);
        let fresh = restore(None).apply_to(&base);
        assert!(!fresh.has_active_span());
        assert_eq!(fresh.get::<TenantId>(), Some(&tenant));
        assert_eq!(
            fresh.baggage().get("region").map(|v| v.as_str().to_owned()),
            Some("eu".to_owned())
        );
    }

    #[test]
    fn a_fresh_trace_is_sampled_by_the_sdk_default_sampler() {
        use opentelemetry::trace::{Span as _, Tracer as _, TracerProvider as _};
        // The SDK's default is `Sampler::ParentBased(AlwaysOn)`, which drops a span
        // whose parent context holds an invalid span.
        let provider = opentelemetry_sdk::trace::SdkTracerProvider::builder().build();
        let tracer = provider.tracer("t");
        let inside = restore(Some(STORED)).to_context();
        let span = tracer.start_with_context("fresh", &restore(Some("garbage")).apply_to(&inside));
        assert!(span.is_recording());
        assert!(span.span_context().is_sampled());
    }

    #[test]
    fn capture_outside_any_span_is_none() {
        assert!(capture_from(&Context::new()).is_none());
    }

    #[tokio::test]
    async fn future_runs_in_the_restored_context() {
        let cx = restore(Some(STORED)).to_context();
        let seen = async { capture().map(|tp| tp.to_string()) }
            .in_context(cx)
            .await;
        assert_eq!(seen.as_deref(), Some(STORED));
        assert!(
            capture().is_none(),
            "context does not leak out of the future"
        );
    }
}
