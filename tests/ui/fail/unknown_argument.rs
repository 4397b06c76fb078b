#[instrument::workflow_span(kind = "task", tenant = "acme", level = "debug")]
fn handler() {}

fn main() {}
