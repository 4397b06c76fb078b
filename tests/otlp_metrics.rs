//! Metrics over OTLP to a real OTLP/gRPC metrics receiver on 127.0.0.1: chosen by
//! `OTEL_METRICS_EXPORTER=otlp`, through the label guard (caps, overflow set,
//! redaction), under the Prometheus endpoint's names and buckets. One binary of its
//! own: the recorder is process-wide.

#[path = "support/otlp.rs"]
mod otlp;
#[path = "support/otlp_metrics.rs"]
mod otlp_metrics;

use std::time::Duration;

use instrument::cardinality::LabelGuard;
use instrument::pipeline::{install_otlp_metrics, MetricsConfig, PipelineConfig, Temporality};
use instrument::semconv::{MetricNames, CONVENTION_DURATION_BUCKETS};
use opentelemetry_proto::tonic::metrics::v1::metric::Data;
use otlp_metrics::start_metrics_receiver;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn metrics_reach_the_collector_guarded_and_named_as_on_the_prometheus_endpoint() {
    let (addr, receiver) = start_metrics_receiver().await;

    let config = PipelineConfig::from_vars([
        ("OTEL_SERVICE_NAME", "metrics-test".to_owned()),
        ("OTEL_METRICS_EXPORTER", "otlp".to_owned()),
        (
            "OTEL_EXPORTER_OTLP_METRICS_ENDPOINT",
            format!("http://{addr}"),
        ),
        ("OTEL_METRIC_EXPORT_INTERVAL", "100".to_owned()),
        (
            "OTEL_EXPORTER_OTLP_METRICS_TEMPORALITY_PREFERENCE",
            "cumulative".to_owned(),
        ),
    ])
    .unwrap();
    let MetricsConfig::Otlp(otlp) = &config.metrics else {
        panic!("{:?}", config.metrics);
    };
    assert_eq!(otlp.interval, Duration::from_millis(100));
    assert_eq!(otlp.temporality, Temporality::Cumulative);
    // Two label sets per metric: the third tenant goes to the overflow set.
    let guard = LabelGuard::builder().max_label_sets(2).build();
    let names = MetricNames::default();
    let metrics = install_otlp_metrics(guard, &names, &config).unwrap();
    for tenant in ["acme", "globex", "initech"] {
        metrics::counter!(names.workflows().started, "tenant_id" => tenant).increment(2);
    }
    metrics::counter!("app_logins_total", "note" => "password=hunter2").increment(1);
    metrics::histogram!(names.http_duration(), "http_request_method" => "GET", "tenant_id" => "acme")
        .record(0.003);
    metrics::gauge!(names.http_in_flight(), "tenant_id" => "acme").increment(3.0);
    metrics::gauge!(names.http_in_flight(), "tenant_id" => "acme").decrement(1.0);
    tokio::task::spawn_blocking(move || metrics.shutdown())
        .await
        .unwrap()
        .unwrap();

    let received = receiver.metrics.lock().unwrap().clone();
    assert!(receiver
        .services
        .lock()
        .unwrap()
        .iter()
        .all(|s| s == "metrics-test"));
    // Cumulative: the last export holds the totals.
    let last = |name: &str| {
        received
            .iter()
            .rev()
            .find(|m| m.name == name)
            .unwrap_or_else(|| {
                panic!(
                    "no {name} in {:?}",
                    received.iter().map(|m| &m.name).collect::<Vec<_>>()
                )
            })
            .clone()
    };
    let Some(Data::Sum(sum)) = last("instrument_workflows_started_total").data else {
        panic!("a sum");
    };
    assert!(sum.is_monotonic);
    let mut points: Vec<(Vec<String>, String)> = sum
        .data_points
        .iter()
        .map(|p| (otlp::key_values(&p.attributes), format!("{:?}", p.value)))
        .collect();
    points.sort();
    assert_eq!(
        points,
        [
            (
                vec!["otel.metric.overflow=true".to_owned()],
                "Some(AsInt(2))".to_owned()
            ),
            (
                vec!["tenant.id=acme".to_owned()],
                "Some(AsInt(2))".to_owned()
            ),
            (
                vec!["tenant.id=globex".to_owned()],
                "Some(AsInt(2))".to_owned()
            ),
        ]
    );
    let Some(Data::Sum(logins)) = last("app_logins_total").data else {
        panic!("a sum");
    };
    let note = otlp::key_values(&logins.data_points[0].attributes);
    assert!(!format!("{note:?}").contains("hunter2"), "{note:?}");
    // The conventions' metrics under their OpenTelemetry names, unit and keys, with the
    // buckets the conventions advise.
    let duration = last("http.server.request.duration");
    assert_eq!(duration.unit, "s");
    let Some(Data::Histogram(histogram)) = duration.data else {
        panic!("a histogram");
    };
    assert_eq!(
        histogram.data_points[0].explicit_bounds,
        CONVENTION_DURATION_BUCKETS
    );
    assert_eq!(histogram.data_points[0].count, 1);
    assert_eq!(
        otlp::key_values(&histogram.data_points[0].attributes),
        ["http.request.method=GET", "tenant.id=acme"]
    );
    let Some(Data::Gauge(gauge)) = last("http.server.active_requests").data else {
        panic!("a gauge");
    };
    assert_eq!(
        format!("{:?}", gauge.data_points[0].value),
        "Some(AsDouble(2.0))"
    );
}
