//! What the trace layer and the [`InstrumentLayer`](crate::stack::InstrumentLayer)
//! share: a request's way through a layer that starts a span around the wrapped
//! service. The stored trace is looked up (waited for when the source must be), the
//! layer's stages run over the request ([`Around::serve`]), the service's future is
//! polled in the request's context, and the response is handed to its body with the
//! [`Ended`] that finishes the request when the body ends. One state machine, no box;
//! each layer's public `ResponseFuture` wraps it.

use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{ready, Context as TaskContext, Poll};

use bytes::Bytes;
use http::request::Parts;
use http::{Extensions, Request, Response};
use opentelemetry::Context;
use pin_project::{pin_project, pinned_drop};
use tower_http::classify::{ClassifyResponse, MakeClassifier};

use crate::body::{Head, Observe, Outcome, ResponseBody};
use crate::classify::Verdict;
use crate::protocol::Protocol;
use crate::source::{Found, SourceError, StoredTrace, TraceSource};

/// What the trace source answered for a request.
pub(crate) type Lookup = Result<Option<StoredTrace>, SourceError>;

/// A layer's stages around the wrapped service (implemented by its shared
/// configuration).
pub(crate) trait Around {
    /// What finishes a request when its response body ends.
    type Ended: Ended;

    /// The stages over the request of `parts` and `body`, `found` the source's answer
    /// (`None`: the request is about no stored trace): the service called in the
    /// request's context, or the layer's own answer.
    fn serve<S, B>(
        &self,
        service: &mut S,
        parts: Parts,
        body: B,
        found: Option<Lookup>,
    ) -> Served<S::Future, Self::Ended>
    where
        S: tower::Service<Request<B>>;

    /// The request of `parts` was dropped while its stored trace was looked up: it
    /// still gets its span, cancelled.
    fn cancelled_in_lookup(&self, parts: &Parts);
}

/// The layer's filter (apart from [`Around`], so that the response futures' types
/// need no bound on it).
pub(crate) trait Filtered {
    /// Whether the layer leaves `request` alone.
    fn skips(&self, request: &Parts) -> bool;
}

/// How a request is finished once it has started.
pub(crate) trait Ended: Observe {
    /// The request's context: the service's future is polled in it.
    fn context(&self) -> &Context;

    /// The tracking header on `response`.
    fn track<B>(&self, response: &mut Response<B>);

    /// The response, its `extensions` told (a trace layer learns there that a tenant
    /// layer below answered).
    fn answered(self, extensions: &Extensions) -> Self;
}

/// What the stages made of a request.
#[derive(Debug)]
pub(crate) enum Served<Fut, E> {
    /// Admitted: the service's future.
    Called {
        future: Fut,
        ended: E,
        protocol: Protocol,
    },
    /// Answered by the layer itself (a tenant refusal): the response and its body's
    /// text.
    Answered {
        response: Response<Bytes>,
        ended: E,
        protocol: Protocol,
    },
}

/// A request through a layer [`Around`] the service `S` (its future `Fut`), the trace
/// lookup `L`, the request body `B`, the classifier `C`.
#[pin_project(PinnedDrop)]
pub(crate) struct Staged<S, Fut, L, B, C, K: Around> {
    #[pin]
    state: State<S, Fut, L, B, C, K>,
}

// The request waiting in `Lookup` makes that variant large; boxing it would cost an
// allocation per lookup, while the future is pinned once and never moved.
#[allow(clippy::large_enum_variant)]
#[pin_project(project = StateProj, project_replace = StateOwn)]
enum State<S, Fut, L, B, C, K: Around> {
    /// Waiting for the trace source; the stages run when it answers.
    Lookup {
        config: Arc<K>,
        #[pin]
        lookup: L,
        service: S,
        request: Request<B>,
        classifier: C,
    },
    /// The inner service's future, polled in the request's context. The rest is taken
    /// out when the future is ready (`None` only then): taking it moves its few dozen
    /// bytes, where replacing the state would move the whole state, future included.
    Called {
        #[pin]
        future: Fut,
        rest: Option<Rest<K::Ended, C>>,
    },
    /// Answered by the layer: the response is ready.
    Answered {
        response: Response<Bytes>,
        rest: Rest<K::Ended, C>,
    },
    /// A request the filter skips: the inner future as it is.
    Passed {
        #[pin]
        future: Fut,
    },
    Done,
}

/// What finishes a started request, beside its response or future.
struct Rest<E, C> {
    ended: E,
    protocol: Protocol,
    classifier: C,
}

/// `Service::call` of a layer around `service`: the filter, the stored trace's lookup
/// (ready, or waited for in the future), the stages.
pub(crate) fn call<K, S, Src, M, B>(
    config: &Arc<K>,
    source: &Src,
    service: &mut S,
    classifier: &M,
    request: Request<B>,
) -> Staged<S, S::Future, Src::Lookup, B, M::Classifier, K>
where
    K: Around + Filtered,
    S: tower::Service<Request<B>> + Clone,
    Src: TraceSource,
    M: MakeClassifier,
{
    // Made before the request is taken apart, so that it is not put together again for
    // it (a skipped request's classifier goes unused).
    let classifier = classifier.make_classifier(&request);
    let (parts, body) = request.into_parts();
    if config.skips(&parts) {
        let future = service.call(Request::from_parts(parts, body));
        return Staged {
            state: State::Passed { future },
        };
    }
    let found = match source.key(&parts).map(|key| source.find(key)) {
        None => None,
        Some(Found::Ready(found)) => Some(found),
        Some(Found::Pending(lookup)) => {
            // The service polled ready goes with the future; this one is the clone.
            let ready = service.clone();
            let service = std::mem::replace(service, ready);
            return Staged {
                state: State::Lookup {
                    config: Arc::clone(config),
                    lookup,
                    service,
                    request: Request::from_parts(parts, body),
                    classifier,
                },
            };
        }
    };
    let served = config.serve(service, parts, body, found);
    Staged {
        state: State::from_served(served, classifier),
    }
}

impl<S, Fut, L, B, C, K: Around> State<S, Fut, L, B, C, K> {
    fn from_served(served: Served<Fut, K::Ended>, classifier: C) -> Self {
        match served {
            Served::Called {
                future,
                ended,
                protocol,
            } => Self::Called {
                future,
                rest: Some(Rest {
                    ended,
                    protocol,
                    classifier,
                }),
            },
            Served::Answered {
                response,
                ended,
                protocol,
            } => Self::Answered {
                response,
                rest: Rest {
                    ended,
                    protocol,
                    classifier,
                },
            },
        }
    }
}

impl<S, Fut, L, B, C, K: Around> Staged<S, Fut, L, B, C, K> {
    /// The state's name, for `Debug`.
    pub(crate) fn state(&self) -> &'static str {
        match &self.state {
            State::Lookup { .. } => "lookup",
            State::Called { .. } => "called",
            State::Answered { .. } => "answered",
            State::Passed { .. } => "passed",
            State::Done => "done",
        }
    }
}

impl<S, Fut, L, B, RB, E, C, K> Future for Staged<S, Fut, L, B, C, K>
where
    S: tower::Service<Request<B>, Future = Fut, Response = Response<RB>, Error = E>,
    Fut: Future<Output = Result<Response<RB>, E>>,
    E: fmt::Display + 'static,
    L: Future<Output = Lookup>,
    RB: http_body::Body,
    C: ClassifyResponse,
    C::FailureClass: fmt::Display,
    K: Around,
{
    type Output = Result<Response<ResponseBody<RB, K::Ended, C::ClassifyEos>>, E>;

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
                    let (parts, body) = request.into_parts();
                    let served = config.serve(&mut service, parts, body, Some(found));
                    this.state.set(State::from_served(served, classifier));
                }
                StateProj::Answered { .. } => {
                    // A refusal: rare, so the whole state is moved out.
                    let StateOwn::Answered {
                        mut response,
                        rest:
                            Rest {
                                ended,
                                protocol,
                                classifier,
                            },
                    } = this.state.as_mut().project_replace(State::Done)
                    else {
                        return Poll::Pending;
                    };
                    ended.track(&mut response);
                    let head = Head::of(protocol, &response);
                    let verdict = Verdict::of(classifier, &response);
                    return Poll::Ready(Ok(ResponseBody::written(response, head, verdict, ended)));
                }
                StateProj::Called { future, rest } => {
                    let Some(context) = rest.as_ref().map(|rest| rest.ended.context()) else {
                        return Poll::Pending;
                    };
                    let result = {
                        let _attached = context.clone().attach();
                        ready!(future.poll(task))
                    };
                    let Some(Rest {
                        ended,
                        protocol,
                        classifier,
                    }) = rest.take()
                    else {
                        return Poll::Pending;
                    };
                    this.state.set(State::Done);
                    return Poll::Ready(match result {
                        Ok(mut response) => {
                            ended.track(&mut response);
                            let head = Head::of(protocol, &response);
                            let verdict = Verdict::of(classifier, &response);
                            let ended = ended.answered(response.extensions());
                            Ok(ResponseBody::wrap(response, head, verdict, ended))
                        }
                        Err(error) => {
                            let failure = classifier.classify_error(&error).to_string();
                            ended.finish(&Outcome::Failed(failure));
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
impl<S, Fut, L, B, C, K: Around> PinnedDrop for Staged<S, Fut, L, B, C, K> {
    fn drop(self: Pin<&mut Self>) {
        let mut state = self.project().state;
        // The common cases move nothing: a finished request's state is `Done`, a called
        // one gives up only its rest (its future, like a passed one's, drops in place).
        match state.as_mut().project() {
            StateProj::Called { rest, .. } => {
                if let Some(rest) = rest.take() {
                    rest.ended.finish(&Outcome::Cancelled);
                }
                return;
            }
            StateProj::Passed { .. } | StateProj::Done => return,
            StateProj::Answered { .. } | StateProj::Lookup { .. } => {}
        }
        match state.project_replace(State::Done) {
            StateOwn::Answered { rest, .. } => rest.ended.finish(&Outcome::Cancelled),
            StateOwn::Lookup {
                config, request, ..
            } => {
                let (parts, _) = request.into_parts();
                config.cancelled_in_lookup(&parts);
            }
            StateOwn::Called { .. } | StateOwn::Passed { .. } | StateOwn::Done => {}
        }
    }
}
