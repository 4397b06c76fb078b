//! The worker protocol from a second language: `docs/worker/worker.py` (Python and
//! grpcio only, messages encoded by hand as `docs/worker-protocol.md` describes) polls
//! the example workflow server and reports its spans through `ReportExecutionSpans`;
//! the spans reach an OTLP receiver started here, in the workflow's trace.
//!
//! Needs a Python with `grpc` (Debian's `python3-grpcio`; `INSTRUMENT_PYTHON` names
//! the interpreter). Without one the test says so and passes, unless
//! `INSTRUMENT_REQUIRE_PYTHON_GRPC` is set, as in CI.

#[path = "../../tests/support/otlp.rs"]
mod otlp;

use std::process::Command;

use instrument_examples::workflow;
use otlp::{attribute, flush_and_collect, pipeline_to, start_receiver};

/// The first interpreter that has `grpc`.
fn python() -> Option<String> {
    let candidates = std::env::var("INSTRUMENT_PYTHON")
        .into_iter()
        .chain(["python3".to_owned(), "/usr/bin/python3".to_owned()]);
    candidates.into_iter().find(|python| {
        Command::new(python)
            .args(["-c", "import grpc"])
            .output()
            .is_ok_and(|out| out.status.success())
    })
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_python_worker_reports_its_spans_into_the_workflows_trace() {
    let Some(python) = python() else {
        assert!(
            std::env::var_os("INSTRUMENT_REQUIRE_PYTHON_GRPC").is_none(),
            "no python3 with grpc (apt-get install python3-grpcio)"
        );
        eprintln!("skipped: no python3 with grpc (apt-get install python3-grpcio)");
        return;
    };
    let receiver = start_receiver().await;
    let telemetry = pipeline_to(&receiver, "python-worker-test");
    let server = workflow::Local::start("python-worker").await.unwrap();
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/../docs/worker/worker.py");
    let addr = server.addr.to_string();
    let out = tokio::task::spawn_blocking(move || {
        Command::new(python)
            .args([
                script, &addr, "--tenant", "acme", "--queue", "py", "--start",
            ])
            .output()
            .unwrap()
    })
    .await
    .unwrap();
    assert!(
        out.status.success(),
        "worker.py failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let answer: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    server.stop().await.unwrap();

    // Two spans accepted, the card attribute dropped and named, the bad id refused.
    assert_eq!(answer["accepted"], 2, "{answer}");
    let results = answer["results"].as_array().unwrap();
    assert_eq!(results[0]["accepted"], true);
    assert_eq!(
        results[1]["dropped_attributes"],
        serde_json::json!(["card"])
    );
    assert_eq!(results[2]["refusal"], "malformed_id");

    let spans = flush_and_collect(telemetry, receiver).await;
    let trace = answer["trace_id"].as_str().unwrap();
    let ids: Vec<&str> = answer["span_ids"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_str().unwrap())
        .collect();
    let reported: Vec<_> = spans
        .iter()
        .filter(|s| attribute(s, "sdk.language").as_deref() == Some("python"))
        .collect();
    assert_eq!(reported.len(), 2, "{reported:?}");
    for span in &reported {
        assert_eq!(hex(&span.trace_id), trace, "in the workflow's trace");
        assert_eq!(attribute(span, "tenant.id").as_deref(), Some("acme"));
    }
    let execute = reported
        .iter()
        .find(|s| s.name == "workflow.execute")
        .unwrap();
    let task = reported.iter().find(|s| s.name == "task.execute").unwrap();
    assert_eq!(
        hex(&execute.span_id),
        ids[0],
        "the worker's span ids are kept"
    );
    assert_eq!(hex(&task.span_id), ids[1]);
    assert_eq!(task.parent_span_id, execute.span_id);
    assert_eq!(attribute(task, "task.type").as_deref(), Some("quote"));
    assert!(!format!("{spans:?}").contains("4111 1111"));
}
