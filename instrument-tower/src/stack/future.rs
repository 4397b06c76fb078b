//! [`ResponseFuture`] of the stack, and its three stages over one read of the request:
//! the span started, the tenant admitted or refused, the measurement started, the
//! service called in the span's context; the span and the measurement handed to the
//! response body. The state machine is shared with the trace layer
//! ([`around`](crate::around)). No box.

use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context as TaskContext, Poll};

use bytes::Bytes;
use http::request::Parts;
use http::{Extensions, Request, Response};
use opentelemetry::Context;
use pin_project::pin_project;
use tower_http::classify::ClassifyResponse;

use super::layer::StackConfig;
use super::Finish;
use crate::around::{Around, Ended, Filtered, Lookup, Served, Staged};
use crate::body::{Outcome, ResponseBody};
use crate::messages::Messages;
use crate::metrics::measure::{Metered, UNKNOWN};
use crate::protocol::Protocol;
use crate::request::{Filter, RequestFacts, Route};
use crate::tenant::check::admit;
use crate::trace::span;
use instrument_core::tenant::TenantId;

/// The response future of [`Instrument`](super::Instrument). Dropped before the
/// response, it ends the span and the measurement as cancelled.
#[pin_project]
pub struct ResponseFuture<S, Fut, L, B, C, R: Route, F> {
    #[pin]
    pub(crate) inner: Staged<S, Fut, L, B, C, StackConfig<R, F>>,
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
    type Output = Result<Response<ResponseBody<RB, Finish, C::ClassifyEos>>, E>;

    fn poll(self: Pin<&mut Self>, task: &mut TaskContext<'_>) -> Poll<Self::Output> {
        self.project().inner.poll(task)
    }
}

impl<R, F: Filter> Filtered for StackConfig<R, F> {
    fn skips(&self, request: &Parts) -> bool {
        self.filter.skip(request)
    }
}

impl<R: Route, F> Around for StackConfig<R, F> {
    type Ended = Finish;

    /// The three stages over one read of the request: the span started, the tenant
    /// admitted or refused, the measurement started, and the service called in the
    /// span's context.
    fn serve<S, B>(
        &self,
        service: &mut S,
        mut parts: Parts,
        body: B,
        found: Option<Lookup>,
    ) -> Served<S::Future, Finish>
    where
        S: tower::Service<Request<B>>,
    {
        let stages = &*self.stages;
        let (started, stored, protocol, admitted, metered) = {
            let facts = RequestFacts::read(&parts, &self.reading);
            let (started, stored) = span::start(&stages.span, &facts, &parts, found);
            let admitted = if stages.tenant.is_exempt(parts.uri.path()) {
                Ok(None)
            } else {
                admit(&facts.tenant, stored.as_ref()).map(Some)
            };
            // A refused request is measured as any other: its status, and no tenant
            // label (the one it claimed was not admitted).
            let tenant = admitted.as_ref().ok().and_then(Option::as_ref);
            let metered = Metered::start(&stages.metrics, &facts, tenant, &started.looked);
            (started, stored, facts.protocol, admitted, metered)
        };
        let messages = (stages.span.record_messages && protocol == Protocol::Grpc).then(|| {
            let tenant = admitted.as_ref().ok().and_then(Option::as_ref);
            Box::new(Messages::new(
                tenant.map_or(UNKNOWN, TenantId::as_str).to_owned(),
            ))
        });
        match admitted {
            Ok(tenant) => {
                if let Some(stored) = stored {
                    parts.extensions.insert(stored);
                }
                if let Some(tenant) = tenant {
                    parts.extensions.insert(tenant);
                }
                let future = {
                    let _attached = started.cx.clone().attach();
                    service.call(Request::from_parts(parts, body))
                };
                Served::Called {
                    future,
                    ended: Finish {
                        stages: Arc::clone(&self.stages),
                        started,
                        metered,
                        refused: false,
                        messages,
                    },
                    protocol,
                }
            }
            Err(problem) => {
                let (response, text) = stages.tenant.refuse(problem, protocol, &started.cx);
                Served::Answered {
                    response: response.map(|()| Bytes::from(text)),
                    ended: Finish {
                        stages: Arc::clone(&self.stages),
                        started,
                        metered,
                        refused: true,
                        messages: None,
                    },
                    protocol,
                }
            }
        }
    }

    fn cancelled_in_lookup(&self, parts: &Parts) {
        let facts = RequestFacts::read(parts, &self.reading);
        let span = &self.stages.span;
        let (started, _) = span::start(span, &facts, parts, None);
        span::end_started(span, &started, &Outcome::Cancelled);
    }
}

impl Ended for Finish {
    fn context(&self) -> &Context {
        &self.started.cx
    }

    fn track<B>(&self, response: &mut Response<B>) {
        span::track(&self.stages.span, &self.started.cx, response);
    }

    fn answered(self, _: &Extensions) -> Self {
        self
    }
}
