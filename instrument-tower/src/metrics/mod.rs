//! Request metrics: count, duration, errors and requests in flight.
//!
//! [`RequestMetricsLayer`] records, through the `metrics` facade (so through the
//! [`LabelGuard`](instrument_core::cardinality::LabelGuard) when the recorder is a
//! [`GuardedRecorder`](instrument_core::cardinality::GuardedRecorder), as
//! `install_prometheus` sets up), by default the OpenTelemetry semantic conventions'
//! request metrics in their Prometheus form:
//!
//! | metric | kind | labels |
//! |---|---|---|
//! | `http_server_request_duration_seconds` | histogram | `http_request_method`, `http_route`, `http_response_status_code`, `error_type` (failures), `tenant_id` |
//! | `rpc_server_call_duration_seconds` | histogram | `rpc_system_name`, `rpc_method` (`package.Service/Method`), `rpc_response_status_code`, `error_type` (failures), `tenant_id` |
//! | `http_server_active_requests` | gauge | `tenant_id` |
//! | `instrument_rpc_server_active_calls` | gauge | `tenant_id` |
//!
//! A histogram's `_count` is the request count, and `error_type` (the status code, or
//! `_OTHER` when the service failed without one) marks what the classifier called a
//! failure, so the error ratio is
//! `sum(rate(http_server_request_duration_seconds_count{error_type!=""}[5m])) / sum(rate(http_server_request_duration_seconds_count[5m]))`.
//! A request dropped before its response has no status code and no `error_type`.
//!
//! With [`MetricNames::prefixed`](instrument_core::semconv::MetricNames::prefixed) (the
//! prefixed scheme) the same measurements are `<prefix>_requests_total`,
//! `<prefix>_request_duration_seconds`, `<prefix>_request_errors_total` (counters and
//! histogram labelled `rpc_service` / `rpc_method` or `method` / `route`, `status`,
//! `tenant_id`) and `<prefix>_requests_in_flight` (`tenant_id`); `status` is the gRPC
//! code name (`OK`, `NOT_FOUND`, ...) or the HTTP status class (`2xx`, ...), `error`
//! when the service failed and `cancelled` when the request was dropped before its
//! response.
//!
//! Methods and routes are set when the request ends: only a method or route the server
//! recognised is a label value, any other is `_OTHER` (see
//! [what a client can put in a label](crate#what-a-client-can-put-in-a-label)); the
//! in-flight gauges, counted from the request's start, are labelled by tenant only.
//! A gRPC stream dropped after its headers, before its status, is `CANCELLED`.
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
