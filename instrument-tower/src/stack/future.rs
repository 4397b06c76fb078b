//! [`ResponseFuture`] of the stack: the stored trace looked up if it must be waited for,
//! the inner service's future polled in the span's context, the span and the
//! measurement handed to the response body. No box.

use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{ready, Context as TaskContext, Poll};

use bytes::Bytes;
use http::{Request, Response};
use pin_project::{pin_project, pinned_drop};
use tower_http::classify::ClassifyResponse;

use super::layer::{StackConfig, Stages};
use super::service::serve;
use super::Finish;
use crate::body::{Head, Observe as _, Outcome, ResponseBody};
use crate::classify::Verdict;
use crate::metrics::measure::Metered;
use crate::protocol::Protocol;
use crate::request::{RequestFacts, Route};
use crate::source::{SourceError, StoredTrace};
use crate::trace::span::{self, Started};

/// What the stages made of a request.
#[derive(Debug)]
pub(crate) enum Served<Fut> {
    /// Admitted: the service's future.
    Called {
        future: Fut,
        started: Started,
        protocol: Protocol,
        metered: Metered,
    },
    /// Refused by the tenant stage: the refusal and the text of its body.
    Refused {
        response: Response<Bytes>,
        started: Started,
        protocol: Protocol,
        metered: Metered,
    },
}

/// The response future of [`Instrument`](super::Instrument). Dropped before the
/// response, it ends the span and the measurement as cancelled.
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
    /// Waiting for the trace source; the stages run when it answers.
    Lookup {
        config: Arc<StackConfig<R, F>>,
        #[pin]
        lookup: L,
        service: S,
        request: Request<B>,
        classifier: C,
    },
    /// The inner service's future, polled in the span's context.
    Called {
        stages: Arc<Stages>,
        #[pin]
        future: Fut,
        started: Started,
        protocol: Protocol,
        metered: Metered,
        classifier: C,
    },
    /// Refused: the response is ready.
    Refused {
        stages: Arc<Stages>,
        response: Response<Bytes>,
        started: Started,
        protocol: Protocol,
        metered: Metered,
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
    pub(crate) fn served(stages: Arc<Stages>, served: Served<Fut>, classifier: C) -> Self {
        Self {
            state: State::from_served(stages, served, classifier),
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

impl<S, Fut, L, B, C, R, F> State<S, Fut, L, B, C, R, F> {
    fn from_served(stages: Arc<Stages>, served: Served<Fut>, classifier: C) -> Self {
        match served {
            Served::Called {
                future,
                started,
                protocol,
                metered,
            } => Self::Called {
                stages,
                future,
                started,
                protocol,
                metered,
                classifier,
            },
            Served::Refused {
                response,
                started,
                protocol,
                metered,
            } => Self::Refused {
                stages,
                response,
                started,
                protocol,
                metered,
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
                    let served = serve(&config, &mut service, request, Some(found));
                    let stages = Arc::clone(&config.stages);
                    this.state
                        .set(State::from_served(stages, served, classifier));
                }
                StateProj::Refused { .. } => {
                    let StateOwn::Refused {
                        stages,
                        response,
                        started,
                        protocol,
                        metered,
                        classifier,
                    } = this.state.as_mut().project_replace(State::Done)
                    else {
                        return Poll::Pending;
                    };
                    return Poll::Ready(Ok(refused(
                        stages, response, started, protocol, metered, classifier,
                    )));
                }
                StateProj::Called {
                    future, started, ..
                } => {
                    let result = {
                        let _attached = started.cx.clone().attach();
                        ready!(future.poll(task))
                    };
                    let StateOwn::Called {
                        stages,
                        started,
                        protocol,
                        metered,
                        classifier,
                        ..
                    } = this.state.as_mut().project_replace(State::Done)
                    else {
                        return Poll::Pending;
                    };
                    return Poll::Ready(match result {
                        Ok(response) => Ok(respond(
                            stages, response, started, protocol, metered, classifier,
                        )),
                        Err(error) => {
                            let outcome =
                                Outcome::Failed(classifier.classify_error(&error).to_string());
                            Finish {
                                stages,
                                started,
                                metered,
                                refused: false,
                            }
                            .finish(&outcome);
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

/// A refusal, in the body type of the service's responses, the span and the
/// measurement ended with it.
fn refused<RB, C>(
    stages: Arc<Stages>,
    mut response: Response<Bytes>,
    started: Started,
    protocol: Protocol,
    metered: Metered,
    classifier: C,
) -> Response<ResponseBody<RB, Finish, C::ClassifyEos>>
where
    C: ClassifyResponse,
    C::FailureClass: fmt::Display,
{
    span::track(&stages.span, &started.cx, &mut response);
    let head = Head::of(protocol, &response);
    let verdict = Verdict::of(classifier, &response);
    let finish = Finish {
        stages,
        started,
        metered,
        refused: true,
    };
    ResponseBody::written(response, head, verdict, finish)
}

/// The tracking header on `response`, and its body watched until it ends.
fn respond<RB, C>(
    stages: Arc<Stages>,
    mut response: Response<RB>,
    started: Started,
    protocol: Protocol,
    metered: Metered,
    classifier: C,
) -> Response<ResponseBody<RB, Finish, C::ClassifyEos>>
where
    RB: http_body::Body,
    C: ClassifyResponse,
    C::FailureClass: fmt::Display,
{
    span::track(&stages.span, &started.cx, &mut response);
    let head = Head::of(protocol, &response);
    let verdict = Verdict::of(classifier, &response);
    let finish = Finish {
        stages,
        started,
        metered,
        refused: false,
    };
    ResponseBody::wrap(response, head, verdict, finish)
}

// The type is pin-project's projection of eight parameters.
#[allow(clippy::type_complexity)]
#[pinned_drop]
impl<S, Fut, L, B, C, R: Route, F> PinnedDrop for ResponseFuture<S, Fut, L, B, C, R, F> {
    fn drop(self: Pin<&mut Self>) {
        match self.project().state.project_replace(State::Done) {
            StateOwn::Called {
                stages,
                started,
                metered,
                ..
            } => Finish {
                stages,
                started,
                metered,
                refused: false,
            }
            .finish(&Outcome::Cancelled),
            StateOwn::Refused {
                stages, started, ..
            } => {
                span::end_started(&stages.span, &started, &Outcome::Cancelled);
            }
            StateOwn::Lookup {
                config, request, ..
            } => {
                // Dropped while the source was asked: the request still gets its span.
                let (parts, _) = request.into_parts();
                let facts = RequestFacts::read(&parts, &config.reading);
                let span = &config.stages.span;
                let (started, _) = span::start(span, &facts, &parts, None);
                span::end_started(span, &started, &Outcome::Cancelled);
            }
            StateOwn::Passed { .. } | StateOwn::Done => {}
        }
    }
}
