use std::time::{Duration, SystemTime};

use opentelemetry::trace::SpanKind;
use opentelemetry::Value;
use proptest::prelude::*;

use super::*;

const ID: &str = "00f067aa0ba902b7";

fn span(start_ago: u64, end_ago: u64) -> (ExecutionSpan, SystemTime) {
    let now = SystemTime::now();
    let span = ExecutionSpan::new(
        ID,
        SPAN_TASK_EXECUTE,
        "wf-1",
        now - Duration::from_secs(start_ago),
        now - Duration::from_secs(end_ago),
    );
    (span, now)
}

fn value<'a>(checked: &'a CheckedSpan, key: &str) -> Option<&'a Value> {
    checked
        .attributes
        .iter()
        .find(|kv| kv.key.as_str() == key)
        .map(|kv| &kv.value)
}

#[test]
fn ids_must_be_sixteen_lower_case_hex_digits_and_not_zero() {
    let rules = ReportRules::default();
    for bad in [
        "",
        "00f067aa0ba902b",
        "00F067AA0BA902B7",
        "0000000000000000",
        "00f067aa0ba902bz",
        "+0f067aa0ba902b7",
    ] {
        let (mut s, now) = span(2, 1);
        s.span_id = bad.to_owned();
        assert_eq!(
            rules.check(&s, now, None),
            Err(Refusal::MalformedId),
            "{bad:?}"
        );
        let (mut s, now) = span(2, 1);
        if !bad.is_empty() {
            s.parent_span_id = bad.to_owned();
            assert_eq!(
                rules.check(&s, now, None),
                Err(Refusal::MalformedId),
                "{bad:?}"
            );
        }
    }
    let (mut s, now) = span(2, 1);
    s.parent_span_id = ID.to_owned();
    assert_eq!(
        rules.check(&s, now, None),
        Err(Refusal::MalformedId),
        "its own parent"
    );
    s.parent_span_id = "b7ad6b7169203331".to_owned();
    let checked = rules.check(&s, now, None).unwrap();
    assert_eq!(
        checked.parent_span_id.map(|p| p.to_string()).as_deref(),
        Some("b7ad6b7169203331")
    );
    assert_eq!(checked.span_id.to_string(), ID);
}

#[test]
fn timestamps_are_checked_against_now_the_skew_and_the_workflow() {
    let rules = ReportRules::default();
    let (s, now) = span(1, 2);
    assert_eq!(rules.check(&s, now, None), Err(Refusal::EndBeforeStart));
    let (mut s, now) = span(0, 0);
    s.end = now + Duration::from_secs(365 * 24 * 3600);
    assert_eq!(rules.check(&s, now, None), Err(Refusal::InTheFuture));
    s.end = now + Duration::from_secs(30);
    assert!(rules.check(&s, now, None).is_ok(), "within the skew");
    let (mut s, now) = span(0, 0);
    s.start = SystemTime::UNIX_EPOCH;
    assert_eq!(rules.check(&s, now, None), Err(Refusal::BeforeWorkflow));
    let (s, now) = span(600, 1);
    let workflow = now - Duration::from_secs(300);
    assert_eq!(
        rules.check(&s, now, Some(workflow)),
        Err(Refusal::BeforeWorkflow)
    );
    let (s, now) = span(330, 1);
    assert!(
        rules.check(&s, now, Some(workflow)).is_ok(),
        "within the skew"
    );
}

#[test]
fn types_and_keys_off_the_lists_are_refused_or_left_out_and_values_are_redacted() {
    let rules = ReportRules::default();
    let (mut s, now) = span(2, 1);
    s.span_type = "db.dump".to_owned();
    assert_eq!(rules.check(&s, now, None), Err(Refusal::UnknownType));

    let (mut s, now) = span(2, 1);
    s.task_id = "task-1".to_owned();
    s.attributes = vec![
        ("task.type".into(), "charge".into()),
        ("execution_count".into(), "3".into()),
        (
            "url.full".into(),
            "https://api/x?api_key=sk_live_abcdef1234567890".into(),
        ),
        ("user.email".into(), "bob@example.com".into()),
        ("workflow.id".into(), "wf-other".into()),
        ("server.address".into(), "x".repeat(10 << 20)),
    ];
    s.error = Some(format!("card 4111 1111 1111 1111 {}", "e".repeat(10 << 20)));
    let checked = rules.check(&s, now, None).unwrap();
    assert_eq!(value(&checked, "workflow.id"), Some(&Value::from("wf-1")));
    assert_eq!(value(&checked, "task.id"), Some(&Value::from("task-1")));
    assert_eq!(value(&checked, "execution_count"), Some(&Value::I64(3)));
    let url = value(&checked, "url.full").unwrap().as_str();
    assert!(!url.contains("sk_live_abcdef1234567890"), "{url}");
    assert_eq!(
        checked.dropped,
        ["user.email", "workflow.id", "server.address"]
    );
    let error = checked.error.unwrap();
    assert!(error.len() <= 1024);
    assert!(!error.contains("4111 1111 1111 1111"), "{error}");
}

#[test]
fn client_spans_keep_a_name_of_their_shape_only() {
    let rules = ReportRules::default();
    let (mut s, now) = span(2, 1);
    s.span_type = SPAN_HTTP_CLIENT.to_owned();
    s.name = "GET".to_owned();
    let checked = rules.check(&s, now, None).unwrap();
    assert_eq!(
        (checked.name.as_str(), checked.kind),
        ("GET", SpanKind::Client)
    );
    s.name = "GET /users/bob@example.com".to_owned();
    assert_eq!(rules.check(&s, now, None).unwrap().name, "HTTP");
    s.span_type = SPAN_RPC_CLIENT.to_owned();
    s.name = "acme.v1.Billing/Charge".to_owned();
    assert_eq!(
        rules.check(&s, now, None).unwrap().name,
        "acme.v1.Billing/Charge"
    );
    s.name = "nonsense".to_owned();
    assert_eq!(rules.check(&s, now, None).unwrap().name, "_OTHER");
}

#[test]
fn the_lists_are_configurable_and_sdk_fields_are_cut() {
    let rules = ReportRules::default()
        .span_types(["custom.step"])
        .attribute_keys(["step.name"]);
    let (mut s, now) = span(2, 1);
    assert_eq!(rules.check(&s, now, None), Err(Refusal::UnknownType));
    s.span_type = "custom.step".to_owned();
    s.attributes = vec![
        ("step.name".into(), "one".into()),
        ("task.type".into(), "x".into()),
    ];
    let checked = rules.check(&s, now, None).unwrap();
    assert_eq!(checked.dropped, ["task.type"]);
    let sdk = SdkInfo {
        language: "rust".into(),
        version: "9".repeat(5000),
        os: String::new(),
        arch: "x86_64".into(),
    };
    let attributes = rules.sdk_attributes(&sdk);
    assert_eq!(attributes.len(), 3);
    assert!(attributes.iter().all(|kv| kv.value.as_str().len() <= 64));
}

proptest! {
    /// Any span, however garbled, is refused or accepted without a panic; an accepted
    /// one carries only allowed keys, its own workflow id, and values within the limits.
    #[test]
    fn any_report_is_judged_without_panicking(
        id in "[0-9a-fA-F]{0,17}",
        parent in "[0-9a-f]{0,16}",
        kind in prop::sample::select(vec!["task.execute", "http.client", "rpc.client", "x", ""]),
        name in ".{0,40}",
        start in 0u64..4_000_000_000,
        length in 0u64..100_000,
        attributes in prop::collection::vec(("[a-z._]{0,20}", ".{0,300}"), 0..8),
        error in prop::option::of(".{0,2000}"),
    ) {
        let rules = ReportRules::default();
        let start = SystemTime::UNIX_EPOCH + Duration::from_secs(start);
        let mut s = ExecutionSpan::new(&id, kind, "wf-1", start, start + Duration::from_secs(length));
        s.parent_span_id = parent;
        s.name = name;
        s.attributes = attributes;
        s.error = error;
        if let Ok(checked) = rules.check(&s, SystemTime::now(), None) {
            for kv in &checked.attributes {
                let key = kv.key.as_str();
                prop_assert!(key == "workflow.id" || DEFAULT_ATTRIBUTE_KEYS.contains(&key), "{key}");
                prop_assert!(kv.value.as_str().len() <= rules.max_value);
            }
            prop_assert!(checked.error.map_or(0, |e| e.len()) <= 1024);
        }
    }
}
