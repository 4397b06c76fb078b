//! [`ResponseFuture`] of the trace layer, and what the layer does around the service:
//! the span started (its parent from the stored trace and the caller's headers), the
//! request served in its context, the span handed to the response body to end. The
//! state machine is shared with the `InstrumentLayer` ([`around`](crate::around)).
//! No box.

use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::task::{Context as TaskContext, Poll};

use http::request::Parts;
use http::{Extensions, Request, Response};
use opentelemetry::Context;
use pin_project::pin_project;
use tower_http::classify::ClassifyResponse;

use super::layer::TraceConfig;
use super::span::{self, RefusedByCheck, SpanEnd};
use crate::around::{Around, Ended, Filtered, Lookup, Served, Staged};
use crate::body::{Outcome, ResponseBody};
use crate::request::{Filter, RequestFacts, Route};

/// The response future of [`Trace`](super::Trace).
///
/// Dropped before the response is ready, it ends the span as cancelled
/// (`instrument.cancelled=true`).
#[pin_project]
pub struct ResponseFuture<S, Fut, L, B, C, R: Route, F> {
    #[pin]
    pub(crate) inner: Staged<S, Fut, L, B, C, TraceConfig<R, F>>,
}

impl<S, Fut, L, B, C, R: Route, F> fmt::Debug for ResponseFuture<S, Fut, L, B, C, R, F> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ResponseFuture")
            .field("state", &self.inner.state())
            .finish()
    }
}

impl<S, Fut, L, B, RB, E, C, R, F> Future for ResponseFuture<S, Fut, L, B, C, R, F>
where
    S: tower::Service<Request<B>, Future = Fut, Response = Response<RB>, Error = E>,
    Fut: Future<Output = Result<Response<RB>, E>>,
    E: fmt::Display + 'static,
    L: Future<Output = Lookup>,
    RB: http_body::Body,
    C: ClassifyResponse,
    C::FailureClass: fmt::Display,
    R: Route,
{
    type Output = Result<Response<ResponseBody<RB, SpanEnd, C::ClassifyEos>>, E>;

    fn poll(self: Pin<&mut Self>, task: &mut TaskContext<'_>) -> Poll<Self::Output> {
        self.project().inner.poll(task)
    }
}

impl<R, F: Filter> Filtered for TraceConfig<R, F> {
    fn skips(&self, request: &Parts) -> bool {
        self.filter.skip(request)
    }
}

impl<R: Route, F> Around for TraceConfig<R, F> {
    type Ended = SpanEnd;

    fn serve<S, B>(
        &self,
        service: &mut S,
        mut parts: Parts,
        body: B,
        found: Option<Lookup>,
    ) -> Served<S::Future, SpanEnd>
    where
        S: tower::Service<Request<B>>,
    {
        let (started, stored, protocol) = {
            let facts = RequestFacts::read(&parts, &self.reading);
            let (started, stored) = span::start(&self.span, &facts, &parts, found);
            (started, stored, facts.protocol)
        };
        if let Some(stored) = stored {
            parts.extensions.insert(stored);
        }
        let future = {
            let _attached = started.cx.clone().attach();
            service.call(Request::from_parts(parts, body))
        };
        Served::Called {
            future,
            ended: SpanEnd::new(std::sync::Arc::clone(&self.span), started),
            protocol,
        }
    }

    fn cancelled_in_lookup(&self, parts: &Parts) {
        let facts = RequestFacts::read(parts, &self.reading);
        let (started, _) = span::start(&self.span, &facts, parts, None);
        span::end_started(&self.span, &started, &Outcome::Cancelled);
    }
}

impl Ended for SpanEnd {
    fn context(&self) -> &Context {
        &self.started.cx
    }

    fn track<B>(&self, response: &mut Response<B>) {
        span::track(&self.config, &self.started.cx, response);
    }

    /// A response the tenant check made (a tenant layer below) recognises nothing.
    fn answered(self, extensions: &Extensions) -> Self {
        let refused = extensions.get::<RefusedByCheck>().is_some();
        self.answered_by_check(refused)
    }
}
