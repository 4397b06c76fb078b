//! [`Instrument`]: `Service::call` of the stack, the three stages over one read of the
//! request.

use std::fmt;
use std::sync::Arc;
use std::task::{Context as TaskContext, Poll};

use bytes::Bytes;
use http::{Request, Response};
use tower_http::classify::MakeClassifier;

use super::future::{ResponseFuture, Served};
use super::layer::StackConfig;

use crate::metrics::measure::Metered;
use crate::request::{Filter, RequestFacts, Route};
use crate::source::{Found, SourceError, StoredTrace, TraceSource};
use crate::tenant::check::admit;
use crate::trace::span;

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
        let request = Request::from_parts(parts, body);
        let classifier = self.classifier.make_classifier(&request);
        let served = serve(&self.config, &mut self.inner, request, found);
        ResponseFuture::served(Arc::clone(&self.config.stages), served, classifier)
    }
}

/// The three stages over `request`: the span started, the tenant admitted or refused,
/// the measurement started, and the service called in the span's context.
pub(crate) fn serve<S, B, R: Route, F>(
    config: &StackConfig<R, F>,
    service: &mut S,
    request: Request<B>,
    found: Option<Result<Option<StoredTrace>, SourceError>>,
) -> Served<S::Future>
where
    S: tower::Service<Request<B>>,
{
    let stages = &*config.stages;
    let (mut parts, body) = request.into_parts();
    let (started, stored, protocol, admitted) = {
        let facts = RequestFacts::read(&parts, &config.reading);
        let (started, stored) = span::start(&stages.span, &facts, &parts, found);
        let admitted = if stages.tenant.is_exempt(parts.uri.path()) {
            Ok((
                None,
                Metered::start(&stages.metrics, &facts, None, &started.looked),
            ))
        } else {
            match admit(&facts.tenant, stored.as_ref()) {
                Ok(tenant) => {
                    let metered =
                        Metered::start(&stages.metrics, &facts, Some(&tenant), &started.looked);
                    Ok((Some(tenant), metered))
                }
                // Measured as any other request (its status, no tenant label: the
                // one it claimed was not admitted).
                Err(problem) => Err((
                    problem,
                    Metered::start(&stages.metrics, &facts, None, &started.looked),
                )),
            }
        };
        (started, stored, facts.protocol, admitted)
    };
    match admitted {
        Ok((tenant, metered)) => {
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
                started,
                protocol,
                metered,
            }
        }
        Err((problem, metered)) => {
            let (response, text) = stages.tenant.refuse(problem, protocol, &started.cx);
            Served::Refused {
                response: response.map(|()| Bytes::from(text)),
                started,
                protocol,
                metered,
            }
        }
    }
}
