//! An OTLP/gRPC metrics receiver started inside a test, keeping every metric it
//! receives and the service names of their resources.
#![allow(dead_code)] // each test binary uses part of it

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};

use opentelemetry_proto::tonic::collector::metrics::v1::metrics_service_server::{
    MetricsService, MetricsServiceServer,
};
use opentelemetry_proto::tonic::collector::metrics::v1::{
    ExportMetricsServiceRequest, ExportMetricsServiceResponse,
};
use opentelemetry_proto::tonic::common::v1::any_value::Value;
use opentelemetry_proto::tonic::metrics::v1::Metric;

#[derive(Clone, Default)]
pub struct MetricsReceiver {
    pub metrics: Arc<Mutex<Vec<Metric>>>,
    pub services: Arc<Mutex<Vec<String>>>,
}

#[tonic::async_trait]
impl MetricsService for MetricsReceiver {
    async fn export(
        &self,
        request: tonic::Request<ExportMetricsServiceRequest>,
    ) -> Result<tonic::Response<ExportMetricsServiceResponse>, tonic::Status> {
        for resource in request.into_inner().resource_metrics {
            if let Some(resource) = &resource.resource {
                for kv in &resource.attributes {
                    if kv.key == "service.name" {
                        if let Some(Value::StringValue(s)) =
                            kv.value.as_ref().and_then(|v| v.value.as_ref())
                        {
                            self.services.lock().unwrap().push(s.clone());
                        }
                    }
                }
            }
            for scope in resource.scope_metrics {
                self.metrics.lock().unwrap().extend(scope.metrics);
            }
        }
        Ok(tonic::Response::new(ExportMetricsServiceResponse {
            partial_success: None,
        }))
    }
}

impl MetricsReceiver {
    /// The names of the metrics received, each once.
    pub fn names(&self) -> std::collections::BTreeSet<String> {
        self.metrics
            .lock()
            .unwrap()
            .iter()
            .map(|m| m.name.clone())
            .collect()
    }
}

/// A plain-text OTLP/gRPC metrics receiver on 127.0.0.1, served until the test ends.
pub async fn start_metrics_receiver() -> (SocketAddr, MetricsReceiver) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let receiver = MetricsReceiver::default();
    let service = MetricsServiceServer::new(receiver.clone());
    tokio::spawn(async move {
        tonic::transport::Server::builder()
            .add_service(service)
            .serve_with_incoming(tonic::transport::server::TcpIncoming::from(listener))
            .await
            .unwrap();
    });
    (addr, receiver)
}
