//! Choosing a parent when a request has both a stored and an incoming context.

use opentelemetry::trace::SpanContext;

/// How to combine a workflow's stored context with the context the request carried.
///
/// A workflow that runs for days should be one trace, but the caller's own trace
/// should stay reachable: by default the stored context is the parent and the caller's
/// becomes a span link.
///
/// ```
/// use instrument_core::context::{restore, ParentPolicy};
///
/// let stored = restore(Some("00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"));
/// let incoming = restore(Some("00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"));
/// let choice = ParentPolicy::default().choose(stored.span_context(), incoming.span_context());
/// assert_eq!(choice.parent, stored.span_context().cloned());
/// assert_eq!(choice.link, incoming.span_context().cloned());
/// ```
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum ParentPolicy {
    /// Stored context is the parent; the incoming one becomes a link. Falls back to the
    /// incoming context when nothing is stored.
    #[default]
    StoredParentIncomingLink,
    /// Incoming context is the parent; the stored one becomes a link. Falls back to the
    /// stored context when the request carried none.
    IncomingParentStoredLink,
    /// Only the stored context counts; incoming headers are ignored.
    StoredOnly,
    /// Only the incoming context counts; the stored one is ignored.
    IncomingOnly,
}

/// The parent and optional link a [`ParentPolicy`] chose.
#[derive(Debug, Clone, Default, PartialEq)]
#[non_exhaustive]
pub struct ParentChoice {
    /// Parent of the new span; `None` starts a new trace.
    pub parent: Option<SpanContext>,
    /// A span to link to, when the other context was not chosen as parent.
    pub link: Option<SpanContext>,
}

impl ParentPolicy {
    /// Chooses between the `stored` and `incoming` contexts. Invalid contexts count as absent.
    pub fn choose(
        self,
        stored: Option<&SpanContext>,
        incoming: Option<&SpanContext>,
    ) -> ParentChoice {
        let stored = stored.filter(|sc| sc.is_valid());
        let incoming = incoming.filter(|sc| sc.is_valid());
        let (first, second, link_second) = match self {
            Self::StoredParentIncomingLink => (stored, incoming, true),
            Self::IncomingParentStoredLink => (incoming, stored, true),
            Self::StoredOnly => (stored, None, false),
            Self::IncomingOnly => (incoming, None, false),
        };
        match (first, second) {
            (Some(parent), other) => ParentChoice {
                parent: Some(parent.clone()),
                // A link to the parent itself says nothing.
                link: other
                    .filter(|o| link_second && !same_span(o, parent))
                    .cloned(),
            },
            (None, other) => ParentChoice {
                parent: other.cloned(),
                link: None,
            },
        }
    }
}

fn same_span(a: &SpanContext, b: &SpanContext) -> bool {
    a.trace_id() == b.trace_id() && a.span_id() == b.span_id()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::context::restore;

    fn sc(tp: &str) -> SpanContext {
        restore(Some(tp)).span_context().unwrap().clone()
    }

    fn pair() -> (SpanContext, SpanContext) {
        (
            sc("00-11111111111111111111111111111111-1111111111111111-01"),
            sc("00-22222222222222222222222222222222-2222222222222222-01"),
        )
    }

    #[test]
    fn stored_parent_wins_and_caller_becomes_link() {
        let (stored, incoming) = pair();
        let c = ParentPolicy::StoredParentIncomingLink.choose(Some(&stored), Some(&incoming));
        assert_eq!((c.parent, c.link), (Some(stored), Some(incoming)));
    }

    #[test]
    fn incoming_parent_policy_links_the_stored_context() {
        let (stored, incoming) = pair();
        let c = ParentPolicy::IncomingParentStoredLink.choose(Some(&stored), Some(&incoming));
        assert_eq!((c.parent, c.link), (Some(incoming), Some(stored)));
    }

    #[test]
    fn only_policies_ignore_the_other_side() {
        let (stored, incoming) = pair();
        let c = ParentPolicy::StoredOnly.choose(None, Some(&incoming));
        assert_eq!(c, ParentChoice::default());
        let c = ParentPolicy::IncomingOnly.choose(Some(&stored), Some(&incoming));
        assert_eq!((c.parent, c.link), (Some(incoming), None));
    }

    #[test]
    fn missing_side_falls_back_without_link() {
        let (stored, incoming) = pair();
        let c = ParentPolicy::StoredParentIncomingLink.choose(None, Some(&incoming));
        assert_eq!((c.parent, c.link), (Some(incoming), None));
        let c = ParentPolicy::IncomingParentStoredLink.choose(Some(&stored), None);
        assert_eq!((c.parent, c.link), (Some(stored), None));
    }

    #[test]
    fn same_span_on_both_sides_gives_no_link() {
        let (stored, _) = pair();
        let c = ParentPolicy::default().choose(Some(&stored), Some(&stored));
        assert_eq!((c.parent, c.link), (Some(stored), None));
    }
}
