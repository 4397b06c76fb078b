#[instrument::workflow_span(kind = "task", tenant = 42)]
fn handler() {}

fn main() {}
