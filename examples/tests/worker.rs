//! The worker end to end, over real sockets: the workflow server and a downstream
//! HTTP service on 127.0.0.1 exporting to an OTLP/gRPC receiver started here, a worker
//! reporting its spans through the server's span proxy. Each workflow the worker ran is
//! one trace holding the server's spans, the worker's (reported) spans and the
//! downstream service's span under the worker's client span, all of tenant acme. Then
//! hostile reports over gRPC, and a worker whose proxy is down. One test: it installs
//! the process-wide pipeline.

#[path = "../../tests/support/otlp.rs"]
mod otlp;

use std::collections::HashMap;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use instrument::tenant::TenantId;
use instrument_examples::pb::workflow_service_client::WorkflowServiceClient;
use instrument_examples::pb::*;
use instrument_examples::worker::{serve_downstream, Worker};
use instrument_examples::workflow::{self, call};
use opentelemetry_proto::tonic::trace::v1::span::SpanKind;
use opentelemetry_proto::tonic::trace::v1::Span;
use otlp::attribute;
use tonic::transport::Channel;

type Client = WorkflowServiceClient<Channel>;

async fn start(client: &mut Client, tenant: &str, queue: &str) -> String {
    let request = StartWorkflowRequest {
        kind: "quote".into(),
        task_queue: queue.into(),
        input_json: "{}".into(),
    };
    client
        .start_workflow(call(request, tenant, None))
        .await
        .unwrap()
        .into_inner()
        .workflow_id
}

fn nanos(at: SystemTime) -> u64 {
    u64::try_from(at.duration_since(UNIX_EPOCH).unwrap().as_nanos()).unwrap()
}

/// A reported span of `workflow` with id `id`, ended a second ago.
fn reported(id: u64, workflow: &str) -> ExecutionSpan {
    let now = SystemTime::now();
    ExecutionSpan {
        span_id: format!("{id:016x}"),
        span_type: "task.execute".into(),
        workflow_id: workflow.into(),
        start_time_unix_nano: nanos(now - Duration::from_secs(2)),
        end_time_unix_nano: nanos(now - Duration::from_secs(1)),
        ..ExecutionSpan::default()
    }
}

async fn report(client: &mut Client, tenant: &str, spans: Vec<ExecutionSpan>) -> Vec<SpanResult> {
    let request = ReportExecutionSpansRequest {
        sdk: Some(SdkInfo {
            language: "python".into(),
            sdk_version: "0.9.1".into(),
            os: "linux".into(),
            arch: "x86_64".into(),
        }),
        spans,
    };
    client
        .report_execution_spans(call(request, tenant, None))
        .await
        .unwrap()
        .into_inner()
        .results
}

fn refusals(results: &[SpanResult]) -> Vec<&str> {
    results
        .iter()
        .filter(|r| !r.accepted)
        .map(|r| r.refusal.as_str())
        .collect()
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_workers_spans_join_its_workflows_trace_and_hostile_reports_are_refused() {
    let receiver = otlp::start_receiver().await;
    let telemetry = otlp::pipeline_to(&receiver, "worker-e2e");

    let server = workflow::Local::start("worker").await.unwrap();
    let addr = server.addr;
    let downstream = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let downstream_addr = downstream.local_addr().unwrap();
    tokio::spawn(serve_downstream(downstream));
    let channel = Channel::from_shared(format!("http://{addr}"))
        .unwrap()
        .connect_lazy();
    let mut client = WorkflowServiceClient::new(channel.clone());
    let acme = TenantId::parse("acme").unwrap();

    // The worker runs two workflows.
    let mut worker = Worker::new(
        channel.clone(),
        channel.clone(),
        downstream_addr,
        acme.clone(),
        "workers",
        "w-1",
    )
    .unwrap();
    let ids = [
        start(&mut client, "acme", "workers").await,
        start(&mut client, "acme", "workers").await,
    ];
    for _ in &ids {
        assert!(worker.run_once().await.unwrap().is_some());
    }
    for _ in 0..200 {
        if worker.collector().sent() >= 6 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert_eq!(
        (worker.collector().sent(), worker.collector().dropped()),
        (6, 0)
    );

    // Hostile reports.
    let globex = start(&mut client, "globex", "other").await;
    let theirs = report(&mut client, "acme", vec![reported(0x11, &globex)]).await;
    assert_eq!(refusals(&theirs), ["other_tenant"]);
    let many: Vec<ExecutionSpan> = (1..=101).map(|i| reported(0x1000 + i, &ids[0])).collect();
    let results = report(&mut client, "acme", many).await;
    assert_eq!(results.iter().filter(|r| r.accepted).count(), 100);
    assert_eq!(refusals(&results), ["too_many_spans"]);
    let mut big_error = reported(0x21, &ids[0]);
    big_error.error = format!("declined: {}", "x".repeat(100_000));
    let mut secret = reported(0x22, &ids[0]);
    secret.attributes = vec![
        SpanAttribute {
            key: "url.full".into(),
            value: "https://pay.example.com/charge?api_key=sk_live_4eC39HqLyjWDarjtT1zdp7dc".into(),
        },
        SpanAttribute {
            key: "db.statement".into(),
            value: "select 1".into(),
        },
    ];
    let mut malformed = reported(0x23, &ids[0]);
    malformed.span_id = "not-a-span-id".into();
    let mut unknown = reported(0x24, &ids[0]);
    unknown.span_type = "shell.exec".into();
    let mut ancient = reported(0x25, &ids[0]);
    ancient.start_time_unix_nano = 0;
    let mut future = reported(0x26, &ids[0]);
    future.end_time_unix_nano = nanos(SystemTime::now() + Duration::from_secs(365 * 24 * 3600));
    let results = report(
        &mut client,
        "acme",
        vec![big_error, secret, malformed, unknown, ancient, future],
    )
    .await;
    assert_eq!(
        refusals(&results),
        [
            "malformed_id",
            "unknown_type",
            "before_workflow",
            "in_the_future"
        ]
    );
    assert_eq!(results[1].dropped_attributes, ["db.statement"]);
    // 10 MB in one attribute: over the server's message limit, refused whole with a
    // clear status, the server unharmed.
    let mut huge = reported(0x27, &ids[0]);
    huge.attributes = vec![SpanAttribute {
        key: "task.type".into(),
        value: "x".repeat(10 << 20),
    }];
    let request = ReportExecutionSpansRequest {
        sdk: None,
        spans: vec![huge],
    };
    let refused = client
        .report_execution_spans(call(request, "acme", None))
        .await
        .unwrap_err();
    assert_eq!(refused.code(), tonic::Code::OutOfRange, "{refused:?}");

    // The proxy down: the worker still runs its workflows; its spans are dropped and
    // counted.
    let dead = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap()
    };
    let nowhere = Channel::from_shared(format!("http://{dead}"))
        .unwrap()
        .connect_lazy();
    let mut cut_off = Worker::new(
        channel.clone(),
        nowhere,
        downstream_addr,
        acme.clone(),
        "cut-off",
        "w-2",
    )
    .unwrap();
    let alone = start(&mut client, "acme", "cut-off").await;
    assert_eq!(
        cut_off.run_once().await.unwrap().as_deref(),
        Some(alone.as_str())
    );
    for _ in 0..200 {
        if cut_off.collector().dropped() >= 3 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert_eq!(
        (cut_off.collector().sent(), cut_off.collector().dropped()),
        (0, 3)
    );
    assert_eq!(
        server.store.workflow(&alone).unwrap().unwrap().status,
        "completed"
    );

    drop(client);
    drop(worker);
    drop(cut_off);
    server.stop().await.unwrap();
    let spans = otlp::flush_and_collect(telemetry, receiver).await;

    // Each workflow the worker ran: one trace of server, worker and downstream spans.
    let mut traces: HashMap<String, Vec<&Span>> = HashMap::new();
    for span in &spans {
        traces.entry(hex(&span.trace_id)).or_default().push(span);
    }
    for id in &ids {
        let start = spans
            .iter()
            .find(|s| {
                s.name == "workflow.start"
                    && attribute(s, "workflow.id").as_deref() == Some(id.as_str())
            })
            .unwrap();
        let trace = &traces[&hex(&start.trace_id)];
        let named = |name: &str, kind: SpanKind| {
            trace
                .iter()
                .find(|s| s.name == name && s.kind == kind as i32)
                .unwrap_or_else(|| panic!("{name} ({kind:?}) not in the trace of {id}"))
        };
        let execute = named("workflow.execute", SpanKind::Internal);
        let task = named("task.execute", SpanKind::Internal);
        let call = named("GET", SpanKind::Client);
        let downstream = named("GET", SpanKind::Server);
        named(
            "instrument.example.v1.WorkflowService/CompleteWorkflow",
            SpanKind::Server,
        );
        assert_eq!(
            execute.parent_span_id, start.span_id,
            "under the stored span"
        );
        assert_eq!(task.parent_span_id, execute.span_id);
        assert_eq!(call.parent_span_id, task.span_id);
        assert_eq!(
            downstream.parent_span_id, call.span_id,
            "the callee under the worker's call"
        );
        assert_eq!(attribute(execute, "sdk.language").as_deref(), Some("rust"));
        assert_eq!(
            attribute(execute, "workflow.id").as_deref(),
            Some(id.as_str())
        );
        for span in trace {
            assert_eq!(
                attribute(span, "tenant.id").as_deref(),
                Some("acme"),
                "{}",
                span.name
            );
        }
    }

    // What the hostile reports left: the long error cut, the secret masked, nothing in
    // globex's trace, the reporter's SDK recorded.
    let by_id = |id: u64| {
        spans
            .iter()
            .find(|s| hex(&s.span_id) == format!("{id:016x}"))
    };
    let cut = by_id(0x21).expect("the long error's span");
    let message = &cut.status.as_ref().unwrap().message;
    assert!(
        message.starts_with("declined: ") && message.len() <= 1024,
        "{}",
        message.len()
    );
    let masked = by_id(0x22).expect("the secret's span");
    let url = attribute(masked, "url.full").unwrap();
    assert!(!url.contains("sk_live_4eC39HqLyjWDarjtT1zdp7dc"), "{url}");
    assert_eq!(attribute(masked, "sdk.language").as_deref(), Some("python"));
    assert!(
        by_id(0x11).is_none(),
        "nothing recorded for another tenant's workflow"
    );
    assert!(by_id(0x1000 + 101).is_none());
    for span in &spans {
        for kv in &span.attributes {
            let text = format!("{:?}", kv.value);
            assert!(
                !text.contains("sk_live_4eC39HqLyjWDarjtT1zdp7dc"),
                "{}: {text}",
                span.name
            );
        }
    }
}
