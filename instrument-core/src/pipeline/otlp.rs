//! The OTLP/gRPC exporter (feature `otlp`).

use std::time::Duration;

use super::PipelineError;

/// An OTLP/gRPC span exporter for `endpoint`, sending `headers` as gRPC metadata.
#[cfg(feature = "otlp")]
pub(super) fn exporter(
    endpoint: &str,
    headers: &[(String, String)],
    timeout: Duration,
) -> Result<opentelemetry_otlp::SpanExporter, PipelineError> {
    use opentelemetry_otlp::{WithExportConfig as _, WithTonicConfig as _};

    // tonic's channel runs on the runtime it is created in.
    tokio::runtime::Handle::try_current().map_err(|_| PipelineError::NoRuntime)?;
    let mut metadata = tonic::metadata::MetadataMap::new();
    for (i, (key, value)) in headers.iter().enumerate() {
        let key = tonic::metadata::MetadataKey::from_bytes(key.to_ascii_lowercase().as_bytes())
            .map_err(|_| {
                PipelineError::Exporter(format!("header {} has an invalid name", i + 1))
            })?;
        // The value is a credential more often than not: never in an error message.
        let value = value.parse().map_err(|_| {
            PipelineError::Exporter(format!("header {} has an invalid value", i + 1))
        })?;
        metadata.insert(key, value);
    }
    opentelemetry_otlp::SpanExporter::builder()
        .with_tonic()
        .with_endpoint(endpoint)
        .with_timeout(timeout)
        .with_metadata(metadata)
        .build()
        .map_err(|e| PipelineError::Exporter(e.to_string()))
}

/// Without the `otlp` feature an OTLP endpoint cannot be served.
#[cfg(not(feature = "otlp"))]
pub(super) fn exporter(
    _endpoint: &str,
    _headers: &[(String, String)],
    _timeout: Duration,
) -> Result<super::MemoryExporter, PipelineError> {
    Err(PipelineError::OtlpDisabled)
}
