//! The runnable programs of the **instrument** toolkit and what they share: the example
//! workflow server (tonic, SQLite), its worker, an axum service, the W3C Trace Context test service, the redaction
//! filter. The programs are this crate's examples (`cargo run --example demo`); their
//! integration tests are in `tests/`, over real sockets.
//!
//! Not published: it exists to show the toolkit in use and to test it end to end.
#![warn(missing_docs)]

pub mod axum_service;
pub mod redact_filter;
pub mod w3c;
pub mod worker;
pub mod workflow;

/// The example workflow service, generated from `proto/workflow.proto` by `build.rs`.
#[allow(missing_docs, clippy::all)]
pub mod pb {
    tonic::include_proto!("instrument.example.v1");
}

/// Completes on SIGINT or SIGTERM.
pub async fn signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! {
        () = ctrl_c => {}
        () = term => {}
    }
}

/// Serves `service` over HTTP/1.1 on `listener`, a task per connection, until the
/// runtime stops: the accept loop of the example HTTP servers and the tests' servers.
pub async fn serve_http<S, B>(listener: tokio::net::TcpListener, service: S)
where
    S: tower::Service<http::Request<hyper::body::Incoming>, Response = http::Response<B>>
        + Clone
        + Send
        + 'static,
    S::Future: Send + 'static,
    S::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
    B: http_body::Body + Send + 'static,
    B::Data: Send,
    B::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
{
    while let Ok((stream, _)) = listener.accept().await {
        let service = hyper_util::service::TowerToHyperService::new(service.clone());
        tokio::spawn(
            hyper::server::conn::http1::Builder::new()
                .serve_connection(hyper_util::rt::TokioIo::new(stream), service),
        );
    }
}
