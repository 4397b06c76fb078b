#[instrument::workflow_span(kind = "task", tenant = "acme", traceparent = None::<&str>, traceparent = None::<&str>)]
fn handler() {}

fn main() {}
