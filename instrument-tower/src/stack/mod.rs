//! [`InstrumentLayer`]: the trace, tenant and request-metrics stages in one service,
//! in the order they need.
//!
//! A request is read once ([`RequestFacts`](crate::request)), then, in order:
//! 1. the **trace** stage starts the server span, so that anything below, a refusal
//!    included, is recorded on it, and finds the stored trace the tenant check needs;
//! 2. the **tenant** stage refuses requests without a valid tenant, or for another
//!    tenant's workflow, and admits the others with their tenant in the extensions and
//!    the context;
//! 3. the **metrics** stage measures the admitted request, labelled with its tenant.
//!
//! One response future and one response body end the span and the measurement
//! together. The stages are the same code the standalone layers run
//! ([`TraceLayer`](crate::trace::TraceLayer), [`TenantLayer`](crate::tenant::TenantLayer),
//! [`RequestMetricsLayer`](crate::metrics::RequestMetricsLayer)); the stack only saves
//! reading the request three times and three futures and bodies per request.
//!
//! The same stack suits tonic (`Server::builder().layer(...)`) and a plain HTTP
//! `tower::ServiceBuilder`.
//!
//! **Beside tower-http.** The stack takes tower-http's classifiers
//! ([`classifier`](InstrumentBuilder::classifier)), never records a header value
//! tower-http's `SetSensitiveRequestHeadersLayer` marked sensitive, and records the
//! `x-request-id` tower-http's `SetRequestIdLayer` set; put those two outside this
//! layer. tower-http's own `TraceLayer` goes inside it: its span (and any other
//! `tracing` span of the request) is then a child of the server span, in the workflow's
//! trace, not a second root. The `x-tracking-id` header and `PropagateRequestIdLayer`'s
//! `x-request-id` both reach the client: the first names the trace, the second the
//! request. Inside axum's router (`Router::layer`), the route it matched is
//! `http.route` with [`route_with(MatchedPath)`](crate::request) (feature `axum`; [`DefaultRoute`](crate::request::DefaultRoute) reads it already).
//!
//! ```
//! use http::HeaderName;
//! use instrument_tower::stack::InstrumentLayer;
//! use tower::ServiceBuilder;
//! use tower_http::request_id::{MakeRequestUuid, PropagateRequestIdLayer, SetRequestIdLayer};
//! use tower_http::sensitive_headers::SetSensitiveRequestHeadersLayer;
//!
//! let x_contact = HeaderName::from_static("x-contact");
//! let stack = ServiceBuilder::new()
//!     .layer(SetRequestIdLayer::x_request_id(MakeRequestUuid))
//!     .layer(PropagateRequestIdLayer::x_request_id())
//!     .layer(SetSensitiveRequestHeadersLayer::new([x_contact.clone()]))
//!     .layer(InstrumentLayer::builder().record_headers([x_contact]).build())
//!     .layer(tower_http::trace::TraceLayer::new_for_http());
//! # let _ = stack;
//! ```
//!
//! ```
//! use http::{HeaderName, Request, Response, StatusCode};
//! use instrument_tower::stack::InstrumentLayer;
//! use tower::{ServiceBuilder, ServiceExt as _};
//!
//! # #[tokio::main(flavor = "current_thread")] async fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let layer = InstrumentLayer::builder()
//!     .record_headers([HeaderName::from_static("user-agent")])
//!     .filter(|parts: &http::request::Parts| parts.uri.path() == "/healthz")
//!     .build();
//! let service = ServiceBuilder::new()
//!     .layer(layer)
//!     .service_fn(|_: Request<()>| async { Ok::<_, std::convert::Infallible>(Response::new(String::new())) });
//! let request = Request::builder().uri("/workflows").header("x-tenant-id", "acme").body(())?;
//! let response = service.oneshot(request).await?;
//! assert_eq!(response.status(), StatusCode::OK);
//! # Ok(()) }
//! ```

mod future;
mod layer;
mod service;

pub use future::ResponseFuture;
pub use layer::{InstrumentBuilder, InstrumentLayer};
pub use service::Instrument;

use std::sync::Arc;

use crate::body::{Observe, Outcome};
use crate::metrics::measure::Metered;
use crate::names::Names;
use crate::trace::span::{self, Started};
use layer::Stages;

/// Ends the span and the measurement of a request together (an opaque part of
/// [`ResponseBody`]): what the request started with, and the stages' shared
/// configuration.
#[derive(Debug)]
pub struct Finish {
    stages: Arc<Stages>,
    started: Started,
    metered: Metered,
    /// Refused by the tenant stage: its answer, not the service's.
    refused: bool,
    /// The response's messages, when they are recorded.
    messages: Option<Box<crate::messages::Messages>>,
}

impl Observe for Finish {
    fn data(&mut self, chunk: &[u8]) {
        let Self {
            messages: Some(messages),
            stages,
            started,
            ..
        } = self
        else {
            return;
        };
        // A method that answers with messages is implemented: named as its end will be.
        messages.data(chunk, &started.cx, || {
            crate::messages::grpc_method(stages.span.names.streaming(&started.looked).labels())
        });
    }

    fn finish(mut self, outcome: &Outcome) {
        let looked = &self.started.looked;
        let span = &self.stages.span;
        // Settled once for both stages. A refusal is the tenant check's answer, not the
        // service's: it recognises nothing.
        let settled = if self.refused {
            Names::unanswered(looked)
        } else {
            span.names.settle(looked, outcome)
        };
        if let Some(messages) = self.messages.take() {
            messages.finish(&self.started.cx, || {
                crate::messages::grpc_method(settled.labels())
            });
        }
        // The measurement first: its duration should not include the span's export.
        self.metered.finish(&self.stages.metrics, settled, outcome);
        span::end(span, &self.started, outcome, settled);
    }
}

/// The response body of [`Instrument`]: the inner body, which ends the span and the
/// measurement when it ends.
pub type ResponseBody<B, E = crate::classify::DefaultEos> = crate::body::ResponseBody<B, Finish, E>;

#[cfg(test)]
mod tests;
