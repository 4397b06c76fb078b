//! Inside a `#[tonic::async_trait]` impl, as tonic services are written.
use instrument::workflow_span;

pub struct Reply;

#[tonic::async_trait]
pub trait Workflows {
    async fn start(&self, tenant: String, id: String) -> Result<Reply, tonic::Status>;
    async fn poll(&self, tenant: String) -> Option<String>;
}

pub struct Service {
    worker: String,
}

#[tonic::async_trait]
impl Workflows for Service {
    #[workflow_span(kind = "workflow", tenant = tenant, id = id, fields(worker.id = self.worker))]
    async fn start(&self, tenant: String, id: String) -> Result<Reply, tonic::Status> {
        let _ = (tenant, id);
        Ok(Reply)
    }

    #[workflow_span(kind = "workflow", name = "workflow.poll", tenant = tenant)]
    async fn poll(&self, tenant: String) -> Option<String> {
        Some(tenant)
    }
}

fn main() {
    let service = Service { worker: "w".into() };
    let _future = service.start("acme".into(), "wf".into());
}
