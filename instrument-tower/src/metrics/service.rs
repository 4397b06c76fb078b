//! [`RequestMetrics`]: `Service::call` of the request-metrics layer.

use std::fmt;
use std::sync::Arc;
use std::task::{Context, Poll};

use http::{Request, Response};
use tower_http::classify::MakeClassifier;

use super::future::ResponseFuture;
use super::layer::LayerConfig;
use super::measure::Measure;
use crate::request::{Filter, RequestFacts, Route};

/// The request-metrics layer's service (see
/// [`RequestMetricsLayer`](super::RequestMetricsLayer)).
pub struct RequestMetrics<S, C, R, F> {
    pub(crate) inner: S,
    pub(crate) config: Arc<LayerConfig<R, F>>,
    pub(crate) classifier: C,
}

inner_service_accessors!(RequestMetrics<S, C, R, F>);

impl<S: Clone, C: Clone, R, F> Clone for RequestMetrics<S, C, R, F> {
    fn clone(&self) -> Self {
        Self {
            inner: self.inner.clone(),
            config: Arc::clone(&self.config),
            classifier: self.classifier.clone(),
        }
    }
}

impl<S, C, R, F, ReqBody, ResBody> tower::Service<Request<ReqBody>> for RequestMetrics<S, C, R, F>
where
    S: tower::Service<Request<ReqBody>, Response = Response<ResBody>>,
    S::Error: fmt::Display + 'static,
    C: MakeClassifier,
    C::FailureClass: fmt::Display,
    R: Route,
    F: Filter,
    ResBody: http_body::Body,
{
    type Response = Response<super::ResponseBody<ResBody, C::ClassifyEos>>;
    type Error = S::Error;
    type Future = ResponseFuture<S::Future, C::Classifier>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, request: Request<ReqBody>) -> Self::Future {
        let (parts, body) = request.into_parts();
        if self.config.filter.skip(&parts) {
            return ResponseFuture::passed(self.inner.call(Request::from_parts(parts, body)));
        }
        let measure = {
            // No header read: the tenant label is the admitted tenant, the `TenantId`
            // extension the tenant layer (or an auth layer) set.
            let facts = RequestFacts::read_with(&parts, None, &self.config.route);
            let measure = &self.config.measure;
            let redactor = instrument_core::redact::global();
            let looked = measure
                .names
                .of(&facts.target, facts.method, parts.uri.path(), redactor);
            Measure::start(
                Arc::clone(measure),
                &facts,
                facts.tenant.as_ref().ok(),
                looked,
            )
        };
        let request = Request::from_parts(parts, body);
        let classifier = self.classifier.make_classifier(&request);
        ResponseFuture::measured(self.inner.call(request), measure, classifier)
    }
}
