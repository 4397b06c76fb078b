//! The example worker, shared by `worker`, `demo` and the integration tests: it polls
//! the workflow server, runs each workflow inside the workflow's trace, calls a
//! downstream HTTP service through the client layer, and reports its own execution
//! spans through the server's span proxy (it holds no collector credentials).
//!
//! Per workflow it polls, the worker
//! 1. continues the trace from the poll response's traceparent
//!    (`SpanCollector::execution`, span `workflow.execute`);
//! 2. submits a `quote` task and runs it (`task.execute`), calling the downstream
//!    service's `GET /quote` through [`ClientLayer`] (client span `GET`, traceparent and
//!    tenant sent);
//! 3. completes the task and the workflow, its gRPC calls carrying the trace context
//!    through a tonic interceptor ([`propagate`]);
//! 4. ends its spans, which the collector sends to `ReportExecutionSpans`.

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, UNIX_EPOCH};

use bytes::Bytes;
use http::{Request, Response, StatusCode};
use http_body_util::{BodyExt as _, Empty, Full};
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;
use instrument::context::{inject_outgoing, InContextExt as _};
use instrument::report::{Report, SdkInfo, SinkError, SpanCollector, SpanSink};
use instrument::semconv::{SPAN_TASK_EXECUTE, SPAN_WORKFLOW_EXECUTE, TENANT_HEADER};
use instrument::tenant::TenantId;
use instrument::tower::client::{Client, ClientLayer};
use instrument::tower::stack::InstrumentLayer;
use tonic::service::interceptor::InterceptedService;
use tonic::transport::Channel;
use tower::{Service as _, ServiceBuilder, ServiceExt as _};

use crate::pb::workflow_service_client::WorkflowServiceClient;
use crate::pb::*;
use crate::workflow::call;

/// A tonic interceptor: the current context's `traceparent`, `tracestate`, `baggage`
/// and tenant as gRPC metadata, where a client layer is not wanted (the worker's calls
/// to the server need no client span of their own). A tenant already in the metadata
/// is kept.
pub fn propagate(mut request: tonic::Request<()>) -> Result<tonic::Request<()>, tonic::Status> {
    let has_tenant = request.metadata().contains_key(TENANT_HEADER);
    let cx = opentelemetry::Context::current();
    let metadata = request.metadata_mut();
    inject_outgoing(&cx, !has_tenant, |name, value| {
        if let Ok(value) = value.parse() {
            metadata.insert(name, value);
        }
    });
    Ok(request)
}

/// The worker's gRPC client of the workflow server.
pub type Server = WorkflowServiceClient<
    InterceptedService<
        Channel,
        fn(tonic::Request<()>) -> Result<tonic::Request<()>, tonic::Status>,
    >,
>;

/// A client of the workflow server whose calls carry the current context.
pub fn server(channel: Channel) -> Server {
    let interceptor: fn(tonic::Request<()>) -> Result<tonic::Request<()>, tonic::Status> =
        propagate;
    WorkflowServiceClient::with_interceptor(channel, interceptor)
}

/// Sends the collector's reports to `ReportExecutionSpans`.
#[derive(Clone)]
pub struct ProxySink {
    server: Server,
}

impl ProxySink {
    /// Reports through `channel`.
    pub fn new(channel: Channel) -> Self {
        Self {
            server: server(channel),
        }
    }
}

fn nanos(at: std::time::SystemTime) -> u64 {
    at.duration_since(UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_nanos()).unwrap_or(u64::MAX))
}

/// `report` as the proto's request.
pub fn report_request(report: &Report) -> ReportExecutionSpansRequest {
    ReportExecutionSpansRequest {
        sdk: Some(crate::pb::SdkInfo {
            language: report.sdk.language.clone(),
            sdk_version: report.sdk.version.clone(),
            os: report.sdk.os.clone(),
            arch: report.sdk.arch.clone(),
        }),
        spans: report
            .spans
            .iter()
            .map(|span| crate::pb::ExecutionSpan {
                span_id: span.span_id.clone(),
                parent_span_id: span.parent_span_id.clone(),
                span_type: span.span_type.clone(),
                name: span.name.clone(),
                workflow_id: span.workflow_id.clone(),
                task_id: span.task_id.clone(),
                start_time_unix_nano: nanos(span.start),
                end_time_unix_nano: nanos(span.end),
                error: span.error.clone().unwrap_or_default(),
                attributes: span
                    .attributes
                    .iter()
                    .map(|(key, value)| SpanAttribute {
                        key: key.clone(),
                        value: value.clone(),
                    })
                    .collect(),
            })
            .collect(),
    }
}

impl SpanSink for ProxySink {
    fn send(
        &self,
        report: Report,
    ) -> std::pin::Pin<Box<dyn std::future::Future<Output = Result<(), SinkError>> + Send>> {
        let mut server = self.server.clone();
        Box::pin(async move {
            let request = call(report_request(&report), report.tenant.as_str(), None);
            // Sent outside any trace: the report itself is not part of the workflow.
            let response = server
                .report_execution_spans(request)
                .in_context(opentelemetry::Context::new())
                .await?
                .into_inner();
            for (result, span) in response.results.iter().zip(&report.spans) {
                if !result.accepted {
                    tracing::warn!(
                        span_type = %span.span_type,
                        reason = %result.refusal,
                        "the span proxy refused a reported span"
                    );
                }
            }
            Ok(())
        })
    }
}

/// The HTTP client the worker calls the downstream service with.
pub type Http = Client<hyper_util::client::legacy::Client<HttpConnector, Empty<Bytes>>>;

/// One worker: its server client, its collector and its HTTP client.
pub struct Worker {
    server: Server,
    collector: Arc<SpanCollector>,
    http: Http,
    downstream: SocketAddr,
    tenant: TenantId,
    queue: String,
    id: String,
}

/// Why a workflow's run failed.
pub type WorkError = Box<dyn std::error::Error + Send + Sync>;

impl Worker {
    /// A worker of `tenant` polling `queue` on the server behind `channel`, reporting its
    /// spans through `reports` (usually the same channel), calling the downstream
    /// service at `downstream`. Must run inside a tokio runtime.
    pub fn new(
        channel: Channel,
        reports: Channel,
        downstream: SocketAddr,
        tenant: TenantId,
        queue: &str,
        id: &str,
    ) -> Result<Self, WorkError> {
        let collector = SpanCollector::builder(ProxySink::new(reports))
            .sdk(SdkInfo::rust(env!("CARGO_PKG_VERSION")))
            .every(Duration::from_millis(200))
            .build()?;
        let hyper = hyper_util::client::legacy::Client::builder(TokioExecutor::new()).build_http();
        let http = ServiceBuilder::new()
            .layer(ClientLayer::new().tracer(collector.tracer()))
            .service(hyper);
        Ok(Self {
            server: server(channel),
            collector: Arc::new(collector),
            http,
            downstream,
            tenant,
            queue: queue.to_owned(),
            id: id.to_owned(),
        })
    }

    /// The worker's span collector (its counts of sent and dropped spans).
    pub fn collector(&self) -> &SpanCollector {
        &self.collector
    }

    /// Polls once and runs the workflow handed out, if any; its id.
    pub async fn run_once(&mut self) -> Result<Option<String>, WorkError> {
        let poll = PollWorkflowRequest {
            task_queue: self.queue.clone(),
            worker_id: self.id.clone(),
        };
        let polled = self
            .server
            .poll_workflow(call(poll, self.tenant.as_str(), None))
            .await?
            .into_inner();
        if polled.workflow_id.is_empty() {
            return Ok(None);
        }
        let traceparent = Some(polled.traceparent.as_str()).filter(|t| !t.is_empty());
        let run = self
            .collector
            .execution(SPAN_WORKFLOW_EXECUTE, &polled.workflow_id, &self.tenant)
            .traceparent(traceparent)
            .start();
        let result = self.execute(&polled, &run).in_context(run.context()).await;
        let error = result.as_ref().err().map(ToString::to_string);
        run.end(error.as_deref());
        result.map(|()| Some(polled.workflow_id))
    }

    /// Runs `polled` under `run`: one `quote` task, then the workflow's completion.
    async fn execute(
        &mut self,
        polled: &PollWorkflowResponse,
        run: &instrument::report::Execution,
    ) -> Result<(), WorkError> {
        let tenant = self.tenant.as_str().to_owned();
        let workflow = polled.workflow_id.as_str();
        let submit = SubmitTaskRequest {
            workflow_id: workflow.to_owned(),
            task_type: "quote".into(),
            input_json: polled.input_json.clone(),
        };
        let task = self
            .server
            .submit_task(call(submit, &tenant, Some(workflow)))
            .await?
            .into_inner();
        let task_run = run.child(SPAN_TASK_EXECUTE, Some(&task.task_id));
        let quoted = self.quote(workflow).in_context(task_run.context()).await;
        match &quoted {
            Ok(price) => {
                let done = CompleteTaskRequest {
                    task_id: task.task_id.clone(),
                    output_json: format!(r#"{{"price":{price}}}"#),
                };
                self.server
                    .complete_task(call(done, &tenant, Some(workflow)))
                    .in_context(task_run.context())
                    .await?;
            }
            Err(e) => {
                let failed = FailTaskRequest {
                    task_id: task.task_id.clone(),
                    error: e.to_string(),
                };
                self.server
                    .fail_task(call(failed, &tenant, Some(workflow)))
                    .in_context(task_run.context())
                    .await?;
            }
        }
        task_run.end(quoted.as_ref().err().map(ToString::to_string).as_deref());
        let done = CompleteWorkflowRequest {
            workflow_id: workflow.to_owned(),
            output_json: "{}".into(),
        };
        self.server
            .complete_workflow(call(done, &tenant, Some(workflow)))
            .await?;
        Ok(())
    }

    /// `GET /quote` of the downstream service, through the client layer.
    async fn quote(&mut self, workflow: &str) -> Result<String, WorkError> {
        let request = Request::get(format!(
            "http://{}/quote?workflow={workflow}",
            self.downstream
        ))
        .body(Empty::new())?;
        let response = self.http.ready().await?.call(request).await?;
        let status = response.status();
        let body = response.into_body().collect().await?.to_bytes();
        if status != StatusCode::OK {
            return Err(format!("the quote service answered {status}").into());
        }
        Ok(String::from_utf8_lossy(&body).into_owned())
    }

    /// Polls until `shutdown`, pausing `idle` whenever there is nothing to do; a failed
    /// round is logged and the worker goes on.
    pub async fn run(mut self, idle: Duration, shutdown: impl std::future::Future<Output = ()>) {
        tokio::pin!(shutdown);
        loop {
            let pause = match self.run_once().await {
                Ok(Some(_)) => Duration::ZERO,
                Ok(None) => idle,
                Err(e) => {
                    tracing::warn!(error = %e, "worker round failed");
                    idle
                }
            };
            tokio::select! {
                () = &mut shutdown => break,
                () = tokio::time::sleep(pause) => {}
            }
        }
        self.collector.flush();
    }
}

/// The downstream service: `GET /quote` answers a price, anything else 404; behind
/// `InstrumentLayer`, so its server span continues the worker's call. Serves until the
/// runtime stops.
pub async fn serve_downstream(listener: tokio::net::TcpListener) {
    async fn routes(
        request: Request<hyper::body::Incoming>,
    ) -> Result<Response<Full<Bytes>>, Infallible> {
        let mut response = Response::new(Full::new(Bytes::from_static(b"42")));
        if request.uri().path() != "/quote" {
            *response.status_mut() = StatusCode::NOT_FOUND;
        }
        Ok(response)
    }
    let service = ServiceBuilder::new()
        .layer(InstrumentLayer::builder().build())
        .service_fn(routes);
    crate::serve_http(listener, service).await;
}
