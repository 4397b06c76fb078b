#[instrument::workflow_span(kind = "task", tenant = "acme")]
const fn handler() -> u8 {
    1
}

fn main() {}
