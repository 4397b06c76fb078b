//! The example workflow server, shared by `workflow_server`, `demo` and the integration
//! tests: a tonic `WorkflowService` storing workflows and tasks with their traceparent
//! in SQLite, instrumented with the instrument layers.

use std::collections::hash_map::RandomState;
use std::future::{ready, Future, Ready};
use std::hash::BuildHasher as _;
use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use instrument::context::{capture, restore};
use instrument::outstanding::{Outstanding, OutstandingGauge, Poller, WorkState};
use instrument::report::{ExecutionSpan, SpanVerdict};
use instrument::semconv::{
    MetricNames, WorkMetricNames, LABEL_TASK_TYPE, LABEL_TENANT_ID, LABEL_WORKFLOW_KIND,
};
use instrument::tenant::TenantId;
use instrument::tower::proxy::SpanProxy;
use instrument::tower::source::{CachedSource, SourceError, StoredTrace, TraceSource};
use instrument::tower::stack::InstrumentLayer;
use instrument::workflow_span;
use rusqlite::{params, Connection, OptionalExtension as _};
use tonic::{Request, Response, Status};
use tower_http::request_id::{MakeRequestUuid, PropagateRequestIdLayer, SetRequestIdLayer};
use tower_http::sensitive_headers::SetSensitiveRequestHeadersLayer;
use tracing::Instrument as _;
use tracing_opentelemetry::OpenTelemetrySpanExt as _;

use crate::pb::workflow_service_server::{WorkflowService, WorkflowServiceServer};
use crate::pb::*;

/// Workflows and tasks, with the traceparent each continues, in one SQLite file.
pub struct Store {
    db: Mutex<Connection>,
}

/// A workflow row.
#[derive(Debug, Clone)]
pub struct WorkflowRow {
    /// `wf-<16 hex>`.
    pub id: String,
    /// The tenant that started it.
    pub tenant: String,
    /// What kind of workflow (`payment`, ...).
    pub kind: String,
    /// Its input, as given.
    pub input_json: String,
    /// The traceparent every request about it continues.
    pub traceparent: Option<String>,
    /// `running`, `completed` or `failed`.
    pub status: String,
    /// When it started.
    pub created_at: SystemTime,
    /// Why it failed, once it has.
    pub error: Option<String>,
}

/// A task row.
#[derive(Debug, Clone)]
pub struct TaskRow {
    /// `task-<16 hex>`.
    pub id: String,
    /// The workflow it belongs to.
    pub workflow_id: String,
    /// The workflow's tenant.
    pub tenant: String,
    /// What kind of task (`charge`, ...).
    pub task_type: String,
    /// The traceparent its completion continues.
    pub traceparent: Option<String>,
    /// `pending`, `completed` or `failed`.
    pub status: String,
    /// When it was submitted.
    pub created_at: SystemTime,
}

fn millis(t: SystemTime) -> i64 {
    t.duration_since(UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
}

fn from_millis(ms: i64) -> SystemTime {
    UNIX_EPOCH + Duration::from_millis(u64::try_from(ms).unwrap_or(0))
}

impl Store {
    /// Opens (and creates) the store at `path`.
    pub fn open(path: &Path) -> rusqlite::Result<Self> {
        let db = Connection::open(path)?;
        db.execute_batch(
            "PRAGMA journal_mode = WAL;
             CREATE TABLE IF NOT EXISTS workflows (
                 id TEXT PRIMARY KEY, tenant TEXT NOT NULL, kind TEXT NOT NULL,
                 task_queue TEXT NOT NULL, input_json TEXT NOT NULL, traceparent TEXT,
                 status TEXT NOT NULL, worker_id TEXT, created_at_ms INTEGER NOT NULL,
                 output_json TEXT, error TEXT);
             CREATE TABLE IF NOT EXISTS tasks (
                 id TEXT PRIMARY KEY, workflow_id TEXT NOT NULL, tenant TEXT NOT NULL,
                 task_type TEXT NOT NULL, input_json TEXT NOT NULL, traceparent TEXT,
                 status TEXT NOT NULL, created_at_ms INTEGER NOT NULL,
                 output_json TEXT, error TEXT);
             CREATE INDEX IF NOT EXISTS workflows_by_status ON workflows (status);
             CREATE INDEX IF NOT EXISTS workflows_by_queue
                 ON workflows (tenant, task_queue, status, created_at_ms);
             CREATE INDEX IF NOT EXISTS tasks_by_status ON tasks (status);",
        )?;
        Ok(Self { db: Mutex::new(db) })
    }

    fn db(&self) -> std::sync::MutexGuard<'_, Connection> {
        // A panic while holding the lock leaves SQLite consistent (each statement is
        // atomic), so a poisoned lock is still usable.
        self.db.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The workflow `id`, if stored.
    pub fn workflow(&self, id: &str) -> rusqlite::Result<Option<WorkflowRow>> {
        self.db()
            .query_row(
                "SELECT id, tenant, kind, input_json, traceparent, status, created_at_ms, error
                 FROM workflows WHERE id = ?1",
                [id],
                |r| {
                    Ok(WorkflowRow {
                        id: r.get(0)?,
                        tenant: r.get(1)?,
                        kind: r.get(2)?,
                        input_json: r.get(3)?,
                        traceparent: r.get(4)?,
                        status: r.get(5)?,
                        created_at: from_millis(r.get(6)?),
                        error: r.get(7)?,
                    })
                },
            )
            .optional()
    }

    /// The task `id`, if stored.
    pub fn task(&self, id: &str) -> rusqlite::Result<Option<TaskRow>> {
        self.db()
            .query_row(
                "SELECT id, workflow_id, tenant, task_type, traceparent, status, created_at_ms
                 FROM tasks WHERE id = ?1",
                [id],
                |r| {
                    Ok(TaskRow {
                        id: r.get(0)?,
                        workflow_id: r.get(1)?,
                        tenant: r.get(2)?,
                        task_type: r.get(3)?,
                        traceparent: r.get(4)?,
                        status: r.get(5)?,
                        created_at: from_millis(r.get(6)?),
                    })
                },
            )
            .optional()
    }

    fn insert_workflow(&self, row: &WorkflowRow, task_queue: &str) -> rusqlite::Result<()> {
        self.db().execute(
            "INSERT INTO workflows (id, tenant, kind, task_queue, input_json, traceparent,
                                    status, created_at_ms)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
            params![
                row.id,
                row.tenant,
                row.kind,
                task_queue,
                row.input_json,
                row.traceparent,
                row.status,
                millis(row.created_at)
            ],
        )?;
        Ok(())
    }

    /// Takes the oldest pending workflow of `tenant` on `queue` for `worker`.
    fn claim(&self, tenant: &str, queue: &str, worker: &str) -> rusqlite::Result<Option<String>> {
        let db = self.db();
        let id: Option<String> = db
            .query_row(
                "SELECT id FROM workflows WHERE tenant = ?1 AND task_queue = ?2
                 AND status = 'pending' ORDER BY created_at_ms, id LIMIT 1",
                [tenant, queue],
                |r| r.get(0),
            )
            .optional()?;
        if let Some(id) = &id {
            db.execute(
                "UPDATE workflows SET status = 'running', worker_id = ?2 WHERE id = ?1",
                [id, worker],
            )?;
        }
        Ok(id)
    }

    fn insert_task(&self, row: &TaskRow, input_json: &str) -> rusqlite::Result<()> {
        self.db().execute(
            "INSERT INTO tasks (id, workflow_id, tenant, task_type, input_json, traceparent,
                                status, created_at_ms)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
            params![
                row.id,
                row.workflow_id,
                row.tenant,
                row.task_type,
                input_json,
                row.traceparent,
                row.status,
                millis(row.created_at)
            ],
        )?;
        Ok(())
    }

    fn finish(
        &self,
        table: Table,
        id: &str,
        status: &str,
        output: Option<&str>,
        error: Option<&str>,
    ) -> rusqlite::Result<()> {
        let sql = match table {
            Table::Workflows => {
                "UPDATE workflows SET status = ?2, output_json = ?3, error = ?4 WHERE id = ?1"
            }
            Table::Tasks => {
                "UPDATE tasks SET status = ?2, output_json = ?3, error = ?4 WHERE id = ?1"
            }
        };
        self.db().execute(sql, params![id, status, output, error])?;
        Ok(())
    }
}

impl Store {
    /// Workflows not yet ended (pending or running), counted by kind, state and
    /// creation time to 10 s (the oldest of each group): what feeds the stuck-work gauge
    /// ([`watch_outstanding`]). The database counts, so the answer stays small however
    /// many workflows wait.
    pub fn outstanding_workflows(&self) -> rusqlite::Result<Vec<(Outstanding, u64)>> {
        self.outstanding(
            "SELECT kind, status, MIN(created_at_ms), COUNT(*) FROM workflows
             WHERE status IN ('pending', 'running')
             GROUP BY kind, status, created_at_ms / 10000",
        )
    }

    /// Tasks not yet ended, counted by type, state and creation time to 10 s.
    pub fn outstanding_tasks(&self) -> rusqlite::Result<Vec<(Outstanding, u64)>> {
        self.outstanding(
            "SELECT task_type, status, MIN(created_at_ms), COUNT(*) FROM tasks
             WHERE status IN ('pending', 'running')
             GROUP BY task_type, status, created_at_ms / 10000",
        )
    }

    fn outstanding(&self, sql: &str) -> rusqlite::Result<Vec<(Outstanding, u64)>> {
        let db = self.db();
        let mut statement = db.prepare_cached(sql)?;
        let rows = statement.query_map([], |r| {
            let status: String = r.get(1)?;
            let item = Outstanding {
                kind: r.get(0)?,
                state: if status == "running" {
                    WorkState::Running
                } else {
                    WorkState::Pending
                },
                since: from_millis(r.get(2)?),
            };
            Ok((item, u64::try_from(r.get::<_, i64>(3)?).unwrap_or(0)))
        })?;
        rows.collect()
    }
}

/// Feeds the stuck-work gauges (`instrument_workflows_outstanding`,
/// `instrument_tasks_outstanding`) from `store` every `period`, until the pollers are
/// dropped.
pub fn watch_outstanding(store: &Arc<Store>, period: Duration) -> Vec<Poller> {
    let names = MetricNames::global();
    let mut pollers = Vec::new();
    if let Ok(gauge) = OutstandingGauge::new(names, "workflow") {
        let store = Arc::clone(store);
        pollers.push(gauge.spawn_counted(period, move || store.outstanding_workflows()));
    }
    if let Ok(gauge) = OutstandingGauge::new(names, "task") {
        let store = Arc::clone(store);
        pollers.push(gauge.spawn_counted(period, move || store.outstanding_tasks()));
    }
    pollers
}

#[derive(Clone, Copy)]
enum Table {
    Workflows,
    Tasks,
}

/// Finds a workflow's tenant and stored traceparent by its `x-workflow-id`.
pub struct WorkflowSource(pub Arc<Store>);

impl TraceSource for WorkflowSource {
    // SQLite on a local file answers in microseconds; a networked database would
    // return a boxed future here.
    type Lookup = Ready<Result<Option<StoredTrace>, SourceError>>;

    fn lookup(&self, key: &str) -> Self::Lookup {
        ready(match self.0.workflow(key) {
            Ok(Some(row)) => match TenantId::parse(&row.tenant) {
                Ok(tenant) => Ok(Some(
                    StoredTrace::new(tenant, row.traceparent.as_deref()).started_at(row.created_at),
                )),
                Err(e) => Err(Box::new(e) as SourceError),
            },
            Ok(None) => Ok(None),
            Err(e) => Err(Box::new(e)),
        })
    }
}

/// The `WorkflowService` implementation.
pub struct Workflows {
    store: Arc<Store>,
    cache: CachedSource<WorkflowSource>,
    /// Records the spans workers report, in their workflows' traces.
    proxy: SpanProxy<CachedSource<WorkflowSource>>,
    workflows: WorkMetricNames,
    tasks: WorkMetricNames,
    /// Bumped whenever a workflow changes status; `WatchWorkflow` streams wait on it.
    changes: Arc<tokio::sync::watch::Sender<u64>>,
}

static ID_COUNTER: AtomicU64 = AtomicU64::new(0);

/// A fresh id such as `wf-5f0c2a9e8d1b4c37`.
fn new_id(prefix: &str) -> String {
    let n = ID_COUNTER.fetch_add(1, Ordering::Relaxed);
    let hash = RandomState::new().hash_one((n, SystemTime::now()));
    format!("{prefix}-{hash:016x}")
}

fn storage(e: rusqlite::Error) -> Status {
    tracing::error!(error = %e, "storage error");
    Status::internal("storage error")
}

/// The tenant the tenant layer accepted.
fn tenant<T>(request: &Request<T>) -> Result<TenantId, Status> {
    request
        .extensions()
        .get::<TenantId>()
        .cloned()
        .ok_or_else(|| Status::unauthenticated("a tenant is required"))
}

/// The row's owner must be the caller; the message names neither tenant.
fn same_tenant(tenant: &TenantId, owner: &str, what: &str) -> Result<(), Status> {
    if tenant.as_str() == owner {
        Ok(())
    } else {
        Err(Status::permission_denied(format!(
            "the {what} is not accessible to this tenant"
        )))
    }
}

/// Puts `span` in the trace of `traceparent` (a fresh trace when it is missing or
/// corrupt), keeping the request's tenant. When the trace layer already restored that
/// trace for the request (the client sent `x-workflow-id`), `span` stays a child of
/// the request's span; otherwise (a poll names no workflow) it links to the request's
/// span, so the request stays one click away from the workflow's trace.
fn continue_trace(span: &tracing::Span, traceparent: Option<&str>) {
    use opentelemetry::trace::TraceContextExt as _;
    let current = opentelemetry::Context::current();
    let request = current.span().span_context().clone();
    let restored = restore(traceparent);
    let same_trace = restored
        .span_context()
        .is_some_and(|stored| request.trace_id() == stored.trace_id());
    if !same_trace {
        let _ = span.set_parent(restored.apply_to(&current));
        if request.is_valid() {
            span.add_link(request);
        }
    }
}

const COMPLETED: &str = "completed";
const FAILED: &str = "failed";

/// `completed`, or `failed` when there is an error.
fn ended(error: Option<&str>) -> &'static str {
    if error.is_some() {
        FAILED
    } else {
        COMPLETED
    }
}

/// A workflow or task that has ended takes no more tasks or completions.
fn still_open(status: &str, what: &str) -> Result<(), Status> {
    if status == COMPLETED || status == FAILED {
        return Err(Status::failed_precondition(format!(
            "the {what} has already ended"
        )));
    }
    Ok(())
}

/// Ending a workflow or task: the failure it reports (recorded by `#[workflow_span]`
/// as `<kind>.failed`, yet the RPC succeeds), or why it could not be recorded.
#[derive(Debug)]
enum Ending {
    Reported(String),
    Refused(Status),
}

impl std::fmt::Display for Ending {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Reported(error) => f.write_str(error),
            Self::Refused(status) => f.write_str(status.message()),
        }
    }
}

/// The class of an ending's failure, as `error.type` and the `error_type` label record
/// it: a failure the worker reported, or the refusal's gRPC code (as the layers name it).
impl instrument::work::ErrorType for Ending {
    fn error_type(&self) -> std::borrow::Cow<'static, str> {
        match self {
            Self::Reported(_) => "reported".into(),
            Self::Refused(status) => status.error_type(),
        }
    }
}

impl Ending {
    fn into_reply(result: Result<(), Self>) -> Result<Response<Ack>, Status> {
        match result {
            Ok(()) | Err(Self::Reported(_)) => Ok(Response::new(Ack {})),
            Err(Self::Refused(status)) => Err(status),
        }
    }
}

fn elapsed_ms(since: SystemTime) -> u64 {
    SystemTime::now()
        .duration_since(since)
        .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
}

impl Workflows {
    /// Wakes the `WatchWorkflow` streams.
    fn changed(&self) {
        self.changes.send_modify(|n| *n = n.wrapping_add(1));
    }

    fn count(&self, name: &str, tenant: &TenantId, kind_label: &'static str, kind: &str) {
        metrics::counter!(
            name.to_owned(),
            LABEL_TENANT_ID => tenant.to_string(),
            kind_label => kind.to_owned(),
        )
        .increment(1);
    }

    fn owned_workflow(&self, tenant: &TenantId, id: &str) -> Result<WorkflowRow, Status> {
        let row = self
            .store
            .workflow(id)
            .map_err(storage)?
            .ok_or_else(|| Status::not_found("no such workflow"))?;
        same_tenant(tenant, &row.tenant, "workflow")?;
        still_open(&row.status, "workflow")?;
        Ok(row)
    }

    fn owned_task(&self, tenant: &TenantId, id: &str) -> Result<TaskRow, Status> {
        let row = self
            .store
            .task(id)
            .map_err(storage)?
            .ok_or_else(|| Status::not_found("no such task"))?;
        same_tenant(tenant, &row.tenant, "task")?;
        still_open(&row.status, "task")?;
        Ok(row)
    }

    async fn finish_task(
        &self,
        tenant: TenantId,
        task_id: &str,
        output: Option<&str>,
        error: Option<&str>,
    ) -> Result<Response<Ack>, Status> {
        let row = self.owned_task(&tenant, task_id)?;
        Ending::into_reply(self.end_task(&tenant, &row, output, error))
    }

    /// Records a task's end: `task.end` in the task's stored trace, then
    /// `task.completed` or `task.failed` from the task's creation to now.
    #[workflow_span(
        kind = "task",
        name = "task.end",
        event = "end",
        tenant = tenant,
        id = row.id,
        traceparent = row.traceparent.as_deref(),
        started_at = row.created_at,
        fields(workflow.id = row.workflow_id, task.type = row.task_type),
        labels(task_type = row.task_type),
    )]
    fn end_task(
        &self,
        tenant: &TenantId,
        row: &TaskRow,
        output: Option<&str>,
        error: Option<&str>,
    ) -> Result<(), Ending> {
        self.store
            .finish(Table::Tasks, &row.id, ended(error), output, error)
            .map_err(|e| Ending::Refused(storage(e)))?;
        match error {
            Some(error) => Err(Ending::Reported(error.to_owned())),
            None => Ok(()),
        }
    }

    async fn finish_workflow(
        &self,
        tenant: TenantId,
        workflow_id: &str,
        output: Option<&str>,
        error: Option<&str>,
    ) -> Result<Response<Ack>, Status> {
        let row = self.owned_workflow(&tenant, workflow_id)?;
        Ending::into_reply(self.end_workflow(&tenant, &row, output, error))
    }

    /// Records a workflow's end: `workflow.end` in its stored trace, then
    /// `workflow.completed` or `workflow.failed` spanning its whole life.
    #[workflow_span(
        kind = "workflow",
        name = "workflow.end",
        event = "end",
        tenant = tenant,
        id = row.id,
        traceparent = row.traceparent.as_deref(),
        started_at = row.created_at,
        fields(workflow.kind = row.kind),
        labels(workflow_kind = row.kind),
    )]
    fn end_workflow(
        &self,
        tenant: &TenantId,
        row: &WorkflowRow,
        output: Option<&str>,
        error: Option<&str>,
    ) -> Result<(), Ending> {
        self.store
            .finish(Table::Workflows, &row.id, ended(error), output, error)
            .map_err(|e| Ending::Refused(storage(e)))?;
        // Completed workflows need no cached context any more.
        self.cache.invalidate(&row.id);
        self.changed();
        match error {
            Some(error) => Err(Ending::Reported(error.to_owned())),
            None => Ok(()),
        }
    }
}

/// The longest a `WatchWorkflow` stream waits for its workflow to end.
const MAX_WATCH: Duration = Duration::from_secs(60);

/// A `WatchWorkflow` stream: the workflow's status now and at each change.
pub type EventStream =
    std::pin::Pin<Box<dyn futures_util::Stream<Item = Result<WorkflowEvent, Status>> + Send>>;

/// Where a `WatchWorkflow` stream is.
struct Watch {
    store: Arc<Store>,
    changes: tokio::sync::watch::Receiver<u64>,
    id: String,
    last: Option<String>,
    deadline: tokio::time::Instant,
    done: bool,
}

impl Watch {
    /// The next event, or the status ending the stream; `None` once it has ended.
    async fn next(mut self) -> Option<(Result<WorkflowEvent, Status>, Self)> {
        if self.done {
            return None;
        }
        loop {
            // Marks the current version seen before reading, so no change is missed.
            self.changes.borrow_and_update();
            let row = match self.store.workflow(&self.id) {
                Ok(Some(row)) => row,
                Ok(None) => return self.end(Status::not_found("no such workflow")),
                Err(e) => return self.end(storage(e)),
            };
            if self.last.as_deref() != Some(row.status.as_str()) {
                self.done = still_open(&row.status, "workflow").is_err();
                self.last = Some(row.status.clone());
                let event = WorkflowEvent {
                    workflow_id: row.id,
                    status: row.status,
                    error: row.error.unwrap_or_default(),
                };
                return Some((Ok(event), self));
            }
            match tokio::time::timeout_at(self.deadline, self.changes.changed()).await {
                Ok(Ok(())) => continue,
                Ok(Err(_)) => return self.end(Status::unavailable("the server is stopping")),
                Err(_) => {
                    return self.end(Status::deadline_exceeded(
                        "the workflow was still running when the watch ended",
                    ))
                }
            }
        }
    }

    fn end(mut self, status: Status) -> Option<(Result<WorkflowEvent, Status>, Self)> {
        self.done = true;
        Some((Err(status), self))
    }
}

#[tonic::async_trait]
impl WorkflowService for Workflows {
    type WatchWorkflowStream = EventStream;

    async fn report_execution_spans(
        &self,
        request: Request<ReportExecutionSpansRequest>,
    ) -> Result<Response<ReportExecutionSpansResponse>, Status> {
        let tenant = tenant(&request)?;
        let req = request.into_inner();
        let sdk = req.sdk.map(sdk_info).unwrap_or_default();
        let spans: Vec<ExecutionSpan> = req.spans.into_iter().map(execution_span).collect();
        let verdicts = self.proxy.report(&tenant, &sdk, &spans).await;
        let mut accepted = 0;
        let results = verdicts
            .into_iter()
            .map(|verdict| match verdict {
                SpanVerdict::Accepted { dropped } => {
                    accepted += 1;
                    SpanResult {
                        accepted: true,
                        refusal: String::new(),
                        dropped_attributes: dropped,
                    }
                }
                SpanVerdict::Refused(reason) => SpanResult {
                    accepted: false,
                    refusal: reason.as_str().to_owned(),
                    dropped_attributes: Vec::new(),
                },
            })
            .collect();
        Ok(Response::new(ReportExecutionSpansResponse {
            results,
            accepted,
        }))
    }

    async fn watch_workflow(
        &self,
        request: Request<WatchWorkflowRequest>,
    ) -> Result<Response<EventStream>, Status> {
        let tenant = tenant(&request)?;
        let req = request.into_inner();
        let row = self
            .store
            .workflow(&req.workflow_id)
            .map_err(storage)?
            .ok_or_else(|| Status::not_found("no such workflow"))?;
        same_tenant(&tenant, &row.tenant, "workflow")?;
        let wait = match req.max_wait_ms {
            0 => MAX_WATCH,
            ms => Duration::from_millis(ms.into()).min(MAX_WATCH),
        };
        let watch = Watch {
            store: Arc::clone(&self.store),
            changes: self.changes.subscribe(),
            id: row.id,
            last: None,
            deadline: tokio::time::Instant::now() + wait,
            done: false,
        };
        let events = futures_util::stream::unfold(watch, Watch::next);
        Ok(Response::new(Box::pin(events)))
    }

    async fn start_workflow(
        &self,
        request: Request<StartWorkflowRequest>,
    ) -> Result<Response<StartWorkflowResponse>, Status> {
        let tenant = tenant(&request)?;
        let req = request.into_inner();
        if req.kind.trim().is_empty() {
            return Err(Status::invalid_argument("kind is required"));
        }
        let id = new_id("wf");
        // The input is recorded; the pipeline's redactor masks secrets in it.
        let span = tracing::info_span!(
            "workflow.start",
            workflow.id = %id,
            workflow.kind = %req.kind,
            task.queue = %req.task_queue,
            workflow.input = %req.input_json,
        );
        async {
            // The workflow's spans continue from this one, also after a restart.
            let traceparent = capture().map(|tp| tp.to_string());
            let row = WorkflowRow {
                id: id.clone(),
                tenant: tenant.to_string(),
                kind: req.kind.clone(),
                input_json: req.input_json.clone(),
                traceparent: traceparent.clone(),
                status: "pending".into(),
                created_at: SystemTime::now(),
                error: None,
            };
            self.store
                .insert_workflow(&row, &req.task_queue)
                .map_err(storage)?;
            // A log line in the request's trace (with OTLP logs on, a log record with
            // its trace and span ids and tenant); the input's secrets are masked.
            tracing::info!(input = %req.input_json, "workflow {id} started");
            self.cache.insert(
                id.clone(),
                StoredTrace::new(tenant.clone(), traceparent.as_deref()).started_at(row.created_at),
            );
            self.count(
                &self.workflows.started,
                &tenant,
                LABEL_WORKFLOW_KIND,
                &req.kind,
            );
            Ok(Response::new(StartWorkflowResponse {
                workflow_id: id.clone(),
                traceparent: traceparent.unwrap_or_default(),
            }))
        }
        .instrument(span)
        .await
    }

    async fn poll_workflow(
        &self,
        request: Request<PollWorkflowRequest>,
    ) -> Result<Response<PollWorkflowResponse>, Status> {
        let tenant = tenant(&request)?;
        let req = request.into_inner();
        let Some(id) = self
            .store
            .claim(tenant.as_str(), &req.task_queue, &req.worker_id)
            .map_err(storage)?
        else {
            return Ok(Response::new(PollWorkflowResponse::default()));
        };
        let row = self
            .store
            .workflow(&id)
            .map_err(storage)?
            .ok_or_else(|| Status::not_found("no such workflow"))?;
        let span = tracing::info_span!(
            "workflow.poll",
            workflow.id = %row.id,
            worker.id = %req.worker_id,
            pending_duration_ms = elapsed_ms(row.created_at),
        );
        continue_trace(&span, row.traceparent.as_deref());
        let _entered = span.enter();
        self.changed();
        self.cache.insert(
            row.id.clone(),
            StoredTrace::new(tenant, row.traceparent.as_deref()).started_at(row.created_at),
        );
        Ok(Response::new(PollWorkflowResponse {
            workflow_id: row.id,
            kind: row.kind,
            input_json: row.input_json,
            traceparent: row.traceparent.unwrap_or_default(),
        }))
    }

    async fn submit_task(
        &self,
        request: Request<SubmitTaskRequest>,
    ) -> Result<Response<SubmitTaskResponse>, Status> {
        let tenant = tenant(&request)?;
        let req = request.into_inner();
        let workflow = self.owned_workflow(&tenant, &req.workflow_id)?;
        let id = new_id("task");
        let span = tracing::info_span!(
            "task.submitted",
            task.id = %id,
            workflow.id = %workflow.id,
            task.r#type = %req.task_type,
            task.input = %req.input_json,
        );
        continue_trace(&span, workflow.traceparent.as_deref());
        async {
            let traceparent = capture().map(|tp| tp.to_string());
            let row = TaskRow {
                id: id.clone(),
                workflow_id: workflow.id.clone(),
                tenant: tenant.to_string(),
                task_type: req.task_type.clone(),
                traceparent: traceparent.clone(),
                status: "pending".into(),
                created_at: SystemTime::now(),
            };
            self.store
                .insert_task(&row, &req.input_json)
                .map_err(storage)?;
            self.count(
                &self.tasks.started,
                &tenant,
                LABEL_TASK_TYPE,
                &req.task_type,
            );
            Ok(Response::new(SubmitTaskResponse {
                task_id: id.clone(),
                traceparent: traceparent.unwrap_or_default(),
            }))
        }
        .instrument(span)
        .await
    }

    async fn complete_task(
        &self,
        request: Request<CompleteTaskRequest>,
    ) -> Result<Response<Ack>, Status> {
        let tenant = tenant(&request)?;
        let req = request.into_inner();
        self.finish_task(tenant, &req.task_id, Some(&req.output_json), None)
            .await
    }

    async fn fail_task(&self, request: Request<FailTaskRequest>) -> Result<Response<Ack>, Status> {
        let tenant = tenant(&request)?;
        let req = request.into_inner();
        self.finish_task(tenant, &req.task_id, None, Some(&req.error))
            .await
    }

    async fn complete_workflow(
        &self,
        request: Request<CompleteWorkflowRequest>,
    ) -> Result<Response<Ack>, Status> {
        let tenant = tenant(&request)?;
        let req = request.into_inner();
        self.finish_workflow(tenant, &req.workflow_id, Some(&req.output_json), None)
            .await
    }

    async fn fail_workflow(
        &self,
        request: Request<FailWorkflowRequest>,
    ) -> Result<Response<Ack>, Status> {
        let tenant = tenant(&request)?;
        let req = request.into_inner();
        self.finish_workflow(tenant, &req.workflow_id, None, Some(&req.error))
            .await
    }
}

fn sdk_info(sdk: crate::pb::SdkInfo) -> instrument::report::SdkInfo {
    instrument::report::SdkInfo {
        language: sdk.language,
        version: sdk.sdk_version,
        os: sdk.os,
        arch: sdk.arch,
    }
}

fn execution_span(span: crate::pb::ExecutionSpan) -> ExecutionSpan {
    let at = |nanos: u64| UNIX_EPOCH + Duration::from_nanos(nanos);
    ExecutionSpan {
        span_id: span.span_id,
        parent_span_id: span.parent_span_id,
        span_type: span.span_type,
        name: span.name,
        workflow_id: span.workflow_id,
        task_id: span.task_id,
        start: at(span.start_time_unix_nano),
        end: at(span.end_time_unix_nano),
        error: Some(span.error).filter(|e| !e.is_empty()),
        attributes: span
            .attributes
            .into_iter()
            .map(|a| (a.key, a.value))
            .collect(),
    }
}

/// Serves the workflow service on `listener` until `shutdown` completes, then finishes
/// the requests in flight.
pub async fn serve(
    listener: tokio::net::TcpListener,
    store: Arc<Store>,
    shutdown: impl Future<Output = ()>,
) -> Result<(), tonic::transport::Error> {
    let cache = CachedSource::new(WorkflowSource(Arc::clone(&store)));
    // Clients may say where to reach a person (`x-contact`): recorded on the span, but
    // marked sensitive with tower-http, so only as `[REDACTED]`.
    let contact = http::HeaderName::from_static("x-contact");
    // `WatchWorkflow` streams: its messages are counted and sized, and the first
    // ones are events on its span.
    let layer = InstrumentLayer::builder()
        .source(cache.clone())
        .record_headers([http::header::USER_AGENT, contact.clone()])
        .record_messages()
        .build();
    let service = Workflows {
        store,
        proxy: SpanProxy::new(cache.clone()),
        cache,
        workflows: MetricNames::default().workflows(),
        tasks: MetricNames::default().tasks(),
        changes: Arc::new(tokio::sync::watch::Sender::new(0)),
    };
    tonic::transport::Server::builder()
        // tower-http's request ids (recorded on the server span) and sensitive headers.
        .layer(SetRequestIdLayer::x_request_id(MakeRequestUuid))
        .layer(PropagateRequestIdLayer::x_request_id())
        .layer(SetSensitiveRequestHeadersLayer::new([contact]))
        .layer(layer)
        .add_service(WorkflowServiceServer::new(service))
        .serve_with_incoming_shutdown(
            tonic::transport::server::TcpIncoming::from(listener),
            shutdown,
        )
        .await
}

/// The workflow server on 127.0.0.1 with a fresh database in a temporary directory,
/// as the integration tests start it (see [`Local::start`]).
pub struct Local {
    /// Where it listens.
    pub addr: std::net::SocketAddr,
    /// Its store.
    pub store: Arc<Store>,
    dir: std::path::PathBuf,
    stop: tokio::sync::oneshot::Sender<()>,
    served: tokio::task::JoinHandle<Result<(), tonic::transport::Error>>,
}

impl Local {
    /// Serves on a free port of 127.0.0.1, its database under a directory named after
    /// `name` and the process.
    pub async fn start(name: &str) -> Result<Self, Box<dyn std::error::Error + Send + Sync>> {
        let dir = std::env::temp_dir().join(format!("instrument-{name}-{}", std::process::id()));
        std::fs::create_dir_all(&dir)?;
        let store = Arc::new(Store::open(&dir.join("workflows.sqlite3"))?);
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
        let addr = listener.local_addr()?;
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let served = tokio::spawn(serve(listener, Arc::clone(&store), async {
            let _ = stopped.await;
        }));
        Ok(Self {
            addr,
            store,
            dir,
            stop,
            served,
        })
    }

    /// `http://<addr>`.
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// Stops accepting, finishes the requests in flight, removes the database.
    pub async fn stop(self) -> Result<(), Box<dyn std::error::Error + Send + Sync>> {
        let _ = self.stop.send(());
        self.served.await??;
        let _ = std::fs::remove_dir_all(&self.dir);
        Ok(())
    }
}

/// A client request carrying `tenant` (and `workflow` as `x-workflow-id`).
pub fn call<T>(message: T, tenant: &str, workflow: Option<&str>) -> Request<T> {
    let mut request = Request::new(message);
    if let Ok(value) = tenant.parse() {
        request.metadata_mut().insert("x-tenant-id", value);
    }
    if let Some(Ok(value)) = workflow.map(str::parse) {
        request.metadata_mut().insert("x-workflow-id", value);
    }
    request
}
