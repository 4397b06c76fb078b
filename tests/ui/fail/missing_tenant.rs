#[instrument::workflow_span(kind = "task")]
fn handler() {}

fn main() {}
