use std::future::{ready, Ready};
use std::time::{Duration, SystemTime};

use instrument_core::pipeline::{MissingTenant, PresetIdGenerator, TenantProcessor};
use instrument_core::report::{ExecutionSpan, Refusal, SdkInfo, SpanVerdict};
use instrument_core::semconv::*;
use instrument_core::tenant::TenantId;
use metrics_util::debugging::DebuggingRecorder;
use opentelemetry::trace::{SpanKind, Status, TracerProvider as _};
use opentelemetry_sdk::trace::{InMemorySpanExporter, SdkTracerProvider, SimpleSpanProcessor};

use super::SpanProxy;
use crate::source::{SourceError, StoredTrace, TraceSource};
use crate::test_support::*;

/// `wf-acme` (acme, TP, started a minute ago), `wf-bare` (acme, no traceparent),
/// `wf-globex` (globex), `wf-down` (the database fails).
struct Store;

impl TraceSource for Store {
    type Lookup = Ready<Result<Option<StoredTrace>, SourceError>>;

    fn lookup(&self, key: &str) -> Self::Lookup {
        let tenant = |t: &str| TenantId::parse(t).unwrap();
        let minute_ago = SystemTime::now() - Duration::from_secs(60);
        ready(match key {
            "wf-acme" => Ok(Some(
                StoredTrace::new(tenant("acme"), Some(TP)).started_at(minute_ago),
            )),
            "wf-bare" => Ok(Some(StoredTrace::new(tenant("acme"), None))),
            "wf-globex" => Ok(Some(StoredTrace::new(tenant("globex"), Some(TP_CALLER)))),
            "wf-down" => Err("database down".into()),
            _ => Ok(None),
        })
    }
}

fn proxy() -> (SpanProxy<Store>, InMemorySpanExporter, SdkTracerProvider) {
    let exporter = InMemorySpanExporter::default();
    let provider = SdkTracerProvider::builder()
        .with_id_generator(PresetIdGenerator::default())
        .with_span_processor(TenantProcessor::new(
            MissingTenant::MarkMissing,
            SimpleSpanProcessor::new(exporter.clone()),
        ))
        .build();
    let proxy = SpanProxy::new(Store).tracer(provider.tracer("proxy"));
    (proxy, exporter, provider)
}

fn reported(id: u64, workflow: &str) -> ExecutionSpan {
    let now = SystemTime::now();
    ExecutionSpan::new(
        &format!("{id:016x}"),
        SPAN_TASK_EXECUTE,
        workflow,
        now - Duration::from_secs(2),
        now - Duration::from_secs(1),
    )
}

fn acme() -> TenantId {
    TenantId::parse("acme").unwrap()
}

const ACCEPTED: SpanVerdict = SpanVerdict::Accepted {
    dropped: Vec::new(),
};

#[tokio::test]
async fn a_reported_span_joins_its_workflows_trace_with_its_own_id_and_the_tenant() {
    let (proxy, exporter, _p) = proxy();
    let mut task = reported(0xa1, "wf-acme");
    task.attributes = vec![
        ("task.type".into(), "charge".into()),
        (
            "url.full".into(),
            "https://api/x?token=sk_live_abcdef1234567890".into(),
        ),
        ("customer.ssn".into(), "123-45-6789".into()),
    ];
    task.error = Some(format!("declined {}", "x".repeat(5000)));
    let mut call = reported(0xa2, "wf-acme");
    call.parent_span_id = format!("{:016x}", 0xa1);
    call.span_type = SPAN_HTTP_CLIENT.into();
    call.name = "POST".into();
    let sdk = SdkInfo::rust("1.2.3");
    let verdicts = proxy.report(&acme(), &sdk, &[task, call]).await;
    assert_eq!(
        verdicts,
        [
            SpanVerdict::Accepted {
                dropped: vec!["customer.ssn".into()]
            },
            ACCEPTED
        ]
    );
    let spans = spans(&exporter);
    let task = spans.iter().find(|s| s.name == SPAN_TASK_EXECUTE).unwrap();
    let call = spans.iter().find(|s| s.name == "POST").unwrap();
    assert_eq!(task.span_context.span_id().to_string(), "00000000000000a1");
    assert_eq!(
        task.span_context.trace_id().to_string(),
        "4bf92f3577b34da6a3ce929d0e0e4736"
    );
    assert_eq!(task.parent_span_id.to_string(), "00f067aa0ba902b7");
    assert_eq!(call.parent_span_id, task.span_context.span_id());
    assert_eq!(call.span_context.trace_id(), task.span_context.trace_id());
    assert_eq!(call.span_kind, SpanKind::Client);
    for span in [task, call] {
        assert_eq!(attr_str(span, TENANT_ID).as_deref(), Some("acme"));
        assert_eq!(attr_str(span, SDK_LANGUAGE).as_deref(), Some("rust"));
        assert_eq!(attr_str(span, SDK_VERSION).as_deref(), Some("1.2.3"));
        assert_eq!(attr_str(span, WORKFLOW_ID).as_deref(), Some("wf-acme"));
    }
    assert!(!attr_str(task, URL_FULL)
        .unwrap()
        .contains("sk_live_abcdef1234567890"));
    let Status::Error { description } = &task.status else {
        panic!("{:?}", task.status)
    };
    assert!(description.len() <= 1024);
    assert!(attr(task, REPORTED_DROPPED_ATTRIBUTES).is_some());
    assert_eq!(task.start_time, SystemTime::now().min(task.start_time));
}

/// A retried report records nothing twice: the spans it recorded are accepted again,
/// the new ones recorded; the same span id of another workflow is another span.
#[tokio::test]
async fn a_report_sent_again_records_each_span_once() {
    let (proxy, exporter, _p) = proxy();
    let sdk = SdkInfo::rust("1.2.3");
    let first = [reported(0xb1, "wf-acme"), reported(0xb2, "wf-acme")];
    assert_eq!(
        proxy.report(&acme(), &sdk, &first).await,
        [ACCEPTED, ACCEPTED]
    );
    // The retry, with one span the first attempt did not carry.
    let retry = [
        reported(0xb1, "wf-acme"),
        reported(0xb2, "wf-acme"),
        reported(0xb3, "wf-acme"),
    ];
    assert_eq!(
        proxy.report(&acme(), &sdk, &retry).await,
        [ACCEPTED, ACCEPTED, ACCEPTED]
    );
    // A clone of the proxy (one per connection) remembers the same spans.
    let again = proxy.clone();
    assert_eq!(
        again.report(&acme(), &sdk, &first).await,
        [ACCEPTED, ACCEPTED]
    );
    assert_eq!(
        again
            .report(&acme(), &sdk, &[reported(0xb1, "wf-bare")])
            .await,
        [ACCEPTED]
    );
    let mut ids: Vec<String> = spans(&exporter)
        .iter()
        .map(|s| s.span_context.span_id().to_string())
        .collect();
    ids.sort();
    assert_eq!(
        ids,
        [
            "00000000000000b1",
            "00000000000000b1",
            "00000000000000b2",
            "00000000000000b3"
        ],
        "each once per workflow"
    );
}

#[test]
fn refusals_are_per_span_and_counted_by_reason() {
    let recorder = DebuggingRecorder::new();
    let (proxy, exporter, _p) = proxy();
    run(&recorder, async {
        let mut spans: Vec<ExecutionSpan> = (1..=101).map(|i| reported(i, "wf-acme")).collect();
        let verdicts = proxy.report(&acme(), &SdkInfo::default(), &spans).await;
        assert_eq!(verdicts.iter().filter(|v| **v == ACCEPTED).count(), 100);
        assert_eq!(verdicts[100], SpanVerdict::Refused(Refusal::TooManySpans));

        spans.truncate(6);
        spans[0].workflow_id = "wf-globex".into();
        spans[1].workflow_id = "wf-nope".into();
        spans[2].workflow_id = "wf-down".into();
        spans[3].span_type = "shell.exec".into();
        spans[4].start = SystemTime::UNIX_EPOCH;
        spans[5].span_id = spans[3].span_id.clone();
        spans[3].span_type = SPAN_TASK_EXECUTE.into();
        let verdicts = proxy.report(&acme(), &SdkInfo::default(), &spans).await;
        assert_eq!(
            verdicts,
            [
                SpanVerdict::Refused(Refusal::OtherTenant),
                SpanVerdict::Refused(Refusal::UnknownWorkflow),
                SpanVerdict::Refused(Refusal::LookupFailed),
                ACCEPTED,
                SpanVerdict::Refused(Refusal::BeforeWorkflow),
                SpanVerdict::Refused(Refusal::DuplicateId),
            ]
        );
    });
    assert!(spans(&exporter)
        .iter()
        .all(|s| s.span_context.trace_id().to_string() == "4bf92f3577b34da6a3ce929d0e0e4736"));
    let metrics = snapshot(&recorder);
    // The second report's accepted span was the first report's fourth: accepted
    // again, not recorded or counted twice.
    assert_eq!(
        metrics["instrument_reported_spans_accepted_total{tenant_id=acme}"],
        "100"
    );
    for (reason, n) in [
        ("too_many_spans", "1"),
        ("other_tenant", "1"),
        ("unknown_workflow", "1"),
        ("lookup_failed", "1"),
        ("before_workflow", "1"),
        ("duplicate_id", "1"),
    ] {
        let key =
            format!("instrument_reported_spans_refused_total{{reason={reason},tenant_id=acme}}");
        assert_eq!(
            metrics.get(&key).map(String::as_str),
            Some(n),
            "{key}: {metrics:#?}"
        );
    }
}

#[tokio::test]
async fn a_workflow_without_a_stored_trace_gets_one_fresh_trace_for_its_spans() {
    let (proxy, exporter, _p) = proxy();
    let first = reported(0xb1, "wf-bare");
    let mut second = reported(0xb2, "wf-bare");
    second.parent_span_id = first.span_id.clone();
    let verdicts = proxy
        .report(&acme(), &SdkInfo::default(), &[first, second])
        .await;
    assert_eq!(verdicts, [ACCEPTED, ACCEPTED]);
    let spans = spans(&exporter);
    assert_eq!(
        spans[0].span_context.trace_id(),
        spans[1].span_context.trace_id()
    );
    assert_ne!(
        spans[0].span_context.trace_id().to_string(),
        "4bf92f3577b34da6a3ce929d0e0e4736"
    );
    let root = spans
        .iter()
        .find(|s| s.span_context.span_id().to_string() == "00000000000000b1")
        .unwrap();
    assert_eq!(root.parent_span_id, opentelemetry::trace::SpanId::INVALID);
}
