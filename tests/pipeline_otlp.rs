//! The pipeline against a real OTLP/gRPC receiver on 127.0.0.1: what arrives over the
//! wire, and what happens when the receiver goes away.

#[path = "support/otlp.rs"]
mod otlp;

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use instrument::context::restore;
use instrument::pipeline::{build, PipelineConfig, SamplerConfig, Telemetry};
use instrument::tenant::{with_tenant, TenantId};
use opentelemetry::Context;
use otlp::{attribute, start_receiver};
use tracing_opentelemetry::OpenTelemetrySpanExt as _;
use tracing_subscriber::layer::SubscriberExt as _;

fn config(addr: SocketAddr) -> PipelineConfig {
    PipelineConfig::from_vars([
        ("OTEL_SERVICE_NAME", "pipeline-test"),
        ("OTEL_EXPORTER_OTLP_ENDPOINT", &format!("http://{addr}")),
        ("OTEL_EXPORTER_OTLP_TIMEOUT", "500"),
        ("OTEL_BSP_SCHEDULE_DELAY", "50"),
    ])
    .unwrap()
    .with_sampler(SamplerConfig::ParentBasedTraceIdRatio(1.0))
    .with_shutdown_timeout(Duration::from_secs(2))
}

async fn shutdown(
    telemetry: Telemetry,
) -> Result<instrument::pipeline::ExportStats, instrument::pipeline::ShutdownError> {
    // Shutdown blocks while it flushes; keep it off the runtime's workers.
    tokio::task::spawn_blocking(move || telemetry.shutdown())
        .await
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn spans_arrive_over_the_wire_as_one_tree_stamped_and_redacted() {
    let running = start_receiver().await;
    let telemetry = build(&config(running.addr)).unwrap();
    let subscriber = tracing_subscriber::registry().with(telemetry.layer());
    tracing::subscriber::with_default(subscriber, || {
        let request = tracing::info_span!(
            "request",
            "db.password" = "hunter2",
            note = tracing::field::Empty
        );
        let _ = request.set_parent(with_tenant(
            &Context::new(),
            TenantId::parse("acme").unwrap(),
        ));
        request.record("note", "mail bob@example.com");
        request.in_scope(|| {
            // A plain span, as another library below the handler would make.
            tracing::info_span!("library.call").in_scope(|| {
                tracing::info_span!("library.inner").in_scope(|| {});
            });
        });
        // Continued from a stored traceparent whose sampled flag is off: not exported.
        let unsampled = tracing::info_span!("unsampled");
        let _ = unsampled.set_parent(
            restore(Some(
                "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-00",
            ))
            .to_context(),
        );
        unsampled.in_scope(|| {});
    });
    let stats = shutdown(telemetry).await.unwrap();
    assert_eq!(stats.lost(), 0);

    let spans = running.receiver.spans.lock().unwrap().clone();
    let names: Vec<&str> = spans.iter().map(|s| s.name.as_str()).collect();
    assert_eq!(spans.len(), 3, "{names:?}");
    let by_name = |n: &str| spans.iter().find(|s| s.name == n).unwrap();
    let (request, call, inner) = (
        by_name("request"),
        by_name("library.call"),
        by_name("library.inner"),
    );
    assert!(request.parent_span_id.is_empty());
    assert_eq!(call.parent_span_id, request.span_id);
    assert_eq!(inner.parent_span_id, call.span_id);
    assert!(spans.iter().all(|s| s.trace_id == request.trace_id));
    for span in &spans {
        assert_eq!(
            attribute(span, "tenant.id").as_deref(),
            Some("acme"),
            "{}",
            span.name
        );
    }
    let wire = format!("{spans:?}");
    assert!(
        !wire.contains("hunter2") && !wire.contains("bob@example.com"),
        "{wire}"
    );
    assert_eq!(
        attribute(request, "redaction.masked.count").as_deref(),
        Some("2")
    );
    // The resource the specification requires: the service and the SDK.
    let resources = running.receiver.resources.lock().unwrap().clone();
    for resource in &resources {
        for required in [
            "service.name=pipeline-test",
            "telemetry.sdk.name=opentelemetry",
            "telemetry.sdk.language=rust",
        ] {
            assert!(
                resource.iter().any(|a| a == required),
                "{required}: {resource:?}"
            );
        }
        assert!(
            resource
                .iter()
                .any(|a| a.starts_with("telemetry.sdk.version=")),
            "{resource:?}"
        );
    }
    assert!(!resources.is_empty());

    let _ = running.stop.send(());
    running.served.await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_receiver_that_goes_away_costs_spans_not_requests_and_shutdown_reports_them() {
    let running = start_receiver().await;
    let telemetry = build(&config(running.addr)).unwrap();
    let provider = telemetry.tracer_provider().unwrap().clone();
    let subscriber = tracing_subscriber::registry().with(telemetry.layer());
    let dispatch = tracing::Dispatch::new(subscriber);

    tracing::dispatcher::with_default(&dispatch, || tracing::info_span!("before").in_scope(|| {}));
    tokio::task::spawn_blocking(move || provider.force_flush())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(running.receiver.spans.lock().unwrap().len(), 1);

    // The receiver stops mid-run.
    let _ = running.stop.send(());
    running.served.await.unwrap();

    // The application keeps working: spans are created and ended as before.
    tracing::dispatcher::with_default(&dispatch, || {
        for i in 0..20 {
            tracing::info_span!("after", i).in_scope(|| {});
        }
    });
    drop(dispatch);

    let started = Instant::now();
    let err = tokio::time::timeout(Duration::from_secs(20), shutdown(telemetry))
        .await
        .expect("shutdown returns instead of hanging")
        .expect_err("lost spans are reported");
    assert!(started.elapsed() < Duration::from_secs(20));
    assert_eq!(err.stats.ended, 21);
    assert_eq!(err.stats.exported, 1);
    assert_eq!(err.stats.lost(), 20, "{err}");
    assert!(
        err.to_string().contains("20 of 21 spans not exported"),
        "{err}"
    );
}
