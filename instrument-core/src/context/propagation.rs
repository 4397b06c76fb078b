//! Reading the trace context a request carries in its `traceparent` / `tracestate` headers.

use opentelemetry::trace::{SpanContext, TraceContextExt as _, TraceId, TraceState};
use opentelemetry::Context;

use super::traceparent::{TraceParent, TraceParentError, TRACEPARENT_LEN};
use super::tracestate::{TraceStateError, TraceStateList};

/// Header name of the W3C trace parent, lower case as HTTP/2 and gRPC metadata require.
pub const TRACEPARENT_HEADER: &str = "traceparent";
/// Header name of the W3C trace state.
pub const TRACESTATE_HEADER: &str = "tracestate";

/// What a request's trace-context headers said.
#[derive(Debug, Clone, PartialEq)]
pub enum Incoming {
    /// No `traceparent` header: the request starts its own trace.
    Absent,
    /// A valid `traceparent`. A `tracestate` that failed validation was discarded as a
    /// whole (W3C 3.3.1.1) and the reason is kept here; the `traceparent` still counts.
    Valid {
        /// The caller's span, remote, with the part of its tracestate OpenTelemetry can
        /// hold.
        span_context: SpanContext,
        /// The caller's whole tracestate, as [`inject`] sends it on.
        trace_state: TraceStateList,
        /// Why the `tracestate` was discarded, if it was.
        tracestate_error: Option<TraceStateError>,
    },
    /// The `traceparent` was invalid (or repeated): the request starts a fresh trace.
    Invalid(TraceParentError),
}

impl Incoming {
    /// The caller's span context, when the headers held a valid one.
    pub fn span_context(&self) -> Option<&SpanContext> {
        match self {
            Self::Valid { span_context, .. } => Some(span_context),
            _ => None,
        }
    }

    /// Consumes `self`, returning the caller's span context if valid.
    pub fn into_span_context(self) -> Option<SpanContext> {
        match self {
            Self::Valid { span_context, .. } => Some(span_context),
            _ => None,
        }
    }

    /// The caller's tracestate, when the headers held a valid `traceparent`.
    pub fn trace_state(&self) -> Option<&TraceStateList> {
        match self {
            Self::Valid { trace_state, .. } => Some(trace_state),
            _ => None,
        }
    }

    /// `base` with the caller's span as its remote parent and the caller's whole
    /// tracestate carried for [`inject`]; `base` unchanged when the headers held no
    /// valid context.
    ///
    /// ```
    /// use instrument_core::context::{extract, inject};
    /// use opentelemetry::Context;
    ///
    /// let tp = b"00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-03";
    /// let cx = extract([&tp[..]], [&b"foo@@bar=1"[..]]).apply_to(&Context::new());
    /// let mut sent = Vec::new();
    /// inject(&cx, |name, value| sent.push((name, value.to_owned())));
    /// assert_eq!(sent[1], ("tracestate", "foo@@bar=1".to_owned()));
    /// ```
    pub fn apply_to(&self, base: &Context) -> Context {
        match self {
            Self::Valid {
                span_context,
                trace_state,
                ..
            } => with_remote_parent(base, span_context.clone(), trace_state),
            _ => base.clone(),
        }
    }

    /// `base` with `child`, a span context of the caller's trace, as its active span,
    /// and the caller's whole tracestate carried for [`inject`], as
    /// [`apply_to`](Self::apply_to) carries it for the caller's span: the context a
    /// request continues in when its own span is not recorded (see
    /// [`unsampled_child`](super::unsampled_child)).
    pub fn apply_child_to(&self, base: &Context, child: SpanContext) -> Context {
        match self {
            Self::Valid { trace_state, .. } => with_remote_parent(base, child, trace_state),
            _ => base.with_remote_span_context(child),
        }
    }
}

/// The whole tracestate of a trace, kept in a context beside the OpenTelemetry form
/// that the trace's span contexts carry.
#[derive(Debug)]
struct Carried {
    trace_id: TraceId,
    list: TraceStateList,
    /// `list` as OpenTelemetry holds it: what a span context of this trace carries
    /// unless a sampler or vendor code changed it.
    held: TraceState,
}

/// `base` with `span_context` as its remote parent and `trace_state`, the tracestate
/// that came with it, carried for [`inject`] (OpenTelemetry's `TraceState` cannot hold
/// every key the specification allows).
pub(crate) fn with_remote_parent(
    base: &Context,
    span_context: SpanContext,
    trace_state: &TraceStateList,
) -> Context {
    let trace_id = span_context.trace_id();
    let held = span_context.trace_state().clone();
    let cx = base.with_remote_span_context(span_context);
    if trace_state.is_empty() {
        return cx;
    }
    cx.with_value(Carried {
        trace_id,
        list: trace_state.clone(),
        held,
    })
}

/// The tracestate to send for the span active in `cx`.
fn outgoing_state(cx: &Context, span_context: &SpanContext) -> Option<TraceStateList> {
    let carried = cx
        .get::<Carried>()
        .filter(|c| c.trace_id == span_context.trace_id())?;
    let theirs = span_context.trace_state();
    Some(if *theirs == carried.held {
        carried.list.clone()
    } else {
        carried.list.merged_after(theirs, &carried.held)
    })
}

/// Reads the trace context from the values of every `traceparent` header and every
/// `tracestate` header of one request, in arrival order.
///
/// W3C rules applied: more than one `traceparent` makes the context invalid (a fresh
/// trace starts); several `tracestate` lines are combined; surrounding whitespace is
/// ignored; an invalid `tracestate` is dropped without costing the `traceparent`, and a
/// `tracestate` without a valid `traceparent` is ignored.
///
/// ```
/// use instrument_core::context::{extract, Incoming};
///
/// let tp = b"00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";
/// let incoming = extract([&tp[..]], [&b"vendor=abc"[..]]);
/// let sc = incoming.span_context().expect("valid");
/// assert_eq!(sc.trace_state().get("vendor"), Some("abc"));
///
/// assert!(matches!(extract([&tp[..], &tp[..]], []), Incoming::Invalid(_)));
/// ```
pub fn extract<'a, P, S>(traceparents: P, tracestates: S) -> Incoming
where
    P: IntoIterator<Item = &'a [u8]>,
    S: IntoIterator<Item = &'a [u8]>,
{
    let mut traceparents = traceparents.into_iter();
    let Some(first) = traceparents.next() else {
        return Incoming::Absent;
    };
    if traceparents.next().is_some() {
        return Incoming::Invalid(TraceParentError::Duplicate);
    }
    let parent = match TraceParent::parse_header(first) {
        Ok(parent) => parent,
        Err(e) => return Incoming::Invalid(e),
    };
    let (trace_state, tracestate_error) = match TraceStateList::parse(tracestates) {
        Ok(list) => (list, None),
        Err(e) => (TraceStateList::EMPTY, Some(e)),
    };
    Incoming::Valid {
        span_context: parent.to_span_context(trace_state.to_otel()),
        trace_state,
        tracestate_error,
    }
}

/// [`extract`] over `(name, value)` header pairs, matching the names case-insensitively
/// (`TraceParent`, `TRACESTATE`, ...), for header collections other than `http::HeaderMap`.
///
/// ```
/// use instrument_core::context::extract_from_pairs;
///
/// let headers = [("TraceParent", &b"00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"[..])];
/// assert!(extract_from_pairs(headers).span_context().is_some());
/// ```
pub fn extract_from_pairs<'a, I>(headers: I) -> Incoming
where
    I: IntoIterator<Item = (&'a str, &'a [u8])>,
{
    let mut parents: Vec<&'a [u8]> = Vec::new();
    let mut states: Vec<&'a [u8]> = Vec::new();
    for (name, value) in headers {
        if name.eq_ignore_ascii_case(TRACEPARENT_HEADER) {
            parents.push(value);
        } else if name.eq_ignore_ascii_case(TRACESTATE_HEADER) {
            states.push(value);
        }
    }
    extract(parents, states)
}

/// Writes the trace context of the span active in `cx` as outgoing `traceparent` and,
/// when it is not empty, `tracestate` headers through `set(name, value)`, so a request
/// this process sends continues the trace as a child of that span.
///
/// Writes nothing when `cx` has no valid span: the callee then starts its own trace.
/// The `traceparent` is always version `00` (the version this implementation speaks,
/// W3C 3.2.4: a higher incoming version is never echoed), with the `sampled` and
/// `random` flags of the span. The `tracestate` is the caller's whole list as
/// [`Incoming::apply_to`] carried it (OpenTelemetry's `TraceState` cannot hold every
/// valid key), with any change a sampler made to the span's own state in front.
///
/// ```
/// use instrument_core::context::{inject, restore};
///
/// let cx = restore(Some("00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01")).to_context();
/// let mut headers = Vec::new();
/// inject(&cx, |name, value| headers.push((name, value.to_owned())));
/// assert_eq!(headers, [("traceparent", "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01".to_owned())]);
/// ```
pub fn inject(cx: &Context, mut set: impl FnMut(&'static str, &str)) {
    let span = cx.span();
    let span_context = span.span_context();
    let Some(parent) = TraceParent::from_span_context(span_context) else {
        return;
    };
    let mut buf = [0u8; TRACEPARENT_LEN];
    set(TRACEPARENT_HEADER, parent.encode(&mut buf));
    match outgoing_state(cx, span_context) {
        Some(list) if !list.is_empty() => set(TRACESTATE_HEADER, list.header()),
        Some(_) => {}
        None => {
            let state = span_context.trace_state().header();
            if !state.is_empty() {
                set(TRACESTATE_HEADER, &state);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const TP: &[u8] = b"00-12345678901234567890123456789012-1234567890123456-00";

    #[test]
    fn inject_writes_what_extract_reads() {
        let incoming = extract([TP], [&b"rojo=00f067aa0ba902b7,congo=t61rcWkgMzE"[..]]);
        let cx = Context::new().with_remote_span_context(incoming.span_context().unwrap().clone());
        let mut headers: Vec<(&str, Vec<u8>)> = Vec::new();
        inject(&cx, |name, value| {
            headers.push((name, value.as_bytes().to_vec()))
        });
        assert_eq!(headers.len(), 2);
        assert_eq!(headers[0], ("traceparent", TP.to_vec()));
        assert_eq!(headers[1].1, b"rojo=00f067aa0ba902b7,congo=t61rcWkgMzE");
        let again = extract_from_pairs(headers.iter().map(|(n, v)| (*n, v.as_slice())));
        assert_eq!(again, incoming);
    }

    #[test]
    fn inject_without_a_span_writes_nothing() {
        inject(&Context::new(), |name, _| panic!("wrote {name}"));
    }

    #[test]
    fn no_traceparent_is_absent_and_tracestate_alone_is_ignored() {
        assert_eq!(extract([], [&b"foo=1"[..]]), Incoming::Absent);
    }

    #[test]
    fn duplicated_traceparent_restarts_the_trace() {
        let other = b"00-12345678901234567890123456789011-1234567890123456-01";
        assert_eq!(
            extract([TP, &other[..]], []),
            Incoming::Invalid(TraceParentError::Duplicate)
        );
    }

    #[test]
    fn bad_tracestate_keeps_the_traceparent() {
        let incoming = extract([TP], [&b"foo=1,@bar=2"[..]]);
        let sc = incoming.span_context().unwrap();
        assert_eq!(
            sc.trace_id().to_string(),
            "12345678901234567890123456789012"
        );
        assert_eq!(sc.trace_state().header(), "");
        assert_eq!(incoming.trace_state(), Some(&TraceStateList::EMPTY));
        assert!(matches!(
            incoming,
            Incoming::Valid {
                tracestate_error: Some(TraceStateError::InvalidKey { member: 1 }),
                ..
            }
        ));
    }

    fn sent(cx: &Context) -> Vec<(&'static str, String)> {
        let mut headers = Vec::new();
        inject(cx, |name, value| headers.push((name, value.to_owned())));
        headers
    }

    #[test]
    fn every_valid_tracestate_member_is_sent_on() {
        let state = b"foo@=1,foo@@bar=2,t@vvvvvvvvvvvvvvv=3,bar=4";
        let incoming = extract([TP], [&state[..]]);
        // OpenTelemetry's form holds what it can; the list is kept whole.
        assert_eq!(
            incoming.span_context().unwrap().trace_state().header(),
            "foo@=1,bar=4"
        );
        let cx = incoming.apply_to(&Context::new());
        assert_eq!(
            sent(&cx)[1],
            ("tracestate", String::from_utf8(state.to_vec()).unwrap())
        );
    }

    #[test]
    fn a_child_span_sends_the_carried_tracestate_and_another_trace_does_not() {
        use opentelemetry::trace::{SpanId, TraceFlags};
        let cx = extract([TP], [&b"foo@@bar=1"[..]]).apply_to(&Context::new());
        let parent = cx.span().span_context().clone();
        let child = SpanContext::new(
            parent.trace_id(),
            SpanId::from(7),
            TraceFlags::SAMPLED,
            false,
            parent.trace_state().clone(),
        );
        let child_cx = cx.with_remote_span_context(child);
        assert_eq!(sent(&child_cx)[1].1, "foo@@bar=1");
        let other = SpanContext::new(
            TraceId::from(9),
            SpanId::from(7),
            TraceFlags::SAMPLED,
            false,
            TraceState::NONE,
        );
        assert_eq!(sent(&cx.with_remote_span_context(other)).len(), 1);
    }

    #[test]
    fn random_flag_is_sent_on_and_reserved_flags_are_not() {
        let tp = b"00-12345678901234567890123456789012-1234567890123456-fe";
        let cx = extract([&tp[..]], []).apply_to(&Context::new());
        assert_eq!(cx.span().span_context().trace_flags().to_u8(), 0x02);
        assert!(sent(&cx)[0].1.ends_with("-02"));
    }

    #[test]
    fn header_names_match_in_any_case_and_wrong_names_do_not() {
        for name in ["traceparent", "TraceParent", "TrAcEpArEnT", "TRACEPARENT"] {
            assert!(
                extract_from_pairs([(name, TP)]).span_context().is_some(),
                "{name}"
            );
        }
        for name in ["trace-parent", "trace.parent"] {
            assert_eq!(extract_from_pairs([(name, TP)]), Incoming::Absent, "{name}");
        }
        let sc = extract_from_pairs([("traceparent", TP), ("TrAcEsTaTe", &b"foo=1"[..])])
            .into_span_context()
            .unwrap();
        assert_eq!(sc.trace_state().get("foo"), Some("1"));
        let sc = extract_from_pairs([("traceparent", TP), ("trace-state", &b"foo=1"[..])])
            .into_span_context()
            .unwrap();
        assert_eq!(sc.trace_state().get("foo"), None);
    }
}
