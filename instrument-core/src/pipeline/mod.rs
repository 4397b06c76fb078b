//! The telemetry pipeline: what guarantees that nothing leaves the process unredacted
//! or without `tenant.id` (feature `pipeline`).
//!
//! Two span processors wrap whichever processor exports (batch, simple):
//! [`TenantProcessor`] stamps every span with the tenant carried in its context, and
//! [`RedactingProcessor`] masks secrets in everything a span exports. Stack them tenant
//! first, so the redactor sees the final span:
//!
//! ```
//! use instrument_core::pipeline::{MissingTenant, RedactingProcessor, TenantProcessor};
//! use instrument_core::redact::Redactor;
//! use opentelemetry_sdk::trace::{InMemorySpanExporter, SdkTracerProvider, SimpleSpanProcessor};
//!
//! let exporter = InMemorySpanExporter::default();
//! let processor = TenantProcessor::new(
//!     MissingTenant::MarkMissing,
//!     RedactingProcessor::new(Redactor::default(), SimpleSpanProcessor::new(exporter.clone())),
//! );
//! let provider = SdkTracerProvider::builder().with_span_processor(processor).build();
//! # drop(provider);
//! ```

/// The `SpanProcessor` methods a wrapping processor passes to its `inner` unchanged.
macro_rules! forward_to_inner {
    () => {
        fn force_flush(&self) -> opentelemetry_sdk::error::OTelSdkResult {
            self.inner.force_flush()
        }

        fn shutdown_with_timeout(
            &self,
            timeout: std::time::Duration,
        ) -> opentelemetry_sdk::error::OTelSdkResult {
            self.inner.shutdown_with_timeout(timeout)
        }

        fn set_resource(&mut self, resource: &opentelemetry_sdk::Resource) {
            self.inner.set_resource(resource);
        }
    };
}

mod config;
mod init;
mod logs;
mod memory;
mod otlp;
#[cfg(feature = "prometheus")]
mod prometheus;
mod redacting;
mod tenant_stamp;
mod tree;

pub use config::{BatchConfig, ConfigError, ExporterConfig, PipelineConfig, SamplerConfig};
pub use init::{
    build, build_with_policy, init, init_from_env, ExportStats, PipelineError, ShutdownError,
    Telemetry,
};
pub use logs::JsonLogLayer;
pub use memory::MemoryExporter;
#[cfg(feature = "prometheus")]
pub use prometheus::{
    install_prometheus, prometheus_recorder, serve_metrics, serve_metrics_with, MetricsError,
    MetricsLimits, MetricsService, DEFAULT_METRICS_ADDR, DEFAULT_METRICS_PATH,
};
pub use redacting::RedactingProcessor;
pub use tenant_stamp::{MissingTenant, TenantProcessor};
pub use tree::TreeExporter;

#[cfg(test)]
mod test_support;
#[cfg(test)]
mod tests;
