//! [`ResponseFuture`] of the stack: the stored trace looked up if it must be waited for,
//! the inner service's future polled in the span's context, the span and the
//! measurement handed to the response body. No box.

use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{ready, Context as TaskContext, Poll};

use http::{Request, Response};
use pin_project::{pin_project, pinned_drop};
use tower_http::classify::ClassifyResponse;

use super::layer::StackConfig;
use super::service::serve;
use super::Finish;
use crate::body::{Head, Observe as _, Outcome, ResponseBody};
use crate::classify::Verdict;
use crate::metrics::Measure;
use crate::protocol::Protocol;
use crate::request::{RequestFacts, Route};
use crate::source::{SourceError, StoredTrace};
use crate::trace::span::{self, SpanEnd, Started};

/// What the stages made of a request.
#[derive(Debug)]
pub(crate) enum Served<Fut> {
    /// Admitted: the service's future.
    Called {
        future: Fut,
        started: Started,
        protocol: Protocol,
        measure: Measure,
    },
    /// Refused by the tenant stage: the refusal (its body is not sent).
    Refused {
        response: Response<()>,
        started: Started,
        protocol: Protocol,
    },
}

/// The response future of [`Instrument`](super::Instrument). Dropped before the
/// response, it ends the span and the measurement as cancelled.
#[pin_project(PinnedDrop)]
pub struct ResponseFuture<S, Fut, L, B, C, R: Route, F> {
    config: Option<Arc<StackConfig<R, F>>>,
    #[pin]
    state: State<S, Fut, L, B, C>,
}

// The request waiting in `Lookup` makes that variant large; boxing it would cost an
// allocation per request, while the future is pinned once and never moved.
#[allow(clippy::large_enum_variant)]
#[pin_project(project = StateProj, project_replace = StateOwn)]
enum State<S, Fut, L, B, C> {
    /// Waiting for the trace source; the stages run when it answers.
    Lookup {
        #[pin]
        lookup: L,
        service: S,
        request: Request<B>,
        classifier: C,
    },
    /// The inner service's future, polled in the span's context.
    Called {
        #[pin]
        future: Fut,
        started: Started,
        protocol: Protocol,
        measure: Measure,
        classifier: C,
    },
    /// Refused: the response is ready.
    Refused {
        response: Response<()>,
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
            State::Called { .. } => "called",
            State::Refused { .. } => "refused",
            State::Passed { .. } => "passed",
            State::Done => "done",
        };
        f.debug_struct("ResponseFuture")
            .field("state", &state)
            .finish()
    }
}

impl<S, Fut, L, B, C, R: Route, F> ResponseFuture<S, Fut, L, B, C, R, F> {
    pub(crate) fn served(
        config: Arc<StackConfig<R, F>>,
        served: Served<Fut>,
        classifier: C,
    ) -> Self {
        Self {
            config: Some(config),
            state: State::from_served(served, classifier),
        }
    }

    pub(crate) fn lookup(
        config: Arc<StackConfig<R, F>>,
        lookup: L,
        service: S,
        request: Request<B>,
        classifier: C,
    ) -> Self {
        Self {
            config: Some(config),
            state: State::Lookup {
                lookup,
                service,
                request,
                classifier,
            },
        }
    }

    pub(crate) fn passed(future: Fut) -> Self {
        Self {
            config: None,
            state: State::Passed { future },
        }
    }
}

impl<S, Fut, L, B, C> State<S, Fut, L, B, C> {
    fn from_served(served: Served<Fut>, classifier: C) -> Self {
        match served {
            Served::Called {
                future,
                started,
                protocol,
                measure,
            } => Self::Called {
                future,
                started,
                protocol,
                measure,
                classifier,
            },
            Served::Refused {
                response,
                started,
                protocol,
            } => Self::Refused {
                response,
                started,
                protocol,
                classifier,
            },
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
    type Output = Result<Response<ResponseBody<RB, Finish, C::ClassifyEos>>, E>;

    fn poll(self: Pin<&mut Self>, task: &mut TaskContext<'_>) -> Poll<Self::Output> {
        let mut this = self.project();
        loop {
            let config = this.config.as_ref();
            match this.state.as_mut().project() {
                StateProj::Passed { future } => {
                    let response = ready!(future.poll(task))?;
                    this.state.set(State::Done);
                    return Poll::Ready(Ok(ResponseBody::unobserved(response)));
                }
                StateProj::Lookup { lookup, .. } => {
                    let found = ready!(lookup.poll(task));
                    let (
                        Some(config),
                        StateOwn::Lookup {
                            mut service,
                            request,
                            classifier,
                            ..
                        },
                    ) = (config, this.state.as_mut().project_replace(State::Done))
                    else {
                        return Poll::Pending;
                    };
                    let served = serve(config, &mut service, request, Some(found));
                    this.state.set(State::from_served(served, classifier));
                }
                StateProj::Refused { .. } => {
                    let (
                        Some(config),
                        StateOwn::Refused {
                            response,
                            started,
                            protocol,
                            classifier,
                        },
                    ) = (config, this.state.as_mut().project_replace(State::Done))
                    else {
                        return Poll::Pending;
                    };
                    return Poll::Ready(Ok(refused(
                        config, response, started, protocol, classifier,
                    )));
                }
                StateProj::Called {
                    future, started, ..
                } => {
                    let result = {
                        let _attached = started.cx.clone().attach();
                        ready!(future.poll(task))
                    };
                    let (
                        Some(config),
                        StateOwn::Called {
                            started,
                            protocol,
                            measure,
                            classifier,
                            ..
                        },
                    ) = (config, this.state.as_mut().project_replace(State::Done))
                    else {
                        return Poll::Pending;
                    };
                    return Poll::Ready(match result {
                        Ok(response) => Ok(respond(
                            config, response, started, protocol, measure, classifier,
                        )),
                        Err(error) => {
                            let outcome =
                                Outcome::Failed(classifier.classify_error(&error).to_string());
                            measure.finish(&outcome);
                            span::end_started(&config.span, &started, &outcome);
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

/// A refusal, in the body type of the service's responses, the span ended with it.
fn refused<RB, C, R, F>(
    config: &StackConfig<R, F>,
    mut response: Response<()>,
    started: Started,
    protocol: Protocol,
    classifier: C,
) -> Response<ResponseBody<RB, Finish, C::ClassifyEos>>
where
    C: ClassifyResponse,
    C::FailureClass: fmt::Display,
{
    span::track(&config.span, &started.cx, &mut response);
    let head = Head::of(protocol, &response);
    let verdict = Verdict::of(classifier, &response);
    let finish = Finish {
        span: SpanEnd::new(&config.span, started).answered_by_check(true),
        measure: None,
    };
    ResponseBody::written(response, head, verdict, finish)
}

/// The tracking header on `response`, and its body watched until it ends.
fn respond<RB, C, R, F>(
    config: &StackConfig<R, F>,
    mut response: Response<RB>,
    started: Started,
    protocol: Protocol,
    measure: Measure,
    classifier: C,
) -> Response<ResponseBody<RB, Finish, C::ClassifyEos>>
where
    RB: http_body::Body,
    C: ClassifyResponse,
    C::FailureClass: fmt::Display,
{
    span::track(&config.span, &started.cx, &mut response);
    let head = Head::of(protocol, &response);
    let verdict = Verdict::of(classifier, &response);
    let finish = Finish {
        span: SpanEnd::new(&config.span, started),
        measure: Some(measure),
    };
    ResponseBody::wrap(response, head, verdict, finish)
}

// The type is pin-project's projection of eight parameters.
#[allow(clippy::type_complexity)]
#[pinned_drop]
impl<S, Fut, L, B, C, R: Route, F> PinnedDrop for ResponseFuture<S, Fut, L, B, C, R, F> {
    fn drop(self: Pin<&mut Self>) {
        let this = self.project();
        let Some(config) = this.config.as_ref() else {
            return;
        };
        match this.state.project_replace(State::Done) {
            StateOwn::Called {
                started, measure, ..
            } => {
                measure.finish(&Outcome::Cancelled);
                span::end_started(&config.span, &started, &Outcome::Cancelled);
            }
            StateOwn::Refused { started, .. } => {
                span::end_started(&config.span, &started, &Outcome::Cancelled);
            }
            StateOwn::Lookup { request, .. } => {
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
