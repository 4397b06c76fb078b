//! The parts of "the usual stack" peer that opentelemetry and tower-http leave to the
//! team: a header carrier for the SDK's propagator, and axum-prometheus's request
//! metrics. Shared by the benches (`support`) and `examples/loadgen.rs` (by path), so
//! both measure the same peer.

use std::future::Future;
use std::pin::Pin;
use std::task::{Context as TaskContext, Poll};
use std::time::Instant;

use opentelemetry::propagation::Extractor;

/// `http::HeaderMap` as an OpenTelemetry carrier (what `opentelemetry-http` provides).
pub struct Headers<'a>(pub &'a http::HeaderMap);

impl Extractor for Headers<'_> {
    fn get(&self, key: &str) -> Option<&str> {
        self.0.get(key).and_then(|v| v.to_str().ok())
    }

    fn keys(&self) -> Vec<&str> {
        self.0.keys().map(http::HeaderName::as_str).collect()
    }
}

/// axum-prometheus's metrics: requests counted and timed by method, endpoint, status.
#[derive(Clone)]
pub struct PrometheusMetrics<S>(pub S);

impl<S, B, R> tower::Service<http::Request<B>> for PrometheusMetrics<S>
where
    S: tower::Service<http::Request<B>, Response = http::Response<R>>,
{
    type Response = S::Response;
    type Error = S::Error;
    type Future = MetricsFuture<S::Future>;

    fn poll_ready(&mut self, cx: &mut TaskContext<'_>) -> Poll<Result<(), S::Error>> {
        self.0.poll_ready(cx)
    }

    fn call(&mut self, request: http::Request<B>) -> Self::Future {
        MetricsFuture {
            method: request.method().as_str().to_owned(),
            endpoint: request.uri().path().to_owned(),
            start: Instant::now(),
            inner: self.0.call(request),
        }
    }
}

/// [`PrometheusMetrics`]' future: records when the response is ready.
#[pin_project::pin_project]
pub struct MetricsFuture<F> {
    #[pin]
    inner: F,
    method: String,
    endpoint: String,
    start: Instant,
}

impl<F, R, E> Future for MetricsFuture<F>
where
    F: Future<Output = Result<http::Response<R>, E>>,
{
    type Output = F::Output;

    fn poll(self: Pin<&mut Self>, cx: &mut TaskContext<'_>) -> Poll<Self::Output> {
        let this = self.project();
        let result = std::task::ready!(this.inner.poll(cx));
        let status = match &result {
            Ok(response) => response.status().as_u16().to_string(),
            Err(_) => "500".to_owned(),
        };
        let labels = [
            ("method", std::mem::take(this.method)),
            ("endpoint", std::mem::take(this.endpoint)),
            ("status", status),
        ];
        metrics::counter!("axum_http_requests_total", &labels).increment(1);
        metrics::histogram!("axum_http_requests_duration_seconds", &labels)
            .record(this.start.elapsed().as_secs_f64());
        Poll::Ready(result)
    }
}
