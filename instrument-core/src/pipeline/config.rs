//! [`PipelineConfig`]: the pipeline's settings, from the standard `OTEL_*` environment
//! variables, each overridable in code.

use std::collections::HashMap;
use std::fmt;
use std::path::PathBuf;
use std::time::Duration;

use super::MissingTenant;

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
        )
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
            sdk_log_level: None,
            sampler: SamplerConfig::ParentBasedAlwaysOn,
            propagators: vec![PropagatorConfig::TraceContext, PropagatorConfig::Baggage],
            batch: BatchConfig::default(),
            missing_tenant: MissingTenant::default(),
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
    fn new(variable: &'static str, problem: impl Into<String>) -> Self {
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

const DISABLED: &str = "OTEL_SDK_DISABLED";
const SERVICE_NAME: &str = "OTEL_SERVICE_NAME";
const RESOURCE_ATTRIBUTES: &str = "OTEL_RESOURCE_ATTRIBUTES";
const TRACES_EXPORTER: &str = "OTEL_TRACES_EXPORTER";
/// The OTLP settings of one signal: the generic variable of each, the signal's own
/// (which wins), and the signal's path on an HTTP collector.
struct SignalVars {
    endpoint: &'static str,
    protocol: &'static str,
    headers: &'static str,
    timeout: &'static str,
    compression: &'static str,
    insecure: &'static str,
    certificate: &'static str,
    client_certificate: &'static str,
    client_key: &'static str,
    path: &'static str,
}

const ENDPOINT: &str = "OTEL_EXPORTER_OTLP_ENDPOINT";
const GENERIC: SignalVars = SignalVars {
    endpoint: ENDPOINT,
    protocol: "OTEL_EXPORTER_OTLP_PROTOCOL",
    headers: "OTEL_EXPORTER_OTLP_HEADERS",
    timeout: "OTEL_EXPORTER_OTLP_TIMEOUT",
    compression: "OTEL_EXPORTER_OTLP_COMPRESSION",
    insecure: "OTEL_EXPORTER_OTLP_INSECURE",
    certificate: "OTEL_EXPORTER_OTLP_CERTIFICATE",
    client_certificate: "OTEL_EXPORTER_OTLP_CLIENT_CERTIFICATE",
    client_key: "OTEL_EXPORTER_OTLP_CLIENT_KEY",
    path: "",
};
const TRACES: SignalVars = SignalVars {
    endpoint: "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT",
    protocol: "OTEL_EXPORTER_OTLP_TRACES_PROTOCOL",
    headers: "OTEL_EXPORTER_OTLP_TRACES_HEADERS",
    timeout: "OTEL_EXPORTER_OTLP_TRACES_TIMEOUT",
    compression: "OTEL_EXPORTER_OTLP_TRACES_COMPRESSION",
    insecure: "OTEL_EXPORTER_OTLP_TRACES_INSECURE",
    certificate: "OTEL_EXPORTER_OTLP_TRACES_CERTIFICATE",
    client_certificate: "OTEL_EXPORTER_OTLP_TRACES_CLIENT_CERTIFICATE",
    client_key: "OTEL_EXPORTER_OTLP_TRACES_CLIENT_KEY",
    path: "/v1/traces",
};
const METRICS: SignalVars = SignalVars {
    endpoint: "OTEL_EXPORTER_OTLP_METRICS_ENDPOINT",
    protocol: "OTEL_EXPORTER_OTLP_METRICS_PROTOCOL",
    headers: "OTEL_EXPORTER_OTLP_METRICS_HEADERS",
    timeout: "OTEL_EXPORTER_OTLP_METRICS_TIMEOUT",
    compression: "OTEL_EXPORTER_OTLP_METRICS_COMPRESSION",
    insecure: "OTEL_EXPORTER_OTLP_METRICS_INSECURE",
    certificate: "OTEL_EXPORTER_OTLP_METRICS_CERTIFICATE",
    client_certificate: "OTEL_EXPORTER_OTLP_METRICS_CLIENT_CERTIFICATE",
    client_key: "OTEL_EXPORTER_OTLP_METRICS_CLIENT_KEY",
    path: "/v1/metrics",
};
const METRICS_EXPORTER: &str = "OTEL_METRICS_EXPORTER";
const LOG_LEVEL: &str = "OTEL_LOG_LEVEL";
const METRIC_EXPORT_INTERVAL: &str = "OTEL_METRIC_EXPORT_INTERVAL";
const METRIC_EXPORT_TIMEOUT: &str = "OTEL_METRIC_EXPORT_TIMEOUT";
const TEMPORALITY: &str = "OTEL_EXPORTER_OTLP_METRICS_TEMPORALITY_PREFERENCE";
const SAMPLER: &str = "OTEL_TRACES_SAMPLER";
const SAMPLER_ARG: &str = "OTEL_TRACES_SAMPLER_ARG";
const PROPAGATORS: &str = "OTEL_PROPAGATORS";
const BSP_SCHEDULE_DELAY: &str = "OTEL_BSP_SCHEDULE_DELAY";
const BSP_EXPORT_TIMEOUT: &str = "OTEL_BSP_EXPORT_TIMEOUT";
const BSP_MAX_QUEUE_SIZE: &str = "OTEL_BSP_MAX_QUEUE_SIZE";
const BSP_MAX_EXPORT_BATCH_SIZE: &str = "OTEL_BSP_MAX_EXPORT_BATCH_SIZE";

/// Default OTLP export timeout (the specification's 10 s).
const DEFAULT_OTLP_TIMEOUT: Duration = Duration::from_secs(10);

impl PipelineConfig {
    /// Reads the process environment, strictly: the first invalid value is an error
    /// (for teams that prefer failing at start). [`PipelineConfig::from_env_lenient`]
    /// follows the specification instead.
    pub fn from_env() -> Result<Self, ConfigError> {
        Self::from_vars(std::env::vars())
    }

    /// Reads the process environment as the OpenTelemetry specification says: an
    /// invalid value is reported and its default used. The problems come back to be
    /// logged (`init_from_env` logs each once, as a warning).
    pub fn from_env_lenient() -> (Self, Vec<ConfigError>) {
        Self::from_vars_lenient(std::env::vars())
    }

    /// Reads the given variables (as the environment would hold them), strictly: the
    /// first invalid value is an error. Unset and empty variables take their defaults,
    /// as the OpenTelemetry specification says; enumerated values (sampler and
    /// propagator names, booleans) are matched case-insensitively.
    pub fn from_vars<I, K, V>(vars: I) -> Result<Self, ConfigError>
    where
        I: IntoIterator<Item = (K, V)>,
        K: AsRef<str>,
        V: AsRef<str>,
    {
        let mut problem = None;
        let config = Self::read(vars, &mut |e| {
            problem = Some(e);
            false
        });
        match problem {
            Some(e) => Err(e),
            None => Ok(config),
        }
    }

    /// [`PipelineConfig::from_vars`] as the specification says: each invalid value is
    /// returned as a problem and replaced by its default.
    ///
    /// ```
    /// use instrument_core::pipeline::{PipelineConfig, SamplerConfig};
    ///
    /// let (config, problems) = PipelineConfig::from_vars_lenient([
    ///     ("OTEL_TRACES_SAMPLER", "ParentBased_TraceIdRatio"),
    ///     ("OTEL_TRACES_SAMPLER_ARG", "lots"),
    /// ]);
    /// assert_eq!(config.sampler, SamplerConfig::ParentBasedTraceIdRatio(1.0));
    /// assert_eq!(problems[0].variable(), "OTEL_TRACES_SAMPLER_ARG");
    /// ```
    pub fn from_vars_lenient<I, K, V>(vars: I) -> (Self, Vec<ConfigError>)
    where
        I: IntoIterator<Item = (K, V)>,
        K: AsRef<str>,
        V: AsRef<str>,
    {
        let mut problems = Vec::new();
        let config = Self::read(vars, &mut |e| {
            problems.push(e);
            true
        });
        (config, problems)
    }

    /// Reads `vars`, handing each problem to `report`, which says whether to go on
    /// (with the default for that value) or stop.
    fn read<I, K, V>(vars: I, report: &mut dyn FnMut(ConfigError) -> bool) -> Self
    where
        I: IntoIterator<Item = (K, V)>,
        K: AsRef<str>,
        V: AsRef<str>,
    {
        let vars: HashMap<String, String> = vars
            .into_iter()
            .filter(|(k, v)| k.as_ref().starts_with("OTEL_") && !v.as_ref().trim().is_empty())
            .map(|(k, v)| (k.as_ref().to_owned(), v.as_ref().trim().to_owned()))
            .collect();
        let get = |name: &str| vars.get(name).map(String::as_str);
        let mut config = Self::default();
        // `Some(value)`, or the problem reported and `None` (the default stays), or,
        // when `report` says to stop, the config read so far.
        macro_rules! check {
            ($result:expr) => {
                match $result {
                    Ok(value) => Some(value),
                    Err(e) => {
                        if !report(e) {
                            return config;
                        }
                        None
                    }
                }
            };
        }

        if let Some(v) = get(DISABLED) {
            if let Some(disabled) = check!(parse_bool(DISABLED, v)) {
                config.disabled = disabled;
            }
        }
        if let Some(v) = get(RESOURCE_ATTRIBUTES) {
            if let Some(pairs) = check!(parse_pairs(RESOURCE_ATTRIBUTES, v, true)) {
                config.resource_attributes = pairs;
            }
            if let Some((_, name)) = config
                .resource_attributes
                .iter()
                .find(|(k, _)| k == "service.name")
            {
                config.service_name = name.clone();
            }
        }
        // OTEL_SERVICE_NAME wins over service.name in the resource attributes.
        if let Some(v) = get(SERVICE_NAME) {
            config.service_name = v.to_owned();
        }

        if let Some(v) = get(LOG_LEVEL) {
            config.sdk_log_level = check!(parse_log_level(v));
        }
        let exporter = match get(TRACES_EXPORTER) {
            Some(v) => check!(parse_traces_exporter(v)),
            None => None,
        };
        let mut problems = Vec::new();
        match exporter {
            Some(TracesExporter::Console) => config.exporter = ExporterConfig::Stdout,
            Some(TracesExporter::None) => config.exporter = ExporterConfig::None,
            // OTLP when asked for by name, or when an endpoint or protocol says where;
            // an endpoint that cannot be used leaves the default exporter.
            Some(TracesExporter::Otlp) | None => {
                let named = matches!(exporter, Some(TracesExporter::Otlp));
                if let Some(otlp) = read_otlp(&get, &TRACES, named, &mut problems) {
                    config.exporter = ExporterConfig::Otlp(otlp);
                }
            }
        }
        for problem in problems.drain(..) {
            check!(Err::<(), _>(problem));
        }

        match get(METRICS_EXPORTER).map(parse_metrics_exporter) {
            None => {}
            Some(Err(problem)) => {
                check!(Err::<(), _>(problem));
            }
            Some(Ok(MetricsExporter::Prometheus)) => config.metrics = MetricsConfig::Prometheus,
            Some(Ok(MetricsExporter::None)) => config.metrics = MetricsConfig::None,
            Some(Ok(MetricsExporter::Otlp)) => {
                let otlp = read_otlp(&get, &METRICS, true, &mut problems);
                let interval = match get(METRIC_EXPORT_INTERVAL) {
                    Some(v) => parse_millis(METRIC_EXPORT_INTERVAL, v)
                        .map_err(|e| problems.push(e))
                        .ok(),
                    None => None,
                };
                let export_timeout = match get(METRIC_EXPORT_TIMEOUT) {
                    Some(v) => parse_millis(METRIC_EXPORT_TIMEOUT, v)
                        .map_err(|e| problems.push(e))
                        .ok(),
                    None => None,
                };
                let temporality = match get(TEMPORALITY) {
                    Some(v) => parse_temporality(v).map_err(|e| problems.push(e)).ok(),
                    None => None,
                };
                if let Some(mut otlp) = otlp {
                    if let Some(timeout) = export_timeout {
                        otlp.timeout = otlp.timeout.min(timeout);
                    }
                    let mut metrics = OtlpMetricsConfig::new(otlp);
                    if let Some(interval) = interval.filter(|i| !i.is_zero()) {
                        metrics.interval = interval;
                    }
                    if let Some(temporality) = temporality {
                        metrics.temporality = temporality;
                    }
                    config.metrics = MetricsConfig::Otlp(metrics);
                }
            }
        }
        for problem in problems {
            check!(Err::<(), _>(problem));
        }

        let ratio = match get(SAMPLER_ARG) {
            Some(v) => check!(parse_ratio(v)),
            None => None,
        };
        if let Some(v) = get(SAMPLER) {
            if let Some(sampler) = check!(parse_sampler(v, ratio)) {
                config.sampler = sampler;
            }
        }

        if let Some(v) = get(PROPAGATORS) {
            let mut propagators = Vec::new();
            for name in v.split(',').map(str::trim).filter(|n| !n.is_empty()) {
                if let Some(Some(propagator)) = check!(parse_propagator(name)) {
                    if !propagators.contains(&propagator) {
                        propagators.push(propagator);
                    }
                } else if name.eq_ignore_ascii_case("none") {
                    propagators.clear();
                    break;
                }
            }
            config.propagators = propagators;
        }

        let defaults = BatchConfig::default();
        let millis =
            |variable, default| get(variable).map_or(Ok(default), |v| parse_millis(variable, v));
        let count =
            |variable, default| get(variable).map_or(Ok(default), |v| parse_count(variable, v));
        let schedule_delay = check!(millis(BSP_SCHEDULE_DELAY, defaults.schedule_delay));
        config.batch.schedule_delay = schedule_delay.unwrap_or(defaults.schedule_delay);
        let export_timeout = check!(millis(BSP_EXPORT_TIMEOUT, defaults.export_timeout));
        config.batch.export_timeout = export_timeout.unwrap_or(defaults.export_timeout);
        let queue = check!(count(BSP_MAX_QUEUE_SIZE, defaults.max_queue_size));
        config.batch.max_queue_size = queue.unwrap_or(defaults.max_queue_size);
        let batch = check!(count(
            BSP_MAX_EXPORT_BATCH_SIZE,
            defaults.max_export_batch_size
        ));
        config.batch.max_export_batch_size = batch.unwrap_or(defaults.max_export_batch_size);
        let (batch, queue) = (
            config.batch.max_export_batch_size,
            config.batch.max_queue_size,
        );
        if batch > queue {
            config.batch.max_export_batch_size = queue;
            check!(Err::<(), _>(ConfigError::new(
                BSP_MAX_EXPORT_BATCH_SIZE,
                format!("is {batch}, larger than the queue ({queue}); the queue size is used"),
            )));
        }
        config
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

/// The OTLP settings of `signal` from `get`, or `None` when nothing asks for OTLP
/// (no endpoint or protocol, and not `named` by the signal's exporter variable) or
/// the endpoint cannot be used. Problems go to `problems`; their values keep their
/// defaults.
fn read_otlp<'a>(
    get: &dyn Fn(&str) -> Option<&'a str>,
    signal: &SignalVars,
    named: bool,
    problems: &mut Vec<ConfigError>,
) -> Option<OtlpConfig> {
    // The signal's form of a setting, else the generic one: (variable, value).
    let either = |generic: &'static str, own: &'static str| {
        get(own)
            .map(|v| (own, v))
            .or_else(|| get(generic).map(|v| (generic, v)))
    };
    fn ok<T>(result: Result<T, ConfigError>, problems: &mut Vec<ConfigError>) -> Option<T> {
        result.map_err(|e| problems.push(e)).ok()
    }
    let protocol = match either(GENERIC.protocol, signal.protocol) {
        Some((variable, v)) => ok(parse_protocol(variable, v), problems),
        None => None,
    };
    let endpoint = either(GENERIC.endpoint, signal.endpoint);
    if !named && endpoint.is_none() && protocol.is_none() {
        return None;
    }
    let protocol = protocol.unwrap_or(OtlpProtocol::Grpc);
    let insecure = match either(GENERIC.insecure, signal.insecure) {
        Some((variable, v)) => ok(parse_bool(variable, v), problems).unwrap_or(false),
        None => false,
    };
    // Headers: the generic ones, then the signal's over them, key by key.
    let mut headers: Vec<(String, String)> = Vec::new();
    for variable in [GENERIC.headers, signal.headers] {
        if let Some(v) = get(variable) {
            for (key, value) in ok(parse_pairs(variable, v, false), problems).unwrap_or_default() {
                headers.retain(|(k, _)| !k.eq_ignore_ascii_case(&key));
                headers.push((key, value));
            }
        }
    }
    let timeout = match either(GENERIC.timeout, signal.timeout) {
        Some((variable, v)) => {
            ok(parse_millis(variable, v), problems).unwrap_or(DEFAULT_OTLP_TIMEOUT)
        }
        None => DEFAULT_OTLP_TIMEOUT,
    };
    let compression = match either(GENERIC.compression, signal.compression) {
        Some((variable, v)) => ok(parse_compression(variable, v), problems).unwrap_or_default(),
        None => OtlpCompression::None,
    };
    let path = |pair: Option<(&str, &str)>| pair.map(|(_, v)| PathBuf::from(v));
    let mut client_certificate = path(either(
        GENERIC.client_certificate,
        signal.client_certificate,
    ));
    let mut client_key = path(either(GENERIC.client_key, signal.client_key));
    if client_certificate.is_some() != client_key.is_some() {
        ok(
            Err::<(), _>(ConfigError::new(
                GENERIC.client_key,
                "a client certificate and its key go together; neither is used",
            )),
            problems,
        );
        (client_certificate, client_key) = (None, None);
    }
    let endpoint = match endpoint {
        Some((variable, e)) => ok(
            parse_endpoint(
                variable,
                e,
                protocol,
                insecure,
                (variable == GENERIC.endpoint).then_some(signal.path),
            ),
            problems,
        )?,
        None => default_endpoint(protocol, signal.path),
    };
    Some(OtlpConfig {
        endpoint,
        protocol,
        headers,
        timeout,
        compression,
        certificate: path(either(GENERIC.certificate, signal.certificate)),
        client_certificate,
        client_key,
    })
}

/// `OTEL_LOG_LEVEL`, case-insensitively.
fn parse_log_level(v: &str) -> Result<tracing::level_filters::LevelFilter, ConfigError> {
    use tracing::level_filters::LevelFilter;
    Ok(match v.to_ascii_lowercase().as_str() {
        "none" | "off" => LevelFilter::OFF,
        "error" => LevelFilter::ERROR,
        "warn" | "warning" => LevelFilter::WARN,
        "info" => LevelFilter::INFO,
        "debug" => LevelFilter::DEBUG,
        "trace" | "all" => LevelFilter::TRACE,
        _ => {
            return Err(ConfigError::new(
                LOG_LEVEL,
                "unknown level (expected error, warn, info, debug, trace or none)",
            ))
        }
    })
}

/// What `OTEL_METRICS_EXPORTER` names.
#[derive(Clone, Copy)]
enum MetricsExporter {
    Prometheus,
    Otlp,
    None,
}

fn parse_metrics_exporter(v: &str) -> Result<MetricsExporter, ConfigError> {
    let first = v.split(',').next().unwrap_or_default().trim();
    match first.to_ascii_lowercase().as_str() {
        "prometheus" => Ok(MetricsExporter::Prometheus),
        "otlp" => Ok(MetricsExporter::Otlp),
        "none" => Ok(MetricsExporter::None),
        _ => Err(ConfigError::new(
            METRICS_EXPORTER,
            "unknown exporter (expected prometheus, otlp or none); prometheus is used",
        )),
    }
}

fn parse_temporality(v: &str) -> Result<Temporality, ConfigError> {
    match v.to_ascii_lowercase().as_str() {
        "cumulative" => Ok(Temporality::Cumulative),
        "delta" => Ok(Temporality::Delta),
        "lowmemory" => Ok(Temporality::LowMemory),
        _ => Err(ConfigError::new(
            TEMPORALITY,
            "unknown temporality (expected cumulative, delta or lowmemory); cumulative is used",
        )),
    }
}

/// What `OTEL_TRACES_EXPORTER` names.
#[derive(Clone, Copy)]
enum TracesExporter {
    Otlp,
    Console,
    None,
}

/// `OTEL_TRACES_EXPORTER`: the first of its (comma-separated) names.
fn parse_traces_exporter(v: &str) -> Result<TracesExporter, ConfigError> {
    let first = v.split(',').next().unwrap_or_default().trim();
    match first.to_ascii_lowercase().as_str() {
        "otlp" => Ok(TracesExporter::Otlp),
        "console" | "logging" => Ok(TracesExporter::Console),
        "none" => Ok(TracesExporter::None),
        "zipkin" | "jaeger" => Err(ConfigError::new(
            TRACES_EXPORTER,
            "this exporter is not supported (send OTLP to a collector that converts); the default is used",
        )),
        _ => Err(ConfigError::new(
            TRACES_EXPORTER,
            "unknown exporter (expected otlp, console or none)",
        )),
    }
}

fn parse_protocol(variable: &'static str, v: &str) -> Result<OtlpProtocol, ConfigError> {
    match v.to_ascii_lowercase().as_str() {
        "grpc" => Ok(OtlpProtocol::Grpc),
        "http/protobuf" => Ok(OtlpProtocol::HttpProtobuf),
        "http/json" => Ok(OtlpProtocol::HttpJson),
        _ => Err(ConfigError::new(
            variable,
            "unknown protocol (expected grpc, http/protobuf or http/json); grpc is used",
        )),
    }
}

fn parse_compression(variable: &'static str, v: &str) -> Result<OtlpCompression, ConfigError> {
    match v.to_ascii_lowercase().as_str() {
        "gzip" => Ok(OtlpCompression::Gzip),
        "none" => Ok(OtlpCompression::None),
        _ => Err(ConfigError::new(
            variable,
            "unknown compression (expected gzip or none)",
        )),
    }
}

/// The specification's default endpoint of `protocol` for the signal at `path`.
fn default_endpoint(protocol: OtlpProtocol, path: &str) -> String {
    match protocol {
        OtlpProtocol::HttpProtobuf | OtlpProtocol::HttpJson => {
            format!("http://localhost:4318{path}")
        }
        _ => "http://localhost:4317".to_owned(),
    }
}

/// A sampler name, case-insensitively (`OTEL_TRACES_SAMPLER`), with its ratio.
fn parse_sampler(v: &str, ratio: Option<f64>) -> Result<SamplerConfig, ConfigError> {
    Ok(match v.to_ascii_lowercase().as_str() {
        "always_on" => SamplerConfig::AlwaysOn,
        "always_off" => SamplerConfig::AlwaysOff,
        "traceidratio" => SamplerConfig::TraceIdRatio(ratio.unwrap_or(1.0)),
        "parentbased_always_on" => SamplerConfig::ParentBasedAlwaysOn,
        "parentbased_always_off" => SamplerConfig::ParentBasedAlwaysOff,
        "parentbased_traceidratio" => SamplerConfig::ParentBasedTraceIdRatio(ratio.unwrap_or(1.0)),
        "jaeger_remote" | "parentbased_jaeger_remote" | "xray" => {
            return Err(ConfigError::new(
                SAMPLER,
                "this sampler is not supported; parentbased_always_on is used",
            ));
        }
        _ => {
            return Err(ConfigError::new(
                SAMPLER,
                "unknown sampler (expected always_on, always_off, traceidratio, parentbased_always_on, parentbased_always_off or parentbased_traceidratio); parentbased_always_on is used",
            ));
        }
    })
}

/// One `OTEL_PROPAGATORS` member, case-insensitively: `Ok(None)` for `none`.
fn parse_propagator(name: &str) -> Result<Option<PropagatorConfig>, ConfigError> {
    match name.to_ascii_lowercase().as_str() {
        "tracecontext" => Ok(Some(PropagatorConfig::TraceContext)),
        "baggage" => Ok(Some(PropagatorConfig::Baggage)),
        "none" => Ok(None),
        known @ ("b3" | "b3multi" | "jaeger" | "xray" | "ottrace") => Err(ConfigError::new(
            PROPAGATORS,
            format!("the {known} propagator is not supported; it is left out"),
        )),
        _ => Err(ConfigError::new(
            PROPAGATORS,
            "has an unknown propagator (expected tracecontext, baggage or none); it is left out",
        )),
    }
}

fn parse_bool(variable: &'static str, v: &str) -> Result<bool, ConfigError> {
    if v.eq_ignore_ascii_case("true") {
        Ok(true)
    } else if v.eq_ignore_ascii_case("false") {
        Ok(false)
    } else {
        Err(ConfigError::new(variable, "must be true or false"))
    }
}

fn parse_millis(variable: &'static str, v: &str) -> Result<Duration, ConfigError> {
    v.parse::<u64>()
        .map(Duration::from_millis)
        .map_err(|_| ConfigError::new(variable, "must be a whole number of milliseconds"))
}

fn parse_count(variable: &'static str, v: &str) -> Result<usize, ConfigError> {
    match v.parse::<usize>() {
        Ok(0) | Err(_) => Err(ConfigError::new(
            variable,
            "must be a whole number above zero",
        )),
        Ok(n) => Ok(n),
    }
}

fn parse_ratio(v: &str) -> Result<f64, ConfigError> {
    match v.parse::<f64>() {
        Ok(r) if (0.0..=1.0).contains(&r) => Ok(r),
        Ok(_) => Err(ConfigError::new(SAMPLER_ARG, "must be between 0 and 1")),
        Err(_) => Err(ConfigError::new(
            SAMPLER_ARG,
            "must be a number between 0 and 1",
        )),
    }
}

/// An endpoint URL. For gRPC one without a scheme is taken as `https://` (`http://`
/// when `insecure`); for HTTP the generic endpoint gets the signal's path
/// (`append`: `/v1/traces`, `/v1/metrics`), the signal's own endpoint is used as it is.
fn parse_endpoint(
    variable: &'static str,
    v: &str,
    protocol: OtlpProtocol,
    insecure: bool,
    append: Option<&str>,
) -> Result<String, ConfigError> {
    let (scheme, rest) = match v.split_once("://") {
        Some((scheme, rest)) => (scheme.to_ascii_lowercase(), rest),
        None if protocol == OtlpProtocol::Grpc => {
            let scheme = if insecure { "http" } else { "https" };
            (scheme.to_owned(), v)
        }
        None => {
            return Err(ConfigError::new(
                variable,
                "must start with http:// or https://",
            ))
        }
    };
    if scheme != "http" && scheme != "https" {
        return Err(ConfigError::new(
            variable,
            "must start with http:// or https://",
        ));
    }
    let authority = rest.split('/').next().unwrap_or_default();
    if authority.is_empty() || authority.contains(char::is_whitespace) {
        return Err(ConfigError::new(variable, "has no host"));
    }
    if authority.contains('@') {
        return Err(ConfigError::new(
            variable,
            "must not carry credentials; use OTEL_EXPORTER_OTLP_HEADERS",
        ));
    }
    let url = format!("{scheme}://{rest}");
    Ok(match (protocol, append) {
        (OtlpProtocol::HttpProtobuf | OtlpProtocol::HttpJson, Some(path)) => {
            format!("{}{path}", url.trim_end_matches('/'))
        }
        _ => url,
    })
}

/// `k=v,k=v` with percent-decoded values. Errors say which member is wrong but, for
/// headers, never show it.
fn parse_pairs(
    variable: &'static str,
    v: &str,
    show: bool,
) -> Result<Vec<(String, String)>, ConfigError> {
    let mut pairs = Vec::new();
    for (i, member) in v
        .split(',')
        .enumerate()
        .filter(|(_, m)| !m.trim().is_empty())
    {
        let Some((key, value)) = member.split_once('=') else {
            let what = if show {
                format!(" ({:?})", member.trim())
            } else {
                String::new()
            };
            return Err(ConfigError::new(
                variable,
                format!("member {}{what} is not key=value", i + 1),
            ));
        };
        let key = key.trim();
        if key.is_empty() {
            return Err(ConfigError::new(
                variable,
                format!("member {} has an empty key", i + 1),
            ));
        }
        let value = crate::redact::text::percent_decode(value.trim(), false).into_owned();
        pairs.push((key.to_owned(), value));
    }
    Ok(pairs)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config(vars: &[(&str, &str)]) -> Result<PipelineConfig, ConfigError> {
        PipelineConfig::from_vars(vars.iter().copied())
    }

    #[test]
    fn defaults_need_nothing_to_run() {
        let c = config(&[]).unwrap();
        assert_eq!(c, PipelineConfig::default());
        assert_eq!(c.exporter, ExporterConfig::Stdout);
        assert_eq!(c.sampler, SamplerConfig::ParentBasedAlwaysOn);
    }

    #[test]
    fn every_variable_is_read() {
        let c = config(&[
            ("OTEL_SDK_DISABLED", "TRUE"),
            ("OTEL_SERVICE_NAME", "svc"),
            (
                "OTEL_RESOURCE_ATTRIBUTES",
                "deployment.environment=prod,team=core%20infra",
            ),
            ("OTEL_EXPORTER_OTLP_ENDPOINT", "http://collector:4317"),
            (
                "OTEL_EXPORTER_OTLP_HEADERS",
                "x-api-key=s3cr3t, x-tenant = a",
            ),
            ("OTEL_EXPORTER_OTLP_TIMEOUT", "2500"),
            ("OTEL_TRACES_SAMPLER", "traceidratio"),
            ("OTEL_TRACES_SAMPLER_ARG", "0.25"),
            ("OTEL_BSP_SCHEDULE_DELAY", "100"),
            ("OTEL_BSP_EXPORT_TIMEOUT", "1000"),
            ("OTEL_BSP_MAX_QUEUE_SIZE", "64"),
            ("OTEL_BSP_MAX_EXPORT_BATCH_SIZE", "32"),
        ])
        .unwrap();
        assert!(c.disabled);
        assert_eq!(c.service_name, "svc");
        assert_eq!(
            c.resource_attributes[1],
            ("team".into(), "core infra".into())
        );
        assert_eq!(
            c.exporter,
            ExporterConfig::Otlp(
                OtlpConfig::grpc("http://collector:4317")
                    .with_headers([("x-api-key", "s3cr3t"), ("x-tenant", "a")])
                    .with_timeout(Duration::from_millis(2500))
            )
        );
        assert_eq!(c.sampler, SamplerConfig::TraceIdRatio(0.25));
        assert_eq!(
            c.batch,
            BatchConfig {
                schedule_delay: Duration::from_millis(100),
                export_timeout: Duration::from_millis(1000),
                max_queue_size: 64,
                max_export_batch_size: 32,
            }
        );
    }

    #[test]
    fn traces_endpoint_wins_and_service_name_beats_resource() {
        let c = config(&[
            ("OTEL_EXPORTER_OTLP_ENDPOINT", "http://a:4317"),
            ("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", "https://b:4317"),
            ("OTEL_RESOURCE_ATTRIBUTES", "service.name=from-resource"),
        ])
        .unwrap();
        assert!(
            matches!(c.exporter, ExporterConfig::Otlp(ref otlp) if otlp.endpoint == "https://b:4317")
        );
        assert_eq!(c.service_name, "from-resource");
        let c = config(&[
            ("OTEL_RESOURCE_ATTRIBUTES", "service.name=r"),
            ("OTEL_SERVICE_NAME", "s"),
        ])
        .unwrap();
        assert_eq!(c.service_name, "s");
    }

    fn otlp(vars: &[(&str, &str)]) -> OtlpConfig {
        match config(vars).unwrap().exporter {
            ExporterConfig::Otlp(otlp) => otlp,
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn the_protocol_decides_the_endpoint_path_and_the_traces_forms_win() {
        let http = otlp(&[
            ("OTEL_EXPORTER_OTLP_PROTOCOL", "HTTP/Protobuf"),
            ("OTEL_EXPORTER_OTLP_ENDPOINT", "https://collector:4318/"),
            ("OTEL_EXPORTER_OTLP_HEADERS", "a=1,b=2"),
            ("OTEL_EXPORTER_OTLP_TRACES_HEADERS", "B=3"),
            ("OTEL_EXPORTER_OTLP_TIMEOUT", "100"),
            ("OTEL_EXPORTER_OTLP_TRACES_TIMEOUT", "200"),
            ("OTEL_EXPORTER_OTLP_COMPRESSION", "gzip"),
            ("OTEL_EXPORTER_OTLP_CERTIFICATE", "/etc/ca.pem"),
            (
                "OTEL_EXPORTER_OTLP_TRACES_CLIENT_CERTIFICATE",
                "/etc/me.pem",
            ),
            ("OTEL_EXPORTER_OTLP_CLIENT_KEY", "/etc/me.key"),
        ]);
        assert_eq!(http.protocol, OtlpProtocol::HttpProtobuf);
        assert_eq!(
            http.endpoint, "https://collector:4318/v1/traces",
            "the signal's path on the generic endpoint"
        );
        assert_eq!(
            http.headers,
            [("a".into(), "1".into()), ("B".into(), "3".into())]
        );
        assert_eq!(http.timeout, Duration::from_millis(200));
        assert_eq!(http.compression, OtlpCompression::Gzip);
        assert_eq!(http.certificate, Some(PathBuf::from("/etc/ca.pem")));
        assert_eq!(http.client_certificate, Some(PathBuf::from("/etc/me.pem")));
        assert_eq!(http.client_key, Some(PathBuf::from("/etc/me.key")));

        let traces = otlp(&[
            ("OTEL_EXPORTER_OTLP_TRACES_PROTOCOL", "http/protobuf"),
            ("OTEL_EXPORTER_OTLP_PROTOCOL", "grpc"),
            ("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", "http://c:4318/custom"),
        ]);
        assert_eq!(traces.protocol, OtlpProtocol::HttpProtobuf);
        assert_eq!(traces.endpoint, "http://c:4318/custom", "used as it is");

        // A protocol alone, or OTEL_TRACES_EXPORTER=otlp, means the default endpoint.
        let default = otlp(&[("OTEL_EXPORTER_OTLP_PROTOCOL", "http/protobuf")]);
        assert_eq!(default.endpoint, "http://localhost:4318/v1/traces");
        let default = otlp(&[("OTEL_TRACES_EXPORTER", "otlp")]);
        assert_eq!(default.endpoint, "http://localhost:4317");
        assert_eq!(default.protocol, OtlpProtocol::Grpc);

        // gRPC without a scheme: TLS unless insecure.
        assert_eq!(
            otlp(&[("OTEL_EXPORTER_OTLP_ENDPOINT", "collector:4317")]).endpoint,
            "https://collector:4317"
        );
        assert_eq!(
            otlp(&[
                ("OTEL_EXPORTER_OTLP_ENDPOINT", "collector:4317"),
                ("OTEL_EXPORTER_OTLP_INSECURE", "true"),
            ])
            .endpoint,
            "http://collector:4317"
        );
    }

    #[test]
    fn the_sdk_log_level_is_read() {
        use tracing::level_filters::LevelFilter;
        for (value, level) in [
            ("WARN", LevelFilter::WARN),
            ("none", LevelFilter::OFF),
            ("debug", LevelFilter::DEBUG),
        ] {
            let c = config(&[("OTEL_LOG_LEVEL", value)]).unwrap();
            assert_eq!(c.sdk_log_level, Some(level), "{value}");
        }
        assert_eq!(config(&[]).unwrap().sdk_log_level, None);
        let err = config(&[("OTEL_LOG_LEVEL", "loud")]).unwrap_err();
        assert_eq!(err.variable(), "OTEL_LOG_LEVEL");
    }

    #[test]
    fn metrics_go_to_prometheus_unless_otlp_is_named() {
        let c = config(&[("OTEL_EXPORTER_OTLP_ENDPOINT", "http://c:4318")]).unwrap();
        assert_eq!(c.metrics, MetricsConfig::Prometheus, "traces only");
        assert_eq!(
            config(&[("OTEL_METRICS_EXPORTER", "none")])
                .unwrap()
                .metrics,
            MetricsConfig::None
        );
        let c = config(&[
            ("OTEL_METRICS_EXPORTER", "OTLP"),
            ("OTEL_EXPORTER_OTLP_PROTOCOL", "http/protobuf"),
            ("OTEL_EXPORTER_OTLP_ENDPOINT", "http://c:4318"),
            ("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", "http://t:4318/x"),
            ("OTEL_EXPORTER_OTLP_METRICS_HEADERS", "k=v"),
            ("OTEL_METRIC_EXPORT_INTERVAL", "1500"),
            ("OTEL_METRIC_EXPORT_TIMEOUT", "700"),
            ("OTEL_EXPORTER_OTLP_METRICS_TEMPORALITY_PREFERENCE", "Delta"),
        ])
        .unwrap();
        let MetricsConfig::Otlp(metrics) = c.metrics else {
            panic!("{:?}", c.metrics);
        };
        assert_eq!(metrics.otlp.endpoint, "http://c:4318/v1/metrics");
        assert_eq!(metrics.otlp.headers, [("k".into(), "v".into())]);
        assert_eq!(metrics.otlp.timeout, Duration::from_millis(700));
        assert_eq!(metrics.interval, Duration::from_millis(1500));
        assert_eq!(metrics.temporality, Temporality::Delta);
        let ExporterConfig::Otlp(traces) = c.exporter else {
            panic!("{:?}", c.exporter);
        };
        assert_eq!(traces.endpoint, "http://t:4318/x");
        assert!(
            traces.headers.is_empty(),
            "the metrics headers are the metrics'"
        );
        for (var, value) in [
            ("OTEL_METRICS_EXPORTER", "statsd"),
            (
                "OTEL_EXPORTER_OTLP_METRICS_TEMPORALITY_PREFERENCE",
                "sometimes",
            ),
            ("OTEL_METRIC_EXPORT_INTERVAL", "soon"),
        ] {
            let err = config(&[("OTEL_METRICS_EXPORTER", "otlp"), (var, value)]).unwrap_err();
            assert_eq!(err.variable(), var);
        }
    }

    #[test]
    fn the_traces_exporter_names_the_exporter() {
        let c = config(&[
            ("OTEL_TRACES_EXPORTER", "console"),
            ("OTEL_EXPORTER_OTLP_ENDPOINT", "http://c:4317"),
        ])
        .unwrap();
        assert_eq!(c.exporter, ExporterConfig::Stdout);
        let c = config(&[("OTEL_TRACES_EXPORTER", "none")]).unwrap();
        assert_eq!(c.exporter, ExporterConfig::None);
        for (vars, variable) in [
            (
                vec![("OTEL_TRACES_EXPORTER", "zipkin")],
                "OTEL_TRACES_EXPORTER",
            ),
            (
                vec![("OTEL_EXPORTER_OTLP_PROTOCOL", "http/xml")],
                "OTEL_EXPORTER_OTLP_PROTOCOL",
            ),
            (
                vec![
                    ("OTEL_EXPORTER_OTLP_ENDPOINT", "http://c:4317"),
                    ("OTEL_EXPORTER_OTLP_TRACES_COMPRESSION", "brotli"),
                ],
                "OTEL_EXPORTER_OTLP_TRACES_COMPRESSION",
            ),
            (
                vec![
                    ("OTEL_EXPORTER_OTLP_ENDPOINT", "http://c:4317"),
                    ("OTEL_EXPORTER_OTLP_CLIENT_KEY", "/k.pem"),
                ],
                "OTEL_EXPORTER_OTLP_CLIENT_KEY",
            ),
            (
                vec![
                    ("OTEL_EXPORTER_OTLP_PROTOCOL", "http/protobuf"),
                    ("OTEL_EXPORTER_OTLP_ENDPOINT", "collector:4318"),
                ],
                "OTEL_EXPORTER_OTLP_ENDPOINT",
            ),
        ] {
            let err = config(&vars).unwrap_err();
            assert_eq!(err.variable(), variable, "{vars:?}: {err}");
        }
    }

    #[test]
    fn empty_values_count_as_unset() {
        let c = config(&[
            ("OTEL_TRACES_SAMPLER", ""),
            ("OTEL_EXPORTER_OTLP_ENDPOINT", "  "),
        ])
        .unwrap();
        assert_eq!(c, PipelineConfig::default());
    }

    #[test]
    fn invalid_values_name_the_variable_and_the_problem() {
        for (var, value, problem) in [
            ("OTEL_SDK_DISABLED", "yes", "true or false"),
            ("OTEL_TRACES_SAMPLER", "sometimes", "unknown sampler"),
            ("OTEL_TRACES_SAMPLER", "jaeger_remote", "not supported"),
            ("OTEL_TRACES_SAMPLER_ARG", "2", "between 0 and 1"),
            ("OTEL_TRACES_SAMPLER_ARG", "half", "number"),
            (
                "OTEL_EXPORTER_OTLP_ENDPOINT",
                "ftp://collector:4317",
                "http://",
            ),
            ("OTEL_EXPORTER_OTLP_ENDPOINT", "http://", "no host"),
            (
                "OTEL_EXPORTER_OTLP_ENDPOINT",
                "http://u:p@c:4317",
                "credentials",
            ),
            ("OTEL_BSP_SCHEDULE_DELAY", "-5", "milliseconds"),
            ("OTEL_BSP_MAX_QUEUE_SIZE", "0", "above zero"),
            ("OTEL_RESOURCE_ATTRIBUTES", "novalue", "key=value"),
        ] {
            let err = config(&[(var, value)]).unwrap_err();
            assert_eq!(err.variable(), var, "{value}");
            assert!(err.to_string().contains(problem), "{err}");
            assert!(err.to_string().starts_with(var));
        }
        let err = config(&[
            ("OTEL_BSP_MAX_QUEUE_SIZE", "10"),
            ("OTEL_BSP_MAX_EXPORT_BATCH_SIZE", "20"),
        ])
        .unwrap_err();
        assert_eq!(err.variable(), "OTEL_BSP_MAX_EXPORT_BATCH_SIZE");
    }

    /// The specification's rule: each invalid value is reported and its default used,
    /// the valid ones beside it still read.
    #[test]
    fn leniently_each_invalid_value_is_reported_and_defaulted() {
        let invalid = [
            ("OTEL_SDK_DISABLED", "yes"),
            ("OTEL_TRACES_SAMPLER", "sometimes"),
            ("OTEL_EXPORTER_OTLP_ENDPOINT", "http://"),
            ("OTEL_BSP_SCHEDULE_DELAY", "-5"),
            ("OTEL_BSP_MAX_QUEUE_SIZE", "0"),
            ("OTEL_PROPAGATORS", "b3,tracecontext,mystery"),
        ];
        let mut vars = invalid.to_vec();
        vars.push(("OTEL_SERVICE_NAME", "svc"));
        vars.push(("OTEL_BSP_EXPORT_TIMEOUT", "700"));
        let (c, problems) = PipelineConfig::from_vars_lenient(vars);
        let reported: Vec<&str> = problems.iter().map(ConfigError::variable).collect();
        assert_eq!(
            reported,
            [
                "OTEL_SDK_DISABLED",
                "OTEL_EXPORTER_OTLP_ENDPOINT",
                "OTEL_TRACES_SAMPLER",
                "OTEL_PROPAGATORS",
                "OTEL_PROPAGATORS",
                "OTEL_BSP_SCHEDULE_DELAY",
                "OTEL_BSP_MAX_QUEUE_SIZE",
            ]
        );
        let defaults = PipelineConfig::default();
        assert!(!c.disabled);
        assert_eq!(c.exporter, defaults.exporter);
        assert_eq!(c.sampler, defaults.sampler);
        assert_eq!(c.propagators, [PropagatorConfig::TraceContext]);
        assert_eq!(c.batch.schedule_delay, defaults.batch.schedule_delay);
        assert_eq!(c.batch.max_queue_size, defaults.batch.max_queue_size);
        assert_eq!(c.service_name, "svc");
        assert_eq!(c.batch.export_timeout, Duration::from_millis(700));
        // Strictly, the first of them is the error.
        assert_eq!(
            PipelineConfig::from_vars(invalid).unwrap_err().variable(),
            "OTEL_SDK_DISABLED"
        );
        let (c, problems) = PipelineConfig::from_vars_lenient([
            ("OTEL_BSP_MAX_QUEUE_SIZE", "10"),
            ("OTEL_BSP_MAX_EXPORT_BATCH_SIZE", "20"),
        ]);
        assert_eq!(c.batch.max_export_batch_size, 10);
        assert_eq!(problems.len(), 1);
    }

    #[test]
    fn the_default_service_name_names_the_executable() {
        let name = PipelineConfig::default().service_name;
        let exe = std::env::current_exe().unwrap();
        let stem = exe.file_stem().unwrap().to_string_lossy();
        assert_eq!(name, format!("unknown_service:{stem}"));
    }

    #[test]
    fn names_are_case_insensitive_and_propagators_default_to_w3c() {
        let c = config(&[
            ("OTEL_TRACES_SAMPLER", "ParentBased_TraceIdRatio"),
            ("OTEL_TRACES_SAMPLER_ARG", "0.25"),
            ("OTEL_SDK_DISABLED", "TRUE"),
        ])
        .unwrap();
        assert_eq!(c.sampler, SamplerConfig::ParentBasedTraceIdRatio(0.25));
        assert!(c.disabled);
        assert_eq!(
            PipelineConfig::default().propagators,
            [PropagatorConfig::TraceContext, PropagatorConfig::Baggage]
        );
        for (value, expected) in [
            ("baggage", vec![PropagatorConfig::Baggage]),
            (
                "Baggage, TraceContext, baggage",
                vec![PropagatorConfig::Baggage, PropagatorConfig::TraceContext],
            ),
            ("none", vec![]),
            ("tracecontext,none", vec![]),
        ] {
            let c = config(&[("OTEL_PROPAGATORS", value)]).unwrap();
            assert_eq!(c.propagators, expected, "{value}");
        }
        let err = config(&[("OTEL_PROPAGATORS", "tracecontext,b3")]).unwrap_err();
        assert!(
            err.to_string().contains("b3 propagator is not supported"),
            "{err}"
        );
    }

    #[test]
    fn header_errors_never_show_the_header() {
        let err = config(&[
            ("OTEL_EXPORTER_OTLP_ENDPOINT", "http://c:4317"),
            (
                "OTEL_EXPORTER_OTLP_HEADERS",
                "authorization=Bearer abc,brokenSECRET",
            ),
        ])
        .unwrap_err();
        assert_eq!(err.variable(), "OTEL_EXPORTER_OTLP_HEADERS");
        assert!(
            !err.to_string().contains("SECRET") && !err.to_string().contains("abc"),
            "{err}"
        );
        assert!(err.to_string().contains("member 2"));
    }

    #[test]
    fn builder_overrides_the_environment() {
        let c = config(&[("OTEL_SERVICE_NAME", "env")])
            .unwrap()
            .with_service_name("code")
            .with_sampler(SamplerConfig::AlwaysOff)
            .with_exporter(ExporterConfig::None)
            .with_missing_tenant(MissingTenant::Drop)
            .with_shutdown_timeout(Duration::from_millis(10))
            .with_resource_attribute("k", "v");
        assert_eq!(c.service_name, "code");
        assert_eq!(c.sampler, SamplerConfig::AlwaysOff);
        assert_eq!(c.exporter, ExporterConfig::None);
        assert_eq!(c.missing_tenant, MissingTenant::Drop);
        assert_eq!(c.resource_attributes, [("k".to_owned(), "v".to_owned())]);
    }
}
