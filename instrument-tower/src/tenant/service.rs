//! [`Tenant`]: `Service::call` of the tenant layer.

use std::sync::Arc;
use std::task::{Context, Poll};

use http::{Request, Response};
use instrument_core::tenant::with_tenant;
use opentelemetry::context::FutureExt as _;

use super::check::{admit, TenantRules};
use super::future::ResponseFuture;
use crate::protocol::Protocol;
use crate::request::find_tenant;
use crate::source::StoredTrace;

/// The tenant layer's service (see [`TenantLayer`](super::TenantLayer)).
#[derive(Clone)]
pub struct Tenant<S> {
    pub(crate) inner: S,
    pub(crate) rules: Arc<TenantRules>,
}

inner_service_accessors!(Tenant<S>);

impl<S, ReqBody, ResBody> tower::Service<Request<ReqBody>> for Tenant<S>
where
    S: tower::Service<Request<ReqBody>, Response = Response<ResBody>>,
    ResBody: Default,
{
    type Response = Response<ResBody>;
    type Error = S::Error;
    type Future = ResponseFuture<S::Future, ResBody>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, mut request: Request<ReqBody>) -> Self::Future {
        if self.rules.is_exempt(request.uri().path()) {
            return ResponseFuture::passed(self.inner.call(request));
        }
        let found = find_tenant(request.headers(), request.extensions(), &self.rules.header);
        match admit(&found, request.extensions().get::<StoredTrace>()) {
            Ok(tenant) => {
                // Every span started while the request is served, here or below,
                // gets `tenant.id` from the context (the pipeline's tenant processor).
                request.extensions_mut().insert(tenant.clone());
                let cx = with_tenant(&opentelemetry::Context::current(), tenant);
                let future = {
                    let _attached = cx.clone().attach();
                    self.inner.call(request)
                };
                ResponseFuture::served(future.with_context(cx))
            }
            // The body type is the service's: the refusal's text goes in `grpc-message`
            // for gRPC, and is left out for HTTP (`InstrumentLayer` writes it).
            Err(problem) => ResponseFuture::refused(
                self.rules
                    .refuse(
                        problem,
                        Protocol::of(&request),
                        &opentelemetry::Context::current(),
                    )
                    .0,
            ),
        }
    }
}
