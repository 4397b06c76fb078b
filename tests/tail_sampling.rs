//! Consistent probability sampling at 1 % with tail bias, end to end: 100,000 requests
//! through `InstrumentLayer`, 2 % failing and 1 % slow, exported to a real OTLP/gRPC
//! receiver. Every failing and every slow request arrives whole (its server span with
//! why it was kept, its child span and its handler's error event), the healthy ones
//! arrive at 1 % within binomial bounds with `th`, the adjusted counts estimate the
//! request count, memory stays bounded when every request is slow, and the request
//! metrics count every request.
//!
//! Every request comes from a caller that did not sample it (its `traceparent` says
//! so); the server samples 1 % by the trace id (`consistent_probability` decides by
//! the randomness, whatever the caller's flag). The trace ids come from a fixed seed,
//! so which requests are sampled is the same on every run: the binomial bounds are
//! checked without a chance of a flaky failure.

#[path = "support/otlp.rs"]
mod otlp;

use std::collections::{HashMap, HashSet};
use std::convert::Infallible;
use std::time::Duration;

use futures_util::StreamExt as _;
use http::{Request, Response, StatusCode};
use http_body_util::BodyExt as _;
use instrument::cardinality::LabelGuard;
use instrument::pipeline::{init, install_prometheus, PipelineConfig};
use instrument::sampling::{TailBias, Threshold};
use instrument::semconv::MetricNames;
use instrument::tower::stack::InstrumentLayer;
use opentelemetry::trace::{Span as _, Tracer as _};
use otlp::{attribute, start_receiver};
use tower::{ServiceBuilder, ServiceExt as _};

const REQUESTS: usize = 100_000;
const SLOW: Duration = Duration::from_millis(50);

/// 2 % fail (every 50th), 1 % are slow (every 100th, offset so none also fails).
fn kind(i: usize) -> Kind {
    if i.is_multiple_of(50) {
        Kind::Failing
    } else if i % 100 == 7 {
        Kind::Slow
    } else {
        Kind::Healthy
    }
}

/// splitmix64: the next of a fixed sequence of well-mixed 64-bit values.
fn next(state: &std::cell::Cell<u64>) -> u64 {
    let s = state.get().wrapping_add(0x9e37_79b9_7f4a_7c15);
    state.set(s);
    let mut z = s;
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Healthy,
    Failing,
    Slow,
}

/// The handler: a child span through the OpenTelemetry tracer (as `#[workflow_span]`
/// or a client call makes one) in the request's context; failing requests log an
/// error and answer 500, slow ones sleep past the threshold first; `/many` makes 16
/// children and is slow.
async fn handle(request: Request<String>) -> Result<Response<String>, Infallible> {
    let path = request.uri().path().to_owned();
    let tracer = opentelemetry::global::tracer("handler");
    let children = if path == "/many" { 16 } else { 1 };
    for _ in 0..children {
        let mut child = tracer.start_with_context("child", &opentelemetry::Context::current());
        child.end();
    }
    // A `tracing` span, as a library below the handler makes one.
    if path != "/many" {
        tracing::info_span!("db.query").in_scope(|| {});
    }
    if path == "/many" {
        tokio::time::sleep(SLOW + Duration::from_millis(20)).await;
        return Ok(Response::new(String::new()));
    }
    // Slow for a POST (its own 5 ms threshold), not for a GET (the global 50 ms).
    if path == "/ten-ms" {
        tokio::time::sleep(Duration::from_millis(10)).await;
        return Ok(Response::new(String::new()));
    }
    let i: usize = path.trim_start_matches("/r/").parse().unwrap_or(1);
    match kind(i) {
        Kind::Healthy => Ok(Response::new(String::new())),
        Kind::Slow => {
            tokio::time::sleep(SLOW + Duration::from_millis(10)).await;
            Ok(Response::new(String::new()))
        }
        Kind::Failing => {
            // Some say why in an error event; the status alone fails the others.
            if i.is_multiple_of(1000) {
                tracing::error!(request = i, "charge declined");
            }
            let mut response = Response::new(String::new());
            *response.status_mut() = StatusCode::INTERNAL_SERVER_ERROR;
            Ok(response)
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn at_one_percent_failing_and_slow_requests_are_kept_whole_and_the_rest_estimates_the_rate() {
    let running = start_receiver().await;
    let config = PipelineConfig::from_vars([
        ("OTEL_SERVICE_NAME", "tail-test"),
        (
            "OTEL_EXPORTER_OTLP_ENDPOINT",
            &format!("http://{}", running.addr),
        ),
        ("OTEL_BSP_SCHEDULE_DELAY", "100"),
        ("OTEL_BSP_MAX_QUEUE_SIZE", "65536"),
        ("OTEL_TRACES_SAMPLER", "consistent_probability"),
        ("OTEL_TRACES_SAMPLER_ARG", "0.01"),
        ("INSTRUMENT_TAIL_ERRORS", "true"),
        ("INSTRUMENT_TAIL_SLOW_MS", "50"),
        ("INSTRUMENT_TAIL_SLOW_ROUTES", "POST=5"),
        ("INSTRUMENT_TAIL_MAX_SPANS", "256"),
        ("INSTRUMENT_TAIL_MAX_SPANS_PER_REQUEST", "4"),
    ])
    .unwrap()
    .with_shutdown_timeout(Duration::from_secs(20));
    assert_eq!(
        config.tail,
        TailBias::default()
            .errors(true)
            .slow(SLOW)
            .slow_for("POST", Duration::from_millis(5))
            .max_spans(256)
            .max_spans_per_request(4)
    );
    let telemetry = init(config).unwrap();
    let metrics = install_prometheus(LabelGuard::default(), &MetricNames::default()).unwrap();

    let service = ServiceBuilder::new()
        .layer(InstrumentLayer::builder().build())
        .service_fn(handle);
    let seed = std::cell::Cell::new(29u64);
    let call_with = |method: http::Method, path: String| {
        let service = service.clone();
        let traceparent = format!(
            "00-{:016x}{:016x}-{:016x}-00",
            next(&seed),
            next(&seed),
            next(&seed) | 1
        );
        async move {
            let request = Request::builder()
                .method(method)
                .uri(path)
                .header("x-tenant-id", "acme")
                .header("traceparent", traceparent)
                .body(String::new())
                .unwrap();
            let response = service.oneshot(request).await.unwrap();
            // The span ends with the body.
            let _ = response.into_body().collect().await;
        }
    };
    let call = |path: String| call_with(http::Method::GET, path);
    futures_util::stream::iter(0..REQUESTS)
        .map(|i| call(format!("/r/{i}")))
        .buffer_unordered(200)
        .collect::<()>()
        .await;

    // Every request slow, each making 16 spans, 64 at once: at most 256 held, 4 each.
    let watching = telemetry.tail_stats();
    let most_held = std::sync::Arc::new(std::sync::atomic::AtomicU64::new(0));
    futures_util::stream::iter(0..640)
        .map(|_| {
            let held = telemetry.tail_stats().spans_held;
            most_held.fetch_max(held, std::sync::atomic::Ordering::Relaxed);
            call("/many".to_owned())
        })
        .buffer_unordered(64)
        .collect::<()>()
        .await;
    let after = telemetry.tail_stats();
    // A threshold by name: 10 ms is slow for a POST, not for a GET.
    for method in [http::Method::POST, http::Method::GET] {
        futures_util::stream::iter(0..20)
            .map(|_| call_with(method.clone(), "/ten-ms".to_owned()))
            .buffer_unordered(20)
            .collect::<()>()
            .await;
    }
    assert!(most_held.load(std::sync::atomic::Ordering::Relaxed) <= 256);
    assert_eq!(after.spans_held, 0, "nothing held once every request ended");
    // Each /many request the head dropped (all but about 1 %, 30 is 9 standard
    // deviations) held 4 of its 16 children, or fewer once the process-wide cap was
    // reached; the rest were dropped and counted.
    let kept_slow = after.kept_slow - watching.kept_slow;
    assert!(kept_slow >= 640 - 30, "{after:?}");
    let many_dropped = after.spans_dropped - watching.spans_dropped;
    assert!(many_dropped >= kept_slow * 12, "{after:?}");

    let exposition = metrics.render();
    let stats_before_shutdown = telemetry.stats();
    assert_eq!(stats_before_shutdown.tail_dropped, after.spans_dropped);
    let spans = otlp::flush_and_collect(telemetry, running).await;
    assert!(stats_before_shutdown.queue_full == 0);

    // The request metrics count every request, sampled or not.
    let counted: f64 = exposition
        .lines()
        .filter(|l| l.starts_with("http_server_request_duration_seconds_count{"))
        .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
        .sum();
    assert_eq!(counted as usize, REQUESTS + 640 + 40, "{exposition}");

    // The server spans of the /r/{i} requests, by i.
    let server: Vec<_> = spans
        .iter()
        .filter(|s| s.kind == 2) // SERVER
        .filter(|s| attribute(s, "url.path").is_some_and(|p| p.starts_with("/r/")))
        .collect();
    let index = |s: &&opentelemetry_proto::tonic::trace::v1::Span| -> usize {
        attribute(s, "url.path").unwrap()["/r/".len()..]
            .parse()
            .unwrap()
    };
    let one_percent = Threshold::from_probability(0.01).unwrap();
    let mut kept_for: HashMap<usize, String> = HashMap::new();
    let mut sampled = HashSet::new();
    for span in &server {
        let i = index(span);
        match attribute(span, "instrument.sampling.kept_for") {
            Some(why) => {
                assert!(
                    !span.trace_state.contains("th:"),
                    "a kept span has no th: {}",
                    span.trace_state
                );
                kept_for.insert(i, why);
            }
            None => {
                assert_eq!(
                    span.trace_state,
                    format!("ot=th:{one_percent}"),
                    "a probability-sampled span carries th"
                );
                sampled.insert(i);
            }
        }
        assert_eq!(attribute(span, "tenant.id").as_deref(), Some("acme"));
    }

    // Every failing and every slow request is exported with its reason (unless the
    // head kept it anyway).
    let mut false_slow = 0;
    for i in 0..REQUESTS {
        match kind(i) {
            Kind::Failing => {
                assert!(
                    sampled.contains(&i) || kept_for.get(&i).map(String::as_str) == Some("error"),
                    "failing request {i} lost"
                );
            }
            Kind::Slow => {
                assert!(
                    sampled.contains(&i) || kept_for.get(&i).map(String::as_str) == Some("slow"),
                    "slow request {i} lost"
                );
            }
            Kind::Healthy => false_slow += usize::from(kept_for.contains_key(&i)),
        }
    }
    // A healthy request takes microseconds; a scheduler stall on a busy machine may
    // still push a few past 50 ms.
    assert!(
        false_slow <= 50,
        "{false_slow} healthy requests kept as slow"
    );

    // The healthy ones exported: 1 % within binomial bounds (5 standard deviations).
    let healthy = (0..REQUESTS).filter(|i| kind(*i) == Kind::Healthy).count() as f64;
    let healthy_sampled = sampled
        .iter()
        .filter(|i| kind(**i) == Kind::Healthy)
        .count() as f64;
    let p = one_percent.probability();
    let (mean, sd) = (healthy * p, (healthy * p * (1.0 - p)).sqrt());
    assert!(
        (healthy_sampled - mean).abs() <= 5.0 * sd,
        "{healthy_sampled} healthy sampled, expected {mean:.0} ± {:.0}",
        5.0 * sd
    );

    // The adjusted counts of the probability-sampled spans estimate the request count.
    let estimated: f64 = server
        .iter()
        .filter_map(|s| instrument::sampling::threshold_of(&s.trace_state.parse().ok()?))
        .map(Threshold::adjusted_count)
        .sum();
    let truth = REQUESTS as f64;
    eprintln!(
        "{healthy_sampled} of {healthy} healthy requests sampled (expected {mean:.0} ± {sd:.0}); \
         {} requests estimated from the adjusted counts of {truth}; {} kept for errors, {} for slowness",
        estimated.round(),
        kept_for.values().filter(|w| *w == "error").count(),
        kept_for.values().filter(|w| *w == "slow").count(),
    );
    assert!(
        (estimated - truth).abs() <= 0.1 * truth,
        "estimated {estimated:.0} requests of {truth}"
    );

    // A kept failing request is whole: its child span under it, its error event on it.
    let (&failing, _) = kept_for
        .iter()
        .find(|(i, why)| (**i).is_multiple_of(1000) && *why == "error")
        .expect("a kept failing request that logged an error");
    let span = server.iter().find(|s| index(s) == failing).unwrap();
    assert_eq!(attribute(span, "error.type").as_deref(), Some("500"));
    assert!(
        span.events.iter().any(|e| e.name == "charge declined"),
        "{:?}",
        span.events
    );
    let child = spans
        .iter()
        .find(|s| s.name == "child" && s.parent_span_id == span.span_id)
        .expect("the failing request's child span");
    assert_eq!(child.trace_id, span.trace_id);
    assert_eq!(
        attribute(child, "instrument.sampling.kept_for").as_deref(),
        Some("error")
    );
    assert_eq!(attribute(child, "tenant.id").as_deref(), Some("acme"));
    let query = spans
        .iter()
        .find(|s| s.name == "db.query" && s.parent_span_id == span.span_id)
        .expect("the failing request's tracing span");
    assert_eq!(
        attribute(query, "instrument.sampling.kept_for").as_deref(),
        Some("error")
    );

    let ten_ms = |method: &str| {
        spans
            .iter()
            .filter(|s| attribute(s, "url.path").as_deref() == Some("/ten-ms"))
            .filter(|s| attribute(s, "http.request.method").as_deref() == Some(method))
            .filter(|s| attribute(s, "instrument.sampling.kept_for").as_deref() == Some("slow"))
            .count()
    };
    assert!(
        ten_ms("POST") >= 20 - 3,
        "{} POSTs kept as slow",
        ten_ms("POST")
    );
    assert_eq!(ten_ms("GET"), 0);

    // Healthy sampled-out requests' spans are never exported: one `db.query` for
    // each /r/ request exported, no more.
    let queries = spans.iter().filter(|s| s.name == "db.query").count();
    let ten_ms_exported = spans
        .iter()
        .filter(|s| attribute(s, "url.path").as_deref() == Some("/ten-ms"))
        .count();
    assert_eq!(queries, server.len() + ten_ms_exported);
}
