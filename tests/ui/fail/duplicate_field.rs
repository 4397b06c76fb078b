#[instrument::workflow_span(kind = "task", tenant = "acme", fields(queue = 1, queue = 2))]
fn handler() {}

fn main() {}
