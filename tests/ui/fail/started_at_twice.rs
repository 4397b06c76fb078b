#[instrument::workflow_span(
    kind = "task",
    tenant = "acme",
    started_at = std::time::SystemTime::now(),
    started_at = std::time::SystemTime::now(),
)]
fn handler() {}

fn main() {}
