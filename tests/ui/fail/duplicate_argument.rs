#[instrument::workflow_span(kind = "task", tenant = "acme", kind = "workflow")]
fn handler() {}

fn main() {}
