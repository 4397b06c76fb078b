//! Metrics: a Prometheus recorder behind the [`LabelGuard`], and a `/metrics`
//! endpoint (feature `prometheus`).

use std::convert::Infallible;
use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;

use http_body_util::Full;
use hyper::body::{Bytes, Incoming};
use hyper::{header, Method, Request, Response, StatusCode};
use metrics_exporter_prometheus::{
    Matcher, PrometheusBuilder, PrometheusHandle, PrometheusRecorder,
};
use tokio::net::TcpListener;

use crate::cardinality::{GuardedRecorder, LabelGuard};
use crate::semconv::{MetricNames, REQUEST_DURATION_BUCKETS, WORK_DURATION_BUCKETS};

/// Default address of the metrics endpoint.
pub const DEFAULT_METRICS_ADDR: &str = "127.0.0.1:9464";
/// Default path of the metrics endpoint.
pub const DEFAULT_METRICS_PATH: &str = "/metrics";

/// The content type of the Prometheus text exposition format.
const TEXT_FORMAT: &str = "text/plain; version=0.0.4; charset=utf-8";

/// The recorder could not be installed.
#[derive(Debug)]
#[non_exhaustive]
pub enum MetricsError {
    /// Another `metrics` recorder is already installed.
    RecorderAlreadySet,
    /// The bucket configuration was refused.
    Buckets(String),
}

impl std::fmt::Display for MetricsError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::RecorderAlreadySet => {
                f.write_str("metrics: a global recorder is already installed")
            }
            Self::Buckets(e) => write!(f, "metrics: histogram buckets: {e}"),
        }
    }
}

impl std::error::Error for MetricsError {}

/// The Prometheus recorder wrapped in a [`GuardedRecorder`], and the handle that
/// renders what it holds.
///
/// Histograms named `*_request_duration_seconds` get [`REQUEST_DURATION_BUCKETS`];
/// every other `*_duration_seconds` gets [`WORK_DURATION_BUCKETS`] (workflows run for
/// days).
///
/// ```
/// use instrument_core::cardinality::LabelGuard;
/// use instrument_core::pipeline::prometheus_recorder;
/// use instrument_core::semconv::MetricNames;
///
/// let (recorder, handle) = prometheus_recorder(LabelGuard::default(), &MetricNames::default())?;
/// metrics::with_local_recorder(&recorder, || {
///     metrics::counter!("instrument_workflows_started_total", "tenant_id" => "acme").increment(1);
/// });
/// assert!(handle.render().contains("instrument_workflows_started_total{tenant_id=\"acme\"} 1"));
/// # Ok::<(), instrument_core::pipeline::MetricsError>(())
/// ```
pub fn prometheus_recorder(
    guard: LabelGuard,
    names: &MetricNames,
) -> Result<(GuardedRecorder<PrometheusRecorder>, PrometheusHandle), MetricsError> {
    // The exporter tries its matchers in its own order (full names, then prefixes,
    // then suffixes, each alphabetically), not in the order they are set: the request
    // histogram is matched by its full name, so the work histograms' suffix rule
    // (`_duration_seconds`, which it also ends with) cannot give it day-long buckets.
    let recorder = PrometheusBuilder::new()
        .set_buckets_for_metric(
            Matcher::Full(names.request_duration()),
            REQUEST_DURATION_BUCKETS,
        )
        .and_then(|b| {
            b.set_buckets_for_metric(
                Matcher::Suffix("_duration_seconds".into()),
                WORK_DURATION_BUCKETS,
            )
        })
        .map_err(|e| MetricsError::Buckets(e.to_string()))?
        .build_recorder();
    let handle = recorder.handle();
    let guarded = GuardedRecorder::new(recorder, guard, names);
    // HELP text for the toolkit's own metrics: promtool rejects metrics without it.
    metrics::with_local_recorder(&guarded, || names.describe());
    Ok((guarded, handle))
}

/// Installs [`prometheus_recorder`] as the process's `metrics` recorder, so that every
/// `counter!`, `gauge!` and `histogram!` anywhere is capped and redacted, and makes
/// `names` the process-wide [`MetricNames`] (unless some were set before).
pub fn install_prometheus(
    guard: LabelGuard,
    names: &MetricNames,
) -> Result<PrometheusHandle, MetricsError> {
    let (recorder, handle) = prometheus_recorder(guard, names)?;
    metrics::set_global_recorder(recorder).map_err(|_| MetricsError::RecorderAlreadySet)?;
    // `#[workflow_span]` and the layers name their metrics as this recorder expects.
    let _ = names.clone().set_global();
    // Kept for the rest of the program: metric handles may be kept for it.
    crate::cardinality::keep_handles_for_global();
    Ok(handle)
}

/// The `/metrics` endpoint: serves `handle` on `listener` until `shutdown` completes.
///
/// Only `GET` and `HEAD` of `path` are answered. With a `bearer_token`, a request
/// without `Authorization: Bearer <token>` gets 401; the rejected token is never
/// logged. Seed 004 requires the endpoint to be protected in production.
///
/// ```no_run
/// # async fn run(handle: metrics_exporter_prometheus::PrometheusHandle) -> std::io::Result<()> {
/// use instrument_core::pipeline::{serve_metrics, DEFAULT_METRICS_ADDR};
///
/// let listener = tokio::net::TcpListener::bind(DEFAULT_METRICS_ADDR).await?;
/// serve_metrics(listener, handle, "/metrics", Some("s3cret".into()), std::future::pending()).await
/// # }
/// ```
pub async fn serve_metrics(
    listener: TcpListener,
    handle: PrometheusHandle,
    path: &str,
    bearer_token: Option<String>,
    shutdown: impl Future<Output = ()>,
) -> std::io::Result<()> {
    let endpoint = Arc::new(Endpoint {
        handle,
        path: path.to_owned(),
        expected: bearer_token.map(|t| format!("Bearer {t}").into_bytes()),
    });
    tokio::pin!(shutdown);
    loop {
        let (stream, _peer): (_, SocketAddr) = tokio::select! {
            accepted = listener.accept() => accepted?,
            () = &mut shutdown => return Ok(()),
        };
        let endpoint = Arc::clone(&endpoint);
        tokio::spawn(async move {
            let service = hyper::service::service_fn(move |request| {
                let endpoint = Arc::clone(&endpoint);
                async move { Ok::<_, Infallible>(endpoint.answer(&request)) }
            });
            // A client that misbehaves only loses its own connection.
            let _ = hyper::server::conn::http1::Builder::new()
                .serve_connection(hyper_util::rt::TokioIo::new(stream), service)
                .await;
        });
    }
}

struct Endpoint {
    handle: PrometheusHandle,
    path: String,
    expected: Option<Vec<u8>>,
}

impl Endpoint {
    fn answer(&self, request: &Request<Incoming>) -> Response<Full<Bytes>> {
        if request.uri().path() != self.path {
            return plain(StatusCode::NOT_FOUND, "not found\n");
        }
        if request.method() != Method::GET && request.method() != Method::HEAD {
            return plain(StatusCode::METHOD_NOT_ALLOWED, "method not allowed\n");
        }
        if let Some(expected) = &self.expected {
            let given = request
                .headers()
                .get(header::AUTHORIZATION)
                .map_or(&[][..], |v| v.as_bytes());
            if !constant_time_eq(given, expected) {
                tracing::warn!(path = %self.path, "metrics endpoint refused a request without a valid bearer token");
                let mut response = plain(StatusCode::UNAUTHORIZED, "unauthorized\n");
                response.headers_mut().insert(
                    header::WWW_AUTHENTICATE,
                    header::HeaderValue::from_static("Bearer"),
                );
                return response;
            }
        }
        self.handle.run_upkeep();
        let mut response = Response::new(Full::new(Bytes::from(self.handle.render())));
        response.headers_mut().insert(
            header::CONTENT_TYPE,
            header::HeaderValue::from_static(TEXT_FORMAT),
        );
        response
    }
}

fn plain(status: StatusCode, body: &'static str) -> Response<Full<Bytes>> {
    let mut response = Response::new(Full::new(Bytes::from_static(body.as_bytes())));
    *response.status_mut() = status;
    response
}

/// Compares without an early exit on the first differing byte, so response time does
/// not reveal how much of a guessed token was right.
fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The `le` bounds of `metric`'s buckets in `exposition`.
    fn bounds(exposition: &str, metric: &str) -> Vec<String> {
        let prefix = format!("{metric}_bucket{{");
        let mut bounds: Vec<String> = exposition
            .lines()
            .filter(|l| l.starts_with(&prefix))
            .filter_map(|l| l.split("le=\"").nth(1)?.split('"').next().map(str::to_owned))
            .collect();
        bounds.dedup();
        bounds
    }

    #[test]
    fn request_histograms_get_request_buckets_and_work_histograms_work_buckets() {
        for names in [MetricNames::default(), MetricNames::new("flows").unwrap()] {
            let (recorder, handle) = prometheus_recorder(LabelGuard::default(), &names).unwrap();
            metrics::with_local_recorder(&recorder, || {
                metrics::histogram!(names.request_duration(), "route" => "/x").record(0.002);
                metrics::histogram!(names.tasks().duration, "tenant_id" => "a").record(0.5);
            });
            let exposition = handle.render();
            let expected = |buckets: &[f64]| {
                let mut v: Vec<String> = buckets.iter().map(f64::to_string).collect();
                v.push("+Inf".to_owned());
                v
            };
            assert_eq!(
                bounds(&exposition, &names.request_duration()),
                expected(REQUEST_DURATION_BUCKETS),
                "{exposition}"
            );
            assert_eq!(
                bounds(&exposition, &names.tasks().duration),
                expected(WORK_DURATION_BUCKETS)
            );
        }
    }

    #[test]
    fn token_comparison() {
        assert!(constant_time_eq(b"Bearer a", b"Bearer a"));
        assert!(!constant_time_eq(b"Bearer b", b"Bearer a"));
        assert!(!constant_time_eq(b"Bearer", b"Bearer a"));
        assert!(!constant_time_eq(b"", b"Bearer a"));
    }
}
