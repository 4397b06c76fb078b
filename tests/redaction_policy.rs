//! One redaction policy for the whole process: what `pipeline::build_with_policy`
//! installs is what the tower layers record headers through, unless a layer is given a
//! redactor of its own. (A file of its own: the process-wide redactor is set once.)

use std::convert::Infallible;

use http::{Request, Response};
use instrument::cardinality::LabelGuard;
use instrument::pipeline::{build_with_policy, ExporterConfig, MemoryExporter, PipelineConfig};
use instrument::redact::{RedactionPolicy, Redactor};
use instrument::tower::stack::InstrumentLayer;
use tower::{ServiceBuilder, ServiceExt as _};

#[tokio::test]
async fn recorded_headers_and_labels_follow_the_pipelines_policy_unless_given_their_own() {
    let early_guard = LabelGuard::default();
    let spans = MemoryExporter::default();
    // The default policy masks e-mail addresses; this one lets the on-call address through.
    let policy = RedactionPolicy::default().allow_value("oncall@example.com");
    let telemetry = build_with_policy(
        &PipelineConfig::default().with_exporter(ExporterConfig::Memory(spans.clone())),
        &policy,
    )
    .unwrap();
    let tracer = telemetry.tracer().unwrap();

    for (route, own) in [("/pipeline", None), ("/own", Some(Redactor::default()))] {
        let mut layer = InstrumentLayer::builder()
            .tracer(tracer.clone())
            .record_headers([http::HeaderName::from_static("x-contact")]);
        if let Some(redactor) = own {
            layer = layer.redactor(redactor);
        }
        let service =
            ServiceBuilder::new()
                .layer(layer.build())
                .service_fn(|_: Request<()>| async {
                    Ok::<_, Infallible>(Response::new(String::new()))
                });
        let request = Request::get(route)
            .header("x-tenant-id", "acme")
            .header("x-contact", "oncall@example.com")
            .body(())
            .unwrap();
        let response = service.oneshot(request).await.unwrap();
        drop(response);
    }
    telemetry.shutdown().unwrap();

    let contact = |route: &str| {
        let spans = spans.spans();
        let span = spans
            .iter()
            .find(|span| {
                span.attributes
                    .iter()
                    .any(|kv| kv.key.as_str() == "url.path" && kv.value.as_str() == route)
            })
            .unwrap_or_else(|| panic!("no span for {route}"));
        span.attributes
            .iter()
            .find(|kv| kv.key.as_str() == "http.request.header.x-contact")
            .map(|kv| kv.value.to_string())
    };
    assert_eq!(
        contact("/pipeline").as_deref(),
        Some(r#"["oncall@example.com"]"#)
    );
    assert_eq!(contact("/own").as_deref(), Some(r#"["[REDACTED]"]"#));

    // Metric labels too: a guard made with the defaults, even before the policy was
    // installed, redacts through the process-wide redactor; one given a redactor keeps it.
    let label = |guard: &LabelGuard| {
        let key = metrics::Key::from_parts(
            "instrument_requests_total",
            vec![metrics::Label::new("contact", "oncall@example.com")],
        );
        let admitted = guard.admit(&key).unwrap();
        let value = admitted.key().labels().next().unwrap().value().to_owned();
        value
    };
    assert_eq!(label(&early_guard), "oncall@example.com");
    let own = LabelGuard::builder().redactor(Redactor::default()).build();
    assert_eq!(label(&own), "[REDACTED]");
}
