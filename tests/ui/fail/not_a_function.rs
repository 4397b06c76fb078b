#[instrument::workflow_span(kind = "task", tenant = "acme")]
struct Handler;

fn main() {}
