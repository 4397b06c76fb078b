//! Hostile input over real sockets: 64 KiB header values, 10,000 `tracestate` members,
//! 1,000 repeated headers, non-UTF-8 and control characters in the tenant header,
//! another tenant's id with a trailing space, binary gRPC metadata spelling a tenant,
//! and bodies that end early, sent to the example workflow server (tonic) and to an
//! HTTP server behind `InstrumentLayer` (hyper). Every request gets an answer (a
//! refusal where it should be one), nothing reaches a handler for the wrong tenant, and
//! both servers serve a normal request after each.

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http::{Request, Response};
use http_body_util::Full;
use instrument::tenant::current_tenant;
use instrument::tower::stack::InstrumentLayer;
use instrument_examples::pb::workflow_service_client::WorkflowServiceClient;
use instrument_examples::pb::*;
use instrument_examples::workflow::{self, call};
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
use tower::ServiceBuilder;

/// An HTTP server behind `InstrumentLayer` answering 200 with the tenant it served;
/// `served` counts the requests that reached the handler.
async fn http_server(served: Arc<AtomicU64>) -> SocketAddr {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let service = ServiceBuilder::new()
        .layer(InstrumentLayer::builder().build())
        .service_fn(move |_: Request<hyper::body::Incoming>| {
            served.fetch_add(1, Ordering::Relaxed);
            let tenant = current_tenant().map(|t| t.to_string()).unwrap_or_default();
            async move { Ok::<_, Infallible>(Response::new(Full::new(Bytes::from(tenant)))) }
        });
    tokio::spawn(instrument_examples::serve_http(listener, service));
    addr
}

/// Sends `head` (a request's head, then `body`) on a fresh connection; the status line
/// of the answer, or `closed` when the server closed without one. A `body` shorter
/// than its `content-length` is followed by closing the connection's write side.
async fn raw(addr: SocketAddr, head: &[u8], body: &[u8]) -> String {
    let mut stream = tokio::net::TcpStream::connect(addr).await.unwrap();
    let _ = stream.write_all(head).await;
    if !body.is_empty() {
        let _ = stream.write_all(body).await;
        let _ = stream.shutdown().await;
    }
    let mut answer = Vec::new();
    let _ = tokio::time::timeout(Duration::from_secs(10), stream.read_to_end(&mut answer)).await;
    let text = String::from_utf8_lossy(&answer);
    text.lines().next().unwrap_or("closed").to_owned()
}

fn get(extra: &str) -> Vec<u8> {
    format!("GET /jobs HTTP/1.1\r\nhost: t\r\nconnection: close\r\n{extra}\r\n").into_bytes()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hostile_requests_over_sockets_are_answered_and_the_servers_go_on() {
    let served = Arc::new(AtomicU64::new(0));
    let addr = http_server(Arc::clone(&served)).await;
    let ok = |status: &str| status.starts_with("HTTP/1.1 200");
    assert!(ok(&raw(addr, &get("x-tenant-id: acme\r\n"), b"").await));

    let big = "a".repeat(64 * 1024);
    let members: Vec<String> = (0..10_000).map(|i| format!("k{i}=v")).collect();
    let many: String = (0..1_000).map(|i| format!("x-dup: {i}\r\n")).collect();
    let cases: Vec<(&str, Vec<u8>, bool)> = vec![
        ("64 KiB tenant", get(&format!("x-tenant-id: {big}\r\n")), false),
        ("64 KiB other header", get(&format!("x-tenant-id: acme\r\nx-note: {big}\r\n")), true),
        (
            "10,000 tracestate members",
            get(&format!(
                "x-tenant-id: acme\r\ntraceparent: 00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01\r\ntracestate: {}\r\n",
                members.join(",")
            )),
            true,
        ),
        ("1,000 repeated headers", get(&format!("x-tenant-id: acme\r\n{many}")), false),
        ("trailing space", get("x-tenant-id: globex \r\n"), true),
        ("tab inside", get("x-tenant-id: ac\tme\r\n"), false),
    ];
    for (what, head, may_serve) in cases {
        let before = served.load(Ordering::Relaxed);
        let status = raw(addr, &head, b"").await;
        let reached = served.load(Ordering::Relaxed) > before;
        assert!(status.starts_with("HTTP/1.1 "), "{what}: {status}");
        assert!(
            may_serve || !reached,
            "{what} reached the handler: {status}"
        );
        assert!(
            ok(&raw(addr, &get("x-tenant-id: acme\r\n"), b"").await),
            "after {what}"
        );
    }
    // Non-UTF-8 bytes in the tenant header, and a body that ends early.
    let mut head =
        b"GET /jobs HTTP/1.1\r\nhost: t\r\nconnection: close\r\nx-tenant-id: ac\xffme\r\n\r\n"
            .to_vec();
    let status = raw(addr, &head, b"").await;
    assert!(
        status.starts_with("HTTP/1.1 4"),
        "non-UTF-8 tenant: {status}"
    );
    head = b"POST /jobs HTTP/1.1\r\nhost: t\r\nx-tenant-id: acme\r\ncontent-length: 1000\r\n\r\n"
        .to_vec();
    let _ = raw(addr, &head, b"only a little").await;
    assert!(
        ok(&raw(addr, &get("x-tenant-id: acme\r\n"), b"").await),
        "after a short body"
    );

    // The gRPC server: a tenant only in binary metadata is no tenant; a 64 KiB one is
    // refused; a cross-tenant id with a trailing space never reaches the workflow.
    let server = workflow::Local::start("hostile-sockets").await.unwrap();
    let mut client = WorkflowServiceClient::connect(server.url()).await.unwrap();
    let start = || StartWorkflowRequest {
        kind: "payment".into(),
        task_queue: "main".into(),
        input_json: "{}".into(),
    };
    let acme = client
        .start_workflow(call(start(), "acme", None))
        .await
        .unwrap()
        .into_inner();
    let mut binary = tonic::Request::new(start());
    binary.metadata_mut().insert_bin(
        "x-tenant-id-bin",
        tonic::metadata::MetadataValue::from_bytes(b"acme"),
    );
    let refused = client.start_workflow(binary).await.unwrap_err();
    assert_eq!(refused.code(), tonic::Code::Unauthenticated);
    let mut huge = tonic::Request::new(start());
    huge.metadata_mut()
        .insert("x-tenant-id", big.parse().unwrap());
    let refused = client.start_workflow(huge).await.unwrap_err();
    // Refused by HTTP/2 itself (a header list that large ends the connection).
    assert_eq!(
        refused.code(),
        tonic::Code::ResourceExhausted,
        "{refused:?}"
    );
    let mut client = WorkflowServiceClient::connect(server.url()).await.unwrap();
    let snoop = SubmitTaskRequest {
        workflow_id: acme.workflow_id.clone(),
        task_type: "snoop".into(),
        input_json: "{}".into(),
    };
    let mut spaced = tonic::Request::new(snoop);
    spaced
        .metadata_mut()
        .insert("x-tenant-id", "globex ".parse().unwrap());
    spaced
        .metadata_mut()
        .insert("x-workflow-id", acme.workflow_id.parse().unwrap());
    assert!(client.submit_task(spaced).await.is_err());
    // Still serving, and the workflow untouched by the attempts.
    assert!(client
        .start_workflow(call(start(), "acme", None))
        .await
        .is_ok());
    let row = server.store.workflow(&acme.workflow_id).unwrap().unwrap();
    assert_eq!(
        (row.tenant.as_str(), row.status.as_str()),
        ("acme", "pending")
    );
    drop(client);
    server.stop().await.unwrap();
}
