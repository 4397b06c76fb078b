//! The seeds' metric names end to end: `MetricNames::prefixed` set once for the
//! process, and `#[workflow_span]` and `InstrumentLayer` alike name their metrics after
//! it, in a `/metrics` exposition that promtool accepts. One binary of its own, since the
//! names are set once per process.
#![cfg(not(feature = "disabled"))]

#[path = "support/promtool.rs"]
mod promtool;

use std::convert::Infallible;

use http::{Request, Response};
use instrument::cardinality::LabelGuard;
use instrument::pipeline::prometheus_recorder;
use instrument::semconv::MetricNames;
use instrument::tower::stack::InstrumentLayer;
use instrument::workflow_span;
use tower::{ServiceBuilder, ServiceExt as _};

#[workflow_span(kind = "task", tenant = "acme", labels(task_type = "charge"))]
fn run() -> Result<(), String> {
    Ok(())
}

/// A kind of the application's own: its families are described when first used.
#[workflow_span(kind = "order", tenant = "acme")]
fn ship() -> Result<(), String> {
    Ok(())
}

#[test]
fn the_seeds_names_are_used_by_the_macro_and_the_layers_alike() {
    let names = MetricNames::prefixed("acme_jobs").unwrap();
    names
        .clone()
        .set_global()
        .expect("first names set in this process");
    let (recorder, handle) = prometheus_recorder(LabelGuard::default(), &names).unwrap();
    let runtime = tokio::runtime::Builder::new_current_thread()
        .build()
        .unwrap();
    metrics::with_local_recorder(&recorder, || {
        run().unwrap();
        ship().unwrap();
        runtime.block_on(async {
            // Built after the names were set: the layer reads them.
            let service = ServiceBuilder::new()
                .layer(InstrumentLayer::builder().build())
                .service_fn(|_: Request<()>| async {
                    Ok::<_, Infallible>(Response::new(String::new()))
                });
            let request = Request::post("/jobs")
                .header("x-tenant-id", "acme")
                .body(())
                .unwrap();
            let response = service.oneshot(request).await.unwrap();
            drop(response);
        });
    });
    let exposition = handle.render();
    for line in [
        r#"acme_jobs_tasks_started_total{tenant_id="acme",name="task.run",task_type="charge"} 1"#,
        r#"acme_jobs_tasks_completed_total{tenant_id="acme",name="task.run",task_type="charge"} 1"#,
        r#"acme_jobs_requests_total{method="POST",route="_OTHER",tenant_id="acme",status="2xx"} 1"#,
        r#"acme_jobs_request_duration_seconds_count{method="POST",route="_OTHER",tenant_id="acme",status="2xx"} 1"#,
    ] {
        assert!(exposition.contains(line), "{line} not in\n{exposition}");
    }
    assert!(exposition.contains("acme_jobs_task_handler_seconds_bucket{"));
    for family in [
        "acme_jobs_orders_started_total",
        "acme_jobs_orders_completed_total",
        "acme_jobs_order_duration_seconds",
        "acme_jobs_order_handler_seconds",
    ] {
        assert!(
            exposition.contains(&format!("# HELP {family} ")),
            "{family} has no HELP in\n{exposition}"
        );
    }
    assert!(exposition.contains("acme_jobs_requests_in_flight{"));
    // Nothing under the conventions' names in the seeds' scheme.
    assert!(!exposition.contains("http_server_request_duration_seconds"));
    promtool::check_metrics(&exposition);
}
