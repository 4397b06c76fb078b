//! [`TenantService`]: `Service::call` of the tenant layer.

use std::sync::Arc;
use std::task::{Context, Poll};

use http::{Request, Response, StatusCode};
use instrument_core::semconv::{LABEL_PROTOCOL, LABEL_REASON};
use instrument_core::tenant::{with_tenant, TenantId};
use opentelemetry::context::FutureExt as _;

use super::future::ResponseFuture;
use super::layer::TenantConfig;
use crate::protocol::{Protocol, Refusal};

/// Why a request was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Reason {
    Missing,
    Malformed,
}

impl Reason {
    fn refusal(self) -> Refusal {
        match self {
            Self::Missing => Refusal {
                http: StatusCode::UNAUTHORIZED,
                grpc: 16, // UNAUTHENTICATED
                message: "a tenant is required",
            },
            Self::Malformed => Refusal {
                http: StatusCode::BAD_REQUEST,
                grpc: 3, // INVALID_ARGUMENT
                message: "the tenant id is not valid",
            },
        }
    }

    fn label(self) -> &'static str {
        match self {
            Self::Missing => "missing",
            Self::Malformed => "malformed",
        }
    }
}

/// The tenant layer's service (see [`TenantLayer`](super::TenantLayer)).
#[derive(Debug, Clone)]
pub struct TenantService<S> {
    pub(crate) inner: S,
    pub(crate) config: Arc<TenantConfig>,
}

impl<S> TenantService<S> {
    /// The request's tenant: the upstream `TenantId` extension first, then the header.
    fn resolve<B>(&self, request: &Request<B>) -> Result<TenantId, Reason> {
        if let Some(tenant) = request.extensions().get::<TenantId>() {
            return Ok(tenant.clone());
        }
        let mut values = request.headers().get_all(&self.config.header).iter();
        let value = values.next().ok_or(Reason::Missing)?;
        if values.next().is_some() {
            // Two tenants for one request: refuse rather than guess.
            return Err(Reason::Malformed);
        }
        TenantId::parse_bytes(value.as_bytes()).map_err(|_| Reason::Malformed)
    }
}

impl<S, ReqBody, ResBody> tower::Service<Request<ReqBody>> for TenantService<S>
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
        let path = request.uri().path();
        if self
            .config
            .exempt
            .iter()
            .any(|prefix| path.starts_with(prefix.as_str()))
        {
            return ResponseFuture::passed(self.inner.call(request));
        }
        let protocol = Protocol::of(&request);
        match self.resolve(&request) {
            Ok(tenant) => {
                request.extensions_mut().insert(tenant.clone());
                // Every span started while the request is served, here or below,
                // gets `tenant.id` from this context (the pipeline's tenant processor).
                let cx = with_tenant(&opentelemetry::Context::current(), tenant);
                let future = {
                    let _attached = cx.clone().attach();
                    self.inner.call(request)
                };
                ResponseFuture::served(future.with_context(cx))
            }
            Err(reason) => {
                metrics::counter!(
                    self.config.rejections_metric.clone(),
                    LABEL_REASON => reason.label(),
                    LABEL_PROTOCOL => protocol.label(),
                )
                .increment(1);
                // Recorded on the current (server) span as an event; no request data.
                tracing::warn!(
                    reason = reason.label(),
                    protocol = protocol.label(),
                    "request refused by the tenant check"
                );
                ResponseFuture::refused(reason.refusal().response(protocol))
            }
        }
    }
}
