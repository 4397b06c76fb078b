//! The tenant layer and the pipeline together: spans made while a request is served,
//! by the handler or by libraries below it, carry the request's tenant.

use std::convert::Infallible;

use http::{Request, Response};
use instrument::pipeline::{build, ExporterConfig, MemoryExporter, PipelineConfig};
use instrument::tower::tenant::TenantLayer;
use tower::{ServiceBuilder, ServiceExt as _};
use tracing_subscriber::layer::SubscriberExt as _;

#[tokio::test]
async fn spans_made_behind_the_tenant_layer_carry_the_tenant() {
    let spans = MemoryExporter::default();
    let telemetry =
        build(&PipelineConfig::default().with_exporter(ExporterConfig::Memory(spans.clone())))
            .unwrap();
    let _subscriber =
        tracing::subscriber::set_default(tracing_subscriber::registry().with(telemetry.layer()));

    let service =
        ServiceBuilder::new()
            .layer(TenantLayer::new())
            .service_fn(|_: Request<()>| async {
                // Made without any tenant in sight, as a library would.
                tracing::info_span!("db.query").in_scope(|| {});
                tokio::task::yield_now().await;
                tracing::info_span!("cache.get").in_scope(|| {});
                Ok::<_, Infallible>(Response::new(String::new()))
            });
    let request = Request::builder()
        .header("x-tenant-id", "acme")
        .body(())
        .unwrap();
    service.oneshot(request).await.unwrap();
    tracing::info_span!("background.job").in_scope(|| {});
    telemetry.shutdown().unwrap();

    let exported = spans.spans();
    let tenant_of = |name: &str| {
        let span = exported.iter().find(|s| s.name == name).unwrap();
        span.attributes
            .iter()
            .find(|kv| kv.key.as_str() == "tenant.id")
            .map(|kv| kv.value.to_string())
    };
    assert_eq!(tenant_of("db.query").as_deref(), Some("acme"));
    assert_eq!(tenant_of("cache.get").as_deref(), Some("acme"));
    assert_eq!(
        tenant_of("background.job"),
        None,
        "outside the request, no tenant"
    );
}
