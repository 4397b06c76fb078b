//! [`MetricsFuture`] and [`Measure`]: the measurement of one request, finished when its
//! response body ends or when it is dropped.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{ready, Context, Poll};
use std::time::Instant;

use http::Response;
use instrument_core::cardinality::status_group;
use pin_project::{pin_project, pinned_drop};

use super::handles::Handles;
use super::layer::MetricsConfig;
use crate::body::{Head, Observe, ObservedBody, Outcome};
use crate::protocol::{grpc_code_name, grpc_is_server_error, http_is_server_error, Protocol};

/// The measurement of one request (an opaque part of the layer's response body type).
/// It is in the in-flight gauge from its start until it finishes or is dropped.
pub struct Measure {
    config: Arc<MetricsConfig>,
    protocol: Protocol,
    handles: Arc<Handles>,
    start: Instant,
}

impl std::fmt::Debug for Measure {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Measure")
            .field("protocol", &self.protocol)
            .field("handles", &self.handles)
            .finish_non_exhaustive()
    }
}

impl Measure {
    pub(crate) fn start(
        config: Arc<MetricsConfig>,
        protocol: Protocol,
        handles: Arc<Handles>,
        start: Instant,
    ) -> Self {
        handles.in_flight.increment(1.0);
        Self {
            config,
            protocol,
            handles,
            start,
        }
    }

    /// The `status` label and whether the request counts as an error.
    fn status(&self, outcome: Outcome) -> (&'static str, bool) {
        match outcome {
            Outcome::Responded {
                http,
                grpc,
                body_failed,
                ..
            } => match (self.protocol, grpc) {
                (_, _) if body_failed => ("error", true),
                (Protocol::Grpc, Some(code)) => (grpc_code_name(code), grpc_is_server_error(code)),
                _ => (status_group(http), http_is_server_error(http)),
            },
            Outcome::Failed => ("error", true),
            Outcome::Cancelled => ("cancelled", false),
        }
    }
}

impl Observe for Measure {
    fn finish(self, outcome: Outcome) {
        let (status, error) = self.status(outcome);
        self.handles.in_flight.decrement(1.0);
        let seconds = self.start.elapsed().as_secs_f64();
        self.handles.record(&self.config, status, error, seconds);
    }
}

/// The response future of [`MetricsService`](super::MetricsService). Dropped before the
/// response, it records the request as `cancelled`.
#[pin_project(PinnedDrop)]
pub struct MetricsFuture<F> {
    #[pin]
    future: F,
    measure: Option<Measure>,
}

impl<F> std::fmt::Debug for MetricsFuture<F> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MetricsFuture")
            .field("measure", &self.measure)
            .finish_non_exhaustive()
    }
}

impl<F> MetricsFuture<F> {
    pub(crate) fn new(future: F, measure: Measure) -> Self {
        Self {
            future,
            measure: Some(measure),
        }
    }
}

impl<F, B, E> Future for MetricsFuture<F>
where
    F: Future<Output = Result<Response<B>, E>>,
    B: http_body::Body,
{
    type Output = Result<Response<ObservedBody<B, Measure>>, E>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = self.project();
        let result = ready!(this.future.poll(cx));
        let Some(measure) = this.measure.take() else {
            // Polled after completion: stay pending rather than panic.
            return Poll::Pending;
        };
        Poll::Ready(match result {
            Ok(response) => {
                let head = Head::of(measure.protocol, &response);
                Ok(ObservedBody::wrap(response, head, measure))
            }
            Err(e) => {
                measure.finish(Outcome::Failed);
                Err(e)
            }
        })
    }
}

#[pinned_drop]
impl<F> PinnedDrop for MetricsFuture<F> {
    fn drop(self: Pin<&mut Self>) {
        if let Some(measure) = self.project().measure.take() {
            measure.finish(Outcome::Cancelled);
        }
    }
}
