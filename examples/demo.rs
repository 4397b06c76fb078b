//! A tour of what the toolkit does to a workflow server's telemetry, with no collector:
//! trace context restored from stored rows, tenants checked, secrets masked, metric
//! labels capped.
//!
//! ```text
//! cargo run --example demo
//! ```

use instrument::cardinality::{normalize_route, status_group, GuardedRecorder, LabelGuard};
use instrument::context::{extract, restore, ParentPolicy, Restored};
use instrument::pipeline::{build, PipelineConfig};
use instrument::redact::{sanitize_sql, Redactor};
use instrument::semconv::{self, MetricNames};
use instrument::tenant::{ensure_same_tenant, with_tenant, TenantId};
use tracing_opentelemetry::OpenTelemetrySpanExt as _;
use tracing_subscriber::layer::SubscriberExt as _;

fn section(title: &str) {
    println!("\n== {title}");
}

/// One request through the telemetry pipeline, printed by the development exporter.
fn traced_request() {
    let telemetry = build(&PipelineConfig::default()).expect("the default pipeline builds");
    let subscriber = tracing_subscriber::registry().with(telemetry.layer());
    tracing::subscriber::with_default(subscriber, || {
        let request = tracing::info_span!(
            "instrument.example.v1.WorkflowService/StartWorkflow",
            "workflow.id" = "wf-1"
        );
        let tenant = TenantId::parse("acme-corp").expect("valid tenant");
        let _ = request.set_parent(with_tenant(&opentelemetry::Context::new(), tenant));
        request.in_scope(|| {
            // A library's own span: it gets tenant.id too, and its secret is masked.
            tracing::info_span!("db.insert", "db.password" = "hunter2").in_scope(|| {});
            tracing::info_span!("workflow.start", "workflow.kind" = "order").in_scope(|| {});
        });
    });
    // Flushes the batch: the tree is printed now.
    if let Err(e) = telemetry.shutdown() {
        eprintln!("{e}");
    }
}

fn main() {
    section("One request, as the development exporter prints its trace");
    traced_request();

    section("A workflow's trace, continued from its database row");
    let started = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";
    for (row, stored) in [
        ("wf-1 (stored at start)", Some(started)),
        ("wf-2 (column is NULL)", None),
        (
            "wf-3 (corrupted)",
            Some("00-4bf92f3577b34da6a3ce929d0e0e4736-0000000000000000-01"),
        ),
    ] {
        match restore(stored) {
            Restored::Parent(parent) => println!("{row:26} continues trace {}", parent.trace_id()),
            Restored::Fresh { reason } => println!("{row:26} starts a fresh trace: {reason}"),
        }
    }

    section("The caller's own trace becomes a link, not the parent");
    let caller = b"00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01";
    let incoming = extract([&caller[..]], [&b"vendor=abc"[..]]);
    let stored = restore(Some(started));
    let choice = ParentPolicy::default().choose(stored.span_context(), incoming.span_context());
    println!(
        "parent: {}  link: {}",
        choice
            .parent
            .map(|p| p.trace_id().to_string())
            .unwrap_or_default(),
        choice
            .link
            .map(|l| l.trace_id().to_string())
            .unwrap_or_default()
    );
    let garbage = extract([&b"00-XYZ"[..]], []);
    println!("a garbage traceparent header: {garbage:?}");

    section("Tenants");
    let acme = TenantId::parse("acme-corp").expect("valid tenant");
    let globex = TenantId::parse("globex").expect("valid tenant");
    println!("{} -> {:?}", semconv::TENANT_ID, acme.as_str());
    println!(
        "'acme corp' -> {}",
        TenantId::parse("acme corp").unwrap_err()
    );
    println!(
        "acme touching a globex workflow -> {}",
        ensure_same_tenant(&acme, &globex).unwrap_err()
    );

    section("Secrets and personal data, masked before export");
    let redactor = Redactor::default();
    for (key, value) in [
        ("db_password", "hunter2"),
        ("X-Api-Key", "sk_live_4eC39HqLyjWDarjtT1zdp7dc"),
        (
            "input_json",
            r#"{"customer":{"email":"bob@example.com","card":"4111 1111 1111 1111"},"qty":2}"#,
        ),
        (
            "error",
            "login failed for bob@example.com: password=hunter2",
        ),
        (
            "http.url",
            "https://admin:s3cret@db.internal/export?token=abc123&page=2",
        ),
        ("workflow.kind", "order-fulfilment"),
    ] {
        println!(
            "{key:14} {value}\n{:14} {}",
            "->",
            redactor.redact_attribute(key, value)
        );
    }
    let sql = "SELECT * FROM users WHERE email = 'bob@example.com' AND pin = 1234";
    println!(
        "{:14} {sql}\n{:14} {}",
        "db.query.text",
        "->",
        sanitize_sql(sql)
    );

    section("Metric labels, capped");
    let names = MetricNames::default();
    let guard = LabelGuard::builder().max_label_sets(100).build();
    let recorder = GuardedRecorder::new(metrics::NoopRecorder, guard, &names);
    let started_total = names.workflows().started;
    metrics::with_local_recorder(&recorder, || {
        for i in 0..10_000 {
            metrics::counter!(started_total.clone(), "tenant_id" => format!("tenant-{i}"))
                .increment(1);
        }
    });
    let guard = recorder.guard();
    println!(
        "10000 tenants -> {} label sets kept, {} measurements in the overflow set, {} entries held",
        guard.label_sets(&started_total),
        guard.overflow_count(&started_total),
        guard.tracked_entries()
    );
    let route = "/sessions/123/items/550e8400-e29b-41d4-a716-446655440000";
    println!(
        "route {route} -> {}, status 503 -> {}",
        normalize_route(route),
        status_group(503)
    );
}
