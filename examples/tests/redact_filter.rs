//! The `redact` example: a JSON-lines filter, checked line by line and end to end.

use std::io::Write;
use std::process::{Command, Stdio};

use instrument_examples::redact_filter as filter;

use instrument::redact::Redactor;
use serde_json::{json, Value};

fn one(line: &str) -> Result<Value, String> {
    filter::process(&Redactor::default(), line.as_bytes())
}

#[test]
fn each_kind_is_sanitised() {
    assert_eq!(
        one(r#"{"kind":"attribute","key":"db_password","value":"hunter2"}"#),
        Ok(json!("[REDACTED]"))
    );
    assert_eq!(
        one(r#"{"kind":"log_field","key":"m","value":"to bob@example.com"}"#),
        Ok(json!("to [REDACTED]"))
    );
    assert_eq!(
        one(r#"{"kind":"header","key":"X-Api-Key","value":"abc"}"#),
        Ok(json!("[REDACTED]"))
    );
    assert_eq!(
        one(r#"{"kind":"json_body","value":"{\"secret\":\"s\"}"}"#),
        Ok(json!("{\"secret\":\"[REDACTED]\"}"))
    );
    assert_eq!(
        one(r#"{"kind":"json_body","value":{"secret":"s"}}"#),
        Ok(json!({"secret": "[REDACTED]"}))
    );
    assert_eq!(
        one(r#"{"kind":"url","value":"https://a:b@h/?token=t"}"#),
        Ok(json!("https://[REDACTED]@h/?token=[REDACTED]"))
    );
    assert_eq!(
        one(r#"{"kind":"sql","value":"SELECT 1 FROM t WHERE a = 'x'"}"#),
        Ok(json!("SELECT ? FROM t WHERE a = ?"))
    );
    assert_eq!(
        one(r#"{"kind":"url","key":null,"value":"/x"}"#),
        Ok(json!("/x"))
    );
}

#[test]
fn malformed_lines_are_errors_that_do_not_echo_input() {
    for line in [
        "not json",
        "",
        r#"["kind"]"#,
        r#"{"kind":"attribute","value":"hunter2"}"#,
        r#"{"kind":"attribute","key":"k"}"#,
        r#"{"kind":"bogus","key":"k","value":"hunter2"}"#,
        r#"{"kind":7,"key":"k","value":"hunter2"}"#,
        r#"{"kind":"attribute","key":"k","value":"\q hunter2"}"#,
    ] {
        let err = one(line).unwrap_err();
        assert!(!err.contains("hunter2"), "{line}: {err}");
    }
    assert!(filter::process(&Redactor::default(), b"\xff\xfe").is_err());
}

#[test]
fn the_filter_answers_every_line_in_order_and_exits_zero() {
    // `cargo test` builds examples next to the test binaries' directory.
    let exe = std::env::current_exe().unwrap();
    let bin = exe
        .parent()
        .unwrap()
        .parent()
        .unwrap()
        .join("examples")
        .join(format!("redact{}", std::env::consts::EXE_SUFFIX));
    assert!(bin.exists(), "build the example first: {}", bin.display());
    let mut child = Command::new(bin)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let input = [
        r#"{"kind":"attribute","key":"password","value":"p"}"#,
        "garbage",
        r#"{"kind":"attribute","key":"k","value":"fine"}"#,
    ]
    .join("\n");
    child
        .stdin
        .take()
        .unwrap()
        .write_all(input.as_bytes())
        .unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(out.status.success());
    let lines: Vec<Value> = String::from_utf8(out.stdout)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(lines.len(), 3);
    assert_eq!(lines[0], json!({"value": "[REDACTED]"}));
    assert_eq!(lines[1]["value"], "[REDACTED]");
    assert!(lines[1]["error"].is_string());
    assert_eq!(lines[2], json!({"value": "fine"}));
}

/// The project's corpus of realistic telemetry values (`data/redaction_corpus.jsonl`,
/// one `{"kind", "key", "value", "leaks"}` per line): every secret case must lose each
/// of its `leaks`, every clean case (`"leaks": null`) must come back unchanged. Cases
/// span span attributes, log lines, URLs, JSON and SQL bodies and headers.
#[test]
fn the_corpus_loses_every_secret_and_keeps_every_clean_value() {
    let redactor = Redactor::default();
    let corpus = include_str!("data/redaction_corpus.jsonl");
    let (mut secrets, mut clean) = (0, 0);
    let mut failures = Vec::new();
    for line in corpus.lines().filter(|l| !l.trim().is_empty()) {
        let case: Value = serde_json::from_str(line).unwrap();
        let input = json!({ "kind": case["kind"], "key": case["key"], "value": case["value"] });
        let out = filter::process(&redactor, input.to_string().as_bytes()).unwrap();
        let out = out.as_str().unwrap();
        match case["leaks"].as_array() {
            Some(leaks) => {
                secrets += 1;
                for leak in leaks {
                    let leak = leak.as_str().unwrap();
                    if out.contains(leak) {
                        failures.push(format!("leaked {leak:?}: {out:?}"));
                    }
                }
            }
            None => {
                clean += 1;
                if out != case["value"] {
                    failures.push(format!("changed {:?} to {out:?}", case["value"]));
                }
            }
        }
    }
    assert!(
        secrets > 200 && clean > 450,
        "{secrets} secret, {clean} clean cases"
    );
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}
