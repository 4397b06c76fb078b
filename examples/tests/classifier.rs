//! A team's tower-http classifier decides, over real sockets, both the server span's
//! status (received by an OTLP receiver) and the error metric (`/metrics`): here
//! `NOT_FOUND` is a failure and `INVALID_ARGUMENT` is not, unlike the default.
//! A test binary of its own: it installs the process-wide metrics recorder.

#[path = "../../tests/support/otlp.rs"]
mod otlp;

use instrument::cardinality::LabelGuard;
use instrument::pipeline::install_prometheus;
use instrument::semconv::MetricNames;
use instrument::tower::stack::InstrumentLayer;
use instrument_examples::pb::workflow_service_client::WorkflowServiceClient;
use instrument_examples::pb::workflow_service_server::{WorkflowService, WorkflowServiceServer};
use instrument_examples::pb::*;
use instrument_examples::workflow::call;
use opentelemetry_proto::tonic::trace::v1::status::StatusCode;
use otlp::start_receiver;
use tonic::{Code, Request, Response, Status};
use tower_http::classify::{GrpcCode, GrpcErrorsAsFailures, SharedClassifier};

/// `StartWorkflow` answers `NOT_FOUND`, `SubmitTask` `INVALID_ARGUMENT`.
struct Refusing;

#[tonic::async_trait]
impl WorkflowService for Refusing {
    async fn start_workflow(
        &self,
        _: Request<StartWorkflowRequest>,
    ) -> Result<Response<StartWorkflowResponse>, Status> {
        Err(Status::not_found("no such kind"))
    }

    async fn poll_workflow(
        &self,
        _: Request<PollWorkflowRequest>,
    ) -> Result<Response<PollWorkflowResponse>, Status> {
        Err(Status::unimplemented("test"))
    }

    async fn report_execution_spans(
        &self,
        _: Request<ReportExecutionSpansRequest>,
    ) -> Result<Response<ReportExecutionSpansResponse>, Status> {
        Err(Status::unimplemented("test"))
    }

    async fn submit_task(
        &self,
        _: Request<SubmitTaskRequest>,
    ) -> Result<Response<SubmitTaskResponse>, Status> {
        Err(Status::invalid_argument("bad task"))
    }

    async fn complete_task(
        &self,
        _: Request<CompleteTaskRequest>,
    ) -> Result<Response<Ack>, Status> {
        Err(Status::unimplemented("test"))
    }

    async fn fail_task(&self, _: Request<FailTaskRequest>) -> Result<Response<Ack>, Status> {
        Err(Status::unimplemented("test"))
    }

    async fn complete_workflow(
        &self,
        _: Request<CompleteWorkflowRequest>,
    ) -> Result<Response<Ack>, Status> {
        Err(Status::unimplemented("test"))
    }

    async fn fail_workflow(
        &self,
        _: Request<FailWorkflowRequest>,
    ) -> Result<Response<Ack>, Status> {
        Err(Status::unimplemented("test"))
    }

    type WatchWorkflowStream = futures_util::stream::Empty<Result<WorkflowEvent, Status>>;

    async fn watch_workflow(
        &self,
        _: Request<WatchWorkflowRequest>,
    ) -> Result<Response<Self::WatchWorkflowStream>, Status> {
        Err(Status::unimplemented("test"))
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_teams_grpc_classifier_decides_span_status_and_error_metric() {
    let receiver = start_receiver().await;
    let telemetry = otlp::pipeline_to(&receiver, "classifier-test");
    let metrics = install_prometheus(LabelGuard::default(), &MetricNames::default()).unwrap();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let classifier =
        SharedClassifier::new(GrpcErrorsAsFailures::new().with_success(GrpcCode::InvalidArgument));
    let layer = InstrumentLayer::builder().classifier(classifier).build();
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let served = tokio::spawn(
        tonic::transport::Server::builder()
            .layer(layer)
            .add_service(WorkflowServiceServer::new(Refusing))
            .serve_with_incoming_shutdown(
                tonic::transport::server::TcpIncoming::from(listener),
                async {
                    let _ = stopped.await;
                },
            ),
    );
    let mut client = WorkflowServiceClient::connect(format!("http://{addr}"))
        .await
        .unwrap();
    let start = StartWorkflowRequest {
        kind: "payment".into(),
        task_queue: "main".into(),
        input_json: "{}".into(),
    };
    let refused = client.start_workflow(call(start, "acme", None)).await;
    assert_eq!(refused.unwrap_err().code(), Code::NotFound);
    let submit = SubmitTaskRequest {
        workflow_id: "wf-1".into(),
        task_type: "charge".into(),
        input_json: "{}".into(),
    };
    let invalid = client.submit_task(call(submit, "acme", None)).await;
    assert_eq!(invalid.unwrap_err().code(), Code::InvalidArgument);

    let exposition = metrics.render();
    let _ = stop.send(());
    served.await.unwrap().unwrap();
    let spans = otlp::flush_and_collect(telemetry, receiver).await;
    let status = |name: &str| {
        let span = spans
            .iter()
            .find(|s| s.name == name)
            .unwrap_or_else(|| panic!("no span {name}"));
        span.status
            .as_ref()
            .and_then(|s| StatusCode::try_from(s.code).ok())
            .unwrap_or(StatusCode::Unset)
    };
    assert_eq!(
        status("instrument.example.v1.WorkflowService/StartWorkflow"),
        StatusCode::Error
    );
    assert_ne!(
        status("instrument.example.v1.WorkflowService/SubmitTask"),
        StatusCode::Error
    );
    let errors = |method: &str, code: &str| {
        exposition.lines().any(|line| {
            line.starts_with("rpc_server_call_duration_seconds_count{")
                && line.contains(&format!(
                    "rpc_method=\"instrument.example.v1.WorkflowService/{method}\""
                ))
                && line.contains(&format!("error_type=\"{code}\""))
        })
    };
    assert!(errors("StartWorkflow", "NOT_FOUND"), "{exposition}");
    assert!(!errors("SubmitTask", "INVALID_ARGUMENT"), "{exposition}");
}
