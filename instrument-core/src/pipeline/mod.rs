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
//!
//! [`build`] and [`init`] do both where spans are exported instead: a
//! [`TenantProcessor::stamping`] stamps the tenant as a span starts, and behind the
//! batch processor a [`TenantExporter`] checks it and a [`RedactingExporter`] masks
//! what the span carries. Both then run on the batch's thread, a batch at a time, and
//! a request's end only queues its span. Either way nothing leaves the process
//! unredacted or without its tenant.
//!
//! ## What the pipeline says about itself
//!
//! Every export is counted in [`Telemetry::stats`] (ended, exported, failed, dropped
//! and, of those, dropped because the queue was full) and, through the process's
//! `metrics` recorder, in the SDK self-observability metrics of the semantic
//! conventions: `otel_sdk_exporter_span_exported_total` (`error_type` set on failure)
//! and `otel_sdk_exporter_operation_duration_seconds`, labelled with the exporter's
//! kind and the collector's `server_address` / `server_port`, and
//! `otel_sdk_processor_span_processed_total` (`error_type="queue_full"` for the spans
//! dropped because `OTEL_BSP_MAX_QUEUE_SIZE` spans were already waiting or being
//! exported; the toolkit drops and counts them itself, before the SDK's processor,
//! which keeps its own count private). The first failed export of a run is logged once as an error naming
//! the endpoint and the cause (for TLS, the certificate error), its recovery once as
//! information.
//!
//! ## The `OTEL_*` environment
//!
//! [`PipelineConfig::from_env_lenient`] (what [`init_from_env`] uses) follows the
//! specification: an invalid value is logged once as a warning and its default used;
//! [`PipelineConfig::from_env`] fails at the first one instead, for teams that prefer
//! failing at start. Enumerated values are case-insensitive; empty means unset. With
//! nothing configured, finished traces are printed to stdout as trees (the demo's
//! and the tests' embedded default) rather than sent to `localhost:4317`.
//!
//! | variable | read | notes |
//! |---|---|---|
//! | `OTEL_SDK_DISABLED` | yes | `true`: no tracer provider at all |
//! | `OTEL_SERVICE_NAME` | yes | wins over `service.name` in the resource attributes; default `unknown_service:<executable>` |
//! | `OTEL_RESOURCE_ATTRIBUTES` | yes | percent-decoded; `telemetry.sdk.*` are always added |
//! | `OTEL_PROPAGATORS` | yes | `tracecontext` ([`W3cPropagator`](crate::context::W3cPropagator)), `baggage`, `none`; `b3`, `b3multi`, `jaeger`, `xray`, `ottrace` not supported (warned, left out) |
//! | `OTEL_TRACES_SAMPLER`, `OTEL_TRACES_SAMPLER_ARG` | yes | the six built-in samplers, and `consistent_probability` / `parentbased_consistent_probability` ([`sampling`](crate::sampling)); `jaeger_remote` and `xray` not supported |
//! | `INSTRUMENT_TAIL_ERRORS`, `INSTRUMENT_TAIL_SLOW_MS`, `INSTRUMENT_TAIL_SLOW_ROUTES`, `INSTRUMENT_TAIL_MAX_SPANS`, `INSTRUMENT_TAIL_MAX_SPANS_PER_REQUEST` | yes | tail bias ([`TailBias`](crate::sampling::TailBias)): sampled-out requests that fail or are slow exported whole; off by default |
//! | `OTEL_BSP_SCHEDULE_DELAY`, `OTEL_BSP_EXPORT_TIMEOUT`, `OTEL_BSP_MAX_QUEUE_SIZE`, `OTEL_BSP_MAX_EXPORT_BATCH_SIZE` | yes | default 5 s (at most 200 ms for the stdout trees, printed once a trace is quiet), 30 s, 2,048, 512; the export timeout bounds the exporter's |
//! | `OTEL_TRACES_EXPORTER` | yes | `otlp`, `console` (trace trees on stdout), `none`; unset: OTLP when an endpoint or protocol is set, else stdout; `zipkin`, `jaeger` not supported |
//! | `OTEL_EXPORTER_OTLP_PROTOCOL` | yes | `grpc` (default, see [`OtlpConfig`]), `http/protobuf` or `http/json` |
//! | `OTEL_EXPORTER_OTLP_ENDPOINT` | yes | gRPC: as given (no scheme: `https://`, or `http://` with `..._INSECURE=true`); HTTP: `/v1/traces` appended; credentials in the URL refused |
//! | `OTEL_EXPORTER_OTLP_HEADERS`, `_TIMEOUT`, `_COMPRESSION` (`gzip`, `none`), `_INSECURE` | yes | header values never appear in an error or a log line |
//! | `OTEL_EXPORTER_OTLP_CERTIFICATE`, `_CLIENT_CERTIFICATE`, `_CLIENT_KEY` | yes | PEM files, read at start (unreadable: `build` fails naming the file); the CA is trusted beside the system's roots; rustls with ring, never OpenSSL |
//! | `OTEL_EXPORTER_OTLP_TRACES_*` forms of all the above | yes | win over the generic ones (headers key by key); the traces endpoint is used as it is |
//! | `OTEL_METRICS_EXPORTER` | yes | `prometheus` (the default here, see [`MetricsConfig`]), `otlp` ([`install_otlp_metrics`]), `none` |
//! | `OTEL_EXPORTER_OTLP_METRICS_*` (endpoint, protocol, headers, timeout, compression, TLS files, insecure) | yes | as for traces, over the generic variables; HTTP: `/v1/metrics` appended to the generic endpoint |
//! | `OTEL_METRIC_EXPORT_INTERVAL`, `OTEL_METRIC_EXPORT_TIMEOUT`, `OTEL_EXPORTER_OTLP_METRICS_TEMPORALITY_PREFERENCE` | yes | default 60 s, 30 s, `cumulative` (`delta`, `lowmemory`) |
//! | `OTEL_EXPORTER_PROMETHEUS_HOST`, `OTEL_EXPORTER_PROMETHEUS_PORT` | no | the `/metrics` address is the application's to choose (`serve_metrics` takes a listener) |
//! | `OTEL_LOGS_EXPORTER`, `OTEL_BLRP_*`, `OTEL_EXPORTER_OTLP_LOGS_*` | yes | `otlp`, `console`, `none`; unset: OTLP when an endpoint or protocol is set (the generic or the logs one). `tracing` events become OTLP log records ([`OtlpLogLayer`], [`LogsConfig`]) with the trace and span ids and `tenant.id` of their context, redacted as span attributes; the JSON lines on stderr ([`JsonLogLayer`]) are written in any case. `OTEL_BLRP_*` default 1 s, 30 s, 2,048, 512; [`Telemetry::log_stats`] counts what was lost |
//! | `OTEL_LOG_LEVEL` | yes | the OpenTelemetry crates' own log lines (`internal-logs`: export failures, dropped spans), written with the toolkit's JSON log lines and never as span events; unset: `warn` (its INFO lines, such as "Global tracer provider is set", are left out), or as `RUST_LOG` says when it names an `opentelemetry` target |
//! | `OTEL_SPAN_ATTRIBUTE_COUNT_LIMIT`, `OTEL_SPAN_EVENT_COUNT_LIMIT`, `OTEL_SPAN_LINK_COUNT_LIMIT` | by the SDK | opentelemetry_sdk reads them itself (default 128 each) |
//! | `OTEL_ATTRIBUTE_*_LIMIT`, `OTEL_SPAN_ATTRIBUTE_VALUE_LENGTH_LIMIT`, `OTEL_EVENT_ATTRIBUTE_COUNT_LIMIT`, `OTEL_LINK_ATTRIBUTE_COUNT_LIMIT` | no | not offered by opentelemetry_sdk 0.33; the redactor bounds attribute values |

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
mod env;

/// A metrics recorder could not be installed or its exporter built.
#[cfg(any(feature = "prometheus", feature = "otlp"))]
#[derive(Debug)]
#[non_exhaustive]
pub enum MetricsError {
    /// Another `metrics` recorder is already installed.
    RecorderAlreadySet,
    /// The bucket configuration was refused.
    Buckets(String),
    /// The OTLP metric exporter could not be built, or its last export failed.
    Export(String),
}

#[cfg(any(feature = "prometheus", feature = "otlp"))]
impl std::fmt::Display for MetricsError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::RecorderAlreadySet => {
                f.write_str("metrics: a global recorder is already installed")
            }
            Self::Buckets(e) => write!(f, "metrics: histogram buckets: {e}"),
            Self::Export(e) => write!(f, "metrics: OTLP export: {e}"),
        }
    }
}

#[cfg(any(feature = "prometheus", feature = "otlp"))]
impl std::error::Error for MetricsError {}
mod ids;
mod init;
mod logs;
mod memory;
mod otlp;
#[cfg(feature = "otlp")]
mod otlp_logs;
#[cfg(feature = "otlp")]
mod otlp_metrics;
#[cfg(feature = "prometheus")]
mod prometheus;
mod redacting;
mod span_events;
mod tenant_stamp;
mod tree;

pub use config::{
    BatchConfig, ConfigError, ExporterConfig, LogsConfig, MetricsConfig, OtlpCompression,
    OtlpConfig, OtlpMetricsConfig, OtlpProtocol, PipelineConfig, PropagatorConfig, SamplerConfig,
    Temporality,
};
pub use ids::PresetIdGenerator;
pub use init::{
    build, build_with_policy, init, init_from_env, installed_tracer_provider, ExportStats,
    PipelineError, ShutdownError, Telemetry,
};
pub use logs::JsonLogLayer;
pub use memory::MemoryExporter;
/// The handle [`install_prometheus`] returns: `render()` is the text a `/metrics`
/// endpoint serves (see [`serve_metrics`]).
#[cfg(feature = "prometheus")]
pub use metrics_exporter_prometheus::PrometheusHandle;
#[cfg(feature = "otlp")]
pub use otlp_logs::{LogStats, OtlpLogLayer};
#[cfg(feature = "otlp")]
pub use otlp_metrics::{install_otlp_metrics, OtlpMetrics};
#[cfg(feature = "prometheus")]
pub use prometheus::{
    install_prometheus, prometheus_recorder, serve_metrics, serve_metrics_with, MetricsLimits,
    MetricsService, DEFAULT_METRICS_ADDR, DEFAULT_METRICS_PATH, UPKEEP_PERIOD,
};
pub use redacting::{RedactingExporter, RedactingProcessor};
pub use span_events::SpanEventLayer;
pub use tenant_stamp::{MissingTenant, TenantExporter, TenantProcessor};
pub use tree::TreeExporter;

#[cfg(test)]
mod test_support;
#[cfg(test)]
mod tests;
