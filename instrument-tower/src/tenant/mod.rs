//! Tenant enforcement: every request has a valid tenant, and every span it makes says so.
//!
//! [`TenantLayer`] resolves the tenant, in order, from a
//! [`TenantId`](instrument_core::tenant::TenantId) request extension set by an upstream
//! auth layer, then from the `x-tenant-id` header (gRPC metadata key; configurable).
//!
//! | the request | gRPC | HTTP |
//! |---|---|---|
//! | has no tenant | `UNAUTHENTICATED` (16) | 401 |
//! | has a malformed tenant (or two) | `INVALID_ARGUMENT` (3) | 400 |
//! | is about another tenant's workflow | `PERMISSION_DENIED` (7) | 403 |
//!
//! A refusal says what to send instead, naming the header: in `grpc-message` for gRPC,
//! and for HTTP in a `text/plain` body when the [`InstrumentLayer`](crate::stack::InstrumentLayer)
//! answers (this layer alone answers in the service's body type, so with an empty
//! body). Refusals never reach the service, are counted in
//! `<prefix>_tenant_rejections_total{reason, protocol}` (reasons `missing`,
//! `malformed`, `other_tenant`; never the tenant itself), recorded as an event and a
//! `tenant.rejected` attribute on the current span, without request data, and logged
//! as a warning at most once per 10 seconds (the next warning says how many were held
//! back), so a client that never sends the header cannot flood the log. The
//! `InstrumentLayer` also measures them in the request metrics, with their status and
//! `tenant_id="unknown"`. The workflow a request is about is the
//! [`StoredTrace`](crate::source::StoredTrace) a trace layer above put in its
//! extensions. An accepted tenant is put in the request extensions and in the
//! OpenTelemetry context the service runs in, so the pipeline's tenant processor stamps
//! `tenant.id` on every span of the request. Paths of gRPC health checks and reflection
//! are exempt; add more with [`TenantLayer::exempt`].
//!
//! ```
//! use http::{Request, Response, StatusCode};
//! use instrument_tower::tenant::TenantLayer;
//! use instrument_core::tenant::{current_tenant, TenantId};
//! use tower::{Service as _, ServiceBuilder, ServiceExt as _};
//!
//! # #[tokio::main(flavor = "current_thread")] async fn main() {
//! let mut service = ServiceBuilder::new()
//!     .layer(TenantLayer::new())
//!     .service_fn(|request: Request<()>| async move {
//!         let tenant = request.extensions().get::<TenantId>().cloned();
//!         assert_eq!(tenant, current_tenant());
//!         Ok::<_, std::convert::Infallible>(Response::new(String::new()))
//!     });
//!
//! let request = Request::builder().header("x-tenant-id", "acme").body(()).unwrap();
//! assert_eq!(service.ready().await.unwrap().call(request).await.unwrap().status(), StatusCode::OK);
//!
//! let anonymous = Request::new(());
//! assert_eq!(service.ready().await.unwrap().call(anonymous).await.unwrap().status(), StatusCode::UNAUTHORIZED);
//! # }
//! ```

pub(crate) mod check;
mod future;
mod layer;
mod service;

pub use future::ResponseFuture;
pub use layer::TenantLayer;
pub use service::Tenant;

#[cfg(test)]
mod tests;
