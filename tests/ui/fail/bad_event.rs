use instrument::workflow_span;

#[workflow_span(kind = "workflow", event = "finish", tenant = "acme")]
fn end() {}

fn main() {
    end();
}
