#[instrument::workflow_span(tenant = "acme")]
fn handler() {}

fn main() {}
