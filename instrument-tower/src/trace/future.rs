//! [`ResponseFuture`] of the trace layer: looks the stored trace up, starts the span,
//! serves the request in its context, and hands the span to the response body to end.
//! No box.

use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{ready, Context as TaskContext, Poll};

use http::{Request, Response};
use tower_http::classify::ClassifyResponse;

use super::layer::TraceConfig;
use super::span::{self, RefusedByCheck, SpanConfig, SpanEnd, Started};
use crate::body::{Head, Outcome, ResponseBody};
use crate::classify::Verdict;
use crate::protocol::Protocol;
use crate::request::{RequestFacts, Route};
use crate::source::{SourceError, StoredTrace};
use pin_project::{pin_project, pinned_drop};

/// The response future of [`Trace`](super::Trace).
///
/// Dropped before the response is ready, it ends the span as cancelled
/// (`instrument.cancelled=true`).
#[pin_project(PinnedDrop)]
pub struct ResponseFuture<S, Fut, L, B, C, R: Route, F> {
    #[pin]
    state: State<S, Fut, L, B, C, R, F>,
}

// The request waiting in `Lookup` makes that variant large; boxing it would cost an
// allocation per lookup, while the future is pinned once and never moved.
#[allow(clippy::large_enum_variant)]
#[pin_project(project = StateProj, project_replace = StateOwn)]
enum State<S, Fut, L, B, C, R, F> {
    /// Waiting for the trace source; the span starts when it answers.
    Lookup {
        config: Arc<TraceConfig<R, F>>,
        #[pin]
        lookup: L,
        service: S,
        request: Request<B>,
        classifier: C,
    },
    /// The inner service's future, polled in the span's context.
    Serve {
        /// Handed to the response body, which ends the span.
        span: Arc<SpanConfig>,
        #[pin]
        future: Fut,
        started: Started,
        protocol: Protocol,
        classifier: C,
    },
    /// A request the filter skips: the inner future as it is.
    Passed {
        #[pin]
        future: Fut,
    },
    Done,
}

impl<S, Fut, L, B, C, R: Route, F> fmt::Debug for ResponseFuture<S, Fut, L, B, C, R, F> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let state = match &self.state {
            State::Lookup { .. } => "lookup",
            State::Serve { .. } => "serve",
            State::Passed { .. } => "passed",
            State::Done => "done",
        };
        f.debug_struct("ResponseFuture")
            .field("state", &state)
            .finish()
    }
}

impl<S, Fut, L, B, C, R: Route, F> ResponseFuture<S, Fut, L, B, C, R, F> {
    pub(crate) fn serve(
        span: Arc<SpanConfig>,
        future: Fut,
        started: Started,
        classifier: C,
        protocol: Protocol,
    ) -> Self {
        Self {
            state: State::Serve {
                span,
                future,
                started,
                protocol,
                classifier,
            },
        }
    }

    pub(crate) fn lookup(
        config: Arc<TraceConfig<R, F>>,
        lookup: L,
        service: S,
        request: Request<B>,
        classifier: C,
    ) -> Self {
        Self {
            state: State::Lookup {
                config,
                lookup,
                service,
                request,
                classifier,
            },
        }
    }

    pub(crate) fn passed(future: Fut) -> Self {
        Self {
            state: State::Passed { future },
        }
    }
}

impl<S, Fut, L, B, RB, E, C, R, F> Future for ResponseFuture<S, Fut, L, B, C, R, F>
where
    S: tower::Service<Request<B>, Future = Fut, Response = Response<RB>, Error = E>,
    Fut: Future<Output = Result<Response<RB>, E>>,
    E: fmt::Display + 'static,
    L: Future<Output = Result<Option<StoredTrace>, SourceError>>,
    RB: http_body::Body,
    C: ClassifyResponse,
    C::FailureClass: fmt::Display,
    R: Route,
{
    type Output = Result<Response<ResponseBody<RB, SpanEnd, C::ClassifyEos>>, E>;

    fn poll(self: Pin<&mut Self>, task: &mut TaskContext<'_>) -> Poll<Self::Output> {
        let mut this = self.project();
        loop {
            match this.state.as_mut().project() {
                StateProj::Passed { future } => {
                    let response = ready!(future.poll(task))?;
                    this.state.set(State::Done);
                    return Poll::Ready(Ok(ResponseBody::unobserved(response)));
                }
                StateProj::Lookup { lookup, .. } => {
                    let found = ready!(lookup.poll(task));
                    let StateOwn::Lookup {
                        config,
                        mut service,
                        request,
                        classifier,
                        ..
                    } = this.state.as_mut().project_replace(State::Done)
                    else {
                        return Poll::Pending;
                    };
                    let (mut parts, body) = request.into_parts();
                    let (started, stored, protocol) = {
                        let facts = RequestFacts::read(&parts, &config.reading);
                        let (started, stored) =
                            span::start(&config.span, &facts, &parts, Some(found));
                        (started, stored, facts.protocol)
                    };
                    if let Some(stored) = stored {
                        parts.extensions.insert(stored);
                    }
                    let future = {
                        let _attached = started.cx.clone().attach();
                        service.call(Request::from_parts(parts, body))
                    };
                    this.state.set(State::Serve {
                        span: Arc::clone(&config.span),
                        future,
                        started,
                        protocol,
                        classifier,
                    });
                }
                StateProj::Serve {
                    future, started, ..
                } => {
                    let result = {
                        let _attached = started.cx.clone().attach();
                        ready!(future.poll(task))
                    };
                    let StateOwn::Serve {
                        span: config,
                        started,
                        protocol,
                        classifier,
                        ..
                    } = this.state.as_mut().project_replace(State::Done)
                    else {
                        return Poll::Pending;
                    };
                    return Poll::Ready(match result {
                        Ok(mut response) => {
                            span::track(&config, &started.cx, &mut response);
                            let head = Head::of(protocol, &response);
                            let verdict = Verdict::of(classifier, &response);
                            let refused = response.extensions().get::<RefusedByCheck>().is_some();
                            let end = SpanEnd::new(config, started).answered_by_check(refused);
                            Ok(ResponseBody::wrap(response, head, verdict, end))
                        }
                        Err(error) => {
                            let failure = classifier.classify_error(&error).to_string();
                            span::end_started(&config, &started, &Outcome::Failed(failure));
                            Err(error)
                        }
                    });
                }
                // Polled after completion: stay pending rather than panic.
                StateProj::Done => return Poll::Pending,
            }
        }
    }
}

#[pinned_drop]
impl<S, Fut, L, B, C, R: Route, F> PinnedDrop for ResponseFuture<S, Fut, L, B, C, R, F> {
    fn drop(self: Pin<&mut Self>) {
        match self.project().state.project_replace(State::Done) {
            StateOwn::Serve {
                span: config,
                started,
                ..
            } => {
                span::end_started(&config, &started, &Outcome::Cancelled);
            }
            StateOwn::Lookup {
                config, request, ..
            } => {
                // Dropped while the source was asked: the request still gets its span.
                let (parts, _) = request.into_parts();
                let facts = RequestFacts::read(&parts, &config.reading);
                let (started, _) = span::start(&config.span, &facts, &parts, None);
                span::end_started(&config.span, &started, &Outcome::Cancelled);
            }
            StateOwn::Passed { .. } | StateOwn::Done => {}
        }
    }
}
