//! The client layer on a tonic `Channel`, over real sockets: a tonic client built with
//! `ServiceBuilder::new().layer(ClientLayer::new()).service(channel)` calls the example
//! workflow server; both export to an OTLP/gRPC receiver started here. The server's
//! span is a child of the client span, the tenant goes out from the context alone, the
//! gRPC status comes from the trailers, and a stream the caller drops ends as
//! cancelled. One test: it installs the process-wide pipeline.

#[path = "../../tests/support/otlp.rs"]
mod otlp;

use std::time::Duration;

use instrument::context::{restore, InContextExt as _};
use instrument::tenant::{with_tenant, TenantId};
use instrument::tower::client::ClientLayer;
use instrument_examples::pb::workflow_service_client::WorkflowServiceClient;
use instrument_examples::pb::*;
use instrument_examples::workflow;
use opentelemetry_proto::tonic::trace::v1::span::SpanKind;
use otlp::attribute;
use tonic::transport::Channel;
use tower::ServiceBuilder;

const START: &str = "instrument.example.v1.WorkflowService/StartWorkflow";
const SUBMIT: &str = "instrument.example.v1.WorkflowService/SubmitTask";
const WATCH: &str = "instrument.example.v1.WorkflowService/WatchWorkflow";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_tonic_channel_behind_the_client_layer_continues_the_trace_and_forwards_the_tenant() {
    let receiver = otlp::start_receiver().await;
    let telemetry = otlp::pipeline_to(&receiver, "client-layer");
    let server = workflow::Local::start("client-layer").await.unwrap();
    let addr = server.addr;

    let channel = Channel::from_shared(format!("http://{addr}"))
        .unwrap()
        .connect_lazy();
    let layered = ServiceBuilder::new()
        .layer(ClientLayer::new())
        .service(channel);
    // With the origin, the layer sees the server's address in each request's URI.
    let origin: http::Uri = format!("http://{addr}").parse().unwrap();
    let mut client = WorkflowServiceClient::with_origin(layered, origin);
    // A task of tenant acme, in a sampled trace: no tenant metadata is set by hand.
    let cx = with_tenant(
        &restore(Some(
            "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
        ))
        .to_context(),
        TenantId::parse("acme").unwrap(),
    );
    let started = client
        .start_workflow(StartWorkflowRequest {
            kind: "payment".into(),
            task_queue: "main".into(),
            input_json: "{}".into(),
        })
        .in_context(cx.clone())
        .await
        .unwrap()
        .into_inner();
    let missing = client
        .submit_task(SubmitTaskRequest {
            workflow_id: "wf-missing".into(),
            task_type: "charge".into(),
            input_json: "{}".into(),
        })
        .in_context(cx.clone())
        .await
        .unwrap_err();
    assert_eq!(missing.code(), tonic::Code::NotFound);
    // A stream dropped before the server ended it.
    let mut request = tonic::Request::new(WatchWorkflowRequest {
        workflow_id: started.workflow_id.clone(),
        max_wait_ms: 10_000,
    });
    request
        .metadata_mut()
        .insert("x-workflow-id", started.workflow_id.parse().unwrap());
    let mut events = client
        .watch_workflow(request)
        .in_context(cx.clone())
        .await
        .unwrap()
        .into_inner();
    assert!(events.message().await.unwrap().is_some());
    drop(events);
    tokio::time::sleep(Duration::from_millis(100)).await;

    drop(client);
    server.stop().await.unwrap();
    let spans = otlp::flush_and_collect(telemetry, receiver).await;

    let find = |name: &str, kind: SpanKind| {
        spans
            .iter()
            .find(|s| s.name == name && s.kind == kind as i32)
            .unwrap_or_else(|| panic!("no {kind:?} span {name}"))
    };
    let client_start = find(START, SpanKind::Client);
    let server_start = find(START, SpanKind::Server);
    assert_eq!(server_start.parent_span_id, client_start.span_id);
    assert_eq!(
        client_start.trace_id,
        vec![
            0x4b, 0xf9, 0x2f, 0x35, 0x77, 0xb3, 0x4d, 0xa6, 0xa3, 0xce, 0x92, 0x9d, 0x0e, 0x0e,
            0x47, 0x36
        ]
    );
    assert_eq!(
        attribute(server_start, "tenant.id").as_deref(),
        Some("acme")
    );
    assert_eq!(
        attribute(client_start, "tenant.id").as_deref(),
        Some("acme")
    );
    assert_eq!(
        attribute(client_start, "server.address").as_deref(),
        Some("127.0.0.1")
    );
    let client_submit = find(SUBMIT, SpanKind::Client);
    assert_eq!(
        attribute(client_submit, "error.type").as_deref(),
        Some("NOT_FOUND")
    );
    assert_eq!(
        attribute(client_submit, "rpc.grpc.status_code").as_deref(),
        Some("5")
    );
    let client_watch = find(WATCH, SpanKind::Client);
    assert_eq!(
        attribute(client_watch, "instrument.cancelled").as_deref(),
        Some("true")
    );
}
