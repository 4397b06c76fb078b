//! Metrics: a Prometheus recorder behind the [`LabelGuard`], and a `/metrics`
//! endpoint (feature `prometheus`).

use std::convert::Infallible;
use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use http_body_util::Full;
use hyper::body::{Bytes, Incoming};
use hyper::{header, Method, Request, Response, StatusCode};
use metrics_exporter_prometheus::{
    Matcher, PrometheusBuilder, PrometheusHandle, PrometheusRecorder,
};
use subtle::ConstantTimeEq as _;
use tokio::net::TcpListener;

use super::MetricsError;
use crate::cardinality::{GuardedRecorder, LabelGuard};
use crate::semconv::{BucketRule, MetricNames};

/// Default address of the metrics endpoint.
pub const DEFAULT_METRICS_ADDR: &str = "127.0.0.1:9464";
/// Default path of the metrics endpoint.
pub const DEFAULT_METRICS_PATH: &str = "/metrics";

/// The content type of the Prometheus text exposition format.
const TEXT_FORMAT: &str = "text/plain; version=0.0.4; charset=utf-8";

/// The Prometheus recorder wrapped in a [`GuardedRecorder`], and the handle that
/// renders what it holds.
///
/// The conventions' request histograms (`http_server_request_duration_seconds`,
/// `rpc_server_call_duration_seconds`) get the buckets the conventions advise
/// ([`CONVENTION_DURATION_BUCKETS`](crate::semconv::CONVENTION_DURATION_BUCKETS)); the
/// the prefixed scheme's `<prefix>_request_duration_seconds`, the handler histograms of
/// `#[workflow_span]` (`*_handler_seconds`) and the export durations get
/// [`REQUEST_DURATION_BUCKETS`](crate::semconv::REQUEST_DURATION_BUCKETS); every other
/// `*_duration_seconds` gets [`WORK_DURATION_BUCKETS`](crate::semconv::WORK_DURATION_BUCKETS)
/// (workflows run for days).
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
    // then suffixes, each alphabetically), as `bucket_rules` expects.
    let mut builder = PrometheusBuilder::new();
    for (rule, buckets) in names.bucket_rules() {
        let matcher = match rule {
            BucketRule::Full(name) => Matcher::Full(name),
            BucketRule::Suffix(end) => Matcher::Suffix(end.to_owned()),
        };
        builder = builder
            .set_buckets_for_metric(matcher, buckets)
            .map_err(|e| MetricsError::Buckets(e.to_string()))?;
    }
    let recorder = builder.build_recorder();
    let handle = recorder.handle();
    let guarded = GuardedRecorder::new(recorder, guard, names);
    // HELP text for the toolkit's own metrics: promtool rejects metrics without it.
    metrics::with_local_recorder(&guarded, || names.describe());
    Ok((guarded, handle))
}

/// Installs [`prometheus_recorder`] as the process's `metrics` recorder, so that every
/// `counter!`, `gauge!` and `histogram!` anywhere is capped and redacted, and makes
/// `names` the process-wide [`MetricNames`] (unless some were set before).
///
/// It also starts a thread that folds the histograms' recorded values into their
/// buckets every 5 s ([`UPKEEP_PERIOD`]). The exporter keeps each histogram value until
/// then (or until a scrape, which does the same): without it, a process nobody scrapes
/// would hold every value it ever recorded. A recorder from [`prometheus_recorder`]
/// needs `handle.run_upkeep()` called the same way.
pub fn install_prometheus(
    guard: LabelGuard,
    names: &MetricNames,
) -> Result<PrometheusHandle, MetricsError> {
    let (recorder, handle) = prometheus_recorder(guard, names)?;
    // Kept for the rest of the program: metric handles may be kept for it.
    recorder.declare_once_global();
    metrics::set_global_recorder(recorder).map_err(|_| MetricsError::RecorderAlreadySet)?;
    // `#[workflow_span]` and the layers name their metrics as this recorder expects.
    let _ = names.clone().set_global();
    let upkeep = handle.clone();
    let spawned = std::thread::Builder::new()
        .name("instrument-metrics-upkeep".into())
        .spawn(move || loop {
            std::thread::sleep(UPKEEP_PERIOD);
            upkeep.run_upkeep();
        });
    if let Err(e) = spawned {
        tracing::warn!(error = %e, "no thread for the metrics upkeep: histogram values are folded only when scraped");
    }
    Ok(handle)
}

/// How often [`install_prometheus`]'s thread folds histogram values into buckets.
pub const UPKEEP_PERIOD: Duration = Duration::from_secs(5);

/// How the `/metrics` server protects itself from clients that misbehave.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub struct MetricsLimits {
    /// A connection that has not sent a whole request head within this time (a slow
    /// client, or a kept-alive connection gone quiet) is closed. Default 5 s.
    pub header_read_timeout: Duration,
    /// Connections served at once; one more is closed as soon as it is accepted.
    /// Default 1,024.
    pub max_connections: usize,
    /// Longest request head (request line and headers), in bytes; a longer one is
    /// refused with 431. Default 8 KiB (hyper's smallest buffer).
    pub max_head_bytes: usize,
    /// A connection is closed after this long, whatever it does. Default 5 minutes.
    pub max_connection_age: Duration,
}

impl Default for MetricsLimits {
    fn default() -> Self {
        Self {
            header_read_timeout: Duration::from_secs(5),
            max_connections: 1024,
            max_head_bytes: 8 * 1024,
            max_connection_age: Duration::from_secs(300),
        }
    }
}

/// The `/metrics` endpoint: serves `handle` on `listener` until `shutdown` completes,
/// within the default [`MetricsLimits`].
///
/// Only `GET` and `HEAD` of `path` are answered, over HTTP/1.1. With a `bearer_token`,
/// a request without `Authorization: Bearer <token>` gets 401 (compared in constant
/// time); the rejected token is never logged. Protect it in production: the
/// exposition names every tenant and route. Behind a router and authentication of your own, mount
/// [`MetricsService`] instead.
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
    let service = MetricsService::new(handle, path, bearer_token);
    serve_metrics_with(listener, service, MetricsLimits::default(), shutdown).await
}

/// [`serve_metrics`] with `service` and `limits` of your choosing.
pub async fn serve_metrics_with(
    listener: TcpListener,
    service: MetricsService,
    limits: MetricsLimits,
    shutdown: impl Future<Output = ()>,
) -> std::io::Result<()> {
    let slots = Arc::new(tokio::sync::Semaphore::new(limits.max_connections.max(1)));
    tokio::pin!(shutdown);
    loop {
        let (stream, _peer): (_, SocketAddr) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(accepted) => accepted,
                // Out of file descriptors and the like: wait, do not stop serving.
                Err(e) if is_transient(&e) => {
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
                Err(e) => return Err(e),
            },
            () = &mut shutdown => return Ok(()),
        };
        let Ok(slot) = Arc::clone(&slots).try_acquire_owned() else {
            // Full: this connection is closed at once (dropped).
            continue;
        };
        let service = service.clone();
        tokio::spawn(async move {
            let _slot = slot;
            let hyper_service = hyper::service::service_fn(move |request: Request<Incoming>| {
                let response = service.answer(&request);
                async move { Ok::<_, Infallible>(response) }
            });
            let connection = hyper::server::conn::http1::Builder::new()
                .timer(hyper_util::rt::TokioTimer::new())
                .header_read_timeout(limits.header_read_timeout)
                .max_buf_size(limits.max_head_bytes.max(8192))
                .serve_connection(hyper_util::rt::TokioIo::new(stream), hyper_service);
            // A client that misbehaves only loses its own connection.
            let _ = tokio::time::timeout(limits.max_connection_age, connection).await;
        });
    }
}

/// An accept error after which the listener still works.
fn is_transient(e: &std::io::Error) -> bool {
    !matches!(
        e.kind(),
        std::io::ErrorKind::InvalidInput | std::io::ErrorKind::PermissionDenied
    )
}

/// The `/metrics` endpoint as a tower `Service` (any request body), to mount behind a
/// router and authentication of your own: `GET` / `HEAD` of its path render the
/// exposition; with a bearer token, requests without it get 401 (compared in constant
/// time, never logged).
///
/// ```
/// use instrument_core::cardinality::LabelGuard;
/// use instrument_core::pipeline::{prometheus_recorder, MetricsService};
/// use instrument_core::semconv::MetricNames;
/// use tower_service::Service as _;
///
/// let (_recorder, handle) = prometheus_recorder(LabelGuard::default(), &MetricNames::default())?;
/// let mut service = MetricsService::new(handle, "/metrics", None);
/// let request = hyper::Request::get("/metrics").body(()).unwrap();
/// let response = service.call(request).into_inner().unwrap();
/// assert_eq!(response.status(), 200);
/// # Ok::<(), instrument_core::pipeline::MetricsError>(())
/// ```
#[derive(Clone)]
pub struct MetricsService {
    endpoint: Arc<Endpoint>,
}

impl std::fmt::Debug for MetricsService {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MetricsService")
            .field("path", &self.endpoint.path)
            .field("protected", &self.endpoint.expected.is_some())
            .finish_non_exhaustive()
    }
}

impl MetricsService {
    /// Serves `handle` at `path`, protected by `bearer_token` when given.
    pub fn new(handle: PrometheusHandle, path: &str, bearer_token: Option<String>) -> Self {
        Self {
            endpoint: Arc::new(Endpoint {
                handle,
                path: path.to_owned(),
                expected: bearer_token.map(|t| format!("Bearer {t}").into_bytes()),
            }),
        }
    }

    fn answer<B>(&self, request: &Request<B>) -> Response<Full<Bytes>> {
        self.endpoint.answer(request)
    }
}

impl<B> tower_service::Service<Request<B>> for MetricsService {
    type Response = Response<Full<Bytes>>;
    type Error = Infallible;
    type Future = std::future::Ready<Result<Self::Response, Infallible>>;

    fn poll_ready(
        &mut self,
        _: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Result<(), Infallible>> {
        std::task::Poll::Ready(Ok(()))
    }

    fn call(&mut self, request: Request<B>) -> Self::Future {
        std::future::ready(Ok(self.answer(&request)))
    }
}

struct Endpoint {
    handle: PrometheusHandle,
    path: String,
    expected: Option<Vec<u8>>,
}

impl Endpoint {
    fn answer<B>(&self, request: &Request<B>) -> Response<Full<Bytes>> {
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
            // `subtle` compares in time that depends on the length only, so response
            // time does not reveal how much of a guessed token was right.
            if !bool::from(given.ct_eq(expected.as_slice())) {
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

#[cfg(test)]
mod tests {
    use super::*;

    /// The `le` bounds of `metric`'s buckets in `exposition`.
    fn bounds(exposition: &str, metric: &str) -> Vec<String> {
        let prefix = format!("{metric}_bucket{{");
        let mut bounds: Vec<String> = exposition
            .lines()
            .filter(|l| l.starts_with(&prefix))
            .filter_map(|l| {
                l.split("le=\"")
                    .nth(1)?
                    .split('"')
                    .next()
                    .map(str::to_owned)
            })
            .collect();
        // The first series' buckets: they end at `+Inf`.
        if let Some(end) = bounds.iter().position(|b| b == "+Inf") {
            bounds.truncate(end + 1);
        }
        bounds
    }

    #[test]
    fn request_histograms_get_request_buckets_and_work_histograms_work_buckets() {
        use crate::semconv::{
            CONVENTION_DURATION_BUCKETS, REQUEST_DURATION_BUCKETS, SDK_EXPORT_DURATION,
            WORK_DURATION_BUCKETS,
        };
        let schemes = [
            (MetricNames::default(), CONVENTION_DURATION_BUCKETS),
            (
                MetricNames::new("flows").unwrap(),
                CONVENTION_DURATION_BUCKETS,
            ),
            (
                MetricNames::prefixed("flows").unwrap(),
                REQUEST_DURATION_BUCKETS,
            ),
        ];
        for (names, requests) in schemes {
            let (recorder, handle) = prometheus_recorder(LabelGuard::default(), &names).unwrap();
            metrics::with_local_recorder(&recorder, || {
                metrics::histogram!(names.http_duration(), "route" => "/x").record(0.002);
                metrics::histogram!(names.rpc_duration(), "route" => "/y").record(0.002);
                metrics::histogram!(names.tasks().duration, "tenant_id" => "a").record(0.5);
                metrics::histogram!(names.tasks().handler, "tenant_id" => "a").record(0.002);
                metrics::histogram!(SDK_EXPORT_DURATION).record(0.02);
            });
            let exposition = handle.render();
            let expected = |buckets: &[f64]| {
                let mut v: Vec<String> = buckets.iter().map(f64::to_string).collect();
                v.push("+Inf".to_owned());
                v
            };
            for request in [names.http_duration(), names.rpc_duration()] {
                assert_eq!(
                    bounds(&exposition, &request),
                    expected(requests),
                    "{exposition}"
                );
            }
            assert_eq!(
                bounds(&exposition, &names.tasks().duration),
                expected(WORK_DURATION_BUCKETS)
            );
            assert_eq!(
                bounds(&exposition, &names.tasks().handler),
                expected(REQUEST_DURATION_BUCKETS)
            );
            assert_eq!(
                bounds(&exposition, SDK_EXPORT_DURATION),
                expected(REQUEST_DURATION_BUCKETS)
            );
        }
    }

    #[test]
    fn the_token_is_required_and_compared_whole() {
        let (_recorder, handle) =
            prometheus_recorder(LabelGuard::default(), &MetricNames::default()).unwrap();
        let service = MetricsService::new(handle, "/metrics", Some("a".into()));
        let status = |auth: Option<&str>| {
            let mut request = Request::get("/metrics");
            if let Some(auth) = auth {
                request = request.header(header::AUTHORIZATION, auth);
            }
            service.answer(&request.body(()).unwrap()).status()
        };
        assert_eq!(status(Some("Bearer a")), StatusCode::OK);
        for wrong in [
            Some("Bearer b"),
            Some("Bearer"),
            Some("Bearer aa"),
            Some(""),
            None,
        ] {
            assert_eq!(status(wrong), StatusCode::UNAUTHORIZED, "{wrong:?}");
        }
    }
}
