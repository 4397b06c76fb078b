//! A hostile client against the example workflow server over real sockets: thousands of
//! calls to made-up gRPC methods and services add a handful of series to `/metrics`,
//! leave the real ones as they were (no overflow), and their spans say `_OTHER`.
//! A test binary of its own: it installs the process-wide metrics recorder.

#[path = "../../tests/support/exposition.rs"]
mod exposition;
#[path = "../../tests/support/otlp.rs"]
mod otlp;
#[path = "../../tests/support/promtool.rs"]
mod promtool;

use exposition::series;
use instrument::cardinality::LabelGuard;
use instrument::pipeline::install_prometheus;
use instrument::semconv::{MetricNames, OVERFLOW_LABEL};
use instrument_examples::pb::workflow_service_client::WorkflowServiceClient;
use instrument_examples::pb::{Ack, StartWorkflowRequest};
use instrument_examples::workflow::{self, call};
use otlp::{attribute, start_receiver};
use tonic::transport::Channel;
use tonic::Code;

/// Calls `path` (a method no service declares) as tenant `acme`.
async fn call_made_up(channel: Channel, path: String) -> Code {
    let mut grpc = tonic::client::Grpc::new(channel);
    grpc.ready().await.expect("connection ready");
    let path = http::uri::PathAndQuery::try_from(path).expect("a valid path");
    let codec = tonic_prost::ProstCodec::<Ack, Ack>::default();
    match grpc.unary(call(Ack {}, "acme", None), path, codec).await {
        Ok(_) => Code::Ok,
        Err(status) => status.code(),
    }
}

/// The `n`th made-up path: a method of the real service, or a service of its own.
fn made_up(n: usize) -> String {
    if n.is_multiple_of(2) {
        format!("/instrument.example.v1.WorkflowService/Probe{n}")
    } else {
        format!("/evil.Service{n}/M")
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn made_up_methods_add_a_handful_of_series_whatever_their_number() {
    let receiver = start_receiver().await;
    let telemetry = otlp::pipeline_to(&receiver, "label-flood-test");
    let metrics = install_prometheus(LabelGuard::default(), &MetricNames::default()).unwrap();
    let server = workflow::Local::start("flood").await.unwrap();
    let addr = server.addr;
    let channel = Channel::from_shared(format!("http://{addr}"))
        .unwrap()
        .connect()
        .await
        .unwrap();

    // Real traffic first: its series are what must survive the flood.
    let mut client = WorkflowServiceClient::new(channel.clone());
    for _ in 0..3 {
        let request = StartWorkflowRequest {
            kind: "payment".into(),
            task_queue: "main".into(),
            input_json: "{}".into(),
        };
        client
            .start_workflow(call(request, "acme", None))
            .await
            .unwrap();
    }
    let real = series(&metrics.render());
    // A few made-up calls while spans are collected.
    for n in 0..20 {
        assert_eq!(
            call_made_up(channel.clone(), made_up(n)).await,
            Code::Unimplemented
        );
    }
    let spans = otlp::flush_and_collect(telemetry, receiver).await;
    let made_up_spans: Vec<_> = spans
        .iter()
        .filter(|s| attribute(s, "rpc.method_original").is_some())
        .collect();
    assert_eq!(made_up_spans.len(), 20);
    for span in &made_up_spans {
        assert_eq!(span.name, "grpc");
        assert_eq!(attribute(span, "rpc.method").as_deref(), Some("_OTHER"));
        assert_eq!(attribute(span, "rpc.service"), None);
    }
    assert!(spans.iter().any(
        |s| s.name == "instrument.example.v1.WorkflowService/StartWorkflow"
            && attribute(s, "rpc.method").as_deref() == Some("StartWorkflow")
    ));
    let before = series(&metrics.render());
    let first: Vec<&String> = before.difference(&real).collect();
    assert!(
        // `_OTHER` in the request counter, the error counter and the duration
        // histogram (its buckets, sum and count): 23 lines.
        first.len() <= 25,
        "the first made-up calls added {} series: {first:#?}",
        first.len()
    );
    assert!(real.is_subset(&before));

    // The flood: 5,000 made-up methods and services, 16 at a time.
    let mut calls = tokio::task::JoinSet::new();
    for worker in 0..16 {
        let channel = channel.clone();
        calls.spawn(async move {
            for n in (20 + worker..5_020).step_by(16) {
                assert_eq!(
                    call_made_up(channel.clone(), made_up(n)).await,
                    Code::Unimplemented
                );
            }
        });
    }
    while let Some(done) = calls.join_next().await {
        done.unwrap();
    }

    let exposition = metrics.render();
    let after = series(&exposition);
    // 5,000 more made-up calls: not one more series.
    assert_eq!(after, before, "the flood changed the series");
    assert!(!exposition.contains(OVERFLOW_LABEL), "no metric overflowed");
    assert!(!exposition.contains("Probe") && !exposition.contains("evil"));
    promtool::check_metrics(&exposition);

    server.stop().await.unwrap();
}
