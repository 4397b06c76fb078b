//! Every accepted shape of `#[workflow_span]`.
use std::fmt;
use std::time::SystemTime;

use instrument::tenant::TenantId;
use instrument::workflow_span;

#[derive(Debug)]
pub struct Error;

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("error")
    }
}

pub struct Request {
    pub tenant_id: String,
    pub workflow_id: String,
    pub queue: String,
}

pub struct Row {
    pub traceparent: Option<String>,
    pub created_at: SystemTime,
}

pub struct Service {
    worker_id: String,
    calls: u32,
}

impl Service {
    // Every argument, on an async method; `req` and `row` move into the body.
    #[workflow_span(
        kind = "workflow",
        name = "workflow.complete",
        tenant = req.tenant_id,
        id = req.workflow_id,
        traceparent = row.traceparent.as_deref(),
        started_at = row.created_at,
        fields(task_queue = req.queue, worker.id = self.worker_id),
    )]
    pub async fn complete(&self, req: Request, row: Row) -> Result<String, Error> {
        let _row = row;
        Ok(req.workflow_id)
    }

    #[workflow_span(kind = "task", tenant = "acme")]
    pub fn count(&mut self) -> u32 {
        self.calls += 1;
        self.calls
    }

    #[workflow_span(kind = "task", tenant = "acme", id = self.calls)]
    pub fn finish(self) -> Option<u32> {
        Some(self.calls)
    }

    #[workflow_span(kind = "task", tenant = "acme")]
    pub async fn run(self) {
        let _ = self.worker_id;
    }
}

// Generic, `impl Trait` argument, `where` clause, early return and `?`.
#[workflow_span(kind = "task", tenant = tenant, fields(size = items.len()))]
pub fn sum<T, I>(tenant: &TenantId, items: Vec<T>, extra: impl Iterator<Item = T>) -> Result<T, Error>
where
    T: std::iter::Sum<T> + Copy,
    I: Default,
{
    if items.is_empty() {
        return Err(Error);
    }
    let total: T = items.into_iter().chain(extra).sum();
    Ok(total)
}

#[workflow_span(kind = "task", tenant = String::from("acme"))]
pub fn parse(text: &str) -> Result<u32, std::num::ParseIntError> {
    let n: u32 = text.parse()?;
    Ok(n)
}

#[workflow_span(kind = "task", tenant = "acme")]
pub async fn fetch(text: &str) -> Result<u32, std::num::ParseIntError> {
    let n: u32 = text.parse()?;
    Ok(n)
}

// `impl Trait` return types, sync and async.
#[workflow_span(kind = "task", tenant = "acme")]
pub fn evens(limit: u32) -> impl Iterator<Item = u32> {
    (0..limit).filter(|n| n % 2 == 0)
}

#[workflow_span(kind = "task", tenant = "acme")]
pub async fn shown(n: u32) -> impl fmt::Display {
    n
}

// Plain value and unit.
#[workflow_span(kind = "timer", tenant = "acme", id = 7u64)]
pub fn plain() -> (u8, &'static str) {
    (1, "one")
}

#[workflow_span(kind = "child_workflow", tenant = Some("acme"), fields("custom.key" = 1.5f64, flag = true))]
pub fn unit() {}

// Depending on instrument-core directly.
#[workflow_span(kind = "task", tenant = "acme", crate = instrument_core)]
pub fn direct() -> u8 {
    1
}

// Each lifecycle event.
#[workflow_span(kind = "workflow", event = "run", tenant = "acme")]
fn run_whole() {}

#[workflow_span(kind = "workflow", event = "start", tenant = "acme")]
fn start_one() -> Result<(), String> {
    Ok(())
}

#[workflow_span(kind = "workflow", event = "step", tenant = "acme")]
async fn step_one() {}

#[workflow_span(kind = "workflow", event = "end", tenant = "acme", started_at = SystemTime::now())]
fn end_one() -> Option<u8> {
    Some(1)
}

// Metric labels: any `Display`, a raw identifier as key.
#[workflow_span(
    kind = "task",
    event = "end",
    tenant = req.tenant_id,
    labels(task_queue = req.queue, r#priority = 3, kind_of = "x"),
    fields(task.queue = req.queue),
)]
fn labelled(req: &Request) -> Result<(), Error> {
    Ok(())
}

fn main() {
    run_whole();
    let _ = labelled(&Request { tenant_id: "acme".into(), workflow_id: "wf".into(), queue: "q".into() });
    let _ = start_one();
    let _step = step_one();
    let _ = end_one();
    let mut service = Service { worker_id: "w-1".into(), calls: 0 };
    let _ = service.count();
    let tenant = TenantId::parse("acme").unwrap();
    let _ = sum::<u32, ()>(&tenant, vec![1, 2], std::iter::empty());
    let _ = parse("12");
    let _ = evens(10).count();
    let _ = plain();
    unit();
    let _ = direct();
    let _ = service.finish();
    let _fetch = fetch("1");
    let _shown = shown(1);
    let _ = Service { worker_id: String::new(), calls: 0 }.run();
    let _ = Service { worker_id: String::new(), calls: 0 }.complete(
        Request { tenant_id: "acme".into(), workflow_id: "wf".into(), queue: "q".into() },
        Row { traceparent: None, created_at: SystemTime::now() },
    );
}
