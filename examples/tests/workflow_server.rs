//! The example workflow server over real sockets: a tonic server with the instrument
//! layers on 127.0.0.1, real tonic clients, spans received by a real OTLP/gRPC receiver
//! started here, `/metrics` checked with `promtool`. One test: it installs the
//! process-wide tracer provider, subscriber and metrics recorder.

#[path = "../../tests/support/otlp.rs"]
mod otlp;
#[path = "../../tests/support/promtool.rs"]
mod promtool;

use std::collections::HashSet;
use std::path::Path;
use std::sync::Arc;

use instrument::cardinality::LabelGuard;
use instrument::pipeline::install_prometheus;
use instrument::semconv::MetricNames;
use instrument_examples::pb::workflow_service_client::WorkflowServiceClient;
use instrument_examples::pb::*;
use instrument_examples::workflow::{self, call};
use opentelemetry_proto::tonic::trace::v1::span::SpanKind;
use opentelemetry_proto::tonic::trace::v1::status::StatusCode;
use opentelemetry_proto::tonic::trace::v1::Span;
use otlp::{attribute, start_receiver};
use tonic::Code;

const CALLER: &str = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01";

type Client = WorkflowServiceClient<tonic::transport::Channel>;

struct Server {
    addr: std::net::SocketAddr,
    stop: tokio::sync::oneshot::Sender<()>,
    served: tokio::task::JoinHandle<Result<(), tonic::transport::Error>>,
}

async fn start_server(db: &Path) -> Server {
    let store = Arc::new(workflow::Store::open(db).unwrap());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let served = tokio::spawn(workflow::serve(listener, store, async {
        let _ = stopped.await;
    }));
    Server { addr, stop, served }
}

impl Server {
    async fn client(&self) -> Client {
        WorkflowServiceClient::connect(format!("http://{}", self.addr))
            .await
            .unwrap()
    }

    async fn stop(self) {
        let _ = self.stop.send(());
        self.served.await.unwrap().unwrap();
    }
}

fn hex(id: &[u8]) -> String {
    id.iter().map(|b| format!("{b:02x}")).collect()
}

/// The `x-tracking-id` a response (or refusal) carried.
fn tracking_id(metadata: &tonic::metadata::MetadataMap) -> String {
    let value = metadata
        .get("x-tracking-id")
        .expect("every response is tracked");
    value.to_str().expect("hex").to_owned()
}

fn trace_of(traceparent: &str) -> &str {
    &traceparent[3..35]
}

async fn start(client: &mut Client, tenant: &str, input: &str) -> StartWorkflowResponse {
    let request = StartWorkflowRequest {
        kind: "payment".into(),
        task_queue: "main".into(),
        input_json: input.into(),
    };
    client
        .start_workflow(call(request, tenant, None))
        .await
        .unwrap()
        .into_inner()
}

fn watch(workflow: &str, max_wait_ms: u32) -> tonic::Request<WatchWorkflowRequest> {
    let request = WatchWorkflowRequest {
        workflow_id: workflow.into(),
        max_wait_ms,
    };
    call(request, "acme", Some(workflow))
}

fn status_code(span: &Span) -> StatusCode {
    span.status
        .as_ref()
        .and_then(|s| StatusCode::try_from(s.code).ok())
        .unwrap_or(StatusCode::Unset)
}

fn submit(workflow: &str, tenant: &str) -> tonic::Request<SubmitTaskRequest> {
    let request = SubmitTaskRequest {
        workflow_id: workflow.into(),
        task_type: "charge".into(),
        input_json: "{}".into(),
    };
    call(request, tenant, Some(workflow))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn workflow_server_over_real_sockets() {
    let receiver = start_receiver().await;
    let telemetry = otlp::pipeline_to(&receiver, "workflow-server-test");
    let metrics = install_prometheus(LabelGuard::default(), &MetricNames::default()).unwrap();
    let dir = std::env::temp_dir().join(format!("instrument-it-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let db = dir.join("workflows.sqlite3");

    // A happy path: start, task, complete; the tracking id names the request's trace.
    let server = start_server(&db).await;
    let mut client = server.client().await;
    let secret_input = r#"{"card":"4111 1111 1111 1111","password":"hunter2"}"#;
    let wf1 = start(&mut client, "acme", secret_input).await;
    // tower-http's layers in front: a request id each, and a header marked sensitive.
    let mut with_contact = call(
        StartWorkflowRequest {
            kind: "payment".into(),
            task_queue: "main".into(),
            input_json: "{}".into(),
        },
        "acme",
        None,
    );
    with_contact
        .metadata_mut()
        .insert("x-contact", "desk 4, second floor".parse().unwrap());
    let response = client.start_workflow(with_contact).await.unwrap();
    let request_id = response
        .metadata()
        .get("x-request-id")
        .expect("tower-http's request id, propagated")
        .to_str()
        .unwrap()
        .to_owned();
    assert_eq!(wf1.traceparent.len(), 55);
    let response = client
        .submit_task(submit(&wf1.workflow_id, "acme"))
        .await
        .unwrap();
    let tracking = tracking_id(response.metadata());
    assert_eq!(
        tracking,
        trace_of(&wf1.traceparent),
        "the task joined the workflow's trace"
    );
    let task = response.into_inner();
    // A caller with its own trace: the stored trace stays the parent, the caller's
    // span becomes a link.
    let mut linked = submit(&wf1.workflow_id, "acme");
    linked
        .metadata_mut()
        .insert("traceparent", CALLER.parse().unwrap());
    let response = client.submit_task(linked).await.unwrap();
    let tracking = tracking_id(response.metadata());
    assert_eq!(tracking, trace_of(&wf1.traceparent));
    let done = CompleteTaskRequest {
        task_id: task.task_id,
        output_json: "{}".into(),
    };
    client
        .complete_task(call(done, "acme", Some(&wf1.workflow_id)))
        .await
        .unwrap();

    // A workflow started before a restart completes in its trace after it.
    let wf2 = start(&mut client, "acme", "{}").await;
    drop(client);
    server.stop().await;
    let server = start_server(&db).await;
    let mut client = server.client().await;
    let done = CompleteWorkflowRequest {
        workflow_id: wf2.workflow_id.clone(),
        output_json: "{}".into(),
    };
    let response = client
        .complete_workflow(call(done, "acme", Some(&wf2.workflow_id)))
        .await
        .unwrap();
    let tracking = tracking_id(response.metadata());
    assert_eq!(tracking, trace_of(&wf2.traceparent));
    // An ended workflow takes no second ending.
    let again = CompleteWorkflowRequest {
        workflow_id: wf2.workflow_id.clone(),
        output_json: "{}".into(),
    };
    let again = client
        .complete_workflow(call(again, "acme", Some(&wf2.workflow_id)))
        .await
        .unwrap_err();
    assert_eq!(again.code(), Code::FailedPrecondition);

    // Refusals: another tenant's workflow, unknown ids, no or malformed tenant.
    let denied = client
        .submit_task(submit(&wf1.workflow_id, "globex"))
        .await
        .unwrap_err();
    assert_eq!(denied.code(), Code::PermissionDenied);
    assert!(!denied.message().contains("acme"));
    let tracking = tracking_id(denied.metadata());
    assert_ne!(
        tracking,
        trace_of(&wf1.traceparent),
        "acme's trace id does not leak"
    );
    let missing = client
        .submit_task(submit("wf-missing", "acme"))
        .await
        .unwrap_err();
    assert_eq!(missing.code(), Code::NotFound);
    let done = CompleteTaskRequest {
        task_id: "task-missing".into(),
        output_json: "{}".into(),
    };
    let missing_task = client
        .complete_task(call(done, "acme", None))
        .await
        .unwrap_err();
    assert_eq!(missing_task.code(), Code::NotFound);
    let anonymous = client
        .poll_workflow(tonic::Request::new(PollWorkflowRequest::default()))
        .await
        .unwrap_err();
    assert_eq!(anonymous.code(), Code::Unauthenticated);
    let malformed = client
        .poll_workflow(call(PollWorkflowRequest::default(), "not a tenant!", None))
        .await
        .unwrap_err();
    assert_eq!(malformed.code(), Code::InvalidArgument);
    // A task of acme's, completed by globex without x-workflow-id: the handler refuses.
    let wf3 = start(&mut client, "acme", "{}").await;
    let task3 = client
        .submit_task(submit(&wf3.workflow_id, "acme"))
        .await
        .unwrap()
        .into_inner();
    let done = CompleteTaskRequest {
        task_id: task3.task_id,
        output_json: "{}".into(),
    };
    let denied = client
        .complete_task(call(done, "globex", None))
        .await
        .unwrap_err();
    assert_eq!(denied.code(), Code::PermissionDenied);

    // A worker's path: nothing in the poll names the workflow and no request carries
    // a traceparent, yet the poll, the task and the completion join the start's trace.
    let queued = StartWorkflowRequest {
        kind: "report".into(),
        task_queue: "reports".into(),
        input_json: "{}".into(),
    };
    let wf4 = client
        .start_workflow(call(queued, "acme", None))
        .await
        .unwrap()
        .into_inner();
    let poll = PollWorkflowRequest {
        task_queue: "reports".into(),
        worker_id: "worker-1".into(),
    };
    let polled = client
        .poll_workflow(call(poll, "acme", None))
        .await
        .unwrap();
    let poll_trace = tracking_id(polled.metadata());
    let polled = polled.into_inner();
    assert_eq!(polled.workflow_id, wf4.workflow_id);
    assert_eq!(polled.traceparent, wf4.traceparent);
    let task4 = client
        .submit_task(submit(&polled.workflow_id, "acme"))
        .await
        .unwrap()
        .into_inner();
    let done = CompleteTaskRequest {
        task_id: task4.task_id,
        output_json: "{}".into(),
    };
    client
        .complete_task(call(done, "acme", Some(&polled.workflow_id)))
        .await
        .unwrap();
    let done = CompleteWorkflowRequest {
        workflow_id: polled.workflow_id.clone(),
        output_json: "{}".into(),
    };
    client
        .complete_workflow(call(done, "acme", Some(&polled.workflow_id)))
        .await
        .unwrap();

    // Streaming: an ended workflow's watch ends with OK in the trailers; a watch that
    // runs out of time ends with DEADLINE_EXCEEDED in the trailers, after an event; a
    // watch the client drops is recorded as cancelled.
    let mut ended = client
        .watch_workflow(watch(&wf2.workflow_id, 0))
        .await
        .unwrap()
        .into_inner();
    let event = ended.message().await.unwrap().expect("one event");
    assert_eq!(event.status, "completed");
    assert!(ended.message().await.unwrap().is_none());
    let mut timed_out = client
        .watch_workflow(watch(&wf3.workflow_id, 100))
        .await
        .unwrap()
        .into_inner();
    let event = timed_out
        .message()
        .await
        .unwrap()
        .expect("the current status");
    assert_eq!(event.status, "pending");
    let trailer_status = timed_out.message().await.unwrap_err();
    assert_eq!(trailer_status.code(), Code::DeadlineExceeded);
    let mut dropped = client
        .watch_workflow(watch(&wf3.workflow_id, 0))
        .await
        .unwrap()
        .into_inner();
    dropped
        .message()
        .await
        .unwrap()
        .expect("the current status");
    drop(dropped);

    drop(client);
    server.stop().await;
    // The dropped watch is recorded when its connection task lets go of the stream,
    // which can outlive the server's own future by a moment.
    let cancelled_watch = "rpc_method=\"instrument.example.v1.WorkflowService/WatchWorkflow\",tenant_id=\"acme\",rpc_response_status_code=\"CANCELLED\"";
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(5);
    while !metrics.render().contains(cancelled_watch) && std::time::Instant::now() < deadline {
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    let exposition = metrics.render();
    let scopes = receiver.receiver.scopes.clone();
    let spans = otlp::flush_and_collect(telemetry, receiver).await;
    let _ = std::fs::remove_dir_all(&dir);

    let named = |name: &str| -> Vec<&Span> { spans.iter().filter(|s| s.name == name).collect() };
    // Each watch above received one event before it ended: one message each, in the
    // metrics and as an `rpc.message` event on its span.
    let watch =
        "rpc_method=\"instrument.example.v1.WorkflowService/WatchWorkflow\",tenant_id=\"acme\"";
    for line in [
        format!("rpc_server_responses_per_rpc_sum{{rpc_system_name=\"grpc\",{watch}}} 3"),
        format!("rpc_server_responses_per_rpc_count{{rpc_system_name=\"grpc\",{watch}}} 3"),
        format!("rpc_server_response_size_bytes_count{{rpc_system_name=\"grpc\",{watch}}} 3"),
    ] {
        assert!(exposition.contains(&line), "{line} not in\n{exposition}");
    }
    let watches = named("instrument.example.v1.WorkflowService/WatchWorkflow");
    assert_eq!(watches.len(), 3);
    for span in &watches {
        let messages = span
            .events
            .iter()
            .filter(|e| e.name == "rpc.message")
            .count();
        assert_eq!(messages, 1, "{:?}", span.events);
    }
    let start_spans = named("instrument.example.v1.WorkflowService/StartWorkflow");
    assert_eq!(start_spans.len(), 5);
    let contact_span = start_spans
        .iter()
        .find(|s| attribute(s, "http.request.header.x-contact").is_some())
        .expect("the call with x-contact");
    assert_eq!(
        attribute(contact_span, "http.request.header.x-contact").as_deref(),
        Some("[REDACTED]"),
        "marked sensitive by tower-http, so never in clear"
    );
    assert_eq!(
        attribute(contact_span, "http.request.header.x-request-id"),
        Some(request_id)
    );
    for span in &start_spans {
        assert_eq!(span.kind, SpanKind::Server as i32);
        assert_eq!(attribute(span, "rpc.system").as_deref(), Some("grpc"));
        assert_eq!(
            attribute(span, "rpc.method").as_deref(),
            Some("StartWorkflow")
        );
        assert_eq!(
            attribute(span, "rpc.grpc.status_code").as_deref(),
            Some("0")
        );
        assert_eq!(attribute(span, "tenant.id").as_deref(), Some("acme"));
        assert!(attribute(span, "http.request.header.x-request-id").is_some());
        // The peer of a real tonic connection (its TcpConnectInfo).
        assert_eq!(
            attribute(span, "network.peer.address").as_deref(),
            Some("127.0.0.1")
        );
        assert!(attribute(span, "network.peer.port").is_some_and(|p| p != "0"));
    }

    // Every span of workflow 1's trace belongs to acme; the trace has the server
    // spans of all three requests and the handler spans.
    let trace1: Vec<&Span> = spans
        .iter()
        .filter(|s| hex(&s.trace_id) == trace_of(&wf1.traceparent))
        .collect();
    let names: HashSet<&str> = trace1.iter().map(|s| s.name.as_str()).collect();
    for expected in [
        "instrument.example.v1.WorkflowService/StartWorkflow",
        "workflow.start",
        "instrument.example.v1.WorkflowService/SubmitTask",
        "task.submitted",
        "instrument.example.v1.WorkflowService/CompleteTask",
        "task.completed",
    ] {
        assert!(
            names.contains(expected),
            "{expected} missing from {names:?}"
        );
    }
    for span in &trace1 {
        assert_eq!(
            attribute(span, "tenant.id").as_deref(),
            Some("acme"),
            "{}",
            span.name
        );
    }
    let linked: Vec<&&Span> = trace1.iter().filter(|s| !s.links.is_empty()).collect();
    assert_eq!(linked.len(), 1, "one request came with a caller's trace");
    assert_eq!(
        linked[0].name,
        "instrument.example.v1.WorkflowService/SubmitTask"
    );
    assert_eq!(hex(&linked[0].links[0].trace_id), trace_of(CALLER));
    assert_eq!(hex(&linked[0].links[0].span_id), &CALLER[36..52]);
    let input = attribute(named("workflow.start")[0], "workflow.input").unwrap_or_default();
    assert!(
        !input.contains("hunter2") && !input.contains("4111 1111"),
        "{input}"
    );

    // Server spans and completion spans name their instrumentation scope and version.
    let scopes = scopes.lock().unwrap().clone();
    let scope_of = |span: &str| {
        scopes
            .iter()
            .find(|(_, _, name)| name == span)
            .map(|(scope, version, _)| (scope.clone(), version.clone()))
    };
    let version = env!("CARGO_PKG_VERSION").to_owned();
    assert_eq!(
        scope_of("instrument.example.v1.WorkflowService/StartWorkflow"),
        Some(("instrument-tower".to_owned(), version.clone()))
    );
    assert_eq!(
        scope_of("workflow.completed"),
        Some(("instrument".to_owned(), version))
    );

    // The restart: completion in workflow 2's trace.
    let completed = named("workflow.completed");
    assert_eq!(completed.len(), 2, "workflows 2 and 4");
    assert!(completed
        .iter()
        .any(|s| hex(&s.trace_id) == trace_of(&wf2.traceparent)));

    // The cross-tenant refusal is recorded on a span outside acme's trace.
    let refused: Vec<&Span> = spans
        .iter()
        .filter(|s| attribute(s, "tenant.rejected").as_deref() == Some("other_tenant"))
        .collect();
    assert_eq!(refused.len(), 1);
    assert_eq!(
        attribute(refused[0], "rpc.grpc.status_code").as_deref(),
        Some("7")
    );
    assert_eq!(
        attribute(refused[0], "tenant.id").as_deref(),
        Some("globex")
    );
    assert_ne!(hex(&refused[0].trace_id), trace_of(&wf1.traceparent));
    let codes: Vec<String> = named("instrument.example.v1.WorkflowService/CompleteTask")
        .iter()
        .filter_map(|s| attribute(s, "rpc.grpc.status_code"))
        .collect();
    assert!(
        codes.contains(&"5".to_owned()) && codes.contains(&"7".to_owned()),
        "{codes:?}"
    );

    // The worker's path is one trace; the poll request's own span, which could not know
    // the workflow, is linked from the poll's handler span.
    let trace4: HashSet<&str> = spans
        .iter()
        .filter(|s| hex(&s.trace_id) == trace_of(&wf4.traceparent))
        .map(|s| s.name.as_str())
        .collect();
    for expected in [
        "instrument.example.v1.WorkflowService/StartWorkflow",
        "workflow.start",
        "workflow.poll",
        "instrument.example.v1.WorkflowService/SubmitTask",
        "task.submitted",
        "instrument.example.v1.WorkflowService/CompleteTask",
        "task.completed",
        "instrument.example.v1.WorkflowService/CompleteWorkflow",
        "workflow.completed",
    ] {
        assert!(
            trace4.contains(expected),
            "{expected} missing from {trace4:?}"
        );
    }
    let poll_span = named("workflow.poll")[0];
    assert_eq!(hex(&poll_span.trace_id), trace_of(&wf4.traceparent));
    assert_eq!(hex(&poll_span.links[0].trace_id), poll_trace);
    let poll_request = named("instrument.example.v1.WorkflowService/PollWorkflow")
        .into_iter()
        .find(|s| hex(&s.trace_id) == poll_trace)
        .expect("the poll request's span");
    assert_eq!(poll_span.links[0].span_id, poll_request.span_id);

    // The streams: status from the trailers, error for DEADLINE_EXCEEDED, cancelled
    // for the dropped one.
    let watches = named("instrument.example.v1.WorkflowService/WatchWorkflow");
    assert_eq!(watches.len(), 3);
    let by_code = |code: &str| {
        watches
            .iter()
            .find(|s| attribute(s, "rpc.grpc.status_code").as_deref() == Some(code))
            .unwrap_or_else(|| panic!("no watch ended with {code}"))
    };
    assert_eq!(status_code(by_code("0")), StatusCode::Unset);
    assert_eq!(status_code(by_code("4")), StatusCode::Error);
    let cancelled: Vec<&&Span> = watches
        .iter()
        .filter(|s| attribute(s, "instrument.cancelled").as_deref() == Some("true"))
        .collect();
    assert_eq!(cancelled.len(), 1);
    assert_eq!(
        attribute(cancelled[0], "rpc.grpc.status_code").as_deref(),
        Some("1"),
        "CANCELLED"
    );

    // Request metrics: the conventions' histogram (its count is the call count),
    // labelled and valid for promtool.
    assert!(exposition.contains(
        "rpc_server_call_duration_seconds_count{rpc_system_name=\"grpc\",rpc_method=\"instrument.example.v1.WorkflowService/StartWorkflow\",tenant_id=\"acme\",rpc_response_status_code=\"OK\"} 5"
    ), "{exposition}");
    assert!(exposition.contains(
        "instrument_tenant_rejections_total{reason=\"other_tenant\",protocol=\"grpc\"} 1"
    ));
    assert!(exposition.contains("instrument_rpc_server_active_calls{"));
    for status in ["OK", "DEADLINE_EXCEEDED", "CANCELLED"] {
        // DEADLINE_EXCEEDED is a server fault by default: it carries `error_type`.
        let error = if status == "DEADLINE_EXCEEDED" {
            format!(",error_type=\"{status}\"")
        } else {
            String::new()
        };
        let line = format!(
            "rpc_server_call_duration_seconds_count{{rpc_system_name=\"grpc\",rpc_method=\"instrument.example.v1.WorkflowService/WatchWorkflow\",tenant_id=\"acme\",rpc_response_status_code=\"{status}\"{error}}} 1"
        );
        assert!(exposition.contains(&line), "{line} missing");
    }
    promtool::check_metrics(&exposition);
}
