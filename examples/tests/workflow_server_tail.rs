//! The example workflow server at 1 % consistent probability sampling with tail bias,
//! configured only by environment variables, over real gRPC, exporting to a real
//! OTLP/gRPC receiver: behind a caller that did not sample its traces, only the calls
//! that failed arrive (whole, with why they were kept); roots are sampled at 1 % with
//! `th` in their `tracestate`; every call is counted in the metrics. One test: it
//! installs the process-wide pipeline.

#[path = "../../tests/support/otlp.rs"]
mod otlp;

use std::hash::BuildHasher as _;

use instrument::cardinality::LabelGuard;
use instrument::pipeline::{init, install_prometheus, PipelineConfig};
use instrument::semconv::MetricNames;
use instrument_examples::pb::workflow_service_client::WorkflowServiceClient;
use instrument_examples::pb::*;
use instrument_examples::workflow::{self, call};
use otlp::attribute;

const START: &str = "instrument.example.v1.WorkflowService/StartWorkflow";
const FAIL: &str = "instrument.example.v1.WorkflowService/FailWorkflow";

/// `request` under a fresh `traceparent` whose sampled flag is off.
fn unsampled<T>(mut request: tonic::Request<T>) -> tonic::Request<T> {
    let hash = |n: u8| std::collections::hash_map::RandomState::new().hash_one(n);
    let traceparent = format!("00-{:016x}{:016x}-{:016x}-00", hash(1), hash(2), hash(3));
    request
        .metadata_mut()
        .insert("traceparent", traceparent.parse().unwrap());
    request
}

fn start_request() -> StartWorkflowRequest {
    StartWorkflowRequest {
        kind: "report".into(),
        task_queue: "main".into(),
        input_json: "{}".into(),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn at_one_percent_only_failed_calls_arrive_from_an_unsampled_caller() {
    let running = otlp::start_receiver().await;
    let config = PipelineConfig::from_vars([
        ("OTEL_SERVICE_NAME", "workflow-tail-test".to_owned()),
        (
            "OTEL_EXPORTER_OTLP_ENDPOINT",
            format!("http://{}", running.addr),
        ),
        ("OTEL_BSP_SCHEDULE_DELAY", "50".to_owned()),
        (
            "OTEL_TRACES_SAMPLER",
            "parentbased_consistent_probability".to_owned(),
        ),
        ("OTEL_TRACES_SAMPLER_ARG", "0.01".to_owned()),
        ("INSTRUMENT_TAIL_ERRORS", "true".to_owned()),
    ])
    .unwrap();
    let telemetry = init(config).unwrap();
    let metrics = install_prometheus(LabelGuard::default(), &MetricNames::default()).unwrap();
    let server = workflow::Local::start("workflow-tail").await.unwrap();
    let mut client = WorkflowServiceClient::connect(server.url()).await.unwrap();

    // 200 healthy calls behind an unsampled caller: none is exported.
    for _ in 0..200 {
        client
            .start_workflow(unsampled(call(start_request(), "acme", None)))
            .await
            .unwrap();
    }
    // 10 workflows started unsampled and then failed: each FailWorkflow call is kept.
    let mut failed = Vec::new();
    for i in 0..10 {
        let id = client
            .start_workflow(unsampled(call(start_request(), "acme", None)))
            .await
            .unwrap()
            .into_inner()
            .workflow_id;
        let fail = FailWorkflowRequest {
            workflow_id: id.clone(),
            error: format!("bank rejected transfer {i}"),
        };
        client
            .fail_workflow(unsampled(call(fail, "acme", Some(&id))))
            .await
            .unwrap();
        failed.push(id);
    }
    // 300 roots: sampled at 1 %, consistently.
    for _ in 0..300 {
        client
            .start_workflow(call(start_request(), "acme", None))
            .await
            .unwrap();
    }
    server.stop().await.unwrap();
    let exposition = metrics.render();
    let tail = telemetry.tail_stats();
    let spans = otlp::flush_and_collect(telemetry, running).await;

    assert_eq!(tail.kept_errors, 10, "{tail:?}");
    let fails: Vec<_> = spans.iter().filter(|s| s.name == FAIL).collect();
    assert_eq!(fails.len(), 10, "every failed call arrives");
    for span in &fails {
        assert_eq!(
            attribute(span, "instrument.sampling.kept_for").as_deref(),
            Some("error")
        );
        assert!(!span.trace_state.contains("th:"), "{}", span.trace_state);
        assert_eq!(attribute(span, "tenant.id").as_deref(), Some("acme"));
        assert_eq!(span.kind, 2, "a server span");
    }
    // Their failed workflow spans arrive in the same traces.
    let failed_spans: Vec<_> = spans
        .iter()
        .filter(|s| s.name == "workflow.failed")
        .collect();
    assert_eq!(failed_spans.len(), 10);
    for span in failed_spans {
        assert!(fails.iter().any(|f| f.trace_id == span.trace_id));
        let id = attribute(span, "workflow.id").unwrap();
        assert!(failed.contains(&id), "{id}");
        assert!(attribute(span, "error.type").is_some());
    }
    // Of the StartWorkflow calls only probability-sampled roots arrive, each with th.
    let starts: Vec<_> = spans.iter().filter(|s| s.name == START).collect();
    assert!(starts.len() <= 15, "{} of 300 roots at 1 %", starts.len());
    for span in &starts {
        assert_eq!(span.trace_state, "ot=th:fd70a");
        assert_eq!(attribute(span, "instrument.sampling.kept_for"), None);
    }
    // Every call is counted, exported or not.
    let counted: f64 = exposition
        .lines()
        .filter(|l| l.starts_with("rpc_server_call_duration_seconds_count{"))
        .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
        .sum();
    assert_eq!(counted as usize, 200 + 20 + 300, "{exposition}");
}
