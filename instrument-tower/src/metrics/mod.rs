//! Request metrics: count, duration, errors and requests in flight.
//!
//! [`RequestMetricsLayer`] records, through the `metrics` facade (so through the
//! [`LabelGuard`](instrument_core::cardinality::LabelGuard) when the recorder is a
//! [`GuardedRecorder`](instrument_core::cardinality::GuardedRecorder), as
//! `install_prometheus` sets up):
//!
//! | metric (default prefix) | kind | labels |
//! |---|---|---|
//! | `instrument_requests_total` | counter | route labels, `status`, `tenant_id` |
//! | `instrument_request_duration_seconds` | histogram | route labels, `status`, `tenant_id` |
//! | `instrument_request_errors_total` | counter | route labels, `status`, `tenant_id` |
//! | `instrument_requests_in_flight` | gauge | `tenant_id` |
//!
//! Route labels are `rpc_service` and `rpc_method` for gRPC, `method` and `route`
//! (from the route hook) for HTTP, set when the request ends: only a method or route
//! the server recognised is a label value, any other is `_OTHER` (see
//! [what a client can put in a label](crate#what-a-client-can-put-in-a-label)); the
//! in-flight gauge, counted from the request's start, is labelled by tenant only.
//! `status` is the gRPC code name
//! (`OK`, `NOT_FOUND`, ...) or the HTTP status class (`2xx`, ...); `error` when the
//! service failed and `cancelled` when the request was dropped before its response (a
//! gRPC stream dropped after its headers, before its status, is `CANCELLED`).
//! Errors are what the classifier calls failures, as for the server span (by default
//! 5xx, and the gRPC codes of a server fault: `UNKNOWN`, `DEADLINE_EXCEEDED`,
//! `UNIMPLEMENTED`, `INTERNAL`, `UNAVAILABLE`, `DATA_LOSS`; see
//! [`classify`](crate::classify)). `tenant_id` comes from the `TenantId` request extension the tenant
//! layer sets (`unknown` without one), so place this layer inside the tenant layer
//! (as [`InstrumentLayer`](crate::stack::InstrumentLayer) does); requests the tenant
//! layer refuses are counted in its own rejection counter.
//!
//! Duration and in-flight cover the whole response: a streaming response counts until
//! its body ends; a request dropped at any point leaves the in-flight gauge.
//!
//! The layer keeps its metric handles per label set, so a request does not register
//! its metrics again, but only under a recorder the pipeline installed
//! (`install_prometheus`); under any other recorder (a test's local one) every request
//! registers its metrics: correct, about 1 µs slower.
//!
//! ```
//! use http::{Request, Response};
//! use instrument_tower::metrics::RequestMetricsLayer;
//! use tower::{ServiceBuilder, ServiceExt as _};
//!
//! # #[tokio::main(flavor = "current_thread")] async fn main() {
//! let service = ServiceBuilder::new()
//!     .layer(RequestMetricsLayer::new())
//!     .service_fn(|_: Request<()>| async { Ok::<_, std::convert::Infallible>(Response::new(String::new())) });
//! let response = service.oneshot(Request::new(())).await.unwrap();
//! assert!(response.status().is_success());
//! # }
//! ```

mod future;
mod layer;
pub(crate) mod measure;
mod service;

pub use future::ResponseFuture;
pub use layer::RequestMetricsLayer;
pub use measure::{
    Measure, LABEL_METHOD, LABEL_ROUTE, LABEL_RPC_METHOD, LABEL_RPC_SERVICE, UNKNOWN,
};
pub use service::RequestMetrics;

/// The response body of [`RequestMetrics`]: the inner body, which finishes the
/// measurement when it ends.
pub type ResponseBody<B, E = crate::classify::DefaultEos> =
    crate::body::ResponseBody<B, Measure, E>;

#[cfg(test)]
mod tests;
