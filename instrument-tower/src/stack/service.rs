//! [`Instrument`]: the stack's service.

use std::fmt;
use std::sync::Arc;
use std::task::{Context as TaskContext, Poll};

use http::{Request, Response};
use tower_http::classify::MakeClassifier;

use super::future::ResponseFuture;
use super::layer::StackConfig;
use crate::request::{Filter, Route};
use crate::source::TraceSource;

/// The stack's service (see [`InstrumentLayer`](super::InstrumentLayer)).
pub struct Instrument<S, Src, C, R, F> {
    pub(crate) inner: S,
    pub(crate) config: Arc<StackConfig<R, F>>,
    pub(crate) source: Arc<Src>,
    pub(crate) classifier: C,
}

inner_service_accessors!(Instrument<S, Src, C, R, F>);

impl<S: Clone, Src, C: Clone, R, F> Clone for Instrument<S, Src, C, R, F> {
    fn clone(&self) -> Self {
        Self {
            inner: self.inner.clone(),
            config: Arc::clone(&self.config),
            source: Arc::clone(&self.source),
            classifier: self.classifier.clone(),
        }
    }
}

impl<S, Src, C, R, F, ReqBody, ResBody> tower::Service<Request<ReqBody>>
    for Instrument<S, Src, C, R, F>
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
        ResponseFuture {
            inner: crate::around::call(
                &self.config,
                &*self.source,
                &mut self.inner,
                &self.classifier,
                request,
            ),
        }
    }
}
