//! The "test service" of the W3C Trace Context test suite, built on the instrument
//! trace-context layer and `instrument::context::inject`; `cargo run --example
//! w3c_test_service` serves it.
//!
//! The harness POSTs to `/test` a JSON array of `{"url": ..., "arguments": [...]}`.
//! For each entry, in order, the service POSTs `arguments` (as JSON) to `url`, carrying
//! the trace context of the incoming request: the `TraceLayer` reads the
//! incoming `traceparent` / `tracestate` with the strict instrument-core parser and
//! starts the server span as its child (an invalid `traceparent` starts a fresh trace
//! and drops the `tracestate`, W3C 3.3 / 4.3); each outgoing call gets its own client
//! span, whose context `inject` writes into the call's headers.
//!
//! The reply is `200` with one result per entry (`{"url", "status"}` or `{"url",
//! "error"}`), `400` for a body that is not such an array, `413` for a body over
//! 1 MiB, `404` / `405` for other paths and methods. Spans go to the collector at
//! `OTEL_EXPORTER_OTLP_ENDPOINT` when set, else are printed as trees.

use std::convert::Infallible;
use std::future::Future;
use std::time::Duration;

use bytes::Bytes;
use http::{header, Method, Request, Response, StatusCode};
use http_body_util::{BodyExt as _, Full, Limited};
use hyper::body::Incoming;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::client::legacy::Client;
use hyper_util::rt::{TokioExecutor, TokioIo};
use hyper_util::service::TowerToHyperService;
use instrument::context::{child_context, inject};
use instrument::tower::trace::TraceLayer;
use opentelemetry::trace::{SpanKind, Status, TraceContextExt as _, Tracer as _};
use opentelemetry::{Context, KeyValue};
use serde_json::{json, Value};
use tower::ServiceBuilder;

/// The largest `/test` body accepted.
pub const MAX_BODY: usize = 1 << 20;
/// How long one outgoing call may take.
pub const CALL_TIMEOUT: Duration = Duration::from_secs(10);

/// The HTTP client the outgoing calls use.
pub type HttpClient = Client<HttpConnector, Full<Bytes>>;

/// A client for [`handle`].
pub fn client() -> HttpClient {
    Client::builder(TokioExecutor::new()).build_http()
}

fn reply(status: StatusCode, body: Value) -> Response<Full<Bytes>> {
    let mut response = Response::new(Full::new(Bytes::from(body.to_string())));
    *response.status_mut() = status;
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        header::HeaderValue::from_static("application/json"),
    );
    response
}

fn refuse(status: StatusCode, message: &str) -> Response<Full<Bytes>> {
    reply(status, json!({ "error": message }))
}

/// The test-service endpoint. The trace-context layer around it has made the server
/// span current while it runs.
pub async fn handle(
    client: HttpClient,
    request: Request<Incoming>,
) -> Result<Response<Full<Bytes>>, Infallible> {
    // Taken on the first poll, while the layer's context is attached.
    let parent = Context::current();
    if request.uri().path() != "/test" {
        return Ok(refuse(StatusCode::NOT_FOUND, "only /test is served"));
    }
    if request.method() != Method::POST {
        return Ok(refuse(StatusCode::METHOD_NOT_ALLOWED, "/test takes POST"));
    }
    let body = match Limited::new(request.into_body(), MAX_BODY).collect().await {
        Ok(collected) => collected.to_bytes(),
        Err(e) if e.is::<http_body_util::LengthLimitError>() => {
            return Ok(refuse(
                StatusCode::PAYLOAD_TOO_LARGE,
                "the body is over 1 MiB",
            ))
        }
        Err(_) => {
            return Ok(refuse(
                StatusCode::BAD_REQUEST,
                "the body could not be read",
            ))
        }
    };
    let entries = match serde_json::from_slice::<Value>(&body) {
        Ok(Value::Array(entries)) => entries,
        Ok(_) => {
            return Ok(refuse(
                StatusCode::BAD_REQUEST,
                "the body must be a JSON array of {\"url\", \"arguments\"}",
            ))
        }
        Err(e) => {
            return Ok(refuse(
                StatusCode::BAD_REQUEST,
                &format!("the body is not JSON: {e}"),
            ))
        }
    };
    let mut results = Vec::with_capacity(entries.len());
    for entry in &entries {
        let url = entry.get("url").and_then(Value::as_str).unwrap_or_default();
        let arguments = entry.get("arguments").cloned().unwrap_or(json!([]));
        results.push(match call(&client, &parent, url, &arguments).await {
            Ok(status) => json!({ "url": url, "status": status.as_u16() }),
            Err(error) => json!({ "url": url, "error": error }),
        });
    }
    Ok(reply(StatusCode::OK, Value::Array(results)))
}

/// POSTs `arguments` to `url` in a client span, child of `parent`.
async fn call(
    client: &HttpClient,
    parent: &Context,
    url: &str,
    arguments: &Value,
) -> Result<StatusCode, String> {
    let uri: http::Uri = url.parse().map_err(|e| format!("bad url: {e}"))?;
    if uri.scheme() != Some(&http::uri::Scheme::HTTP) {
        return Err("only http:// urls are called".to_owned());
    }
    let tracer = opentelemetry::global::tracer("w3c_test_service");
    let span = tracer
        .span_builder("POST")
        .with_kind(SpanKind::Client)
        .with_attributes([
            KeyValue::new("http.request.method", "POST"),
            KeyValue::new("url.full", url.to_owned()),
        ])
        .start_with_context(&tracer, parent);
    let cx = child_context(parent, span);
    let mut request = Request::post(uri)
        .header(header::CONTENT_TYPE, "application/json")
        .body(Full::new(Bytes::from(arguments.to_string())))
        .map_err(|e| e.to_string())?;
    let headers = request.headers_mut();
    inject(&cx, |name, value| {
        if let Ok(value) = header::HeaderValue::from_str(value) {
            headers.insert(name, value);
        }
    });
    let sent = tokio::time::timeout(CALL_TIMEOUT, client.request(request)).await;
    let span = cx.span();
    let outcome = match sent {
        Ok(Ok(response)) => {
            let status = response.status();
            // Drain the reply so the connection can be reused.
            let _ = response.into_body().collect().await;
            span.set_attribute(KeyValue::new(
                "http.response.status_code",
                i64::from(status.as_u16()),
            ));
            if status.is_server_error() {
                span.set_status(Status::error(status.to_string()));
            }
            Ok(status)
        }
        Ok(Err(e)) => Err(format!("call failed: {e}")),
        Err(_) => Err(format!("no reply within {CALL_TIMEOUT:?}")),
    };
    if let Err(error) = &outcome {
        span.set_status(Status::error(error.clone()));
    }
    span.end();
    outcome
}

/// Serves the test service on `listener` until `shutdown` completes.
pub async fn serve(listener: tokio::net::TcpListener, shutdown: impl Future<Output = ()>) {
    let client = client();
    let service = ServiceBuilder::new()
        // Only the trace-context layer: the harness sends no tenant, and the response
        // gets no tracking header it did not ask for.
        .layer(
            TraceLayer::new()
                .no_tracking_header()
                // The one route this service has (a plain hyper server knows it itself).
                .route(|parts: &http::request::Parts| {
                    (parts.uri.path() == "/test").then(|| "/test".to_owned())
                }),
        )
        .service_fn(move |request| handle(client.clone(), request));
    tokio::pin!(shutdown);
    loop {
        let stream = tokio::select! {
            () = &mut shutdown => return,
            accepted = listener.accept() => match accepted {
                Ok((stream, _)) => stream,
                Err(e) => {
                    eprintln!("accept failed: {e}");
                    continue;
                }
            },
        };
        let service = TowerToHyperService::new(service.clone());
        tokio::spawn(async move {
            let served = hyper::server::conn::http1::Builder::new()
                .serve_connection(TokioIo::new(stream), service)
                .await;
            if let Err(e) = served {
                eprintln!("connection error: {e}");
            }
        });
    }
}
