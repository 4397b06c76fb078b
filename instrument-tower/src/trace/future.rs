//! [`TraceFuture`]: looks the stored trace up, starts the span, serves the request in
//! its context, and hands the span to the response body to end. No box.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{ready, Context as TaskContext, Poll};
use std::time::SystemTime;

use http::{HeaderValue, Request, Response};
use instrument_core::semconv::{CANCELLED, HTTP_RESPONSE_STATUS_CODE, RPC_GRPC_STATUS_CODE};
use opentelemetry::trace::{Status, TraceContextExt as _};
use opentelemetry::{Context, KeyValue};
use pin_project::{pin_project, pinned_drop};

use super::layer::TraceConfig;
use super::service::{begin, Started};
use crate::body::{Head, Observe, ObservedBody, Outcome};
use crate::protocol::{grpc_code_name, grpc_is_server_error, http_is_server_error};
use crate::source::{SourceError, StoredTrace};

/// The response future of [`TraceService`](super::TraceService).
///
/// Dropped before the response is ready, it ends the span as cancelled
/// (`instrument.cancelled=true`).
#[pin_project(PinnedDrop)]
pub struct TraceFuture<S, F, L, B> {
    config: Arc<TraceConfig>,
    #[pin]
    state: State<S, F, L, B>,
}

// The request waiting in `Lookup` makes that variant large; boxing it would cost an
// allocation per request, while the future is pinned once and never moved.
#[allow(clippy::large_enum_variant)]
#[pin_project(project = StateProj, project_replace = StateOwn)]
enum State<S, F, L, B> {
    /// Waiting for the trace source; the span starts when it answers.
    Lookup {
        #[pin]
        lookup: L,
        service: S,
        request: Request<B>,
        start: SystemTime,
    },
    /// The inner service's future, polled in the span's context.
    Serve {
        #[pin]
        future: F,
        started: Started,
    },
    Done,
}

impl<S, F, L, B> std::fmt::Debug for TraceFuture<S, F, L, B> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let state = match &self.state {
            State::Lookup { .. } => "lookup",
            State::Serve { .. } => "serve",
            State::Done => "done",
        };
        f.debug_struct("TraceFuture")
            .field("state", &state)
            .finish()
    }
}

impl<S, F, L, B> TraceFuture<S, F, L, B> {
    pub(crate) fn serve(config: Arc<TraceConfig>, future: F, started: Started) -> Self {
        Self {
            config,
            state: State::Serve { future, started },
        }
    }

    pub(crate) fn lookup(
        config: Arc<TraceConfig>,
        lookup: L,
        service: S,
        request: Request<B>,
        start: SystemTime,
    ) -> Self {
        Self {
            config,
            state: State::Lookup {
                lookup,
                service,
                request,
                start,
            },
        }
    }
}

impl<S, F, L, B, RB, E> Future for TraceFuture<S, F, L, B>
where
    S: tower::Service<Request<B>, Future = F, Response = Response<RB>, Error = E>,
    F: Future<Output = Result<Response<RB>, E>>,
    E: std::fmt::Display,
    L: Future<Output = Result<Option<StoredTrace>, SourceError>>,
    RB: http_body::Body,
{
    type Output = Result<Response<ObservedBody<RB, SpanEnd>>, E>;

    fn poll(self: Pin<&mut Self>, task: &mut TaskContext<'_>) -> Poll<Self::Output> {
        let mut this = self.project();
        loop {
            match this.state.as_mut().project() {
                StateProj::Lookup { lookup, .. } => {
                    let found = ready!(lookup.poll(task));
                    let StateOwn::Lookup {
                        mut service,
                        request,
                        start,
                        ..
                    } = this.state.as_mut().project_replace(State::Done)
                    else {
                        return Poll::Pending;
                    };
                    let (mut parts, body) = request.into_parts();
                    let started = begin(this.config, &mut parts, Some(found), start);
                    let future = {
                        let _attached = started.cx.clone().attach();
                        service.call(Request::from_parts(parts, body))
                    };
                    this.state.set(State::Serve { future, started });
                }
                StateProj::Serve { future, started } => {
                    let result = {
                        let _attached = started.cx.clone().attach();
                        ready!(future.poll(task))
                    };
                    let StateOwn::Serve { started, .. } =
                        this.state.as_mut().project_replace(State::Done)
                    else {
                        return Poll::Pending;
                    };
                    return Poll::Ready(match result {
                        Ok(response) => Ok(respond(this.config, started, response)),
                        Err(error) => {
                            let text = this.config.redactor().error_text(&error.to_string());
                            end(&started.cx, Outcome::Failed, Some(text));
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
impl<S, F, L, B> PinnedDrop for TraceFuture<S, F, L, B> {
    fn drop(self: Pin<&mut Self>) {
        let this = self.project();
        match this.state.project_replace(State::Done) {
            StateOwn::Serve { started, .. } => end(&started.cx, Outcome::Cancelled, None),
            StateOwn::Lookup { request, start, .. } => {
                // Dropped while the source was asked: the request still gets its span.
                let (mut parts, _) = request.into_parts();
                let started = begin(this.config, &mut parts, None, start);
                end(&started.cx, Outcome::Cancelled, None);
            }
            StateOwn::Done => {}
        }
    }
}

/// Adds the tracking header and gives the span to the body, which ends it.
fn respond<RB: http_body::Body>(
    config: &TraceConfig,
    started: Started,
    mut response: Response<RB>,
) -> Response<ObservedBody<RB, SpanEnd>> {
    if let Some(name) = &config.tracking {
        let span = started.cx.span();
        let sc = span.span_context();
        if sc.is_valid() {
            if let Ok(value) = HeaderValue::from_bytes(&hex(sc.trace_id().to_bytes())) {
                response.headers_mut().insert(name.clone(), value);
            }
        }
    }
    let head = Head::of(started.protocol, &response);
    ObservedBody::wrap(response, head, SpanEnd { cx: started.cx })
}

/// Lowercase hex of a trace id, as the W3C format writes it (no `fmt` machinery).
fn hex(bytes: [u8; 16]) -> [u8; 32] {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut out = [0u8; 32];
    for (i, b) in bytes.iter().enumerate() {
        out[2 * i] = DIGITS[usize::from(b >> 4)];
        out[2 * i + 1] = DIGITS[usize::from(b & 0x0f)];
    }
    out
}

/// Ends a server span when its response body ends (an opaque part of the layer's
/// response body type).
#[derive(Debug)]
pub struct SpanEnd {
    cx: Context,
}

impl Observe for SpanEnd {
    fn finish(self, outcome: Outcome) {
        end(&self.cx, outcome, None);
    }
}

/// Records how the request ended on its span and ends it.
fn end(cx: &Context, outcome: Outcome, error: Option<String>) {
    let span = cx.span();
    match outcome {
        Outcome::Responded {
            http,
            grpc,
            cancelled,
            body_failed,
        } => {
            match grpc {
                Some(code) => {
                    span.set_attribute(KeyValue::new(RPC_GRPC_STATUS_CODE, i64::from(code)));
                    if grpc_is_server_error(code) {
                        span.set_status(Status::error(grpc_code_name(code)));
                    }
                }
                None => {
                    span.set_attribute(KeyValue::new(HTTP_RESPONSE_STATUS_CODE, i64::from(http)));
                    if http_is_server_error(http) {
                        span.set_status(Status::error(""));
                    }
                }
            }
            if cancelled {
                span.set_attribute(KeyValue::new(CANCELLED, true));
            }
            if body_failed {
                span.set_status(Status::error("the response body failed"));
            }
        }
        Outcome::Failed => {
            let text = error.unwrap_or_default();
            span.set_attribute(KeyValue::new(instrument_core::semconv::ERROR, text.clone()));
            span.set_status(Status::error(text));
        }
        Outcome::Cancelled => span.set_attribute(KeyValue::new(CANCELLED, true)),
    }
    span.end();
}
