//! The W3C Trace Context test service example over real sockets: a harness-like
//! client POSTs to `/test`, a callback server records what the service sent on, and
//! the spans arrive at the in-test OTLP receiver. One test: it installs the
//! process-wide tracer provider.

#[path = "../../tests/support/otlp.rs"]
mod otlp;
use instrument_examples::w3c;

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};

use bytes::Bytes;
use http::{HeaderMap, Request, Response, StatusCode};
use http_body_util::{BodyExt as _, Full};
use hyper_util::rt::TokioIo;
use opentelemetry_proto::tonic::trace::v1::span::SpanKind;
use opentelemetry_proto::tonic::trace::v1::Span;
use otlp::start_receiver;
use serde_json::{json, Value};

const TRACE: &str = "4bf92f3577b34da6a3ce929d0e0e4736";
const PARENT: &str = "00f067aa0ba902b7";

/// What the callback received: headers and JSON body.
type Received = Arc<Mutex<Vec<(HeaderMap, Value)>>>;

/// A callback server (the harness's side) recording every request.
async fn start_callback() -> (SocketAddr, Received) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let received = Received::default();
    let record = Arc::clone(&received);
    tokio::spawn(async move {
        loop {
            let (stream, _) = listener.accept().await.unwrap();
            let record = Arc::clone(&record);
            let service =
                hyper::service::service_fn(move |request: Request<hyper::body::Incoming>| {
                    let record = Arc::clone(&record);
                    async move {
                        let (parts, body) = request.into_parts();
                        let body = body.collect().await?.to_bytes();
                        let value = serde_json::from_slice(&body).unwrap_or(Value::Null);
                        record.lock().unwrap().push((parts.headers, value));
                        Ok::<_, hyper::Error>(Response::new(Full::new(Bytes::from_static(b"ok"))))
                    }
                });
            tokio::spawn(
                hyper::server::conn::http1::Builder::new()
                    .serve_connection(TokioIo::new(stream), service),
            );
        }
    });
    (addr, received)
}

/// POSTs `body` to the service with `headers`; the status and JSON reply.
async fn post(
    client: &w3c::HttpClient,
    service: SocketAddr,
    path: &str,
    headers: &[(&str, &str)],
    body: &str,
) -> (StatusCode, Value) {
    let mut request = Request::post(format!("http://{service}{path}"));
    for (name, value) in headers {
        request = request.header(*name, *value);
    }
    let request = request
        .body(Full::new(Bytes::from(body.to_owned())))
        .unwrap();
    let response = client.request(request).await.unwrap();
    let status = response.status();
    let body = response.into_body().collect().await.unwrap().to_bytes();
    (status, serde_json::from_slice(&body).unwrap_or(Value::Null))
}

fn take(received: &Received) -> Vec<(HeaderMap, Value)> {
    std::mem::take(&mut *received.lock().unwrap())
}

fn header<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    headers.get(name).and_then(|v| v.to_str().ok())
}

/// `(trace id, parent id, flags)` of a version-00 traceparent.
fn fields(traceparent: &str) -> (&str, &str, &str) {
    assert_eq!(traceparent.len(), 55, "{traceparent}");
    assert_eq!(&traceparent[..3], "00-", "{traceparent}");
    (
        &traceparent[3..35],
        &traceparent[36..52],
        &traceparent[53..],
    )
}

fn hex(id: &[u8]) -> String {
    id.iter().map(|b| format!("{b:02x}")).collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn w3c_test_service_propagates_the_trace_context() {
    let receiver = start_receiver().await;
    let telemetry = otlp::pipeline_to(&receiver, "w3c-test-service");

    let (callback, received) = start_callback().await;
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let service = listener.local_addr().unwrap();
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let served = tokio::spawn(w3c::serve(listener, async {
        let _ = stopped.await;
    }));
    let client = w3c::client();
    let url = format!("http://{callback}/callback");
    let two_calls = json!([
        { "url": url, "arguments": [{ "url": "http://nested", "arguments": [] }] },
        { "url": url, "arguments": [] },
    ])
    .to_string();

    // A valid parent: both calls continue its trace, each from its own span, with the
    // tracestate passed on and the arguments as the body.
    let traceparent = format!("00-{TRACE}-{PARENT}-01");
    let (status, results) = post(
        &client,
        service,
        "/test",
        &[
            ("traceparent", &traceparent),
            ("tracestate", "rojo=00f067aa0ba902b7,congo=t61rcWkgMzE"),
        ],
        &two_calls,
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(results[0]["status"], 200, "{results}");
    assert_eq!(results[1]["status"], 200, "{results}");
    let calls = take(&received);
    assert_eq!(calls.len(), 2);
    assert_eq!(
        calls[0].1,
        json!([{ "url": "http://nested", "arguments": [] }])
    );
    assert_eq!(calls[1].1, json!([]));
    let mut parent_ids = Vec::new();
    for (headers, _) in &calls {
        let (trace, parent, flags) = fields(header(headers, "traceparent").unwrap());
        assert_eq!(trace, TRACE);
        assert_ne!(parent, PARENT, "a new span id for the outgoing call");
        assert_eq!(flags, "01");
        assert_eq!(
            header(headers, "tracestate"),
            Some("rojo=00f067aa0ba902b7,congo=t61rcWkgMzE")
        );
        parent_ids.push(parent.to_owned());
    }
    assert_ne!(parent_ids[0], parent_ids[1], "one client span per call");

    // An unsampled parent stays unsampled downstream.
    let unsampled = format!("00-{TRACE}-{PARENT}-00");
    let one_call = json!([{ "url": url, "arguments": [] }]).to_string();
    post(
        &client,
        service,
        "/test",
        &[("traceparent", &unsampled)],
        &one_call,
    )
    .await;
    let calls = take(&received);
    let (trace, _, flags) = fields(header(&calls[0].0, "traceparent").unwrap());
    assert_eq!((trace, flags), (TRACE, "00"));

    // Trace Context Level 2: the random flag goes on with the trace, sampled or not;
    // reserved flag bits go out as zero.
    for (flags_in, flags_out) in [("02", "02"), ("03", "03"), ("ff", "03"), ("fe", "02")] {
        let incoming = format!("00-{TRACE}-{PARENT}-{flags_in}");
        post(
            &client,
            service,
            "/test",
            &[("traceparent", &incoming)],
            &one_call,
        )
        .await;
        let calls = take(&received);
        let (trace, parent, flags) = fields(header(&calls[0].0, "traceparent").unwrap());
        assert_eq!((trace, flags), (TRACE, flags_out), "in: {flags_in}");
        assert_ne!(parent, PARENT, "in: {flags_in}");
    }

    // The current key grammar: `@` anywhere after the first character, keys up to 256
    // characters. Every valid member is sent on, although OpenTelemetry's TraceState
    // refuses some of them; a repeated key is passed on once.
    let long_vendor = format!("{}@{}", "t".repeat(241), "v".repeat(14));
    for (tracestate, sent_on) in [
        ("foo@=1,bar=2", "foo@=1,bar=2".to_owned()),
        ("foo@@bar=1,bar=2", "foo@@bar=1,bar=2".to_owned()),
        ("foo@bar@baz=1, bar=2", "foo@bar@baz=1,bar=2".to_owned()),
        (
            &format!("foo=1,{long_vendor}=1"),
            format!("foo=1,{long_vendor}=1"),
        ),
        ("foo=1,foo=2", "foo=1".to_owned()),
        ("foo=1,foo=1", "foo=1".to_owned()),
    ] {
        post(
            &client,
            service,
            "/test",
            &[("traceparent", &unsampled), ("tracestate", tracestate)],
            &one_call,
        )
        .await;
        let calls = take(&received);
        assert_eq!(
            header(&calls[0].0, "tracestate"),
            Some(sent_on.as_str()),
            "{tracestate}"
        );
    }
    // A key that starts with `@` discards the whole tracestate, not the traceparent.
    post(
        &client,
        service,
        "/test",
        &[("traceparent", &unsampled), ("tracestate", "@foo=1,bar=2")],
        &one_call,
    )
    .await;
    let calls = take(&received);
    assert_eq!(header(&calls[0].0, "tracestate"), None);
    assert_eq!(fields(header(&calls[0].0, "traceparent").unwrap()).0, TRACE);

    // A higher version is read forward-compatibly and sent on as version 00.
    let future = format!("cc-{TRACE}-{PARENT}-01-what-the-future-holds");
    post(
        &client,
        service,
        "/test",
        &[("traceparent", &future)],
        &one_call,
    )
    .await;
    let calls = take(&received);
    assert_eq!(fields(header(&calls[0].0, "traceparent").unwrap()).0, TRACE);

    // No parent, or an invalid one (upper-case hex, all-zero ids, a repeated header):
    // a fresh trace, and the tracestate of an invalid parent is dropped.
    let invalid = [
        vec![],
        vec![(
            "traceparent",
            "00-4BF92F3577B34DA6A3CE929D0E0E4736-00f067aa0ba902b7-01",
        )],
        vec![(
            "traceparent",
            "00-00000000000000000000000000000000-00f067aa0ba902b7-01",
        )],
        vec![
            ("traceparent", traceparent.as_str()),
            ("traceparent", traceparent.as_str()),
        ],
    ];
    let mut fresh = std::collections::HashSet::new();
    for headers in invalid {
        let mut headers = headers;
        headers.push(("tracestate", "rojo=00f067aa0ba902b7"));
        post(&client, service, "/test", &headers, &one_call).await;
        let calls = take(&received);
        let outgoing = header(&calls[0].0, "traceparent").expect("a fresh trace");
        let (trace, _, _) = fields(outgoing);
        assert_ne!(trace, TRACE, "{headers:?}");
        assert_eq!(header(&calls[0].0, "tracestate"), None, "{headers:?}");
        fresh.insert(trace.to_owned());
    }
    assert_eq!(fresh.len(), 4, "each request its own trace");

    // Bad requests: clear errors, no calls.
    let (status, body) = post(&client, service, "/test", &[], "{not json").await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert!(body["error"].as_str().unwrap().contains("not JSON"));
    let (status, _) = post(&client, service, "/test", &[], r#"{"url": 1}"#).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    let (status, _) = post(&client, service, "/other", &[], "[]").await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    let oversized = "[".to_owned() + &" ".repeat(w3c::MAX_BODY) + "]";
    let (status, _) = post(&client, service, "/test", &[], &oversized).await;
    assert_eq!(status, StatusCode::PAYLOAD_TOO_LARGE);
    // An entry that cannot be called is reported, the others still are.
    let mixed = json!([
        { "url": "ftp://example.invalid/", "arguments": [] },
        { "arguments": [] },
        { "url": url, "arguments": [] },
    ])
    .to_string();
    let (status, results) = post(&client, service, "/test", &[], &mixed).await;
    assert_eq!(status, StatusCode::OK);
    assert!(results[0]["error"].is_string(), "{results}");
    assert!(results[1]["error"].is_string(), "{results}");
    assert_eq!(results[2]["status"], 200, "{results}");
    assert_eq!(take(&received).len(), 1);

    let _ = stop.send(());
    served.await.unwrap();
    let spans = otlp::flush_and_collect(telemetry, receiver).await;

    // The first request's spans: the server span is the caller's child, the two client
    // spans are the server span's children and the parents the callback saw.
    let server = spans
        .iter()
        .find(|s| hex(&s.trace_id) == TRACE && s.kind == SpanKind::Server as i32)
        .expect("the server span of the first request");
    assert_eq!(server.name, "POST /test");
    assert_eq!(hex(&server.parent_span_id), PARENT);
    let clients: Vec<&Span> = spans
        .iter()
        .filter(|s| s.kind == SpanKind::Client as i32 && s.parent_span_id == server.span_id)
        .collect();
    let mut client_ids: Vec<String> = clients.iter().map(|s| hex(&s.span_id)).collect();
    client_ids.sort();
    parent_ids.sort();
    assert_eq!(client_ids, parent_ids);
}
