#[instrument::workflow_span(kind = "task", tenant = "acme", labels(Queue = "a"))]
fn upper() {}

#[instrument::workflow_span(kind = "task", tenant = "acme", labels(tenant_id = "a"))]
fn reserved() {}

#[instrument::workflow_span(kind = "task", tenant = "acme", labels(queue = 1, queue = 2))]
fn twice() {}

#[instrument::workflow_span(kind = "task", tenant = "acme", labels(queue = Vec::<u8>::new()))]
fn not_display() {}

fn main() {}
