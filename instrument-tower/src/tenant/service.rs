//! [`TenantService`]: `Service::call` of the tenant layer.

use std::sync::Arc;
use std::task::{Context, Poll};

use http::{Extensions, HeaderMap, HeaderName, Request, Response, StatusCode};
use instrument_core::semconv::{LABEL_PROTOCOL, LABEL_REASON, TENANT_REJECTED};
use instrument_core::tenant::{with_tenant, TenantId};
use opentelemetry::context::FutureExt as _;
use opentelemetry::trace::TraceContextExt as _;
use opentelemetry::KeyValue;

use super::future::ResponseFuture;
use super::layer::TenantConfig;
use crate::protocol::{Protocol, Refusal};
use crate::source::StoredTrace;
use crate::stack::Read;

/// Why a request was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Reason {
    Missing,
    Malformed,
    CrossTenant,
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
            // Says neither which tenant owns the workflow nor that the id exists.
            Self::CrossTenant => Refusal {
                http: StatusCode::FORBIDDEN,
                grpc: 7, // PERMISSION_DENIED
                message: "the workflow is not accessible to this tenant",
            },
        }
    }

    fn label(self) -> &'static str {
        match self {
            Self::Missing => "missing",
            Self::Malformed => "malformed",
            Self::CrossTenant => "cross_tenant",
        }
    }
}

/// A request's tenant: the upstream `TenantId` extension first, then `header`.
pub(crate) fn resolve(
    headers: &HeaderMap,
    extensions: &Extensions,
    header: &HeaderName,
) -> Result<TenantId, Reason> {
    if let Some(tenant) = extensions.get::<TenantId>() {
        return Ok(tenant.clone());
    }
    let mut values = headers.get_all(header).iter();
    let value = values.next().ok_or(Reason::Missing)?;
    if values.next().is_some() {
        // Two tenants for one request: refuse rather than guess.
        return Err(Reason::Malformed);
    }
    TenantId::parse_bytes(value.as_bytes()).map_err(|_| Reason::Malformed)
}

/// The tenant of `request` (as the trace layer above `read` it, or else from the request
/// itself), checked against the workflow it is about (a [`StoredTrace`] the trace-context
/// layer found).
fn admit<B>(
    request: &Request<B>,
    read: Option<&Read>,
    header: &HeaderName,
) -> Result<TenantId, Reason> {
    let tenant = match read {
        Some(read) => read.tenant.clone()?,
        None => resolve(request.headers(), request.extensions(), header)?,
    };
    match request.extensions().get::<StoredTrace>() {
        Some(stored) if stored.tenant() != &tenant => Err(Reason::CrossTenant),
        _ => Ok(tenant),
    }
}

/// The tenant layer's service (see [`TenantLayer`](super::TenantLayer)).
#[derive(Debug, Clone)]
pub struct TenantService<S> {
    pub(crate) inner: S,
    pub(crate) config: Arc<TenantConfig>,
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
        let read = match self.config.under_trace_layer {
            true => request.extensions().get::<Read>(),
            false => None,
        };
        let protocol = read.map_or_else(|| Protocol::of(&request), |read| read.protocol);
        match admit(&request, read, &self.config.header) {
            Ok(tenant) => {
                // Every span started while the request is served, here or below,
                // gets `tenant.id` from the context (the pipeline's tenant processor).
                if read.is_some() {
                    // The admitted tenant is the one the trace layer above read, and put
                    // in the context it polls the future in.
                    request.extensions_mut().insert(tenant);
                    return ResponseFuture::passed(self.inner.call(request));
                }
                request.extensions_mut().insert(tenant.clone());
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
                // Recorded on the current (server) span; no request data.
                let current = opentelemetry::Context::current();
                let span = current.span();
                span.set_attribute(KeyValue::new(TENANT_REJECTED, reason.label()));
                span.add_event(
                    "tenant.rejected",
                    vec![
                        KeyValue::new(LABEL_REASON, reason.label()),
                        KeyValue::new(LABEL_PROTOCOL, protocol.label()),
                    ],
                );
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
