//! An OTLP/gRPC trace receiver started inside a test (the collector service of
//! `opentelemetry-proto`), keeping every span it receives.
#![allow(dead_code)] // each test binary uses part of it

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};

use opentelemetry_proto::tonic::collector::trace::v1::trace_service_server::{
    TraceService, TraceServiceServer,
};
use opentelemetry_proto::tonic::collector::trace::v1::{
    ExportTraceServiceRequest, ExportTraceServiceResponse,
};
use opentelemetry_proto::tonic::common::v1::any_value::Value;
use opentelemetry_proto::tonic::trace::v1::Span;
use tokio::sync::oneshot;

/// An OTLP trace receiver that keeps what it gets.
#[derive(Clone, Default)]
pub struct Receiver {
    pub spans: Arc<Mutex<Vec<Span>>>,
    /// For each span received, in order: its instrumentation scope's name and version,
    /// and its own name.
    pub scopes: Arc<Mutex<Vec<(String, String, String)>>>,
    /// The resource attributes of each request, as `key=value` (string values).
    pub resources: Arc<Mutex<Vec<Vec<String>>>>,
}

#[tonic::async_trait]
impl TraceService for Receiver {
    async fn export(
        &self,
        request: tonic::Request<ExportTraceServiceRequest>,
    ) -> Result<tonic::Response<ExportTraceServiceResponse>, tonic::Status> {
        let request = request.into_inner();
        for resource in request
            .resource_spans
            .iter()
            .filter_map(|r| r.resource.as_ref())
        {
            self.resources
                .lock()
                .unwrap()
                .push(key_values(&resource.attributes));
        }
        for scoped in request
            .resource_spans
            .into_iter()
            .flat_map(|r| r.scope_spans)
        {
            let (name, version) = scoped
                .scope
                .map(|s| (s.name, s.version))
                .unwrap_or_default();
            self.scopes.lock().unwrap().extend(
                scoped
                    .spans
                    .iter()
                    .map(|span| (name.clone(), version.clone(), span.name.clone())),
            );
            self.spans.lock().unwrap().extend(scoped.spans);
        }
        Ok(tonic::Response::new(ExportTraceServiceResponse {
            partial_success: None,
        }))
    }
}

pub struct Running {
    pub receiver: Receiver,
    pub addr: SocketAddr,
    pub stop: oneshot::Sender<()>,
    pub served: tokio::task::JoinHandle<()>,
}

pub async fn start_receiver() -> Running {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let receiver = Receiver::default();
    let (stop, stopped) = oneshot::channel::<()>();
    let service = TraceServiceServer::new(receiver.clone());
    let served = tokio::spawn(async move {
        tonic::transport::Server::builder()
            .add_service(service)
            .serve_with_incoming_shutdown(
                tonic::transport::server::TcpIncoming::from(listener),
                async {
                    let _ = stopped.await;
                },
            )
            .await
            .unwrap();
    });
    Running {
        receiver,
        addr,
        stop,
        served,
    }
}

/// Attributes (of a resource, a data point) as sorted `key=value` lines, a string
/// value as it is, any other as its debug form.
pub fn key_values(attributes: &[opentelemetry_proto::tonic::common::v1::KeyValue]) -> Vec<String> {
    let mut pairs: Vec<String> = attributes
        .iter()
        .map(|kv| {
            let value = match kv.value.as_ref().and_then(|v| v.value.as_ref()) {
                Some(Value::StringValue(s)) => s.clone(),
                other => format!("{other:?}"),
            };
            format!("{}={value}", kv.key)
        })
        .collect();
    pairs.sort();
    pairs
}

/// A span attribute as text (strings, integers, booleans; an array's items joined by
/// commas).
pub fn attribute(span: &Span, key: &str) -> Option<String> {
    fn text(value: &Value) -> Option<String> {
        match value {
            Value::StringValue(s) => Some(s.clone()),
            Value::IntValue(i) => Some(i.to_string()),
            Value::BoolValue(b) => Some(b.to_string()),
            Value::ArrayValue(items) => Some(
                items
                    .values
                    .iter()
                    .filter_map(|v| v.value.as_ref().and_then(text))
                    .collect::<Vec<_>>()
                    .join(","),
            ),
            _ => None,
        }
    }
    span.attributes
        .iter()
        .find(|kv| kv.key == key)
        .and_then(|kv| text(kv.value.as_ref()?.value.as_ref()?))
}

/// The telemetry pipeline of `service`, exporting every span (100 % sampling, a 50 ms
/// batch delay) to `receiver`.
pub fn pipeline_to(receiver: &Running, service: &str) -> instrument::pipeline::Telemetry {
    use instrument::pipeline::{init, PipelineConfig, SamplerConfig};
    let config = PipelineConfig::from_vars([
        ("OTEL_SERVICE_NAME", service),
        (
            "OTEL_EXPORTER_OTLP_ENDPOINT",
            &format!("http://{}", receiver.addr),
        ),
        ("OTEL_BSP_SCHEDULE_DELAY", "50"),
    ])
    .expect("a valid configuration")
    .with_sampler(SamplerConfig::ParentBasedTraceIdRatio(1.0))
    .with_shutdown_timeout(std::time::Duration::from_secs(5));
    init(config).expect("the pipeline starts")
}

/// Shuts `telemetry` down (flushing every span to `receiver`), stops the receiver and
/// returns what it received.
pub async fn flush_and_collect(
    telemetry: instrument::pipeline::Telemetry,
    receiver: Running,
) -> Vec<Span> {
    tokio::task::spawn_blocking(move || telemetry.shutdown())
        .await
        .expect("shutdown does not panic")
        .expect("every span flushed");
    let spans = receiver.receiver.spans.lock().unwrap().clone();
    let _ = receiver.stop.send(());
    spans
}

/// An OTLP/gRPC trace receiver on 127.0.0.1 over TLS with this certificate and key
/// (PEM), accepting gzip, requiring a client certificate signed by `client_ca` when
/// one is given; served until the test ends.
pub async fn start_tls_receiver(
    cert: &str,
    key: &str,
    client_ca: Option<&str>,
) -> (SocketAddr, Receiver) {
    use tonic::transport::{Certificate, Identity, ServerTlsConfig};

    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let mut tls = ServerTlsConfig::new().identity(Identity::from_pem(cert, key));
    if let Some(ca) = client_ca {
        tls = tls.client_ca_root(Certificate::from_pem(ca));
    }
    let receiver = Receiver::default();
    // A collector accepts gzip; the request says whether it is compressed.
    let service = TraceServiceServer::new(receiver.clone())
        .accept_compressed(tonic::codec::CompressionEncoding::Gzip);
    tokio::spawn(async move {
        tonic::transport::Server::builder()
            .tls_config(tls)
            .unwrap()
            .add_service(service)
            .serve_with_incoming(tonic::transport::server::TcpIncoming::from(listener))
            .await
            .unwrap();
    });
    (addr, receiver)
}

/// An OTLP/gRPC logs receiver that keeps every record it gets.
#[derive(Clone, Default)]
pub struct LogsReceiver {
    pub logs: Arc<Mutex<Vec<opentelemetry_proto::tonic::logs::v1::LogRecord>>>,
}

#[tonic::async_trait]
impl opentelemetry_proto::tonic::collector::logs::v1::logs_service_server::LogsService
    for LogsReceiver
{
    async fn export(
        &self,
        request: tonic::Request<
            opentelemetry_proto::tonic::collector::logs::v1::ExportLogsServiceRequest,
        >,
    ) -> Result<
        tonic::Response<opentelemetry_proto::tonic::collector::logs::v1::ExportLogsServiceResponse>,
        tonic::Status,
    > {
        let records = request
            .into_inner()
            .resource_logs
            .into_iter()
            .flat_map(|r| r.scope_logs)
            .flat_map(|s| s.log_records);
        self.logs.lock().unwrap().extend(records);
        Ok(tonic::Response::new(
            opentelemetry_proto::tonic::collector::logs::v1::ExportLogsServiceResponse {
                partial_success: None,
            },
        ))
    }
}

/// A plain OTLP/gRPC receiver of logs (and traces, kept and ignored) on 127.0.0.1,
/// served until the test ends.
pub async fn start_logs_receiver() -> (SocketAddr, LogsReceiver) {
    use opentelemetry_proto::tonic::collector::logs::v1::logs_service_server::LogsServiceServer;
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let logs = LogsReceiver::default();
    let service = LogsServiceServer::new(logs.clone());
    let traces = TraceServiceServer::new(Receiver::default());
    tokio::spawn(async move {
        tonic::transport::Server::builder()
            .add_service(service)
            .add_service(traces)
            .serve_with_incoming(tonic::transport::server::TcpIncoming::from(listener))
            .await
            .unwrap();
    });
    (addr, logs)
}
