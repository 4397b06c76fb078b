//! [`ObservedBody`]: a response body that tells its layer how the response ended.
//!
//! A gRPC response's status usually arrives in the trailers, after the last message,
//! and a streaming response can run for minutes. The trace and metrics layers therefore
//! finish their span and duration when the body ends, not when the response headers are
//! ready: on the trailers, on the end of the stream, on a body error, or when the body is
//! dropped unfinished (the client went away).

use std::pin::Pin;
use std::task::{ready, Context, Poll};

use http::{HeaderMap, Response};
use http_body::{Body, Frame, SizeHint};
use pin_project::{pin_project, pinned_drop};

use crate::protocol::{grpc_status, Protocol, GRPC_CANCELLED, GRPC_UNKNOWN};

/// What a layer knows about a response once its headers are ready.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Head {
    protocol: Protocol,
    http: u16,
    /// `grpc-status` sent in the headers (a trailers-only response).
    grpc: Option<u16>,
}

impl Head {
    pub(crate) fn of<B>(protocol: Protocol, response: &Response<B>) -> Self {
        Self {
            protocol,
            http: response.status().as_u16(),
            grpc: match protocol {
                Protocol::Grpc => grpc_status(response.headers()),
                Protocol::Http => None,
            },
        }
    }

    fn outcome(&self, end: End<'_>) -> Outcome {
        let (trailer_status, cancelled, body_failed) = match end {
            End::Trailers(trailers) => (grpc_status(trailers), false, false),
            End::Complete => (None, false, false),
            End::Failed => (None, false, true),
            End::Dropped => (None, true, false),
        };
        let grpc = match self.protocol {
            Protocol::Http => None,
            Protocol::Grpc => Some(self.grpc.or(trailer_status).unwrap_or(if cancelled {
                GRPC_CANCELLED
            } else {
                GRPC_UNKNOWN
            })),
        };
        Outcome::Responded {
            http: self.http,
            grpc,
            // A plain HTTP body may be dropped once complete (hyper stops at
            // `is_end_stream`), and a gRPC status in the headers already ended the call.
            cancelled: cancelled && grpc == Some(GRPC_CANCELLED),
            body_failed,
        }
    }
}

/// How a body ended.
#[derive(Debug, Clone, Copy)]
enum End<'a> {
    Trailers(&'a HeaderMap),
    Complete,
    Failed,
    Dropped,
}

mod sealed {
    /// How a response ended, as the layers record it.
    #[derive(Debug, Clone, Copy, PartialEq, Eq)]
    pub enum Outcome {
        /// A response was sent. `grpc` is the gRPC status for gRPC responses.
        Responded {
            http: u16,
            grpc: Option<u16>,
            /// The client went away before the response ended.
            cancelled: bool,
            /// The response body failed while being sent.
            body_failed: bool,
        },
        /// The service returned an error instead of a response.
        Failed,
        /// The response future was dropped before a response existed.
        Cancelled,
    }

    /// Told once how the response ended.
    pub trait Observe {
        /// The response ended with `outcome`.
        fn finish(self, outcome: Outcome);
    }
}
pub(crate) use sealed::{Observe, Outcome};

/// A response body wrapped by an instrument layer, which finishes the layer's span or
/// measurement when the body ends (see the [module docs](self)). It forwards every
/// frame and hint of the inner body unchanged.
#[pin_project(PinnedDrop)]
pub struct ObservedBody<B, O: Observe> {
    #[pin]
    inner: B,
    watch: Option<(Head, O)>,
}

impl<B: std::fmt::Debug, O: Observe> std::fmt::Debug for ObservedBody<B, O> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ObservedBody")
            .field("inner", &self.inner)
            .field("finished", &self.watch.is_none())
            .finish()
    }
}

/// An empty body of an inner layer's type that observes nothing (a response a
/// layer writes itself, such as a refusal).
impl<B: Default, O: Observe> Default for ObservedBody<B, O> {
    fn default() -> Self {
        Self {
            inner: B::default(),
            watch: None,
        }
    }
}

impl<B, O: Observe> ObservedBody<B, O> {
    /// Wraps `response`'s body so `observer` learns how it ends. A response whose body
    /// is already at its end is finished at once.
    pub(crate) fn wrap(response: Response<B>, head: Head, observer: O) -> Response<Self>
    where
        B: Body,
    {
        response.map(|inner| {
            let mut body = Self {
                watch: Some((head, observer)),
                inner,
            };
            if body.inner.is_end_stream() {
                body.finish(End::Complete);
            }
            body
        })
    }

    fn finish(&mut self, end: End<'_>) {
        finish(&mut self.watch, end);
    }
}

fn finish<O: Observe>(watch: &mut Option<(Head, O)>, end: End<'_>) {
    if let Some((head, observer)) = watch.take() {
        observer.finish(head.outcome(end));
    }
}

impl<B: Body, O: Observe> Body for ObservedBody<B, O> {
    type Data = B::Data;
    type Error = B::Error;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Self::Data>, Self::Error>>> {
        let mut this = self.project();
        let frame = ready!(this.inner.as_mut().poll_frame(cx));
        if this.watch.is_some() {
            match &frame {
                Some(Ok(frame)) => {
                    if let Some(trailers) = frame.trailers_ref() {
                        finish(this.watch, End::Trailers(trailers));
                    } else if this.inner.is_end_stream() {
                        finish(this.watch, End::Complete);
                    }
                }
                Some(Err(_)) => finish(this.watch, End::Failed),
                None => finish(this.watch, End::Complete),
            }
        }
        Poll::Ready(frame)
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}

#[pinned_drop]
impl<B, O: Observe> PinnedDrop for ObservedBody<B, O> {
    fn drop(self: Pin<&mut Self>) {
        finish(self.project().watch, End::Dropped);
    }
}

#[cfg(test)]
mod tests {
    use std::sync::{Arc, Mutex};

    use http::HeaderValue;

    use super::*;

    #[derive(Clone, Default)]
    struct Seen(Arc<Mutex<Vec<Outcome>>>);

    impl Observe for Seen {
        fn finish(self, outcome: Outcome) {
            self.0.lock().unwrap().push(outcome);
        }
    }

    /// A body of `frames`, then optionally trailers.
    struct Frames {
        data: Vec<&'static str>,
        trailers: Option<HeaderMap>,
        fail: bool,
    }

    impl Body for Frames {
        type Data = &'static [u8];
        type Error = &'static str;

        fn poll_frame(
            mut self: Pin<&mut Self>,
            _: &mut Context<'_>,
        ) -> Poll<Option<Result<Frame<Self::Data>, Self::Error>>> {
            if self.fail {
                self.fail = false;
                self.data.clear();
                return Poll::Ready(Some(Err("broken")));
            }
            if !self.data.is_empty() {
                let d = self.data.remove(0);
                return Poll::Ready(Some(Ok(Frame::data(d.as_bytes()))));
            }
            Poll::Ready(self.trailers.take().map(|t| Ok(Frame::trailers(t))))
        }

        fn is_end_stream(&self) -> bool {
            !self.fail && self.data.is_empty() && self.trailers.is_none()
        }
    }

    fn status_trailers(code: &'static str) -> HeaderMap {
        let mut t = HeaderMap::new();
        t.insert("grpc-status", HeaderValue::from_static(code));
        t
    }

    fn drain<B: Body + Unpin>(body: &mut B) -> usize {
        let waker = std::task::Waker::noop();
        let mut cx = Context::from_waker(waker);
        let mut frames = 0;
        while let Poll::Ready(Some(_)) = Pin::new(&mut *body).poll_frame(&mut cx) {
            frames += 1;
        }
        frames
    }

    fn observed(protocol: Protocol, body: Frames, seen: &Seen) -> ObservedBody<Frames, Seen> {
        let response = Response::new(body);
        let head = Head::of(protocol, &response);
        ObservedBody::wrap(response, head, seen.clone()).into_body()
    }

    fn responded(grpc: Option<u16>, cancelled: bool, body_failed: bool) -> Outcome {
        Outcome::Responded {
            http: 200,
            grpc,
            cancelled,
            body_failed,
        }
    }

    #[test]
    fn grpc_status_from_trailers_once() {
        let seen = Seen::default();
        let body = Frames {
            data: vec!["a", "b"],
            trailers: Some(status_trailers("5")),
            fail: false,
        };
        let mut body = observed(Protocol::Grpc, body, &seen);
        assert_eq!(drain(&mut body), 3);
        drop(body);
        assert_eq!(*seen.0.lock().unwrap(), [responded(Some(5), false, false)]);
    }

    #[test]
    fn grpc_stream_dropped_early_is_cancelled_and_missing_status_is_unknown() {
        let seen = Seen::default();
        let body = Frames {
            data: vec!["a"],
            trailers: Some(status_trailers("0")),
            fail: false,
        };
        drop(observed(Protocol::Grpc, body, &seen));
        let body = Frames {
            data: vec!["a"],
            trailers: None,
            fail: false,
        };
        drain(&mut observed(Protocol::Grpc, body, &seen));
        assert_eq!(
            *seen.0.lock().unwrap(),
            [
                responded(Some(GRPC_CANCELLED), true, false),
                responded(Some(GRPC_UNKNOWN), false, false)
            ]
        );
    }

    #[test]
    fn http_body_dropped_at_its_end_is_complete_and_body_errors_are_recorded() {
        let seen = Seen::default();
        let body = Frames {
            data: vec![],
            trailers: None,
            fail: false,
        };
        // Finished on wrapping: the body is already at its end.
        let body = observed(Protocol::Http, body, &seen);
        assert_eq!(seen.0.lock().unwrap().len(), 1);
        drop(body);
        let body = Frames {
            data: vec!["x"],
            trailers: None,
            fail: true,
        };
        drain(&mut observed(Protocol::Http, body, &seen));
        assert_eq!(
            *seen.0.lock().unwrap(),
            [responded(None, false, false), responded(None, false, true)]
        );
    }

    #[test]
    fn trailers_only_grpc_response_keeps_its_header_status() {
        let seen = Seen::default();
        let mut response = Response::new(Frames {
            data: vec!["unused"],
            trailers: None,
            fail: false,
        });
        response
            .headers_mut()
            .insert("grpc-status", HeaderValue::from_static("7"));
        let head = Head::of(Protocol::Grpc, &response);
        drop(ObservedBody::wrap(response, head, seen.clone()));
        assert_eq!(*seen.0.lock().unwrap(), [responded(Some(7), false, false)]);
    }
}
