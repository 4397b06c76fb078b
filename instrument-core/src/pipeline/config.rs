//! [`PipelineConfig`]: the pipeline's settings, each overridable in code; `env.rs`
//! reads them from the standard `OTEL_*` environment variables.

use std::fmt;
use std::path::PathBuf;
use std::time::Duration;

use opentelemetry_sdk::trace::{ParentBasedSampler, Sampler, ShouldSample};

use super::MissingTenant;
use crate::sampling::{ParentBasedProbabilitySampler, ProbabilitySampler, Threshold};

/// How root spans are sampled (`OTEL_TRACES_SAMPLER` / `OTEL_TRACES_SAMPLER_ARG`).
#[derive(Debug, Clone, Copy, PartialEq)]
#[non_exhaustive]
pub enum SamplerConfig {
    /// `always_on`.
    AlwaysOn,
    /// `always_off`.
    AlwaysOff,
    /// `traceidratio`: this fraction of traces, ignoring the parent's decision.
    TraceIdRatio(f64),
    /// `parentbased_always_on` (the default): follow the parent, sample roots.
    ParentBasedAlwaysOn,
    /// `parentbased_always_off`: follow the parent, drop roots.
    ParentBasedAlwaysOff,
    /// `parentbased_traceidratio`: follow the parent, sample this fraction of roots.
    ParentBasedTraceIdRatio(f64),
    /// `consistent_probability`: the specification's consistent `ProbabilitySampler`
    /// ([`ProbabilitySampler`](crate::sampling::ProbabilitySampler)): this fraction of
    /// spans, decided by each span's randomness (`rv`, else the trace id) whatever the
    /// parent decided, `th` written into the `tracestate` of those sampled.
    ConsistentProbability(f64),
    /// `parentbased_consistent_probability`: follow the parent (and its `th`), sample
    /// this fraction of roots consistently
    /// ([`ParentBasedProbabilitySampler`](crate::sampling::ParentBasedProbabilitySampler)).
    ParentBasedConsistentProbability(f64),
}

impl SamplerConfig {
    /// Whether a span whose parent was not sampled is dropped, whatever else is true of
    /// it: the parent-based samplers follow their parent.
    pub fn follows_parent(self) -> bool {
        matches!(
            self,
            Self::ParentBasedAlwaysOn
                | Self::ParentBasedAlwaysOff
                | Self::ParentBasedTraceIdRatio(_)
                | Self::ParentBasedConsistentProbability(_)
        )
    }

    /// Whether every span without a parent is sampled: `always_on`, the parent-based
    /// default, and a ratio or probability of 1. A layer then builds a root span's
    /// attributes before the sampler decides, straight into the vector the span keeps,
    /// instead of after it, one by one into a vector the SDK grows.
    ///
    /// ```
    /// use instrument_core::pipeline::SamplerConfig;
    ///
    /// assert!(SamplerConfig::ParentBasedAlwaysOn.samples_roots());
    /// assert!(SamplerConfig::TraceIdRatio(1.0).samples_roots());
    /// assert!(!SamplerConfig::ParentBasedTraceIdRatio(0.01).samples_roots());
    /// ```
    pub fn samples_roots(self) -> bool {
        match self {
            Self::AlwaysOn | Self::ParentBasedAlwaysOn => true,
            Self::AlwaysOff | Self::ParentBasedAlwaysOff => false,
            Self::TraceIdRatio(ratio)
            | Self::ParentBasedTraceIdRatio(ratio)
            | Self::ConsistentProbability(ratio)
            | Self::ParentBasedConsistentProbability(ratio) => ratio >= 1.0,
        }
    }

    /// The SDK sampler this names, as [`init`](super::init) installs it: build a tracer
    /// provider of one's own from the same value given to the tower layers'
    /// `tracer_sampled_by`, and the two agree. The parent-based ones are the SDK's
    /// spec-compliant `ParentBasedSampler`: an invalid parent (a fresh trace from
    /// `restore`) falls back to the root sampler, where the older
    /// `Sampler::ParentBased` treats it as an unsampled parent and drops the span.
    ///
    /// ```
    /// use instrument_core::pipeline::SamplerConfig;
    /// use opentelemetry_sdk::trace::SdkTracerProvider;
    ///
    /// let sampler = SamplerConfig::ParentBasedTraceIdRatio(0.01);
    /// let provider = SdkTracerProvider::builder()
    ///     .with_sampler(sampler.sampler())
    ///     .build();
    /// # let _ = provider;
    /// ```
    pub fn sampler(self) -> Box<dyn ShouldSample> {
        match self {
            Self::AlwaysOn => Box::new(Sampler::AlwaysOn),
            Self::AlwaysOff => Box::new(Sampler::AlwaysOff),
            Self::TraceIdRatio(r) => Box::new(Sampler::TraceIdRatioBased(r)),
            Self::ParentBasedAlwaysOn => Box::new(ParentBasedSampler::new(Sampler::AlwaysOn)),
            Self::ParentBasedAlwaysOff => Box::new(ParentBasedSampler::new(Sampler::AlwaysOff)),
            Self::ParentBasedTraceIdRatio(r) => {
                Box::new(ParentBasedSampler::new(Sampler::TraceIdRatioBased(r)))
            }
            // A ratio below 2^-56 has no threshold: nothing is sampled at the root.
            Self::ConsistentProbability(r) => match Threshold::from_probability(r) {
                Ok(t) => Box::new(ProbabilitySampler::new(t)),
                Err(_) => Box::new(Sampler::AlwaysOff),
            },
            Self::ParentBasedConsistentProbability(r) => match Threshold::from_probability(r) {
                Ok(t) => Box::new(ParentBasedProbabilitySampler::new(t)),
                Err(_) => Box::new(ParentBasedSampler::new(Sampler::AlwaysOff)),
            },
        }
    }
}

/// A propagator `OTEL_PROPAGATORS` names, installed by `init` as the global
/// text-map propagator (in the order given).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum PropagatorConfig {
    /// `tracecontext`: W3C Trace Context through the toolkit's own parser
    /// ([`W3cPropagator`](crate::context::W3cPropagator)).
    TraceContext,
    /// `baggage`: W3C Baggage (opentelemetry_sdk's `BaggagePropagator`). Baggage never
    /// becomes a span attribute.
    Baggage,
}

/// Where spans go.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub enum ExporterConfig {
    /// OTLP to a collector (feature `otlp`), over gRPC or HTTP.
    Otlp(OtlpConfig),
    /// Each finished trace printed to stdout as an indented tree (the development
    /// default when no endpoint is configured).
    Stdout,
    /// Each trace printed whole to stdout as one tree, at flush or shutdown: for short
    /// programs such as the demo, where a workflow's requests, its worker's spans and
    /// its downstream calls belong in one picture. Spans are held until then (at most
    /// 10,000; beyond, the oldest trace is printed early).
    StdoutWholeTraces,
    /// Spans kept in memory, for tests.
    Memory(super::MemoryExporter),
    /// Nothing is exported.
    None,
}

/// The OTLP transport (`OTEL_EXPORTER_OTLP_PROTOCOL`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum OtlpProtocol {
    /// `grpc`: OTLP/gRPC, usually port 4317. The toolkit's default (see
    /// [`OtlpConfig`]).
    Grpc,
    /// `http/protobuf`: OTLP/HTTP with protobuf bodies, usually port 4318, path
    /// `/v1/traces`.
    HttpProtobuf,
    /// `http/json`: OTLP/HTTP with JSON bodies, as `http/protobuf` otherwise.
    HttpJson,
}

/// Compression of export requests (`OTEL_EXPORTER_OTLP_COMPRESSION`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
pub enum OtlpCompression {
    /// `none` (the default).
    #[default]
    None,
    /// `gzip`.
    Gzip,
}

/// Where and how OTLP export sends spans.
///
/// From the environment: `OTEL_EXPORTER_OTLP_*` and their `OTEL_EXPORTER_OTLP_TRACES_*`
/// forms (the latter win). The protocol defaults to `grpc`, where the specification
/// advises `http/protobuf`: a deployment of this toolkit that set only
/// `OTEL_EXPORTER_OTLP_ENDPOINT=http://collector:4317` keeps working; set
/// `OTEL_EXPORTER_OTLP_PROTOCOL=http/protobuf` for port 4318. An `https` endpoint is
/// verified against the system's roots and the CA in `..._CERTIFICATE`; a client
/// certificate (`..._CLIENT_CERTIFICATE` with `..._CLIENT_KEY`) is presented when the
/// collector asks for one (mTLS).
///
/// ```
/// use std::time::Duration;
///
/// use instrument_core::pipeline::{OtlpCompression, OtlpConfig, OtlpProtocol};
///
/// let config = OtlpConfig::http("https://otlp.example.com/v1/traces")
///     .with_headers([("x-api-key", "secret")])
///     .with_compression(OtlpCompression::Gzip)
///     .with_timeout(Duration::from_secs(5));
/// assert_eq!(config.protocol, OtlpProtocol::HttpProtobuf);
/// ```
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub struct OtlpConfig {
    /// The URL requests go to: for gRPC the collector (`http://host:4317`), for HTTP
    /// the whole path (`http://host:4318/v1/traces`).
    pub endpoint: String,
    /// gRPC or HTTP.
    pub protocol: OtlpProtocol,
    /// Extra headers or gRPC metadata (`..._HEADERS`), e.g. an API key. Never logged.
    pub headers: Vec<(String, String)>,
    /// Per-export timeout (`..._TIMEOUT`, default 10 s).
    pub timeout: Duration,
    /// Request compression (`..._COMPRESSION`).
    pub compression: OtlpCompression,
    /// PEM file of the CA that signed the collector's certificate (`..._CERTIFICATE`),
    /// trusted beside the system's roots.
    pub certificate: Option<PathBuf>,
    /// PEM file of the client certificate for mTLS (`..._CLIENT_CERTIFICATE`).
    pub client_certificate: Option<PathBuf>,
    /// PEM file of the client certificate's private key (`..._CLIENT_KEY`).
    pub client_key: Option<PathBuf>,
}

impl OtlpConfig {
    /// OTLP/gRPC to `endpoint` (`http://host:4317`, or `https://`).
    pub fn grpc(endpoint: impl Into<String>) -> Self {
        Self::new(endpoint.into(), OtlpProtocol::Grpc)
    }

    /// OTLP/HTTP (protobuf) to `endpoint`, the whole URL (`http://host:4318/v1/traces`).
    pub fn http(endpoint: impl Into<String>) -> Self {
        Self::new(endpoint.into(), OtlpProtocol::HttpProtobuf)
    }

    fn new(endpoint: String, protocol: OtlpProtocol) -> Self {
        Self {
            endpoint,
            protocol,
            headers: Vec::new(),
            timeout: DEFAULT_OTLP_TIMEOUT,
            compression: OtlpCompression::None,
            certificate: None,
            client_certificate: None,
            client_key: None,
        }
    }

    /// Adds headers (gRPC metadata for gRPC).
    pub fn with_headers<K: Into<String>, V: Into<String>>(
        mut self,
        headers: impl IntoIterator<Item = (K, V)>,
    ) -> Self {
        self.headers
            .extend(headers.into_iter().map(|(k, v)| (k.into(), v.into())));
        self
    }

    /// Sets the per-export timeout.
    pub fn with_timeout(mut self, timeout: Duration) -> Self {
        self.timeout = timeout;
        self
    }

    /// Sets the compression.
    pub fn with_compression(mut self, compression: OtlpCompression) -> Self {
        self.compression = compression;
        self
    }

    /// Trusts the CA in the PEM file at `path` beside the system's roots.
    pub fn with_certificate(mut self, path: impl Into<PathBuf>) -> Self {
        self.certificate = Some(path.into());
        self
    }

    /// Presents the client certificate and key in these PEM files (mTLS).
    pub fn with_client_identity(
        mut self,
        certificate: impl Into<PathBuf>,
        key: impl Into<PathBuf>,
    ) -> Self {
        self.client_certificate = Some(certificate.into());
        self.client_key = Some(key.into());
        self
    }
}

/// Where metrics go (`OTEL_METRICS_EXPORTER`).
///
/// The default is the Prometheus endpoint ([`install_prometheus`](super::install_prometheus)
/// and [`serve_metrics`](super::serve_metrics)), where the specification's default is
/// `otlp`: a team that points `OTEL_EXPORTER_OTLP_ENDPOINT` at a collector for its
/// traces keeps its scraped `/metrics`. `OTEL_METRICS_EXPORTER=otlp` pushes them to the
/// collector instead ([`install_otlp_metrics`](super::install_otlp_metrics), feature
/// `otlp`), through the same label guard and under the same names.
#[derive(Debug, Clone, PartialEq, Default)]
#[non_exhaustive]
pub enum MetricsConfig {
    /// A Prometheus endpoint (the default).
    #[default]
    Prometheus,
    /// OTLP to a collector.
    Otlp(OtlpMetricsConfig),
    /// No metrics exported.
    None,
}

/// Aggregation temporality of OTLP metrics
/// (`OTEL_EXPORTER_OTLP_METRICS_TEMPORALITY_PREFERENCE`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
pub enum Temporality {
    /// `cumulative` (the default): totals since the start.
    #[default]
    Cumulative,
    /// `delta`: changes since the last export.
    Delta,
    /// `lowmemory`: delta for counters and histograms, cumulative for up-down counters.
    LowMemory,
}

/// OTLP metrics export: where, how often, with which temporality.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub struct OtlpMetricsConfig {
    /// The collector, from the `OTEL_EXPORTER_OTLP_METRICS_*` variables and the generic
    /// ones (for HTTP the generic endpoint gets `/v1/metrics`).
    pub otlp: OtlpConfig,
    /// Time between exports (`OTEL_METRIC_EXPORT_INTERVAL`, default 60 s).
    pub interval: Duration,
    /// `OTEL_EXPORTER_OTLP_METRICS_TEMPORALITY_PREFERENCE`.
    pub temporality: Temporality,
}

impl OtlpMetricsConfig {
    /// Metrics to `otlp` every 60 s, cumulative.
    pub fn new(otlp: OtlpConfig) -> Self {
        Self {
            otlp,
            interval: Duration::from_secs(60),
            temporality: Temporality::Cumulative,
        }
    }
}

/// Batch span processor settings (`OTEL_BSP_*`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub struct BatchConfig {
    /// Delay between exports (`OTEL_BSP_SCHEDULE_DELAY`, ms, default 5000).
    pub schedule_delay: Duration,
    /// Time one export may take (`OTEL_BSP_EXPORT_TIMEOUT`, ms, default 30000); the
    /// OTLP exporter uses the smaller of this and `OTEL_EXPORTER_OTLP_TIMEOUT`.
    pub export_timeout: Duration,
    /// Spans held before new ones are dropped, and counted (`OTEL_BSP_MAX_QUEUE_SIZE`, default 2048).
    pub max_queue_size: usize,
    /// Spans per export (`OTEL_BSP_MAX_EXPORT_BATCH_SIZE`, default 512, at most the queue size).
    pub max_export_batch_size: usize,
}

impl Default for BatchConfig {
    fn default() -> Self {
        Self {
            schedule_delay: Duration::from_millis(5000),
            export_timeout: Duration::from_millis(30_000),
            max_queue_size: 2048,
            max_export_batch_size: 512,
        }
    }
}

/// Everything the pipeline is built from.
///
/// ```
/// use instrument_core::pipeline::{ExporterConfig, PipelineConfig, SamplerConfig};
///
/// let config = PipelineConfig::from_vars([
///     ("OTEL_SERVICE_NAME", "workflow-server"),
///     ("OTEL_EXPORTER_OTLP_ENDPOINT", "http://collector:4317"),
///     ("OTEL_TRACES_SAMPLER", "parentbased_traceidratio"),
///     ("OTEL_TRACES_SAMPLER_ARG", "0.01"),
/// ])?
/// .with_service_name("workflow-server-eu");
/// assert_eq!(config.sampler, SamplerConfig::ParentBasedTraceIdRatio(0.01));
/// assert!(matches!(config.exporter, ExporterConfig::Otlp { .. }));
///
/// let err = PipelineConfig::from_vars([("OTEL_TRACES_SAMPLER_ARG", "lots")]).unwrap_err();
/// assert_eq!(err.variable(), "OTEL_TRACES_SAMPLER_ARG");
/// # Ok::<(), instrument_core::pipeline::ConfigError>(())
/// ```
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub struct PipelineConfig {
    /// `OTEL_SDK_DISABLED=true`: no tracer provider is installed at all.
    pub disabled: bool,
    /// `OTEL_SERVICE_NAME`, else `service.name` of `OTEL_RESOURCE_ATTRIBUTES`, else the
    /// specification's `unknown_service:<executable name>`.
    pub service_name: String,
    /// `OTEL_RESOURCE_ATTRIBUTES` (`key=value,key=value`, values percent-decoded).
    pub resource_attributes: Vec<(String, String)>,
    /// Where spans go.
    pub exporter: ExporterConfig,
    /// Where metrics go.
    pub metrics: MetricsConfig,
    /// Where log records go besides the JSON lines on stderr.
    pub logs: LogsConfig,
    /// How much the OpenTelemetry SDK logs about itself (`OTEL_LOG_LEVEL`: `error`,
    /// `warn`, `info`, `debug`, `trace`, `none`); `None`: `warn`, or as `RUST_LOG` says
    /// when it names an `opentelemetry` target.
    pub sdk_log_level: Option<tracing::level_filters::LevelFilter>,
    /// Root sampling.
    pub sampler: SamplerConfig,
    /// The global propagators (`OTEL_PROPAGATORS`, default `tracecontext,baggage`;
    /// `none`: empty).
    pub propagators: Vec<PropagatorConfig>,
    /// Batching.
    pub batch: BatchConfig,
    /// Spans without a tenant.
    pub missing_tenant: MissingTenant,
    /// Which sampled-out requests are exported anyway (`INSTRUMENT_TAIL_*`; off by
    /// default).
    pub tail: crate::sampling::TailBias,
    /// How long shutdown may take to flush before it gives up and reports it.
    pub shutdown_timeout: Duration,
}

impl Default for PipelineConfig {
    fn default() -> Self {
        Self {
            disabled: false,
            service_name: unknown_service(),
            resource_attributes: Vec::new(),
            exporter: ExporterConfig::Stdout,
            metrics: MetricsConfig::Prometheus,
            logs: LogsConfig::JsonLines,
            sdk_log_level: None,
            sampler: SamplerConfig::ParentBasedAlwaysOn,
            propagators: vec![PropagatorConfig::TraceContext, PropagatorConfig::Baggage],
            batch: BatchConfig::default(),
            missing_tenant: MissingTenant::default(),
            tail: crate::sampling::TailBias::default(),
            shutdown_timeout: Duration::from_secs(5),
        }
    }
}

/// `unknown_service:<executable name>`, or `unknown_service` when the executable has
/// no name (the specification's default service name).
fn unknown_service() -> String {
    let exe = std::env::current_exe().ok();
    match exe.as_deref().and_then(std::path::Path::file_stem) {
        Some(name) => format!("unknown_service:{}", name.to_string_lossy()),
        None => "unknown_service".to_owned(),
    }
}

/// An environment variable with a value the pipeline cannot use.
///
/// The message names the variable and says what is wrong with the value; it never
/// repeats the value of `OTEL_EXPORTER_OTLP_HEADERS`, which usually holds credentials.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigError {
    variable: &'static str,
    problem: String,
}

impl ConfigError {
    pub(super) fn new(variable: &'static str, problem: impl Into<String>) -> Self {
        Self {
            variable,
            problem: problem.into(),
        }
    }

    /// The variable that was wrong.
    pub fn variable(&self) -> &'static str {
        self.variable
    }

    /// What was wrong with it.
    pub fn problem(&self) -> &str {
        &self.problem
    }
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.variable, self.problem)
    }
}

impl std::error::Error for ConfigError {}

/// Where `tracing` events go (`OTEL_LOGS_EXPORTER`). The JSON lines on stderr are
/// always written; OTLP comes on top.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub enum LogsConfig {
    /// JSON lines on stderr only: the default without an OTLP endpoint, and for
    /// `OTEL_LOGS_EXPORTER=none` or `console`.
    JsonLines,
    /// Also as OTLP log records, through a batch processor (`OTEL_BLRP_*`): each with
    /// the trace and span ids of the span it was emitted in, its tenant, and every
    /// value redacted.
    Otlp {
        /// Where and how (`OTEL_EXPORTER_OTLP_LOGS_*` over the generic variables).
        otlp: OtlpConfig,
        /// The batch processor: delay 1 s, export timeout 30 s, queue 2,048, batch 512
        /// by default, as the specification says for logs.
        batch: BatchConfig,
    },
}

impl LogsConfig {
    /// OTLP log records to `otlp` with the specification's batch defaults for logs.
    pub fn otlp(otlp: OtlpConfig) -> Self {
        Self::Otlp {
            otlp,
            batch: BatchConfig::logs(),
        }
    }
}

impl BatchConfig {
    /// The defaults of the batch log record processor (`OTEL_BLRP_*`): a 1 s delay,
    /// otherwise as for spans.
    pub fn logs() -> Self {
        Self {
            schedule_delay: Duration::from_millis(1000),
            ..Self::default()
        }
    }
}

/// Default OTLP export timeout (the specification's 10 s).
pub(super) const DEFAULT_OTLP_TIMEOUT: Duration = Duration::from_secs(10);

impl PipelineConfig {
    /// Overrides where log records go.
    pub fn with_logs(mut self, logs: LogsConfig) -> Self {
        self.logs = logs;
        self
    }

    /// Overrides the service name.
    pub fn with_service_name(mut self, name: impl Into<String>) -> Self {
        self.service_name = name.into();
        self
    }

    /// Overrides the exporter.
    pub fn with_exporter(mut self, exporter: ExporterConfig) -> Self {
        self.exporter = exporter;
        self
    }

    /// Overrides the sampler.
    pub fn with_sampler(mut self, sampler: SamplerConfig) -> Self {
        self.sampler = sampler;
        self
    }

    /// Overrides the tail bias: which requests the head sampler dropped are exported
    /// anyway (see [`TailBias`](crate::sampling::TailBias)).
    pub fn with_tail_bias(mut self, tail: crate::sampling::TailBias) -> Self {
        self.tail = tail;
        self
    }

    /// Overrides the global propagators (empty: `init` installs none that injects
    /// anything).
    pub fn with_propagators(
        mut self,
        propagators: impl IntoIterator<Item = PropagatorConfig>,
    ) -> Self {
        self.propagators = propagators.into_iter().collect();
        self
    }

    /// Overrides the batch settings.
    pub fn with_batch(mut self, batch: BatchConfig) -> Self {
        self.batch = batch;
        self
    }

    /// Overrides the policy for spans without a tenant.
    pub fn with_missing_tenant(mut self, missing: MissingTenant) -> Self {
        self.missing_tenant = missing;
        self
    }

    /// Overrides the shutdown timeout.
    pub fn with_shutdown_timeout(mut self, timeout: Duration) -> Self {
        self.shutdown_timeout = timeout;
        self
    }

    /// Adds a resource attribute.
    pub fn with_resource_attribute(
        mut self,
        key: impl Into<String>,
        value: impl Into<String>,
    ) -> Self {
        self.resource_attributes.push((key.into(), value.into()));
        self
    }
}
