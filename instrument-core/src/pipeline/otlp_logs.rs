//! [`OtlpLogLayer`]: `tracing` events as OTLP log records, with their trace, their
//! tenant and every value redacted (feature `otlp`).
//!
//! Why not `opentelemetry-appender-tracing`'s bridge: its records are built from the
//! event's raw fields, and the SDK's log record (0.33) offers no way to change or drop
//! an attribute once it is set, so no processor after it can redact them. This layer
//! builds each record from the same redacted fields as the JSON lines
//! ([`JsonLogLayer`](super::JsonLogLayer)), then hands it to the SDK's logger provider,
//! batch processor and OTLP exporter, which do the rest.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use opentelemetry::logs::{AnyValue, LogRecord as _, Logger as _, LoggerProvider as _, Severity};
use opentelemetry_sdk::error::OTelSdkResult;
use opentelemetry_sdk::logs::{
    BatchConfigBuilder, BatchLogProcessor, LogBatch, LogExporter, SdkLogger, SdkLoggerProvider,
};
use opentelemetry_sdk::Resource;
use serde_json::Value;
use tracing::{Event, Level, Subscriber};
use tracing_subscriber::layer::Context;
use tracing_subscriber::Layer;

use super::logs::Fields;
use super::{BatchConfig, OtlpConfig, PipelineError};
use crate::redact::Redactor;
use crate::semconv::{self, TENANT_ID};
use crate::tenant::tenant_from;

/// What happened to the log records so far.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct LogStats {
    /// Records made from events.
    pub emitted: u64,
    /// Records the collector accepted.
    pub exported: u64,
    /// Records in exports that failed.
    pub failed: u64,
}

impl LogStats {
    /// Records neither exported nor failed: dropped because the queue was full, or
    /// still waiting (none after shutdown).
    pub fn dropped(&self) -> u64 {
        self.emitted.saturating_sub(self.exported + self.failed)
    }
}

#[derive(Debug, Default)]
pub(super) struct LogCounters {
    emitted: AtomicU64,
    exported: AtomicU64,
    failed: AtomicU64,
}

impl LogCounters {
    pub(super) fn stats(&self) -> LogStats {
        LogStats {
            emitted: self.emitted.load(Ordering::Acquire),
            exported: self.exported.load(Ordering::Acquire),
            failed: self.failed.load(Ordering::Acquire),
        }
    }
}

/// Writes each `tracing` event as an OTLP log record through the pipeline's logger
/// provider: severity mapped as the specification says (`TRACE` 1, `DEBUG` 5, `INFO`
/// 9, `WARN` 13, `ERROR` 17), the target, the message as the body and the fields as
/// attributes, all redacted as span attributes are; the trace and span ids of the
/// OpenTelemetry context it was emitted in (the request's span, or a `tracing` span's
/// through tracing-opentelemetry), and that context's `tenant.id`.
///
/// [`init`](super::init) installs it when logs go over OTLP (`OTEL_LOGS_EXPORTER`,
/// or an OTLP endpoint), never for the OpenTelemetry crates' own events or the
/// pipeline's warnings about its exports, which would loop.
#[derive(Debug, Clone)]
pub struct OtlpLogLayer {
    logger: SdkLogger,
    redactor: Redactor,
    counters: Arc<LogCounters>,
}

impl OtlpLogLayer {
    pub(super) fn new(
        provider: &SdkLoggerProvider,
        redactor: Redactor,
        counters: Arc<LogCounters>,
    ) -> Self {
        Self {
            logger: provider.logger_with_scope(semconv::scope(semconv::SCOPE)),
            redactor,
            counters,
        }
    }
}

fn severity(level: &Level) -> Severity {
    match *level {
        Level::TRACE => Severity::Trace,
        Level::DEBUG => Severity::Debug,
        Level::INFO => Severity::Info,
        Level::WARN => Severity::Warn,
        _ => Severity::Error,
    }
}

fn any_value(value: Value) -> AnyValue {
    match value {
        Value::String(s) => AnyValue::String(s.into()),
        Value::Bool(b) => AnyValue::Boolean(b),
        Value::Number(n) => match (n.as_i64(), n.as_f64()) {
            (Some(i), _) => AnyValue::Int(i),
            (None, Some(f)) => AnyValue::Double(f),
            _ => AnyValue::String(n.to_string().into()),
        },
        other => AnyValue::String(other.to_string().into()),
    }
}

impl<S: Subscriber> Layer<S> for OtlpLogLayer {
    fn on_event(&self, event: &Event<'_>, _ctx: Context<'_, S>) {
        let meta = event.metadata();
        let mut fields = Fields::new(&self.redactor);
        event.record(&mut fields);
        let mut record = self.logger.create_log_record();
        let now = SystemTime::now();
        record.set_timestamp(now);
        record.set_observed_timestamp(now);
        record.set_severity_number(severity(meta.level()));
        record.set_severity_text(meta.level().as_str());
        record.set_target(meta.target().to_owned());
        record.set_body(AnyValue::String(fields.message.unwrap_or_default().into()));
        for (key, value) in fields.values {
            record.add_attribute(key, any_value(value));
        }
        if let Some(tenant) = opentelemetry::Context::map_current(|cx| tenant_from(cx).cloned()) {
            record.add_attribute(TENANT_ID, tenant.as_str().to_owned());
        }
        self.counters.emitted.fetch_add(1, Ordering::AcqRel);
        // The SDK takes the trace and span ids from the current context.
        self.logger.emit(record);
    }
}

/// The logger provider of OTLP log records to `otlp`, batched as `batch` says, its
/// exports counted in `counters`.
pub(super) fn provider(
    otlp: &OtlpConfig,
    batch: &BatchConfig,
    resource: Resource,
    counters: &Arc<LogCounters>,
) -> Result<SdkLoggerProvider, PipelineError> {
    let timeout = otlp.timeout.min(batch.export_timeout);
    let exporter = CountingLogs {
        inner: super::otlp::log_exporter(otlp, timeout)?,
        counters: Arc::clone(counters),
        endpoint: otlp.endpoint.clone().into(),
        failing: Arc::default(),
    };
    let config = BatchConfigBuilder::default()
        .with_scheduled_delay(batch.schedule_delay)
        .with_max_queue_size(batch.max_queue_size)
        .with_max_export_batch_size(batch.max_export_batch_size)
        .build();
    let processor = BatchLogProcessor::builder(exporter)
        .with_batch_config(config)
        .build();
    Ok(SdkLoggerProvider::builder()
        .with_resource(resource)
        .with_log_processor(processor)
        .build())
}

/// Counts what the exporter accepted and what failed; logs the first failure of a run
/// and its recovery (to the JSON lines only: the pipeline's own target is never
/// exported).
#[derive(Debug)]
struct CountingLogs<E> {
    inner: E,
    counters: Arc<LogCounters>,
    endpoint: Arc<str>,
    failing: Arc<AtomicBool>,
}

impl<E: LogExporter> LogExporter for CountingLogs<E> {
    async fn export(&self, batch: LogBatch<'_>) -> OTelSdkResult {
        let n = batch.iter().count() as u64;
        let result = self.inner.export(batch).await;
        match &result {
            Ok(()) => {
                self.counters.exported.fetch_add(n, Ordering::AcqRel);
                if self.failing.swap(false, Ordering::AcqRel) {
                    tracing::info!(endpoint = &*self.endpoint, "log export recovered");
                }
            }
            Err(e) => {
                self.counters.failed.fetch_add(n, Ordering::AcqRel);
                if !self.failing.swap(true, Ordering::AcqRel) {
                    tracing::error!(
                        endpoint = &*self.endpoint,
                        reason = %e,
                        "log export failed; log records are lost until it recovers (counted in the pipeline's log stats)"
                    );
                }
            }
        }
        result
    }

    fn shutdown_with_timeout(&self, timeout: Duration) -> OTelSdkResult {
        self.inner.shutdown_with_timeout(timeout)
    }

    fn set_resource(&mut self, resource: &Resource) {
        self.inner.set_resource(resource);
    }
}
