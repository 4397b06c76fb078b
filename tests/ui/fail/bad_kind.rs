#[instrument::workflow_span(kind = "Workflow Run", tenant = "acme")]
fn handler() {}

fn main() {}
