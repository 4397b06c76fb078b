//! The workflow server, in process, driven through one short story: two tenants, a
//! happy path with a task, a failing task, a failed workflow, a cross-tenant attempt,
//! secrets in an input, a workflow that fails behind a caller sampling at 1 % (kept
//! whole by tail bias), and a worker whose spans (reported through the server's span
//! proxy) and downstream call join the workflow's trace. Prints the resulting trace trees and a `/metrics` excerpt. No
//! collector needed. The log lines (JSON on stderr) carry their trace id and tenant;
//! the server's `workflow ... started` line is also an event on its span in the tree
//! (and, with an OTLP endpoint set, a log record in the same trace).
//!
//! ```text
//! cargo run --example demo
//! ```

use std::sync::Arc;

use instrument::cardinality::LabelGuard;
use instrument::pipeline::{
    init, install_prometheus, serve_metrics, ExporterConfig, PipelineConfig,
};
use instrument::sampling::TailBias;
use instrument::semconv::MetricNames;
use instrument::tenant::TenantId;
use instrument_examples::pb::workflow_service_client::WorkflowServiceClient;
use instrument_examples::pb::*;
use instrument_examples::worker::{serve_downstream, Worker};
use instrument_examples::workflow::call;
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};

type Client = WorkflowServiceClient<tonic::transport::Channel>;

fn show<T: std::fmt::Debug>(what: &str, result: &Result<tonic::Response<T>, tonic::Status>) {
    match result {
        Ok(_) => println!("  {what:58} ok"),
        Err(status) => println!("  {what:58} {:?}: {}", status.code(), status.message()),
    }
}

async fn start(client: &mut Client, tenant: &str, kind: &str, input: &str) -> String {
    start_as(client, tenant, kind, input, |request| request).await
}

/// [`start`], the request made as `caller` makes it.
async fn start_as(
    client: &mut Client,
    tenant: &str,
    kind: &str,
    input: &str,
    caller: fn(tonic::Request<StartWorkflowRequest>) -> tonic::Request<StartWorkflowRequest>,
) -> String {
    let request = StartWorkflowRequest {
        kind: kind.into(),
        task_queue: "main".into(),
        input_json: input.into(),
    };
    let response = client
        .start_workflow(caller(call(request, tenant, None)))
        .await;
    show(&format!("{tenant}: StartWorkflow {kind}"), &response);
    response
        .map(|r| r.into_inner().workflow_id)
        .unwrap_or_default()
}

async fn task(client: &mut Client, tenant: &str, workflow: &str, task_type: &str) -> String {
    let request = SubmitTaskRequest {
        workflow_id: workflow.into(),
        task_type: task_type.into(),
        input_json: "{}".into(),
    };
    let response = client
        .submit_task(call(request, tenant, Some(workflow)))
        .await;
    show(&format!("{tenant}: SubmitTask {task_type}"), &response);
    response.map(|r| r.into_inner().task_id).unwrap_or_default()
}

async fn story(client: &mut Client) {
    // acme: a payment with a task, the input carrying a password and a card number.
    let input = r#"{"order":"A-1001","card":"4111 1111 1111 1111","password":"hunter2"}"#;
    let wf = start(client, "acme", "payment", input).await;
    let poll = PollWorkflowRequest {
        task_queue: "main".into(),
        worker_id: "worker-1".into(),
    };
    show(
        "acme: PollWorkflow",
        &client.poll_workflow(call(poll, "acme", None)).await,
    );
    let charge = task(client, "acme", &wf, "charge").await;
    let done = CompleteTaskRequest {
        task_id: charge,
        output_json: r#"{"ok":true}"#.into(),
    };
    show(
        "acme: CompleteTask charge",
        &client.complete_task(call(done, "acme", Some(&wf))).await,
    );
    let done = CompleteWorkflowRequest {
        workflow_id: wf.clone(),
        output_json: "{}".into(),
    };
    show(
        "acme: CompleteWorkflow",
        &client
            .complete_workflow(call(done, "acme", Some(&wf)))
            .await,
    );

    // acme: a task fails; its error text mentions an email address.
    let wf2 = start(client, "acme", "refund", "{}").await;
    let notify = task(client, "acme", &wf2, "notify").await;
    let failed = FailTaskRequest {
        task_id: notify,
        error: "mail server refused bob@example.com".into(),
    };
    show(
        "acme: FailTask notify",
        &client.fail_task(call(failed, "acme", Some(&wf2))).await,
    );

    // globex: a workflow fails.
    let wf3 = start(client, "globex", "shipment", "{}").await;
    let failed = FailWorkflowRequest {
        workflow_id: wf3,
        error: "inventory unavailable".into(),
    };
    show(
        "globex: FailWorkflow",
        &client.fail_workflow(call(failed, "globex", None)).await,
    );

    // globex tries acme's workflow: refused by the tenant layer, nothing leaks.
    task(client, "globex", &wf2, "snoop").await;
    // Unknown ids, and no tenant at all.
    task(client, "acme", "wf-does-not-exist", "charge").await;
    let anonymous = tonic::Request::new(PollWorkflowRequest::default());
    show(
        "(no tenant): PollWorkflow",
        &client.poll_workflow(anonymous).await,
    );
}

/// `request` as a caller that samples 1 % of its traces sends 99 in 100: under a
/// fresh `traceparent` whose sampled flag is off.
fn unsampled<T>(mut request: tonic::Request<T>) -> tonic::Request<T> {
    use std::hash::BuildHasher as _;
    let hash = |n: u8| std::collections::hash_map::RandomState::new().hash_one(n);
    let traceparent = format!("00-{:016x}{:016x}-{:016x}-00", hash(1), hash(2), hash(3));
    if let Ok(value) = traceparent.parse() {
        request.metadata_mut().insert("traceparent", value);
    }
    request
}

/// Behind a caller sampling at 1 %: five workflows start unsampled and are not
/// exported; one fails, and tail bias exports its calls whole (`kept_for=error`).
async fn at_one_percent(client: &mut Client) {
    println!("  (behind a caller sampling at 1 %: its traceparents say not sampled)");
    for _ in 0..5 {
        start_as(client, "acme", "report", "{}", unsampled).await;
    }
    let id = start_as(client, "acme", "payout", "{}", unsampled).await;
    let failed = FailWorkflowRequest {
        workflow_id: id.clone(),
        error: "bank rejected the transfer".into(),
    };
    show(
        "acme: FailWorkflow payout",
        &client
            .fail_workflow(unsampled(call(failed, "acme", Some(&id))))
            .await,
    );
}

/// A worker runs an acme workflow: its spans (reported through the server's span
/// proxy) and the downstream service's span join the workflow's trace.
async fn worker(
    client: &mut Client,
    addr: std::net::SocketAddr,
) -> Result<(), Box<dyn std::error::Error + Send + Sync>> {
    let downstream = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let downstream_addr = downstream.local_addr()?;
    tokio::spawn(serve_downstream(downstream));
    let request = StartWorkflowRequest {
        kind: "quote".into(),
        task_queue: "workers".into(),
        input_json: "{}".into(),
    };
    let response = client.start_workflow(call(request, "acme", None)).await;
    show("acme: StartWorkflow quote (for the worker)", &response);
    let channel = tonic::transport::Channel::from_shared(format!("http://{addr}"))?.connect_lazy();
    let tenant = TenantId::parse("acme")?;
    let mut worker = Worker::new(
        channel.clone(),
        channel,
        downstream_addr,
        tenant,
        "workers",
        "worker-1",
    )?;
    match worker.run_once().await {
        Ok(Some(id)) => println!(
            "  {:58} ran {id}",
            "worker: PollWorkflow, quote task, GET /quote"
        ),
        Ok(None) => println!("  worker: nothing to do"),
        Err(e) => println!("  worker: {e}"),
    }
    // workflow.execute, task.execute and the client span `GET`.
    for _ in 0..100 {
        if worker.collector().sent() + worker.collector().dropped() >= 3 {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    println!(
        "  {:58} {} sent, {} dropped",
        "worker: execution spans reported",
        worker.collector().sent(),
        worker.collector().dropped()
    );
    Ok(())
}

/// `GET /metrics` over a plain TCP connection.
async fn scrape(addr: std::net::SocketAddr) -> std::io::Result<String> {
    let mut stream = tokio::net::TcpStream::connect(addr).await?;
    stream
        .write_all(b"GET /metrics HTTP/1.1\r\nHost: demo\r\nConnection: close\r\n\r\n")
        .await?;
    let mut text = String::new();
    stream.read_to_string(&mut text).await?;
    Ok(text)
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    // Embedded defaults: trace trees on stdout, no collector.
    // One tree per trace, printed at the end: each workflow's requests, its worker's
    // spans and its downstream calls in one picture.
    // Every trace is sampled here (the default); a failed request of a trace the
    // caller did not sample is exported anyway (tail bias, see at_one_percent).
    let mut config = PipelineConfig::default()
        .with_service_name("workflow-demo")
        .with_tail_bias(TailBias::default().errors(true));
    config.exporter = ExporterConfig::StdoutWholeTraces;
    let telemetry = init(config)?;
    let handle = install_prometheus(LabelGuard::default(), &MetricNames::default())?;
    let db = std::env::temp_dir().join(format!("instrument-demo-{}.sqlite3", std::process::id()));
    let store = Arc::new(instrument_examples::workflow::Store::open(&db)?);

    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let addr = listener.local_addr()?;
    let metrics_listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let metrics_addr = metrics_listener.local_addr()?;
    let (stop, stopped) = tokio::sync::watch::channel(false);
    let stopped_for = |mut rx: tokio::sync::watch::Receiver<bool>| async move {
        let _ = rx.wait_for(|s| *s).await;
    };
    let server = tokio::spawn(instrument_examples::workflow::serve(
        listener,
        store,
        stopped_for(stopped.clone()),
    ));
    let metrics = tokio::spawn(serve_metrics(
        metrics_listener,
        handle,
        "/metrics",
        None,
        stopped_for(stopped),
    ));

    println!("== Requests (workflow server on {addr})");
    let mut client = WorkflowServiceClient::connect(format!("http://{addr}")).await?;
    story(&mut client).await;
    at_one_percent(&mut client).await;
    worker(&mut client, addr).await.map_err(|e| e.to_string())?;
    let exposition = scrape(metrics_addr).await?;

    let _ = stop.send(true);
    drop(client);
    server.await??;
    metrics.await??;
    println!(
        "\n== Trace trees (the development exporter; OTLP when OTEL_EXPORTER_OTLP_ENDPOINT is set)"
    );
    telemetry.shutdown()?;

    println!("\n== /metrics excerpt");
    for line in exposition.lines().filter(|l| {
        (l.starts_with("instrument_workflows")
            || l.starts_with("instrument_tasks")
            || l.starts_with("rpc_server_call_duration_seconds_count")
            || l.starts_with("http_client_request_duration_seconds_count")
            || l.starts_with("instrument_reported_spans")
            || l.starts_with("instrument_tenant_rejections"))
            && !l.contains("_bucket")
    }) {
        println!("  {line}");
    }
    let _ = std::fs::remove_file(&db);
    Ok(())
}
