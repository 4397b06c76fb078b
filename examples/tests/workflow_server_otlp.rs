//! The example workflow server exporting over OTLP chosen only by `OTEL_*` variables:
//! spans to an OTLP/gRPC receiver over TLS (its CA made here), metrics to an OTLP
//! metrics receiver, both started here; then the same server with both collectors
//! gone, where every request still succeeds and the lost spans are counted. One test:
//! it installs the process-wide subscriber, tracer provider and metrics recorder.

#[path = "../../tests/support/otlp.rs"]
mod otlp;
#[path = "../../tests/support/otlp_metrics.rs"]
mod otlp_metrics;
#[path = "../../tests/support/tls.rs"]
mod tls;

use std::time::Duration;

use instrument::cardinality::LabelGuard;
use instrument::pipeline::{build, init, install_otlp_metrics, PipelineConfig, SamplerConfig};
use instrument::semconv::MetricNames;
use instrument_examples::pb::workflow_service_client::WorkflowServiceClient;
use instrument_examples::pb::*;
use instrument_examples::workflow::{self, call};
use otlp_metrics::start_metrics_receiver;

type Client = WorkflowServiceClient<tonic::transport::Channel>;

/// One workflow's life through `client`: started, a task submitted and completed, the
/// workflow completed. Every call must succeed.
async fn one_workflow(client: &mut Client, tenant: &str) {
    let started = client
        .start_workflow(call(
            StartWorkflowRequest {
                kind: "payment".into(),
                task_queue: "main".into(),
                input_json: "{}".into(),
            },
            tenant,
            None,
        ))
        .await
        .unwrap()
        .into_inner();
    let id = started.workflow_id;
    let task = client
        .submit_task(call(
            SubmitTaskRequest {
                workflow_id: id.clone(),
                task_type: "charge".into(),
                input_json: "{}".into(),
            },
            tenant,
            Some(&id),
        ))
        .await
        .unwrap()
        .into_inner();
    client
        .complete_task(call(
            CompleteTaskRequest {
                task_id: task.task_id,
                output_json: "{}".into(),
            },
            tenant,
            Some(&id),
        ))
        .await
        .unwrap();
    client
        .complete_workflow(call(
            CompleteWorkflowRequest {
                workflow_id: id.clone(),
                output_json: "{}".into(),
            },
            tenant,
            Some(&id),
        ))
        .await
        .unwrap();
}

/// Serves the workflow service on 127.0.0.1 with a fresh database; runs `f` with a
/// client, then stops the server.
async fn with_server<F, Fut>(name: &str, f: F)
where
    F: FnOnce(Client) -> Fut,
    Fut: std::future::Future<Output = ()>,
{
    let server = workflow::Local::start(name).await.unwrap();
    let client = WorkflowServiceClient::connect(server.url()).await.unwrap();
    f(client).await;
    server.stop().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_server_exports_spans_and_metrics_where_the_environment_says() {
    let pki = tls::pki("workflow-otlp");
    let (traces_addr, traces) =
        otlp::start_tls_receiver(&pki.server.cert, &pki.server.key, None).await;
    let (metrics_addr, metrics) = start_metrics_receiver().await;
    let (logs_addr, logs) = otlp::start_logs_receiver().await;
    let vars = [
        ("OTEL_SERVICE_NAME", "workflow-otlp-test".to_owned()),
        (
            "OTEL_EXPORTER_OTLP_LOGS_ENDPOINT",
            format!("http://{logs_addr}"),
        ),
        ("OTEL_BLRP_SCHEDULE_DELAY", "50".to_owned()),
        (
            "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT",
            format!("https://localhost:{}", traces_addr.port()),
        ),
        (
            "OTEL_EXPORTER_OTLP_CERTIFICATE",
            pki.ca_file().display().to_string(),
        ),
        ("OTEL_BSP_SCHEDULE_DELAY", "50".to_owned()),
        ("OTEL_METRICS_EXPORTER", "otlp".to_owned()),
        (
            "OTEL_EXPORTER_OTLP_METRICS_ENDPOINT",
            format!("http://{metrics_addr}"),
        ),
        ("OTEL_METRIC_EXPORT_INTERVAL", "100".to_owned()),
    ];
    let config = PipelineConfig::from_vars(vars.clone())
        .unwrap()
        .with_sampler(SamplerConfig::ParentBasedTraceIdRatio(1.0));
    let telemetry = init(config.clone()).unwrap();
    let recorder =
        install_otlp_metrics(LabelGuard::default(), &MetricNames::default(), &config).unwrap();

    with_server("workflow-otlp", |mut client| async move {
        one_workflow(&mut client, "acme").await;
        // A handler's log line with secrets in what it logs.
        let secret = StartWorkflowRequest {
            kind: "payment".into(),
            task_queue: "main".into(),
            input_json: r#"{"password":"hunter2","card":"4111 1111 1111 1111"}"#.into(),
        };
        client
            .start_workflow(call(secret, "acme", None))
            .await
            .unwrap();
    })
    .await;
    // A `log` crate record, through the bridge `init` installs.
    log::warn!("a record of the log crate");
    // Spans first: their exports are counted in the metrics flushed after them.
    let log_stats = tokio::task::spawn_blocking(move || {
        telemetry.force_flush();
        let log_stats = telemetry.log_stats();
        telemetry.shutdown().unwrap();
        recorder.shutdown().unwrap();
        log_stats
    })
    .await
    .unwrap();

    // Log records: every one emitted arrived; each emitted in a request carries its
    // trace and span ids and its tenant, and no secret.
    let records = logs.logs.lock().unwrap().clone();
    assert_eq!(log_stats.emitted, records.len() as u64, "{log_stats:?}");
    assert_eq!(log_stats.exported, log_stats.emitted);
    let body = |r: &opentelemetry_proto::tonic::logs::v1::LogRecord| format!("{:?}", r.body);
    let started: Vec<_> = records
        .iter()
        .filter(|r| body(r).contains("started"))
        .collect();
    assert_eq!(started.len(), 2, "{records:?}");
    let spans = traces.spans.lock().unwrap().clone();
    for record in &started {
        let span = spans
            .iter()
            .find(|s| s.span_id == record.span_id && s.trace_id == record.trace_id)
            .expect("the record's span was exported in its trace");
        assert_eq!(span.name, "workflow.start");
        let tenant = record.attributes.iter().find(|kv| kv.key == "tenant.id");
        assert!(format!("{tenant:?}").contains("acme"), "{record:?}");
        let text = format!("{record:?}");
        assert!(
            !text.contains("hunter2") && !text.contains("4111 1111 1111 1111"),
            "{text}"
        );
    }
    assert!(records
        .iter()
        .any(|r| body(r).contains("a record of the log crate")));

    let names: std::collections::BTreeSet<String> = traces
        .spans
        .lock()
        .unwrap()
        .iter()
        .map(|s| s.name.clone())
        .collect();
    for expected in [
        "instrument.example.v1.WorkflowService/StartWorkflow",
        "instrument.example.v1.WorkflowService/CompleteWorkflow",
        "workflow.end",
        "workflow.completed",
        "task.completed",
    ] {
        assert!(names.contains(expected), "{expected} not in {names:?}");
    }
    let metric_names = metrics.names();
    for expected in [
        "rpc.server.call.duration",
        "instrument_workflows_started_total",
        "instrument_workflows_completed_total",
        "instrument_workflow_handler_seconds",
        "otel.sdk.exporter.span.exported",
    ] {
        assert!(
            metric_names.contains(expected),
            "{expected} not in {metric_names:?}"
        );
    }
    assert!(metrics
        .services
        .lock()
        .unwrap()
        .iter()
        .all(|s| s == "workflow-otlp-test"));

    // The collectors gone: the same server answers every call; the spans are lost and
    // counted, and shutdown returns within its timeout.
    let gone = {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        listener.local_addr().unwrap()
    };
    let config = PipelineConfig::from_vars([
        ("OTEL_EXPORTER_OTLP_ENDPOINT", format!("http://{gone}")),
        ("OTEL_EXPORTER_OTLP_TIMEOUT", "200".to_owned()),
        ("OTEL_BSP_SCHEDULE_DELAY", "50".to_owned()),
    ])
    .unwrap()
    .with_shutdown_timeout(Duration::from_secs(3));
    // The global provider stays the first pipeline's; this one records through its own
    // provider, installed for this part as the global one.
    let telemetry = build(&config).unwrap();
    opentelemetry::global::set_tracer_provider(telemetry.tracer_provider().unwrap().clone());
    with_server("workflow-otlp-gone", |mut client| async move {
        for _ in 0..3 {
            one_workflow(&mut client, "acme").await;
        }
    })
    .await;
    let started = std::time::Instant::now();
    let stats = tokio::task::spawn_blocking(move || telemetry.shutdown())
        .await
        .unwrap()
        .unwrap_or_else(|e| e.stats);
    assert!(stats.ended > 0, "{stats:?}");
    assert_eq!(stats.exported, 0, "{stats:?}");
    assert_eq!(
        stats.lost(),
        stats.ended,
        "every span accounted for: {stats:?}"
    );
    assert!(
        started.elapsed() < Duration::from_secs(6),
        "{:?}",
        started.elapsed()
    );
}
