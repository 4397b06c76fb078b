//! `#[workflow_span]` names its metrics after the process-wide `MetricNames`, as the
//! layers do: one binary of its own, since the names are set once per process.
#![cfg(not(feature = "disabled"))]

use instrument::semconv::MetricNames;
use instrument::workflow_span;
use metrics_util::debugging::DebuggingRecorder;

#[workflow_span(kind = "task", tenant = "acme")]
fn run() -> Result<(), String> {
    Ok(())
}

#[test]
fn the_macros_metrics_follow_the_process_wide_names() {
    MetricNames::new("acme_jobs")
        .unwrap()
        .set_global()
        .expect("first names set in this process");
    let recorder = DebuggingRecorder::new();
    let snapshotter = recorder.snapshotter();
    metrics::with_local_recorder(&recorder, || run().unwrap());
    let mut names: Vec<String> = snapshotter
        .snapshot()
        .into_vec()
        .into_iter()
        .map(|(key, ..)| key.key().name().to_owned())
        .collect();
    names.sort();
    assert_eq!(
        names,
        [
            "acme_jobs_task_duration_seconds",
            "acme_jobs_task_handler_seconds",
            "acme_jobs_tasks_completed_total",
            "acme_jobs_tasks_started_total"
        ]
    );
}
