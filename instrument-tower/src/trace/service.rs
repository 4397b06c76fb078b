//! [`Trace`]: `Service::call` of the trace layer.

use std::fmt;
use std::sync::Arc;
use std::task::{Context as TaskContext, Poll};

use http::{Request, Response};
use tower_http::classify::MakeClassifier;

use super::future::ResponseFuture;
use super::layer::TraceConfig;
use super::span;
use crate::request::{Filter, RequestFacts, Route};
use crate::source::{Found, TraceSource};

/// The trace layer's service (see [`TraceLayer`](super::TraceLayer)).
pub struct Trace<S, Src, C, R, F> {
    pub(crate) inner: S,
    pub(crate) config: Arc<TraceConfig<R, F>>,
    pub(crate) source: Arc<Src>,
    pub(crate) classifier: C,
}

inner_service_accessors!(Trace<S, Src, C, R, F>);

impl<S: Clone, Src, C: Clone, R, F> Clone for Trace<S, Src, C, R, F> {
    fn clone(&self) -> Self {
        Self {
            inner: self.inner.clone(),
            config: Arc::clone(&self.config),
            source: Arc::clone(&self.source),
            classifier: self.classifier.clone(),
        }
    }
}

impl<S, Src, C, R, F, ReqBody, ResBody> tower::Service<Request<ReqBody>> for Trace<S, Src, C, R, F>
where
    S: tower::Service<Request<ReqBody>, Response = Response<ResBody>> + Clone,
    S::Error: fmt::Display + 'static,
    Src: TraceSource,
    C: MakeClassifier,
    C::FailureClass: fmt::Display,
    R: Route,
    F: Filter,
    ResBody: http_body::Body,
{
    type Response = Response<super::ResponseBody<ResBody, C::ClassifyEos>>;
    type Error = S::Error;
    type Future = ResponseFuture<S, S::Future, Src::Lookup, ReqBody, C::Classifier, R, F>;

    fn poll_ready(&mut self, cx: &mut TaskContext<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, request: Request<ReqBody>) -> Self::Future {
        let (parts, body) = request.into_parts();
        if self.config.filter.skip(&parts) {
            return ResponseFuture::passed(self.inner.call(Request::from_parts(parts, body)));
        }
        let found = match self.source.key(&parts).map(|key| self.source.find(key)) {
            None => None,
            Some(Found::Ready(found)) => Some(found),
            Some(Found::Pending(lookup)) => {
                // The service polled ready goes with the future; this one is the clone.
                let ready = self.inner.clone();
                let service = std::mem::replace(&mut self.inner, ready);
                let request = Request::from_parts(parts, body);
                let classifier = self.classifier.make_classifier(&request);
                return ResponseFuture::lookup(
                    Arc::clone(&self.config),
                    lookup,
                    service,
                    request,
                    classifier,
                );
            }
        };
        let (mut parts, body) = (parts, body);
        let (started, stored, protocol) = {
            let facts = RequestFacts::read(&parts, &self.config.reading);
            let (started, stored) = span::start(&self.config.span, &facts, &parts, found);
            (started, stored, facts.protocol)
        };
        if let Some(stored) = stored {
            parts.extensions.insert(stored);
        }
        let request = Request::from_parts(parts, body);
        let classifier = self.classifier.make_classifier(&request);
        let future = {
            let _attached = started.cx.clone().attach();
            self.inner.call(request)
        };
        ResponseFuture::serve(
            Arc::clone(&self.config.span),
            future,
            started,
            classifier,
            protocol,
        )
    }
}
