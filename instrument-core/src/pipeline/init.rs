//! [`build`] and [`init`]: the pipeline assembled from a [`PipelineConfig`], and the
//! [`Telemetry`] guard that flushes it.

use std::fmt;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use opentelemetry::propagation::{TextMapCompositePropagator, TextMapPropagator};
use opentelemetry::trace::TracerProvider as _;
use opentelemetry::{Context, KeyValue};
use opentelemetry_sdk::error::OTelSdkResult;
use opentelemetry_sdk::propagation::BaggagePropagator;
use opentelemetry_sdk::resource::TelemetryResourceDetector;
use opentelemetry_sdk::trace::{
    BatchConfigBuilder, BatchSpanProcessor, SdkTracer, SdkTracerProvider, ShouldSample, Span,
    SpanData, SpanExporter, SpanProcessor,
};
use opentelemetry_sdk::Resource;
use tracing_subscriber::layer::{Layer as _, SubscriberExt as _};
use tracing_subscriber::util::SubscriberInitExt as _;

use super::{
    ExporterConfig, MissingTenant, PipelineConfig, PropagatorConfig, RedactingExporter,
    SamplerConfig, TenantExporter, TenantProcessor, TreeExporter,
};
use crate::context::W3cPropagator;
use crate::redact::{PolicyError, RedactionPolicy, Redactor};
use crate::sampling::Tail;
use crate::sampling::TailStats;
use crate::semconv;

/// The pipeline could not be built or installed.
#[derive(Debug)]
#[non_exhaustive]
pub enum PipelineError {
    /// An `OTEL_*` variable has a value the pipeline cannot use.
    Config(super::ConfigError),
    /// The redaction policy does not build.
    Policy(PolicyError),
    /// The OTLP exporter could not be built.
    Exporter(String),
    /// OTLP export needs a Tokio runtime: call `init` from inside one.
    NoRuntime,
    /// OTLP export was configured but the `otlp` feature is off.
    OtlpDisabled,
    /// A global tracing subscriber was already installed.
    SubscriberAlreadySet,
}

impl fmt::Display for PipelineError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Config(e) => write!(f, "telemetry pipeline: {e}"),
            Self::Policy(e) => write!(f, "telemetry pipeline: {e}"),
            Self::Exporter(e) => write!(f, "telemetry pipeline: OTLP exporter: {e}"),
            Self::NoRuntime => f.write_str("telemetry pipeline: OTLP export must be set up inside a Tokio runtime"),
            Self::OtlpDisabled => f.write_str(
                "telemetry pipeline: an OTLP endpoint is configured but instrument-core was built without the `otlp` feature",
            ),
            Self::SubscriberAlreadySet => f.write_str("telemetry pipeline: a global tracing subscriber is already installed"),
        }
    }
}

impl std::error::Error for PipelineError {}

/// What happened to the spans the pipeline saw.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct ExportStats {
    /// Spans that ended and entered the export path.
    pub ended: u64,
    /// Spans an exporter accepted.
    pub exported: u64,
    /// Spans in exports that failed (collector down, timeout).
    pub failed: u64,
    /// Spans dropped because the export queue was full (`OTEL_BSP_MAX_QUEUE_SIZE`
    /// spans waiting or being exported); part of [`ExportStats::dropped`].
    pub queue_full: u64,
    /// Spans of sampled-out requests that tail bias could not hold (a cap reached);
    /// they never entered the export path, so they are not in [`ExportStats::ended`].
    /// The details are in [`Telemetry::tail_stats`].
    pub tail_dropped: u64,
}

impl ExportStats {
    /// Spans that never reached an exporter (queue full, or still queued when shutdown gave up).
    pub fn dropped(&self) -> u64 {
        self.ended.saturating_sub(self.exported + self.failed)
    }

    /// Spans lost in all: failed or dropped.
    pub fn lost(&self) -> u64 {
        self.failed + self.dropped()
    }
}

#[derive(Debug, Default)]
struct Counters {
    ended: AtomicU64,
    exported: AtomicU64,
    failed: AtomicU64,
    /// Spans handed to the batch processor whose export has not finished: kept at or
    /// under its queue size, so that it never drops a span itself (it keeps that count
    /// private) and every drop is counted here.
    pending: AtomicU64,
    /// Spans dropped because the queue was full.
    queue_full: AtomicU64,
    /// How many of those the metrics were told about.
    queue_full_reported: AtomicU64,
}

impl Counters {
    /// Tells the metrics recorder about the spans processed since the last call:
    /// `n` whose export just finished, and the drops since then (per export, never per
    /// request).
    fn report_processed(&self, n: u64) {
        let labels = [(
            semconv::LABEL_OTEL_COMPONENT_TYPE,
            "batching_span_processor",
        )];
        if n > 0 {
            metrics::counter!(semconv::SDK_SPANS_PROCESSED, &labels).increment(n);
        }
        let dropped = self.queue_full.load(Ordering::Acquire);
        let before = self.queue_full_reported.swap(dropped, Ordering::AcqRel);
        if dropped > before {
            metrics::counter!(
                semconv::SDK_SPANS_PROCESSED,
                semconv::LABEL_OTEL_COMPONENT_TYPE => "batching_span_processor",
                semconv::LABEL_ERROR_TYPE => "queue_full"
            )
            .increment(dropped - before);
        }
    }
}

impl Counters {
    fn stats(&self) -> ExportStats {
        ExportStats {
            ended: self.ended.load(Ordering::Acquire),
            exported: self.exported.load(Ordering::Acquire),
            failed: self.failed.load(Ordering::Acquire),
            queue_full: self.queue_full.load(Ordering::Acquire),
            tail_dropped: 0,
        }
    }
}

/// Counts spans entering the export path, and drops (counted) the ones the batch
/// processor's queue has no room for.
#[derive(Debug)]
struct Counted<P> {
    counters: Arc<Counters>,
    /// The batch processor's queue size.
    capacity: u64,
    inner: P,
}

impl<P: SpanProcessor> SpanProcessor for Counted<P> {
    fn on_start(&self, span: &mut Span, cx: &Context) {
        self.inner.on_start(span, cx);
    }

    fn on_end(&self, span: SpanData) {
        self.counters.ended.fetch_add(1, Ordering::AcqRel);
        if self.counters.pending.fetch_add(1, Ordering::AcqRel) >= self.capacity {
            self.counters.pending.fetch_sub(1, Ordering::AcqRel);
            self.counters.queue_full.fetch_add(1, Ordering::AcqRel);
            return;
        }
        self.inner.on_end(span);
    }

    forward_to_inner!();
}

/// Counts what an exporter accepted and what failed.
#[derive(Debug)]
struct CountingExporter<E> {
    counters: Arc<Counters>,
    inner: E,
    /// Where the spans go (an endpoint URL, `stdout`), for the log lines.
    target: Arc<str>,
    /// The labels of the self-observability metrics: the exporter's kind and, for
    /// OTLP, the collector's address and port.
    labels: Arc<[metrics::Label]>,
    /// Whether the last export failed: the first failure of a run is logged, and the
    /// recovery, not each one.
    failing: Arc<std::sync::atomic::AtomicBool>,
    /// The transport's own account of the last failure, where it has one.
    detail: super::otlp::Detail,
}

impl<E: SpanExporter> SpanExporter for CountingExporter<E> {
    fn export(
        &self,
        batch: Vec<SpanData>,
    ) -> impl std::future::Future<Output = OTelSdkResult> + Send {
        let n = batch.len() as u64;
        let counters = Arc::clone(&self.counters);
        let (target, failing) = (Arc::clone(&self.target), Arc::clone(&self.failing));
        let detail = Arc::clone(&self.detail);
        let labels = Arc::clone(&self.labels);
        let export = self.inner.export(batch);
        async move {
            let started = std::time::Instant::now();
            let result = export.await;
            observe(&labels, n, &result, started.elapsed());
            counters.pending.fetch_sub(n, Ordering::AcqRel);
            counters.report_processed(n);
            match &result {
                Ok(()) => {
                    counters.exported.fetch_add(n, Ordering::AcqRel);
                    if failing.swap(false, Ordering::AcqRel) {
                        tracing::info!(endpoint = &*target, "span export recovered");
                    }
                }
                Err(e) => {
                    counters.failed.fetch_add(n, Ordering::AcqRel);
                    // The SDK's error names the cause (refused, certificate, timeout);
                    // no header value is in it.
                    let detail = detail.lock().ok().and_then(|mut d| d.take());
                    if !failing.swap(true, Ordering::AcqRel) {
                        let reason = match detail {
                            Some(detail) => format!("{e}: {detail}"),
                            None => e.to_string(),
                        };
                        tracing::error!(
                            endpoint = &*target,
                            reason = %reason,
                            "span export failed; spans are lost until it recovers (counted in the pipeline's stats)"
                        );
                    }
                }
            }
            result
        }
    }

    fn shutdown_with_timeout(&self, timeout: Duration) -> OTelSdkResult {
        self.inner.shutdown_with_timeout(timeout)
    }

    fn force_flush(&self) -> OTelSdkResult {
        self.inner.force_flush()
    }

    fn set_resource(&mut self, resource: &Resource) {
        self.inner.set_resource(resource);
    }
}

/// The host and port of an endpoint URL (`https://[::1]:4317/x` → `[::1]`, 4317), the
/// scheme's port when none is given.
fn host_and_port(endpoint: &str) -> Option<(&str, u16)> {
    let (scheme, rest) = endpoint.split_once("://")?;
    let authority = rest.split(['/', '?', '#']).next()?;
    let (host, port) = match authority.rsplit_once(':') {
        Some((host, port)) if !port.contains(']') => (host, port.parse().ok()?),
        _ => (authority, if scheme == "https" { 443 } else { 80 }),
    };
    (!host.is_empty()).then_some((host, port))
}

/// Records one export in the SDK self-observability metrics of the OpenTelemetry
/// semantic conventions (`otel.sdk.exporter.span.exported`,
/// `otel.sdk.exporter.operation.duration`), in their Prometheus forms, through the
/// process's `metrics` recorder: registered per export (a batch, not a request), so a
/// recorder installed after the pipeline still receives them.
fn observe(labels: &[metrics::Label], spans: u64, result: &OTelSdkResult, took: Duration) {
    let mut labels = labels.to_vec();
    if let Err(e) = result {
        let kind = match e {
            opentelemetry_sdk::error::OTelSdkError::Timeout(_) => "timeout",
            _ => "export_failed",
        };
        labels.push(metrics::Label::from_static_parts(
            semconv::LABEL_ERROR_TYPE,
            kind,
        ));
    }
    metrics::counter!(semconv::SDK_SPANS_EXPORTED, labels.clone()).increment(spans);
    metrics::histogram!(semconv::SDK_EXPORT_DURATION, labels).record(took.as_secs_f64());
}

/// The running pipeline. Flushes on [`Telemetry::shutdown`] (or, best effort, on drop).
#[derive(Debug)]
pub struct Telemetry {
    provider: Option<SdkTracerProvider>,
    /// OTLP log records, when configured.
    #[cfg(feature = "otlp")]
    logs: Option<opentelemetry_sdk::logs::SdkLoggerProvider>,
    #[cfg(feature = "otlp")]
    log_counters: Arc<super::otlp_logs::LogCounters>,
    counters: Arc<Counters>,
    shutdown_timeout: Duration,
    redactor: Redactor,
    tail: Option<Tail>,
}

/// Shutdown finished, but not everything was exported.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ShutdownError {
    /// What happened to the spans.
    pub stats: ExportStats,
    /// What went wrong.
    pub reason: String,
}

impl fmt::Display for ShutdownError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "telemetry shutdown: {} of {} spans not exported ({} failed, {} dropped): {}",
            self.stats.lost(),
            self.stats.ended,
            self.stats.failed,
            self.stats.dropped(),
            self.reason
        )
    }
}

impl std::error::Error for ShutdownError {}

impl Telemetry {
    /// The tracer provider (`None` when `OTEL_SDK_DISABLED=true`).
    pub fn tracer_provider(&self) -> Option<&SdkTracerProvider> {
        self.provider.as_ref()
    }

    /// A tracer of the toolkit's scope (a no-op tracer when disabled).
    pub fn tracer(&self) -> Option<SdkTracer> {
        self.provider
            .as_ref()
            .map(|p| p.tracer_with_scope(semconv::scope(semconv::SCOPE)))
    }

    /// The redactor the pipeline applies (for logs and metric labels too).
    pub fn redactor(&self) -> &Redactor {
        &self.redactor
    }

    /// What happened to the spans so far.
    pub fn stats(&self) -> ExportStats {
        ExportStats {
            tail_dropped: self.tail_stats().spans_dropped,
            ..self.counters.stats()
        }
    }

    /// What tail bias kept and dropped (all zero when it is off).
    pub fn tail_stats(&self) -> TailStats {
        self.tail.as_ref().map(|t| t.stats()).unwrap_or_default()
    }

    /// Exports what is waiting now (spans, and log records when they go over OTLP),
    /// within the exporters' timeouts. Blocks: call it off the async runtime
    /// (`spawn_blocking`).
    pub fn force_flush(&self) {
        if let Some(provider) = &self.provider {
            let _ = provider.force_flush();
        }
        #[cfg(feature = "otlp")]
        if let Some(logs) = &self.logs {
            let _ = logs.force_flush();
        }
    }

    /// What happened to the OTLP log records so far (all zero when logs are not sent
    /// over OTLP).
    #[cfg(feature = "otlp")]
    pub fn log_stats(&self) -> super::LogStats {
        self.log_counters.stats()
    }

    /// The `tracing` layer that sends events as OTLP log records through this pipeline
    /// (`None` when logs are not sent over OTLP), for applications that assemble their
    /// own subscriber (`init` installs it). Keep the OpenTelemetry crates' own events
    /// away from it: they would loop.
    #[cfg(feature = "otlp")]
    pub fn log_layer(&self) -> Option<super::OtlpLogLayer> {
        self.logs.as_ref().map(|provider| {
            super::OtlpLogLayer::new(
                provider,
                self.redactor.clone(),
                Arc::clone(&self.log_counters),
            )
        })
    }

    /// The `tracing` layer that turns spans into OpenTelemetry spans through this
    /// pipeline, for applications that assemble their own subscriber (`init` installs it).
    pub fn layer<S>(&self) -> Option<tracing_opentelemetry::OpenTelemetryLayer<S, SdkTracer>>
    where
        S: tracing::Subscriber + for<'span> tracing_subscriber::registry::LookupSpan<'span>,
    {
        self.tracer()
            .map(|t| tracing_opentelemetry::layer().with_tracer(t))
    }

    /// Flushes pending spans and stops exporting, within the configured timeout. Never
    /// hangs: when the collector is unreachable, it returns after the timeout with what
    /// was lost.
    pub fn shutdown(mut self) -> Result<ExportStats, ShutdownError> {
        self.shutdown_inner()
    }

    fn shutdown_inner(&mut self) -> Result<ExportStats, ShutdownError> {
        // Log records first: the spans' shutdown may log, and those lines stay local.
        #[cfg(feature = "otlp")]
        if let Some(logs) = self.logs.take() {
            if let Err(e) = logs.shutdown_with_timeout(self.shutdown_timeout) {
                eprintln!("telemetry shutdown: log records: {e}");
            }
        }
        let Some(provider) = self.provider.take() else {
            return Ok(self.stats());
        };
        let result = provider.shutdown_with_timeout(self.shutdown_timeout);
        self.counters.report_processed(0);
        let stats = self.stats();
        match result {
            Ok(()) if stats.lost() == 0 => Ok(stats),
            Ok(()) => Err(ShutdownError {
                stats,
                reason: "exports failed".to_owned(),
            }),
            Err(e) => Err(ShutdownError {
                stats,
                reason: e.to_string(),
            }),
        }
    }
}

impl Drop for Telemetry {
    fn drop(&mut self) {
        if let Err(e) = self.shutdown_inner() {
            // Nothing else can report it at this point.
            eprintln!("{e}");
        }
    }
}

/// Builds the pipeline without installing a tracer provider, a propagator or a
/// subscriber (`init` does). It does make its redactor the process-wide one
/// ([`redact::set_global`](crate::redact::set_global), if none was set), so that
/// `#[workflow_span]` and the layers record through the same policy as the processor.
///
/// Spans pass, in order: the [`TenantProcessor`] (stamps the tenant as a span starts),
/// then a bounded batch processor, on whose thread each batch has its tenants enforced
/// ([`TenantExporter`], [`PipelineConfig::missing_tenant`]) and is redacted
/// ([`RedactingExporter`]) before the exporter sees it: a request's end only queues its
/// span. Under [`MissingTenant::Drop`] the tenant is checked at each span's end instead,
/// so that spans without one never take places in the queue. Export never blocks or
/// fails a request: a full queue drops spans, and the drops are counted in
/// [`Telemetry::stats`].
pub fn build(config: &PipelineConfig) -> Result<Telemetry, PipelineError> {
    build_with_policy(config, &RedactionPolicy::default())
}

/// [`build`] with a redaction policy of your own.
pub fn build_with_policy(
    config: &PipelineConfig,
    policy: &RedactionPolicy,
) -> Result<Telemetry, PipelineError> {
    let redactor = Redactor::new(policy).map_err(PipelineError::Policy)?;
    // `#[workflow_span]` records through the same policy (the first one installed).
    let _ = crate::redact::set_global(redactor.clone());
    let counters = Arc::new(Counters::default());
    let mut telemetry = Telemetry {
        provider: None,
        #[cfg(feature = "otlp")]
        logs: None,
        #[cfg(feature = "otlp")]
        log_counters: Arc::default(),
        counters: Arc::clone(&counters),
        shutdown_timeout: config.shutdown_timeout,
        redactor: redactor.clone(),
        tail: None,
    };
    if config.disabled {
        return Ok(telemetry);
    }
    let resource = resource(config);
    let detail = super::otlp::Detail::default();
    let processor = match &config.exporter {
        ExporterConfig::Stdout => Some(batch(
            TreeExporter::stdout(),
            config,
            &redactor,
            &counters,
            &detail,
        )),
        ExporterConfig::StdoutWholeTraces => Some(batch(
            TreeExporter::stdout().whole_traces(),
            config,
            &redactor,
            &counters,
            &detail,
        )),
        ExporterConfig::Memory(memory) => {
            Some(batch(memory.clone(), config, &redactor, &counters, &detail))
        }
        ExporterConfig::Otlp(otlp) => {
            // The batch processor of opentelemetry_sdk 0.33 takes no export timeout;
            // the exporter enforces the tighter of the two.
            let timeout = otlp.timeout.min(config.batch.export_timeout);
            Some(batch(
                super::otlp::exporter(otlp, timeout, &detail)?,
                config,
                &redactor,
                &counters,
                &detail,
            ))
        }
        ExporterConfig::None => None,
    };
    #[cfg(feature = "otlp")]
    if let super::LogsConfig::Otlp { otlp, batch } = &config.logs {
        telemetry.logs = Some(super::otlp_logs::provider(
            otlp,
            batch,
            resource.clone(),
            &telemetry.log_counters,
        )?);
    }
    let head = config.sampler.sampler();
    // Nothing exported, nothing to keep: no tail bias without a processor.
    let tail =
        (config.tail.is_enabled() && processor.is_some()).then(|| config.tail.clone().start());
    let sampler: Box<dyn ShouldSample> = match &tail {
        Some(tail) => Box::new(tail.sampler(head)),
        None => head,
    };
    telemetry.tail = tail.clone();
    let mut builder = SdkTracerProvider::builder()
        .with_sampler(sampler)
        .with_id_generator(super::PresetIdGenerator::default())
        .with_resource(resource);
    if let Some(processor) = processor {
        let export = Counted {
            counters: Arc::clone(&counters),
            capacity: config.batch.max_queue_size as u64,
            inner: processor,
        };
        // Held spans of sampled-out requests carry their tenant, and are redacted only
        // when their request is kept (and exported).
        let missing = config.missing_tenant;
        builder = match tail {
            Some(tail) => builder.with_span_processor(tenant(missing, tail.processor(export))),
            None => builder.with_span_processor(tenant(missing, export)),
        };
    }
    telemetry.provider = Some(builder.build());
    Ok(telemetry)
}

/// Whether [`build`] checks a span's tenant at its end rather than where it is
/// exported: under [`MissingTenant::Drop`], so that spans without one never take places
/// in the queue.
fn checked_at_end(missing: MissingTenant) -> bool {
    missing == MissingTenant::Drop
}

/// [`build`]'s tenant processor: stamping, the check left to the batch's exporter
/// ([`batch`]), unless [`checked_at_end`].
fn tenant<P>(missing: MissingTenant, inner: P) -> TenantProcessor<P> {
    if checked_at_end(missing) {
        TenantProcessor::new(missing, inner)
    } else {
        TenantProcessor::stamping(inner)
    }
}

/// The resource of the service's spans and metrics: the service name, the configured
/// attributes and `telemetry.sdk.*` from the SDK's detector; nothing else is read from
/// the environment here, `config` already holds what the environment said.
pub(super) fn resource(config: &PipelineConfig) -> Resource {
    Resource::builder_empty()
        .with_detector(Box::new(TelemetryResourceDetector))
        .with_service_name(config.service_name.clone())
        .with_attributes(
            config
                .resource_attributes
                .iter()
                .map(|(k, v)| KeyValue::new(k.clone(), v.clone())),
        )
        .build()
}

/// The batch delay of the development exporter at most.
const STDOUT_DELAY: Duration = Duration::from_millis(200);

/// A bounded batch processor whose batches have their tenants checked (unless
/// [`checked_at_end`]), are redacted and are counted on their way to `exporter`.
fn batch<E: SpanExporter + 'static>(
    exporter: E,
    config: &PipelineConfig,
    redactor: &Redactor,
    counters: &Arc<Counters>,
    detail: &super::otlp::Detail,
) -> BatchSpanProcessor {
    // The development exporter prints a trace once it is quiet: a short delay, so a
    // trace is on the screen within a second of its last span, not five.
    let delay = match config.exporter {
        ExporterConfig::Stdout => config.batch.schedule_delay.min(STDOUT_DELAY),
        _ => config.batch.schedule_delay,
    };
    let batch = BatchConfigBuilder::default()
        .with_scheduled_delay(delay)
        .with_max_queue_size(config.batch.max_queue_size)
        .with_max_export_batch_size(config.batch.max_export_batch_size)
        .build();
    let target: Arc<str> = match &config.exporter {
        ExporterConfig::Otlp(otlp) => otlp.endpoint.as_str().into(),
        ExporterConfig::Stdout | ExporterConfig::StdoutWholeTraces => "stdout".into(),
        _ => "memory".into(),
    };
    let kind = match &config.exporter {
        ExporterConfig::Otlp(otlp) => match otlp.protocol {
            super::OtlpProtocol::HttpProtobuf => "otlp_http_span_exporter",
            super::OtlpProtocol::HttpJson => "otlp_http_json_span_exporter",
            _ => "otlp_grpc_span_exporter",
        },
        ExporterConfig::Stdout | ExporterConfig::StdoutWholeTraces => "stdout_span_exporter",
        _ => "memory_span_exporter",
    };
    let mut labels = vec![metrics::Label::from_static_parts(
        semconv::LABEL_OTEL_COMPONENT_TYPE,
        kind,
    )];
    if let Some((host, port)) = host_and_port(&target) {
        labels.push(metrics::Label::new(
            semconv::LABEL_SERVER_ADDRESS,
            host.to_owned(),
        ));
        labels.push(metrics::Label::new(
            semconv::LABEL_SERVER_PORT,
            port.to_string(),
        ));
    }
    // Checked and redacted on the batch's thread, then counted: the export's
    // duration is the transport's.
    let exporter = CountingExporter {
        counters: Arc::clone(counters),
        inner: exporter,
        target,
        labels: labels.into(),
        failing: Arc::default(),
        detail: Arc::clone(detail),
    };
    let exporter = RedactingExporter::new(redactor.clone(), exporter);
    if checked_at_end(config.missing_tenant) {
        return BatchSpanProcessor::builder(exporter)
            .with_batch_config(batch)
            .build();
    }
    // The tenant first: redaction leaves `tenant.id` as it is, and must not scan a
    // stamp as a value.
    let exporter = TenantExporter::new(config.missing_tenant, exporter);
    BatchSpanProcessor::builder(exporter)
        .with_batch_config(batch)
        .build()
}

/// [`init`] with the configuration the standard `OTEL_*` environment variables give
/// ([`PipelineConfig::from_env`]): the one call a server makes at start-up.
///
/// ```no_run
/// # async fn main_() -> Result<(), Box<dyn std::error::Error>> {
/// let telemetry = instrument_core::pipeline::init_from_env()?;
/// // ... serve ...
/// telemetry.shutdown()?;
/// # Ok(()) }
/// ```
pub fn init_from_env() -> Result<Telemetry, PipelineError> {
    let (config, problems) = PipelineConfig::from_env_lenient();
    let telemetry = init(config)?;
    // Logged once the subscriber is there to write them. No value is repeated: header
    // values are credentials.
    for problem in problems {
        tracing::warn!(
            variable = problem.variable(),
            "{problem}; the default is used"
        );
    }
    Ok(telemetry)
}

/// The OpenTelemetry crates, whose log lines are the SDK's own.
const SDK_TARGETS: [&str; 4] = [
    "opentelemetry",
    "opentelemetry_sdk",
    "opentelemetry_otlp",
    "opentelemetry_http",
];

fn is_sdk_target(target: &str) -> bool {
    SDK_TARGETS
        .iter()
        // Called for every span and event of the process: no allocation.
        .any(|t| {
            target
                .strip_prefix(t)
                .is_some_and(|rest| rest.is_empty() || rest.starts_with("::"))
        })
}

/// `OTEL_LOG_LEVEL` as filter directives for the SDK's crates.
fn sdk_log_directives(
    level: Option<tracing::level_filters::LevelFilter>,
    rust_log: Option<&str>,
) -> Vec<tracing_subscriber::filter::Directive> {
    // Unset: warnings and errors only (its INFO lines, "Global tracer provider is
    // set" and the like, say nothing an operator acts on), unless `RUST_LOG` names one
    // of its targets itself.
    let level = match level {
        Some(level) => level,
        None if rust_log.is_some_and(|v| v.contains("opentelemetry")) => {
            return Vec::new();
        }
        None => tracing::level_filters::LevelFilter::WARN,
    };
    SDK_TARGETS
        .iter()
        .filter_map(|target| format!("{target}={level}").parse().ok())
        .collect()
}

/// The global text-map propagator `config` names: W3C Trace Context through the
/// toolkit's parser and W3C Baggage, in the order given.
fn propagator(config: &PipelineConfig) -> TextMapCompositePropagator {
    let propagators: Vec<Box<dyn TextMapPropagator + Send + Sync>> = config
        .propagators
        .iter()
        .map(|p| -> Box<dyn TextMapPropagator + Send + Sync> {
            match p {
                PropagatorConfig::TraceContext => Box::new(W3cPropagator::new()),
                PropagatorConfig::Baggage => Box::new(BaggagePropagator::new()),
            }
        })
        .collect();
    TextMapCompositePropagator::new(propagators)
}

/// [`build`]s the pipeline and installs it: the global tracing subscriber (the
/// OpenTelemetry layer, [`SpanEventLayer`](super::SpanEventLayer) so that events in a
/// request's handler land on its span, [`JsonLogLayer`](super::JsonLogLayer) on
/// stderr, `RUST_LOG` filtering, default `info`), the global OpenTelemetry tracer provider and the
/// global text-map propagator ([`PipelineConfig::propagators`]: by default W3C Trace
/// Context through [`W3cPropagator`] and W3C Baggage), which other libraries' client
/// instrumentation injects through. Keep the returned guard alive for the life of
/// the process and call [`Telemetry::shutdown`] before exiting.
pub fn init(config: PipelineConfig) -> Result<Telemetry, PipelineError> {
    let telemetry = build(&config)?;
    let mut filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    let rust_log = std::env::var("RUST_LOG").ok();
    for directive in sdk_log_directives(config.sdk_log_level, rust_log.as_deref()) {
        filter = filter.add_directive(directive);
    }
    let logs = super::JsonLogLayer::new(telemetry.redactor().clone(), std::io::stderr);
    // The SDK's own log lines go to the log output, never onto the spans it is
    // exporting (which could recurse into the exporter).
    let spans = telemetry
        .layer()
        .with_filter(tracing_subscriber::filter::filter_fn(|meta| {
            !is_sdk_target(meta.target())
        }));
    // `log` records become `tracing` events (JSON lines, span events, OTLP logs); an
    // application that installed a `log` logger of its own keeps it.
    let _ = tracing_log::LogTracer::init();
    tracing_subscriber::registry()
        .with(filter)
        .with(spans)
        .with(
            super::SpanEventLayer.with_filter(tracing_subscriber::filter::filter_fn(|meta| {
                !is_sdk_target(meta.target())
            })),
        )
        .with(otlp_logs(&telemetry))
        .with(logs)
        .try_init()
        .map_err(|_| PipelineError::SubscriberAlreadySet)?;
    if let Some(provider) = telemetry.tracer_provider() {
        opentelemetry::global::set_tracer_provider(provider.clone());
        let _ = INSTALLED.set((provider.clone(), config.sampler));
        if let Some(tail) = &telemetry.tail {
            tail.install();
        }
    }
    opentelemetry::global::set_text_map_propagator(propagator(&config));
    Ok(telemetry)
}

/// The OTLP log layer of `telemetry`, when it sends logs, kept from the OpenTelemetry
/// crates' own events and the pipeline's lines about its exports (they would loop).
#[cfg(feature = "otlp")]
fn otlp_logs<S>(telemetry: &Telemetry) -> Option<impl tracing_subscriber::Layer<S>>
where
    S: tracing::Subscriber + for<'span> tracing_subscriber::registry::LookupSpan<'span>,
{
    telemetry.log_layer().map(|layer| {
        layer.with_filter(tracing_subscriber::filter::filter_fn(|meta| {
            !is_sdk_target(meta.target()) && !meta.target().starts_with("instrument_core::pipeline")
        }))
    })
}

#[cfg(not(feature = "otlp"))]
fn otlp_logs(_: &Telemetry) -> Option<tracing_subscriber::layer::Identity> {
    None
}

static INSTALLED: std::sync::OnceLock<(SdkTracerProvider, SamplerConfig)> =
    std::sync::OnceLock::new();

/// The tracer provider [`init`] installed as the global one, as the SDK type, and its
/// sampler: the tower layers call its tracer directly rather than through the global
/// API's boxes, and skip the spans a parent-based sampler would drop. `None` before
/// `init`, or when it installed no provider.
pub fn installed_tracer_provider() -> Option<(&'static SdkTracerProvider, SamplerConfig)> {
    INSTALLED
        .get()
        .map(|(provider, sampler)| (provider, *sampler))
}

#[cfg(test)]
mod endpoint_tests {
    use std::sync::atomic::{AtomicU64, Ordering};
    use std::sync::Arc;

    use opentelemetry::trace::{Span as _, Tracer as _, TracerProvider as _};
    use opentelemetry_sdk::trace::{SdkTracerProvider, SpanData, SpanProcessor};

    use super::{host_and_port, is_sdk_target, sdk_log_directives, Counted, Counters};

    /// A batch processor stand-in that counts what it is given and exports nothing.
    #[derive(Debug, Default)]
    struct Given(Arc<AtomicU64>);

    impl SpanProcessor for Given {
        fn on_start(&self, _: &mut opentelemetry_sdk::trace::Span, _: &opentelemetry::Context) {}
        fn on_end(&self, _: SpanData) {
            self.0.fetch_add(1, Ordering::AcqRel);
        }
        fn force_flush(&self) -> opentelemetry_sdk::error::OTelSdkResult {
            Ok(())
        }
        fn shutdown_with_timeout(
            &self,
            _: std::time::Duration,
        ) -> opentelemetry_sdk::error::OTelSdkResult {
            Ok(())
        }
    }

    #[test]
    fn a_full_queue_drops_and_counts_what_it_has_no_room_for() {
        let counters = Arc::new(Counters::default());
        let given = Arc::new(AtomicU64::new(0));
        let provider = SdkTracerProvider::builder()
            .with_span_processor(Counted {
                counters: Arc::clone(&counters),
                capacity: 4,
                inner: Given(Arc::clone(&given)),
            })
            .build();
        let tracer = provider.tracer("t");
        for _ in 0..20 {
            tracer.start("span").end();
        }
        assert_eq!(given.load(Ordering::Acquire), 4, "the queue's worth");
        let stats = counters.stats();
        assert_eq!((stats.ended, stats.queue_full), (20, 16));
        // An export of two frees two places.
        counters.pending.fetch_sub(2, Ordering::AcqRel);
        for _ in 0..3 {
            tracer.start("span").end();
        }
        assert_eq!(given.load(Ordering::Acquire), 6);
        assert_eq!(counters.stats().queue_full, 17);
    }

    #[test]
    fn the_sdk_log_level_filters_the_sdk_crates_only() {
        use tracing::level_filters::LevelFilter;
        assert!(sdk_log_directives(None, Some("info,opentelemetry_sdk=debug")).is_empty());
        let unset: Vec<String> = sdk_log_directives(None, Some("debug"))
            .iter()
            .map(ToString::to_string)
            .collect();
        assert!(
            unset.contains(&"opentelemetry=warn".to_owned()),
            "{unset:?}"
        );
        let directives: Vec<String> = sdk_log_directives(Some(LevelFilter::WARN), None)
            .iter()
            .map(ToString::to_string)
            .collect();
        assert_eq!(directives.len(), 4);
        assert!(
            directives.contains(&"opentelemetry_sdk=warn".to_owned()),
            "{directives:?}"
        );
        assert!(is_sdk_target("opentelemetry_sdk::trace"));
        assert!(is_sdk_target("opentelemetry"));
        assert!(!is_sdk_target("opentelemetry_instrumentation_tower"));
        assert!(!is_sdk_target("instrument_core::pipeline::init"));
    }

    #[test]
    fn host_and_port_of_an_endpoint() {
        for (endpoint, expected) in [
            ("http://collector:4317", Some(("collector", 4317))),
            (
                "https://otlp.example.com/v1/traces",
                Some(("otlp.example.com", 443)),
            ),
            ("http://[::1]:4318/v1/traces", Some(("[::1]", 4318))),
            ("http://[::1]/v1/traces", Some(("[::1]", 80))),
            ("http://c:notaport", None),
            ("collector:4317", None),
            ("http://", None),
        ] {
            assert_eq!(host_and_port(endpoint), expected, "{endpoint}");
        }
    }
}
