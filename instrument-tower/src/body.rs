//! [`ResponseBody`]: a response body that tells its layer how the response ended.
//!
//! A gRPC response's status usually arrives in the trailers, after the last message,
//! and a streaming response can run for minutes. The layers therefore finish their span
//! and measurement when the body ends, not when the response headers are ready: on the
//! trailers, on the end of the stream, on a body error, or when the body is dropped
//! unfinished (the client went away). Each layer's `ResponseBody` is this type with the
//! layer's own observer.

use std::fmt;
use std::pin::Pin;
use std::task::{ready, Context, Poll};

use bytes::Bytes;
use http::{HeaderMap, Response};
use http_body::{Body, Frame, SizeHint};
use pin_project::{pin_project, pinned_drop};
use tower_http::classify::ClassifyEos;

use crate::classify::Verdict;
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

    fn outcome(&self, end: End<'_>, failure: Option<String>) -> Outcome {
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
        let failure = match failure {
            None if body_failed => Some("the response body failed".to_owned()),
            failure => failure,
        };
        Outcome::Responded {
            http: self.http,
            grpc,
            // A plain HTTP body may be dropped once complete (hyper stops at
            // `is_end_stream`), and a gRPC status in the headers already ended the call.
            cancelled: cancelled && grpc == Some(GRPC_CANCELLED),
            body_failed,
            failure,
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

impl<'a> End<'a> {
    fn trailers(self) -> Option<&'a HeaderMap> {
        match self {
            Self::Trailers(trailers) => Some(trailers),
            _ => None,
        }
    }
}

/// Public in a private module: nameable in the layers' public types, but by no one
/// outside the crate.
mod sealed {
    /// How a request ended, as the layers record it.
    #[derive(Debug, Clone, PartialEq, Eq)]
    pub enum Outcome {
        /// A response was sent. `grpc` is the gRPC status for gRPC responses.
        Responded {
            http: u16,
            grpc: Option<u16>,
            /// The client went away before the response ended.
            cancelled: bool,
            /// The response body failed while being sent.
            body_failed: bool,
            /// The classifier's failure, when the response is one.
            failure: Option<String>,
        },
        /// The service returned an error instead of a response (the classifier's text).
        Failed(String),
        /// The response future was dropped before a response existed.
        Cancelled,
    }

    impl Outcome {
        /// The classifier's failure text, if the request failed.
        pub fn failure(&self) -> Option<&str> {
            match self {
                Self::Responded { failure, .. } => failure.as_deref(),
                Self::Failed(failure) => Some(failure),
                Self::Cancelled => None,
            }
        }
    }

    /// Told once how a request ended (and, if it cares, of each data frame of the
    /// response body on the way).
    pub trait Observe {
        /// The request ended with `outcome`.
        fn finish(self, outcome: &Outcome);

        /// A data frame of the response body, before it is passed on.
        fn data(&mut self, _chunk: &[u8]) {}
    }
}
pub(crate) use sealed::{Observe, Outcome};

/// Both observers are told.
impl<A: Observe, B: Observe> Observe for (A, B) {
    fn finish(self, outcome: &Outcome) {
        self.0.finish(outcome);
        self.1.finish(outcome);
    }

    fn data(&mut self, chunk: &[u8]) {
        self.0.data(chunk);
        self.1.data(chunk);
    }
}

/// Nobody is told (a request a filter let through untouched).
impl Observe for () {
    fn finish(self, _: &Outcome) {}
}

/// An observer that may be absent.
impl<O: Observe> Observe for Option<O> {
    fn finish(self, outcome: &Outcome) {
        if let Some(observer) = self {
            observer.finish(outcome);
        }
    }

    fn data(&mut self, chunk: &[u8]) {
        if let Some(observer) = self {
            observer.data(chunk);
        }
    }
}

/// What is watched until the body ends.
struct Watch<O, E> {
    head: Head,
    verdict: Verdict<E>,
    observer: O,
}

/// A response body wrapped by an instrument layer, which finishes the layer's span or
/// measurement when the body ends (see the [module docs](self)). It forwards every
/// frame and hint of the inner body unchanged. `O` is the layer's observer, `E` the
/// classifier's end-of-stream judge.
#[pin_project(PinnedDrop)]
pub struct ResponseBody<B, O: Observe, E: ClassifyEos>
where
    E::FailureClass: fmt::Display,
{
    #[pin]
    inner: Inner<B>,
    watch: Option<Watch<O, E>>,
}

/// The inner body, or one the layer wrote itself (a refusal's text, or nothing), so
/// that the inner service's body type need not be `Default`.
#[pin_project(project = InnerProj)]
#[derive(Debug)]
enum Inner<B> {
    Body(#[pin] B),
    /// Written by the layer: the text not yet sent (empty once sent).
    Written(Bytes),
}

impl<B: Body> Inner<B> {
    fn is_end_stream(&self) -> bool {
        match self {
            Self::Body(body) => body.is_end_stream(),
            Self::Written(text) => text.is_empty(),
        }
    }
}

impl<B: fmt::Debug, O: Observe, E: ClassifyEos> fmt::Debug for ResponseBody<B, O, E>
where
    E::FailureClass: fmt::Display,
{
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ResponseBody")
            .field("inner", &self.inner)
            .field("finished", &self.watch.is_none())
            .finish()
    }
}

/// An empty body that observes nothing (a response a layer writes itself, such as a
/// refusal, in the body type of a layer around it).
impl<B, O: Observe, E: ClassifyEos> Default for ResponseBody<B, O, E>
where
    E::FailureClass: fmt::Display,
{
    fn default() -> Self {
        Self {
            inner: Inner::Written(Bytes::new()),
            watch: None,
        }
    }
}

impl<B, O: Observe, E: ClassifyEos> ResponseBody<B, O, E>
where
    E::FailureClass: fmt::Display,
{
    /// Wraps `response`'s body so `observer` learns how it ends. A response whose body
    /// is already at its end is finished at once.
    pub(crate) fn wrap(
        response: Response<B>,
        head: Head,
        verdict: Verdict<E>,
        observer: O,
    ) -> Response<Self>
    where
        B: Body,
    {
        response.map(|inner| {
            let mut body = Self {
                watch: Some(Watch {
                    head,
                    verdict,
                    observer,
                }),
                inner: Inner::Body(inner),
            };
            if body.inner.is_end_stream() {
                body.finish(End::Complete);
            }
            body
        })
    }

    /// `response`'s body, unobserved.
    pub(crate) fn unobserved(response: Response<B>) -> Response<Self> {
        response.map(|inner| Self {
            inner: Inner::Body(inner),
            watch: None,
        })
    }

    /// A response the layer writes itself, `response`'s body its text, watched as
    /// any other.
    pub(crate) fn written(
        response: Response<Bytes>,
        head: Head,
        verdict: Verdict<E>,
        observer: O,
    ) -> Response<Self> {
        let mut response = response.map(|text| Self {
            inner: Inner::Written(text),
            watch: Some(Watch {
                head,
                verdict,
                observer,
            }),
        });
        response.body_mut().finish(End::Complete);
        response
    }

    fn finish(&mut self, end: End<'_>) {
        finish(&mut self.watch, end);
    }
}

fn finish<O: Observe, E: ClassifyEos>(watch: &mut Option<Watch<O, E>>, end: End<'_>)
where
    E::FailureClass: fmt::Display,
{
    if let Some(Watch {
        head,
        verdict,
        observer,
    }) = watch.take()
    {
        let failure = verdict.at_end(end.trailers());
        observer.finish(&head.outcome(end, failure));
    }
}

/// `B::Data: From<Bytes>` lets the layer write a refusal's text in the service's body
/// type: every body of the `http-body` ecosystem (hyper, axum, tonic, tower-http,
/// `http-body-util`) carries `Bytes`.
impl<B: Body, O: Observe, E: ClassifyEos> Body for ResponseBody<B, O, E>
where
    B::Data: From<Bytes>,
    E::FailureClass: fmt::Display,
{
    type Data = B::Data;
    type Error = B::Error;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Self::Data>, Self::Error>>> {
        let mut this = self.project();
        let frame = match this.inner.as_mut().project() {
            InnerProj::Body(body) => ready!(body.poll_frame(cx)),
            InnerProj::Written(text) if text.is_empty() => None,
            InnerProj::Written(text) => Some(Ok(Frame::data(B::Data::from(std::mem::take(text))))),
        };
        if let (Some(watch), Some(Ok(frame))) = (this.watch.as_mut(), &frame) {
            if let Some(data) = frame.data_ref() {
                watch.observer.data(bytes::Buf::chunk(data));
            }
        }
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
        match &self.inner {
            Inner::Body(body) => body.size_hint(),
            Inner::Written(text) => SizeHint::with_exact(text.len() as u64),
        }
    }
}

#[pinned_drop]
impl<B, O: Observe, E: ClassifyEos> PinnedDrop for ResponseBody<B, O, E>
where
    E::FailureClass: fmt::Display,
{
    fn drop(self: Pin<&mut Self>) {
        finish(self.project().watch, End::Dropped);
    }
}

#[cfg(test)]
mod tests {
    use std::sync::{Arc, Mutex};

    use http::{HeaderValue, Request};
    use tower_http::classify::MakeClassifier as _;

    use super::*;
    use crate::classify::{DefaultClassifier, DefaultEos};

    #[derive(Clone, Default)]
    struct Seen(Arc<Mutex<Vec<Outcome>>>);

    impl Observe for Seen {
        fn finish(self, outcome: &Outcome) {
            self.0.lock().unwrap().push(outcome.clone());
        }
    }

    /// A body of `frames`, then optionally trailers.
    struct Frames {
        data: Vec<&'static str>,
        trailers: Option<HeaderMap>,
        fail: bool,
    }

    impl Body for Frames {
        type Data = Bytes;
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
                return Poll::Ready(Some(Ok(Frame::data(Bytes::from_static(d.as_bytes())))));
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

    type Observed = ResponseBody<Frames, Seen, DefaultEos>;

    fn observed(protocol: Protocol, response: Response<Frames>, seen: &Seen) -> Observed {
        let mut request = Request::new(());
        if protocol == Protocol::Grpc {
            request
                .headers_mut()
                .insert("content-type", HeaderValue::from_static("application/grpc"));
        }
        let classifier = DefaultClassifier::default().make_classifier(&request);
        let head = Head::of(protocol, &response);
        let verdict = Verdict::of(classifier, &response);
        ResponseBody::wrap(response, head, verdict, seen.clone()).into_body()
    }

    fn responded(grpc: Option<u16>, cancelled: bool, failure: Option<&str>) -> Outcome {
        Outcome::Responded {
            http: 200,
            grpc,
            cancelled,
            body_failed: false,
            failure: failure.map(str::to_owned),
        }
    }

    #[test]
    fn grpc_status_from_trailers_once_judged_by_the_classifier() {
        let seen = Seen::default();
        for code in ["5", "13"] {
            let body = Frames {
                data: vec!["a", "b"],
                trailers: Some(status_trailers(code)),
                fail: false,
            };
            let mut body = observed(Protocol::Grpc, Response::new(body), &seen);
            assert_eq!(drain(&mut body), 3);
            drop(body);
        }
        assert_eq!(
            *seen.0.lock().unwrap(),
            [
                responded(Some(5), false, None),
                responded(Some(13), false, Some("Status: Internal"))
            ]
        );
    }

    #[test]
    fn grpc_stream_dropped_early_is_cancelled_and_missing_status_is_unknown() {
        let seen = Seen::default();
        let body = Frames {
            data: vec!["a"],
            trailers: Some(status_trailers("0")),
            fail: false,
        };
        drop(observed(Protocol::Grpc, Response::new(body), &seen));
        let body = Frames {
            data: vec!["a"],
            trailers: None,
            fail: false,
        };
        drain(&mut observed(Protocol::Grpc, Response::new(body), &seen));
        assert_eq!(
            *seen.0.lock().unwrap(),
            [
                responded(Some(GRPC_CANCELLED), true, None),
                responded(Some(GRPC_UNKNOWN), false, None)
            ]
        );
    }

    #[test]
    fn http_body_dropped_at_its_end_is_complete_and_body_errors_are_failures() {
        let seen = Seen::default();
        let body = Frames {
            data: vec![],
            trailers: None,
            fail: false,
        };
        // Finished on wrapping: the body is already at its end.
        let body = observed(Protocol::Http, Response::new(body), &seen);
        assert_eq!(seen.0.lock().unwrap().len(), 1);
        drop(body);
        let body = Frames {
            data: vec!["x"],
            trailers: None,
            fail: true,
        };
        drain(&mut observed(Protocol::Http, Response::new(body), &seen));
        let seen = seen.0.lock().unwrap();
        assert_eq!(seen[0], responded(None, false, None));
        assert_eq!(
            seen[1],
            Outcome::Responded {
                http: 200,
                grpc: None,
                cancelled: false,
                body_failed: true,
                failure: Some("the response body failed".to_owned()),
            }
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
        drop(observed(Protocol::Grpc, response, &seen));
        assert_eq!(*seen.0.lock().unwrap(), [responded(Some(7), false, None)]);
    }
}
