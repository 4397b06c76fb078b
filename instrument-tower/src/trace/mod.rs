//! Server spans: one per request, in the workflow's stored trace.
//!
//! [`TraceLayer`] starts a server span (`otel.kind=server`) for every request:
//!
//! | | gRPC | HTTP |
//! |---|---|---|
//! | name | `package.Service/Method` | `{METHOD} {route}` |
//! | attributes | `rpc.system`, `rpc.service`, `rpc.method`, `rpc.grpc.status_code` | `http.request.method`, `http.route`, `http.response.status_code` |
//! | error status | what the classifier calls a failure (default: `UNKNOWN`, `DEADLINE_EXCEEDED`, `UNIMPLEMENTED`, `INTERNAL`, `UNAVAILABLE`, `DATA_LOSS`) | (default: 5xx) |
//!
//! The gRPC status is read from the response headers (trailers-only responses) or from
//! the trailers at the end of the body, so streaming calls are covered and the span
//! lasts as long as the response. Which responses are failures is tower-http's
//! classifier's call ([`crate::classify`]). An error returned by the inner service
//! sets the status and `error` (redacted, at most 1 KiB). A request whose future is
//! dropped before the response, or whose gRPC response stream is dropped before its
//! status, ends with `instrument.cancelled=true`.
//!
//! **Parent.** A [`TraceSource`](crate::source::TraceSource) (optional) finds the
//! request's stored trace, typically through its `x-workflow-id`; the caller's
//! `traceparent`/`tracestate` headers are read with instrument-core's strict parser.
//! The [`ParentPolicy`](instrument_core::context::ParentPolicy) combines them (default:
//! stored parent, the caller's span as a link). A stored trace of another tenant is
//! never joined. Why a stored or incoming context was not used is recorded
//! (`instrument.stored_parent.unused`, `instrument.incoming_parent.invalid`); the
//! request is never refused for it. The stored trace found is put in the request's
//! extensions ([`StoredTrace`](crate::source::StoredTrace)), where the tenant layer
//! checks it against the request's tenant.
//!
//! **Tenant.** The request's tenant (a `TenantId` extension or the `x-tenant-id`
//! header, as the tenant layer reads it) is put in the span's context, so the
//! pipeline's tenant processor stamps it; the tenant layer, placed inside this one,
//! enforces it.
//!
//! **Tracking and request ids.** Every response carries `x-tracking-id: <32-hex trace
//! id>` (name configurable, can be off), which a user can quote to support. A request
//! id set by tower-http's `SetRequestIdLayer` before this layer (`x-request-id`) is
//! recorded on the span as `http.request.header.x-request-id`.
//!
//! ```
//! use http::{Request, Response};
//! use instrument_tower::trace::TraceLayer;
//! use tower::{ServiceBuilder, ServiceExt as _};
//!
//! # #[tokio::main(flavor = "current_thread")] async fn main() {
//! let provider = opentelemetry_sdk::trace::SdkTracerProvider::builder().build();
//! let service = ServiceBuilder::new()
//!     .layer(TraceLayer::new().tracer(opentelemetry::trace::TracerProvider::tracer(&provider, "demo")))
//!     .service_fn(|_: Request<()>| async { Ok::<_, std::convert::Infallible>(Response::new(String::new())) });
//! let request = Request::builder()
//!     .uri("/workflows/42")
//!     .header("traceparent", "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01")
//!     .body(())
//!     .unwrap();
//! let response = service.oneshot(request).await.unwrap();
//! assert_eq!(response.headers()["x-tracking-id"], "4bf92f3577b34da6a3ce929d0e0e4736");
//! # }
//! ```

mod future;
mod layer;
mod service;
pub(crate) mod span;

pub use future::ResponseFuture;
pub use layer::TraceLayer;
pub use service::Trace;
pub(crate) use span::later_attributes;
pub use span::SpanEnd;

/// The response body of [`Trace`]: the inner body, which ends the span when it ends.
pub type ResponseBody<B, E = crate::classify::DefaultEos> =
    crate::body::ResponseBody<B, SpanEnd, E>;

#[cfg(test)]
mod tests;
