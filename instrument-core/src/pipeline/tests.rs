//! The pipeline's guarantees, through a real tracing subscriber and the
//! tracing-opentelemetry layer into the SDK.

use opentelemetry::trace::{
    Link, Span as _, SpanContext, Status, Tracer as _, TracerProvider as _,
};
use opentelemetry::{Context, KeyValue};
use opentelemetry_sdk::trace::{
    InMemorySpanExporter, SdkTracerProvider, SimpleSpanProcessor, SpanData,
};
use tracing_opentelemetry::OpenTelemetrySpanExt as _;
use tracing_subscriber::layer::SubscriberExt as _;

use super::*;
use crate::redact::Redactor;
use crate::semconv::{REDACTION_MASKED_COUNT, TENANT_ID, TENANT_MISSING, TENANT_STAMPED};
use crate::tenant::{with_tenant, TenantId};

fn provider(missing: MissingTenant) -> (SdkTracerProvider, InMemorySpanExporter) {
    let exporter = InMemorySpanExporter::default();
    let processor = TenantProcessor::new(
        missing,
        RedactingProcessor::new(
            Redactor::default(),
            SimpleSpanProcessor::new(exporter.clone()),
        ),
    );
    (
        SdkTracerProvider::builder()
            .with_span_processor(processor)
            .build(),
        exporter,
    )
}

/// [`provider`] as `pipeline::build` chains it: the tenant stamped as a span starts,
/// checked and redacted where it is exported ([`TenantExporter`], [`RedactingExporter`]),
/// behind `batch` processing or not.
fn exporting_provider(
    missing: MissingTenant,
    batch: bool,
) -> (SdkTracerProvider, InMemorySpanExporter) {
    let exporter = InMemorySpanExporter::default();
    let export = TenantExporter::new(
        missing,
        RedactingExporter::new(Redactor::default(), exporter.clone()),
    );
    let builder = SdkTracerProvider::builder();
    let provider = if batch {
        let batch = opentelemetry_sdk::trace::BatchSpanProcessor::builder(export).build();
        builder.with_span_processor(TenantProcessor::stamping(batch))
    } else {
        builder.with_span_processor(TenantProcessor::stamping(SimpleSpanProcessor::new(export)))
    };
    (provider.build(), exporter)
}

/// Every chain a span can pass: the processors ([`provider`]), and the exporters
/// ([`exporting_provider`]), exported at once and batched.
fn providers(missing: MissingTenant) -> [(SdkTracerProvider, InMemorySpanExporter); 3] {
    [
        provider(missing),
        exporting_provider(missing, false),
        exporting_provider(missing, true),
    ]
}

/// What `exporter` has, once `provider` flushed.
fn finished(provider: &SdkTracerProvider, exporter: &InMemorySpanExporter) -> Vec<SpanData> {
    provider.force_flush().unwrap();
    exporter.get_finished_spans().unwrap()
}

/// Runs `f` under a subscriber exporting through `provider`.
fn traced(provider: &SdkTracerProvider, f: impl FnOnce()) {
    let layer = tracing_opentelemetry::layer().with_tracer(provider.tracer("test"));
    let subscriber = tracing_subscriber::registry().with(layer);
    tracing::subscriber::with_default(subscriber, f);
}

/// Every value of attribute `key` on `span`, in order.
fn attr(span: &SpanData, key: &str) -> Vec<String> {
    span.attributes
        .iter()
        .filter(|kv| kv.key.as_str() == key)
        .map(|kv| kv.value.as_str().into_owned())
        .collect()
}

fn named<'a>(spans: &'a [SpanData], name: &str) -> &'a SpanData {
    spans
        .iter()
        .find(|s| s.name == name)
        .unwrap_or_else(|| panic!("no span {name}"))
}

fn acme() -> TenantId {
    TenantId::parse("acme").unwrap()
}

#[test]
fn every_span_of_a_request_carries_its_tenant_including_plain_info_spans() {
    for (provider, exporter) in providers(MissingTenant::MarkMissing) {
        traced(&provider, || {
            let request = tracing::info_span!("request");
            let _ = request.set_parent(with_tenant(&Context::new(), acme()));
            let _r = request.enter();
            let child = tracing::info_span!("library.call");
            let _c = child.enter();
            tracing::info_span!("deeper").in_scope(|| {});
        });
        let spans = finished(&provider, &exporter);
        assert_eq!(spans.len(), 3);
        for span in &spans {
            assert_eq!(attr(span, TENANT_ID), ["acme"], "{}", span.name);
            assert!(
                attr(span, TENANT_STAMPED).is_empty(),
                "the marker never leaves"
            );
            assert!(attr(span, TENANT_MISSING).is_empty());
        }
    }
}

#[test]
fn tenant_attached_as_the_current_context_reaches_spans_started_under_it() {
    for (provider, exporter) in providers(MissingTenant::MarkMissing) {
        traced(&provider, || {
            let _guard = with_tenant(&Context::current(), acme()).attach();
            tracing::info_span!("handler")
                .in_scope(|| tracing::info_span!("query").in_scope(|| {}));
        });
        for span in finished(&provider, &exporter) {
            assert_eq!(attr(&span, TENANT_ID), ["acme"], "{}", span.name);
        }
    }
}

#[test]
fn a_span_never_carries_a_tenant_other_than_its_requests() {
    for (provider, exporter) in providers(MissingTenant::MarkMissing) {
        traced(&provider, || {
            let request = tracing::info_span!("request");
            let _ = request.set_parent(with_tenant(&Context::new(), acme()));
            let _r = request.enter();
            let forged = tracing::info_span!(
                "forged",
                "tenant.id" = "globex",
                other = tracing::field::Empty
            );
            forged.record("other", "x");
            forged.set_attribute("tenant.id", "initech");
            forged.in_scope(|| {});
        });
        let spans = finished(&provider, &exporter);
        assert_eq!(attr(named(&spans, "forged"), TENANT_ID), ["acme"]);
    }
}

#[test]
fn spans_without_a_tenant_follow_the_missing_policy() {
    for (policy, exported, marked) in [
        (MissingTenant::Allow, 1, false),
        (MissingTenant::MarkMissing, 1, true),
        (MissingTenant::Drop, 0, false),
    ] {
        for (provider, exporter) in providers(policy) {
            traced(&provider, || {
                tracing::info_span!("background.job").in_scope(|| {})
            });
            let spans = finished(&provider, &exporter);
            assert_eq!(spans.len(), exported, "{policy:?}");
            if let Some(span) = spans.first() {
                assert_eq!(!attr(span, TENANT_MISSING).is_empty(), marked, "{policy:?}");
            }
        }
    }
    // The span's own tenant counts when the context has none.
    for (provider, exporter) in providers(MissingTenant::Drop) {
        traced(&provider, || {
            tracing::info_span!("job", "tenant.id" = "acme").in_scope(|| {})
        });
        assert_eq!(finished(&provider, &exporter).len(), 1);
    }
}

#[test]
fn drops_are_counted() {
    let exporter = InMemorySpanExporter::default();
    let processor = std::sync::Arc::new(TenantProcessor::new(
        MissingTenant::Drop,
        SimpleSpanProcessor::new(exporter.clone()),
    ));
    #[derive(Debug)]
    struct Shared(std::sync::Arc<TenantProcessor<SimpleSpanProcessor<InMemorySpanExporter>>>);
    impl opentelemetry_sdk::trace::SpanProcessor for Shared {
        fn on_start(&self, span: &mut opentelemetry_sdk::trace::Span, cx: &Context) {
            self.0.on_start(span, cx);
        }
        fn on_end(&self, span: SpanData) {
            self.0.on_end(span);
        }
        fn force_flush(&self) -> opentelemetry_sdk::error::OTelSdkResult {
            self.0.force_flush()
        }
        fn shutdown_with_timeout(
            &self,
            t: std::time::Duration,
        ) -> opentelemetry_sdk::error::OTelSdkResult {
            self.0.shutdown_with_timeout(t)
        }
    }
    let provider = SdkTracerProvider::builder()
        .with_span_processor(Shared(processor.clone()))
        .build();
    for _ in 0..3 {
        provider.tracer("t").start("orphan").end();
    }
    assert_eq!(processor.dropped(), 3);
}

#[test]
fn everything_a_span_exports_is_redacted() {
    let (provider, exporter) = provider(MissingTenant::Allow);
    everything_is_redacted(&provider, &exporter);
}

#[test]
fn everything_a_span_exports_is_redacted_where_it_is_exported() {
    for batch in [false, true] {
        let (provider, exporter) = exporting_provider(MissingTenant::Allow, batch);
        everything_is_redacted(&provider, &exporter);
    }
}

/// A span with a secret in every field a caller's value can be in, ended through
/// `provider`, reaches `exporter` with every one masked.
fn everything_is_redacted(provider: &SdkTracerProvider, exporter: &InMemorySpanExporter) {
    let tracer = provider.tracer("t");
    let link_target = SpanContext::new(
        opentelemetry::trace::TraceId::from_bytes([1; 16]),
        opentelemetry::trace::SpanId::from_bytes([2; 8]),
        Default::default(),
        true,
        Default::default(),
    );
    let mut span = tracer
        .span_builder("GET /users/bob@example.com")
        .with_links(vec![Link::new(
            link_target,
            vec![KeyValue::new("note", "token=abc123")],
            0,
        )])
        .start(&tracer);
    span.set_attribute(KeyValue::new("db_password", "hunter2"));
    span.set_attribute(KeyValue::new("pin", 1234));
    span.set_attribute(KeyValue::new(
        "recipients",
        opentelemetry::Value::Array(opentelemetry::Array::String(vec![
            opentelemetry::StringValue::from("a@example.com"),
            opentelemetry::StringValue::from("ok"),
        ])),
    ));
    span.set_attribute(KeyValue::new("workflow.kind", "order"));
    span.add_event(
        "mail to carol@example.com",
        vec![KeyValue::new("card", "4111 1111 1111 1111")],
    );
    span.set_status(Status::error("auth failed: Bearer abcDEF123456"));
    span.end();
    provider.force_flush().unwrap();

    let spans = exporter.get_finished_spans().unwrap();
    assert_eq!(spans.len(), 1);
    let s = &spans[0];
    // Every field a value of the caller's can be in; not the generated ids and
    // timestamps, whose random digits may spell a secret ("1234" in a trace id).
    let events: Vec<_> = s.events.iter().map(|e| (&e.name, &e.attributes)).collect();
    let links: Vec<_> = s.links.iter().map(|l| &l.attributes).collect();
    let exported = format!(
        "{:?} {:?} {events:?} {links:?} {:?}",
        s.name, s.attributes, s.status
    );
    for secret in [
        "bob@example.com",
        "hunter2",
        "1234",
        "a@example.com",
        "carol@example.com",
        "4111 1111 1111 1111",
        "abcDEF123456",
        "abc123",
    ] {
        assert!(!exported.contains(secret), "{secret} leaked: {exported}");
    }
    assert_eq!(s.name, "GET /users/[REDACTED]");
    assert_eq!(attr(s, "workflow.kind"), ["order"]);
    assert_eq!(attr(s, "pin"), ["[REDACTED]"]);
    assert_eq!(
        s.events.events[0].attributes[0].value.as_str(),
        "**** **** **** 1111"
    );
    assert_eq!(s.status, Status::error("auth failed: Bearer [REDACTED]"));
    // name, db_password, pin, recipients[0], event name, event card, link note, status
    assert_eq!(attr(s, REDACTION_MASKED_COUNT), ["8"]);
}

#[test]
fn clean_spans_get_no_masked_count_and_numeric_tenants_are_not_cards() {
    for (provider, exporter) in providers(MissingTenant::Allow) {
        let tenant = TenantId::parse("4111111111111111").unwrap();
        let cx = with_tenant(&Context::new(), tenant);
        provider.tracer("t").start_with_context("clean", &cx).end();
        let spans = finished(&provider, &exporter);
        assert_eq!(attr(&spans[0], TENANT_ID), ["4111111111111111"]);
        assert!(attr(&spans[0], REDACTION_MASKED_COUNT).is_empty());
    }
}

mod assembled {
    //! The pipeline as `build` assembles it.

    use super::*;
    use crate::context::restore;
    use crate::pipeline::{build, ExporterConfig, MemoryExporter, PipelineConfig, SamplerConfig};

    fn memory(config: PipelineConfig) -> (crate::pipeline::Telemetry, MemoryExporter) {
        let spans = MemoryExporter::default();
        let telemetry =
            build(&config.with_exporter(ExporterConfig::Memory(spans.clone()))).unwrap();
        (telemetry, spans)
    }

    #[test]
    fn spans_are_stamped_redacted_batched_and_flushed_on_shutdown() {
        let (telemetry, spans) = memory(PipelineConfig::default());
        let subscriber = tracing_subscriber::registry().with(telemetry.layer());
        tracing::subscriber::with_default(subscriber, || {
            let request = tracing::info_span!("request", user = "bob@example.com");
            let _ = request.set_parent(with_tenant(&Context::new(), acme()));
            request.in_scope(|| tracing::info_span!("child").in_scope(|| {}));
        });
        assert!(spans.spans().is_empty(), "batched, not yet exported");
        let stats = telemetry.shutdown().unwrap();
        assert_eq!((stats.ended, stats.exported, stats.lost()), (2, 2, 0));
        let exported = spans.spans();
        for span in &exported {
            assert_eq!(attr(span, TENANT_ID), ["acme"]);
        }
        assert_eq!(attr(named(&exported, "request"), "user"), ["[REDACTED]"]);
    }

    /// Under `MissingTenant::Drop`, spans without a tenant never take places in the
    /// queue (they are checked at their end, not where they are exported) and never
    /// count as ended or lost.
    #[test]
    fn spans_dropped_for_no_tenant_are_not_counted_as_lost() {
        let config = PipelineConfig::default()
            .with_missing_tenant(MissingTenant::Drop)
            .with_batch(crate::pipeline::BatchConfig {
                max_queue_size: 4,
                max_export_batch_size: 4,
                ..Default::default()
            });
        let (telemetry, spans) = memory(config);
        let provider = telemetry.tracer_provider().unwrap().clone();
        let tracer = provider.tracer("t");
        let tenant = with_tenant(&Context::new(), acme());
        // Twice the queue's room in orphans: each batch's drops give their places back.
        for round in 0..4 {
            for _ in 0..2 {
                tracer.start("orphan").end();
            }
            tracer.start_with_context("request", &tenant).end();
            provider.force_flush().unwrap();
            assert_eq!(spans.spans().len(), round + 1);
        }
        let stats = telemetry.shutdown().unwrap();
        assert_eq!((stats.ended, stats.exported, stats.lost()), (4, 4, 0));
        assert_eq!(stats.queue_full, 0);
        assert!(spans.spans().iter().all(|s| s.name == "request"));
    }

    #[test]
    fn config_errors_surface_as_pipeline_errors_naming_the_variable() {
        let err = PipelineConfig::from_vars([("OTEL_TRACES_SAMPLER", "bogus")])
            .map_err(crate::pipeline::PipelineError::Config)
            .unwrap_err();
        assert!(err.to_string().contains("OTEL_TRACES_SAMPLER"), "{err}");
    }

    #[test]
    fn disabled_sdk_installs_no_provider() {
        let config = PipelineConfig::from_vars([("OTEL_SDK_DISABLED", "true")]).unwrap();
        let telemetry = build(&config).unwrap();
        assert!(telemetry.tracer_provider().is_none());
        assert!(telemetry.layer::<tracing_subscriber::Registry>().is_none());
        assert_eq!(telemetry.shutdown().unwrap().ended, 0);
    }

    #[test]
    fn parent_based_ratio_sampling_is_honoured() {
        let (telemetry, spans) = memory(
            PipelineConfig::default().with_sampler(SamplerConfig::ParentBasedTraceIdRatio(0.0)),
        );
        let subscriber = tracing_subscriber::registry().with(telemetry.layer());
        tracing::subscriber::with_default(subscriber, || {
            tracing::info_span!("unsampled.root").in_scope(|| {});
            let continued = tracing::info_span!("sampled.parent");
            let stored = restore(Some(
                "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
            ));
            let _ = continued.set_parent(stored.to_context());
            continued.in_scope(|| {});
            let dropped = tracing::info_span!("unsampled.parent");
            let _ = dropped.set_parent(
                restore(Some(
                    "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-00",
                ))
                .to_context(),
            );
            dropped.in_scope(|| {});
        });
        telemetry.shutdown().unwrap();
        let names: Vec<String> = spans.spans().iter().map(|s| s.name.to_string()).collect();
        assert_eq!(names, ["sampled.parent"]);
    }

    #[cfg(feature = "otlp")]
    #[test]
    fn otlp_outside_a_runtime_is_an_error_not_a_panic() {
        let config =
            PipelineConfig::from_vars([("OTEL_EXPORTER_OTLP_ENDPOINT", "http://127.0.0.1:4317")])
                .unwrap();
        let err = build(&config).unwrap_err();
        assert!(
            matches!(err, crate::pipeline::PipelineError::NoRuntime),
            "{err}"
        );
    }

    #[cfg(not(feature = "otlp"))]
    #[test]
    fn otlp_without_the_feature_is_an_error() {
        let config =
            PipelineConfig::from_vars([("OTEL_EXPORTER_OTLP_ENDPOINT", "http://127.0.0.1:4317")])
                .unwrap();
        assert!(matches!(
            build(&config),
            Err(crate::pipeline::PipelineError::OtlpDisabled)
        ));
    }
}

mod logs {
    //! JSON logs correlated with the spans they happened in.

    use super::*;
    use crate::pipeline::test_support::SharedBuffer;
    use crate::pipeline::{build, ExporterConfig, JsonLogLayer, MemoryExporter, PipelineConfig};

    fn json(lines: &SharedBuffer) -> Vec<serde_json::Value> {
        lines
            .text()
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect()
    }

    #[test]
    fn events_are_json_with_trace_ids_tenant_and_redacted_fields() {
        let spans = MemoryExporter::default();
        let telemetry =
            build(&PipelineConfig::default().with_exporter(ExporterConfig::Memory(spans.clone())))
                .unwrap();
        let lines = SharedBuffer::default();
        let writer = lines.clone();
        let subscriber =
            tracing_subscriber::registry()
                .with(telemetry.layer())
                .with(JsonLogLayer::new(Redactor::default(), move || {
                    writer.clone()
                }));
        tracing::subscriber::with_default(subscriber, || {
            tracing::info!(step = 1, "outside any span");
            let request = tracing::info_span!("request");
            let _ = request.set_parent(with_tenant(&Context::new(), acme()));
            request.in_scope(|| {
                tracing::info!(
                    user = "bob@example.com",
                    attempts = 3,
                    pin = 1234,
                    "login by {}",
                    "carol@example.com"
                );
                tracing::error!(password = "hunter2", "login failed");
            });
        });
        telemetry.shutdown().unwrap();

        let logged = json(&lines);
        assert_eq!(logged.len(), 3);
        assert_eq!(logged[0]["message"], "outside any span");
        assert!(logged[0].get("trace_id").is_none() && logged[0].get("tenant.id").is_none());
        assert_eq!(logged[0]["fields"]["step"], 1);

        let exported = spans.spans();
        let request = named(&exported, "request");
        let (trace_id, span_id) = (
            request.span_context.trace_id().to_string(),
            request.span_context.span_id().to_string(),
        );
        let info = &logged[1];
        assert_eq!(info["level"], "INFO");
        assert!(info["timestamp"].as_str().unwrap().ends_with('Z'));
        assert!(info["target"].as_str().unwrap().contains("pipeline"));
        assert_eq!(info["message"], "login by [REDACTED]");
        assert_eq!(info["trace_id"], trace_id.as_str());
        assert_eq!(info["span_id"], span_id.as_str());
        assert_eq!(info["tenant.id"], "acme");
        assert_eq!(info["fields"]["user"], "[REDACTED]");
        assert_eq!(info["fields"]["attempts"], 3);
        assert_eq!(info["fields"]["pin"], "[REDACTED]");
        assert_eq!(logged[2]["level"], "ERROR");
        assert_eq!(logged[2]["fields"]["password"], "[REDACTED]");

        // The ERROR event is also a span event, redacted, and fails the span.
        let event = request
            .events
            .events
            .iter()
            .find(|e| e.name == "login failed")
            .expect("span event");
        assert!(!format!("{event:?}").contains("hunter2"));
        assert!(matches!(
            request.status,
            opentelemetry::trace::Status::Error { .. }
        ));
    }
}

/// One span named `name` with `before`, then `marker`, then `after`, exported through
/// a redacting processor with `redactor` or, `at_export`, a redacting exporter.
fn vouched_span(
    at_export: bool,
    redactor: Redactor,
    name: &'static str,
    before: KeyValue,
    marker: impl FnOnce() -> KeyValue,
    after: KeyValue,
) -> SpanData {
    let exporter = InMemorySpanExporter::default();
    let builder = SdkTracerProvider::builder();
    let provider = if at_export {
        builder.with_span_processor(SimpleSpanProcessor::new(RedactingExporter::new(
            redactor,
            exporter.clone(),
        )))
    } else {
        builder.with_span_processor(RedactingProcessor::new(
            redactor,
            SimpleSpanProcessor::new(exporter.clone()),
        ))
    }
    .build();
    let marker = marker();
    let tracer = provider.tracer("test");
    let mut span = tracer
        .span_builder(name)
        .with_attributes([before, marker])
        .start(&tracer);
    span.set_attribute(after);
    span.end();
    exporter
        .get_finished_spans()
        .unwrap()
        .pop()
        .expect("one span")
}

#[test]
fn what_its_own_redactor_vouched_for_is_not_scanned_again_and_the_marker_goes() {
    for at_export in [false, true] {
        let redactor = Redactor::default();
        // The e-mails stand for values the instrumentation let through on purpose (a
        // route's names, redacted once); before the marker they are kept, after it
        // masked.
        let span = vouched_span(
            at_export,
            redactor.clone(),
            "bob@example.com",
            KeyValue::new("kept", "bob@example.com"),
            || redactor.vouch().unwrap(),
            KeyValue::new("later", "bob@example.com"),
        );
        assert_eq!(span.name, "bob@example.com");
        assert_eq!(attr(&span, "kept"), ["bob@example.com"]);
        assert_eq!(attr(&span, "later"), ["[REDACTED]"]);
        assert!(attr(&span, crate::semconv::REDACTED_BY).is_empty());
    }
}

#[test]
fn another_redactors_marker_vouches_for_nothing() {
    for at_export in [false, true] {
        let span = vouched_span(
            at_export,
            Redactor::default(),
            "bob@example.com",
            KeyValue::new("kept", "bob@example.com"),
            || {
                let other = Redactor::default();
                other.read_vouches();
                other.vouch().unwrap()
            },
            KeyValue::new("later", "bob@example.com"),
        );
        assert_eq!(span.name, "[REDACTED]");
        assert_eq!(attr(&span, "kept"), ["[REDACTED]"]);
        assert_eq!(attr(&span, "later"), ["[REDACTED]"]);
        assert!(attr(&span, crate::semconv::REDACTED_BY).is_empty());
    }
}
