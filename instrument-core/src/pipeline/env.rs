//! [`PipelineConfig`] from the standard `OTEL_*` environment variables (the table in
//! the [pipeline's docs](super)): each read once, each problem collected with the
//! variable it is about, its default kept.

use std::collections::HashMap;
use std::path::PathBuf;
use std::time::Duration;

use super::config::*;
use crate::sampling::TailBias;

/// The problems found while reading, in order; each value with a problem keeps its
/// default.
#[derive(Debug, Default)]
struct Problems(Vec<ConfigError>);

impl Problems {
    /// `result`'s value, or `None` with its problem kept.
    fn ok<T>(&mut self, result: Result<T, ConfigError>) -> Option<T> {
        result.map_err(|e| self.push(e)).ok()
    }

    /// Keeps `problem`, once: a generic variable read for two signals is reported
    /// once.
    fn push(&mut self, problem: ConfigError) {
        if !self.0.contains(&problem) {
            self.0.push(problem);
        }
    }
}

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

/// The variables of a signal: `OTEL_EXPORTER_OTLP_<SIGNAL>_ENDPOINT`, ... (`$signal`
/// empty: the generic ones), and its path on an HTTP collector.
macro_rules! signal_vars {
    ($signal:literal, $path:literal) => {
        SignalVars {
            endpoint: concat!("OTEL_EXPORTER_OTLP_", $signal, "ENDPOINT"),
            protocol: concat!("OTEL_EXPORTER_OTLP_", $signal, "PROTOCOL"),
            headers: concat!("OTEL_EXPORTER_OTLP_", $signal, "HEADERS"),
            timeout: concat!("OTEL_EXPORTER_OTLP_", $signal, "TIMEOUT"),
            compression: concat!("OTEL_EXPORTER_OTLP_", $signal, "COMPRESSION"),
            insecure: concat!("OTEL_EXPORTER_OTLP_", $signal, "INSECURE"),
            certificate: concat!("OTEL_EXPORTER_OTLP_", $signal, "CERTIFICATE"),
            client_certificate: concat!("OTEL_EXPORTER_OTLP_", $signal, "CLIENT_CERTIFICATE"),
            client_key: concat!("OTEL_EXPORTER_OTLP_", $signal, "CLIENT_KEY"),
            path: $path,
        }
    };
}

const GENERIC: SignalVars = signal_vars!("", "");
const TRACES: SignalVars = signal_vars!("TRACES_", "/v1/traces");
const LOGS: SignalVars = signal_vars!("LOGS_", "/v1/logs");
const LOGS_EXPORTER: &str = "OTEL_LOGS_EXPORTER";
const BLRP_SCHEDULE_DELAY: &str = "OTEL_BLRP_SCHEDULE_DELAY";
const BLRP_EXPORT_TIMEOUT: &str = "OTEL_BLRP_EXPORT_TIMEOUT";
const BLRP_MAX_QUEUE_SIZE: &str = "OTEL_BLRP_MAX_QUEUE_SIZE";
const BLRP_MAX_EXPORT_BATCH_SIZE: &str = "OTEL_BLRP_MAX_EXPORT_BATCH_SIZE";
const METRICS: SignalVars = signal_vars!("METRICS_", "/v1/metrics");
const METRICS_EXPORTER: &str = "OTEL_METRICS_EXPORTER";
const LOG_LEVEL: &str = "OTEL_LOG_LEVEL";
const METRIC_EXPORT_INTERVAL: &str = "OTEL_METRIC_EXPORT_INTERVAL";
const METRIC_EXPORT_TIMEOUT: &str = "OTEL_METRIC_EXPORT_TIMEOUT";
const TEMPORALITY: &str = "OTEL_EXPORTER_OTLP_METRICS_TEMPORALITY_PREFERENCE";
const SAMPLER: &str = "OTEL_TRACES_SAMPLER";
const SAMPLER_ARG: &str = "OTEL_TRACES_SAMPLER_ARG";
const PROPAGATORS: &str = "OTEL_PROPAGATORS";
const TAIL_ERRORS: &str = "INSTRUMENT_TAIL_ERRORS";
const TAIL_SLOW_MS: &str = "INSTRUMENT_TAIL_SLOW_MS";
const TAIL_SLOW_ROUTES: &str = "INSTRUMENT_TAIL_SLOW_ROUTES";
const TAIL_MAX_SPANS: &str = "INSTRUMENT_TAIL_MAX_SPANS";
const TAIL_MAX_SPANS_PER_REQUEST: &str = "INSTRUMENT_TAIL_MAX_SPANS_PER_REQUEST";
const BSP_SCHEDULE_DELAY: &str = "OTEL_BSP_SCHEDULE_DELAY";
const BSP_EXPORT_TIMEOUT: &str = "OTEL_BSP_EXPORT_TIMEOUT";
const BSP_MAX_QUEUE_SIZE: &str = "OTEL_BSP_MAX_QUEUE_SIZE";
const BSP_MAX_EXPORT_BATCH_SIZE: &str = "OTEL_BSP_MAX_EXPORT_BATCH_SIZE";

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
        let (config, problems) = Self::read(vars);
        match problems.into_iter().next() {
            Some(first) => Err(first),
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
        Self::read(vars)
    }

    /// Reads `vars`: the configuration, each invalid value left at its default, and the
    /// problems, in the order the variables are read.
    fn read<I, K, V>(vars: I) -> (Self, Vec<ConfigError>)
    where
        I: IntoIterator<Item = (K, V)>,
        K: AsRef<str>,
        V: AsRef<str>,
    {
        let vars: HashMap<String, String> = vars
            .into_iter()
            .filter(|(k, v)| {
                let k = k.as_ref();
                (k.starts_with("OTEL_") || k.starts_with("INSTRUMENT_TAIL_"))
                    && !v.as_ref().trim().is_empty()
            })
            .map(|(k, v)| (k.as_ref().to_owned(), v.as_ref().trim().to_owned()))
            .collect();
        let get = |name: &str| vars.get(name).map(String::as_str);
        let mut config = Self::default();
        let mut problems = Problems::default();

        if let Some(v) = get(DISABLED) {
            if let Some(disabled) = problems.ok(parse_bool(DISABLED, v)) {
                config.disabled = disabled;
            }
        }
        if let Some(v) = get(RESOURCE_ATTRIBUTES) {
            if let Some(pairs) = problems.ok(parse_pairs(RESOURCE_ATTRIBUTES, v, true)) {
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
            config.sdk_log_level = problems.ok(parse_log_level(v));
        }
        let exporter = match get(TRACES_EXPORTER) {
            Some(v) => problems.ok(parse_traces_exporter(v)),
            None => None,
        };
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

        match get(METRICS_EXPORTER).map(parse_metrics_exporter) {
            None => {}
            Some(Err(problem)) => problems.push(problem),
            Some(Ok(MetricsExporter::Prometheus)) => config.metrics = MetricsConfig::Prometheus,
            Some(Ok(MetricsExporter::None)) => config.metrics = MetricsConfig::None,
            Some(Ok(MetricsExporter::Otlp)) => {
                let otlp = read_otlp(&get, &METRICS, true, &mut problems);
                let interval = match get(METRIC_EXPORT_INTERVAL) {
                    Some(v) => problems.ok(parse_millis(METRIC_EXPORT_INTERVAL, v)),
                    None => None,
                };
                let export_timeout = match get(METRIC_EXPORT_TIMEOUT) {
                    Some(v) => problems.ok(parse_millis(METRIC_EXPORT_TIMEOUT, v)),
                    None => None,
                };
                let temporality = match get(TEMPORALITY) {
                    Some(v) => problems.ok(parse_temporality(v)),
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

        let ratio = match get(SAMPLER_ARG) {
            Some(v) => problems.ok(parse_ratio(v)),
            None => None,
        };
        if let Some(v) = get(SAMPLER) {
            if let Some(sampler) = problems.ok(parse_sampler(v, ratio)) {
                config.sampler = sampler;
            }
        }

        if let Some(v) = get(PROPAGATORS) {
            let mut propagators = Vec::new();
            for name in v.split(',').map(str::trim).filter(|n| !n.is_empty()) {
                if let Some(Some(propagator)) = problems.ok(parse_propagator(name)) {
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

        config.batch = read_batch(&get, BSP, BatchConfig::default(), &mut problems);
        config.tail = read_tail(&get, &mut problems);

        // Logs: OTLP when asked for by name, or when an endpoint or protocol says where
        // (as for traces); the JSON lines on stderr are written in any case.
        let logs = match get(LOGS_EXPORTER) {
            Some(v) => problems.ok(parse_logs_exporter(v)),
            None => None,
        };
        if !matches!(logs, Some(LogsExporter::None)) {
            let named = matches!(logs, Some(LogsExporter::Otlp));
            if let Some(otlp) = read_otlp(&get, &LOGS, named, &mut problems) {
                let batch = read_batch(&get, BLRP, BatchConfig::logs(), &mut problems);
                config.logs = LogsConfig::Otlp { otlp, batch };
            }
        }
        (config, problems.0)
    }
}

/// Tail bias from `INSTRUMENT_TAIL_*`, each invalid value left at its default.
fn read_tail<'a>(get: &impl Fn(&str) -> Option<&'a str>, problems: &mut Problems) -> TailBias {
    let mut tail = TailBias::default();
    if let Some(on) = get(TAIL_ERRORS).and_then(|v| problems.ok(parse_bool(TAIL_ERRORS, v))) {
        tail = tail.errors(on);
    }
    if let Some(slow) = get(TAIL_SLOW_MS).and_then(|v| problems.ok(parse_millis(TAIL_SLOW_MS, v))) {
        tail = tail.slow(slow);
    }
    if let Some(v) = get(TAIL_SLOW_ROUTES) {
        for member in v.split(',').map(str::trim).filter(|m| !m.is_empty()) {
            match member.rsplit_once('=') {
                Some((name, ms)) if !name.trim().is_empty() => {
                    if let Some(t) = problems.ok(parse_millis(TAIL_SLOW_ROUTES, ms.trim())) {
                        tail = tail.slow_for(name.trim(), t);
                    }
                }
                _ => problems.push(ConfigError::new(
                    TAIL_SLOW_ROUTES,
                    "must be name=milliseconds pairs separated by commas (GET /users/{id}=250); this one is left out",
                )),
            }
        }
    }
    if let Some(n) = get(TAIL_MAX_SPANS).and_then(|v| problems.ok(parse_count(TAIL_MAX_SPANS, v))) {
        tail = tail.max_spans(n);
    }
    if let Some(n) = get(TAIL_MAX_SPANS_PER_REQUEST)
        .and_then(|v| problems.ok(parse_count(TAIL_MAX_SPANS_PER_REQUEST, v)))
    {
        tail = tail.max_spans_per_request(n);
    }
    tail
}

/// The batch processor variables of a signal: delay, export timeout, queue, batch.
const BSP: [&str; 4] = [
    BSP_SCHEDULE_DELAY,
    BSP_EXPORT_TIMEOUT,
    BSP_MAX_QUEUE_SIZE,
    BSP_MAX_EXPORT_BATCH_SIZE,
];
const BLRP: [&str; 4] = [
    BLRP_SCHEDULE_DELAY,
    BLRP_EXPORT_TIMEOUT,
    BLRP_MAX_QUEUE_SIZE,
    BLRP_MAX_EXPORT_BATCH_SIZE,
];

/// A batch processor's settings from `variables` (see [`BSP`]), each invalid value
/// left at its default; a batch larger than the queue is cut to it (reported when
/// the batch size was set).
fn read_batch<'a>(
    get: &dyn Fn(&str) -> Option<&'a str>,
    [delay, timeout, queue, batch]: [&'static str; 4],
    defaults: BatchConfig,
    problems: &mut Problems,
) -> BatchConfig {
    let millis =
        |variable, default| get(variable).map_or(Ok(default), |v| parse_millis(variable, v));
    let count = |variable, default| get(variable).map_or(Ok(default), |v| parse_count(variable, v));
    let mut config = BatchConfig {
        schedule_delay: problems
            .ok(millis(delay, defaults.schedule_delay))
            .unwrap_or(defaults.schedule_delay),
        export_timeout: problems
            .ok(millis(timeout, defaults.export_timeout))
            .unwrap_or(defaults.export_timeout),
        max_queue_size: problems
            .ok(count(queue, defaults.max_queue_size))
            .unwrap_or(defaults.max_queue_size),
        max_export_batch_size: problems
            .ok(count(batch, defaults.max_export_batch_size))
            .unwrap_or(defaults.max_export_batch_size),
    };
    let (size, limit) = (config.max_export_batch_size, config.max_queue_size);
    if size > limit {
        config.max_export_batch_size = limit;
    }
    // Only a batch size someone set is a problem; the default is cut quietly.
    if size > limit && get(batch).is_some() {
        problems.push(ConfigError::new(
            batch,
            format!("is {size}, larger than the queue ({limit}); the queue size is used"),
        ));
    }
    config
}

/// The OTLP settings of `signal` from `get`, or `None` when nothing asks for OTLP
/// (no endpoint or protocol, and not `named` by the signal's exporter variable) or
/// the endpoint cannot be used. Problems go to `problems`; their values keep
/// their defaults.
fn read_otlp<'a>(
    get: &dyn Fn(&str) -> Option<&'a str>,
    signal: &SignalVars,
    named: bool,
    problems: &mut Problems,
) -> Option<OtlpConfig> {
    // The signal's form of a setting, else the generic one: (variable, value).
    let either = |generic: &'static str, own: &'static str| {
        get(own)
            .map(|v| (own, v))
            .or_else(|| get(generic).map(|v| (generic, v)))
    };
    let protocol = match either(GENERIC.protocol, signal.protocol) {
        Some((variable, v)) => problems.ok(parse_protocol(variable, v)),
        None => None,
    };
    let endpoint = either(GENERIC.endpoint, signal.endpoint);
    if !named && endpoint.is_none() && protocol.is_none() {
        return None;
    }
    let protocol = protocol.unwrap_or(OtlpProtocol::Grpc);
    let insecure = match either(GENERIC.insecure, signal.insecure) {
        Some((variable, v)) => problems.ok(parse_bool(variable, v)).unwrap_or(false),
        None => false,
    };
    // Headers: the generic ones, then the signal's over them, key by key.
    let mut headers: Vec<(String, String)> = Vec::new();
    for variable in [GENERIC.headers, signal.headers] {
        if let Some(v) = get(variable) {
            for (key, value) in problems
                .ok(parse_pairs(variable, v, false))
                .unwrap_or_default()
            {
                headers.retain(|(k, _)| !k.eq_ignore_ascii_case(&key));
                headers.push((key, value));
            }
        }
    }
    let timeout = match either(GENERIC.timeout, signal.timeout) {
        Some((variable, v)) => problems
            .ok(parse_millis(variable, v))
            .unwrap_or(DEFAULT_OTLP_TIMEOUT),
        None => DEFAULT_OTLP_TIMEOUT,
    };
    let compression = match either(GENERIC.compression, signal.compression) {
        Some((variable, v)) => problems
            .ok(parse_compression(variable, v))
            .unwrap_or_default(),
        None => OtlpCompression::None,
    };
    let path = |pair: Option<(&str, &str)>| pair.map(|(_, v)| PathBuf::from(v));
    let certificate = either(GENERIC.client_certificate, signal.client_certificate);
    let key = either(GENERIC.client_key, signal.client_key);
    let (mut client_certificate, mut client_key) = (path(certificate), path(key));
    // The problem is the variable that was set, told what it lacks.
    let unpaired = match (certificate, key) {
        (Some((set, _)), None) => Some((
            set,
            "a client certificate needs its key",
            [signal.client_key, GENERIC.client_key],
        )),
        (None, Some((set, _))) => Some((
            set,
            "a client key needs its certificate",
            [signal.client_certificate, GENERIC.client_certificate],
        )),
        _ => None,
    };
    if let Some((set, what, [own, generic])) = unpaired {
        problems.push(ConfigError::new(
            set,
            format!("{what} ({own} or {generic}); neither is used"),
        ));
        (client_certificate, client_key) = (None, None);
    }
    let endpoint = match endpoint {
        Some((variable, e)) => problems.ok(parse_endpoint(
            variable,
            e,
            protocol,
            insecure,
            (variable == GENERIC.endpoint).then_some(signal.path),
        ))?,
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

enum LogsExporter {
    Otlp,
    /// `console` (the JSON lines, written in any case) or `none`.
    None,
}

fn parse_logs_exporter(v: &str) -> Result<LogsExporter, ConfigError> {
    let first = v.split(',').next().unwrap_or_default().trim();
    match first.to_ascii_lowercase().as_str() {
        "otlp" => Ok(LogsExporter::Otlp),
        "console" | "none" => Ok(LogsExporter::None),
        _ => Err(ConfigError::new(
            LOGS_EXPORTER,
            "unknown exporter (expected otlp, console or none); JSON lines on stderr only",
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
        "consistent_probability" => SamplerConfig::ConsistentProbability(ratio.unwrap_or(1.0)),
        "parentbased_consistent_probability" => {
            SamplerConfig::ParentBasedConsistentProbability(ratio.unwrap_or(1.0))
        }
        "jaeger_remote" | "parentbased_jaeger_remote" | "xray" => {
            return Err(ConfigError::new(
                SAMPLER,
                "this sampler is not supported; parentbased_always_on is used",
            ));
        }
        _ => {
            return Err(ConfigError::new(
                SAMPLER,
                "unknown sampler (expected always_on, always_off, traceidratio, parentbased_always_on, parentbased_always_off, parentbased_traceidratio, consistent_probability or parentbased_consistent_probability); parentbased_always_on is used",
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
                // Escaped, and at most 64 bytes of it: a problem is logged, and must
                // stay a line whatever the value holds.
                let (mut shown, mut more) = (String::new(), "");
                for c in member.trim().escape_debug() {
                    if shown.len() + c.len_utf8() > 64 {
                        more = "...";
                        break;
                    }
                    shown.push(c);
                }
                format!(" (\"{shown}\"{more})")
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
    use crate::pipeline::MissingTenant;

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
            // The logs would have a key without its certificate.
            ("OTEL_LOGS_EXPORTER", "none"),
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
                    ("OTEL_EXPORTER_OTLP_ENDPOINT", "http://c:4317"),
                    ("OTEL_EXPORTER_OTLP_CLIENT_CERTIFICATE", "/c.pem"),
                ],
                "OTEL_EXPORTER_OTLP_CLIENT_CERTIFICATE",
            ),
            (
                vec![
                    ("OTEL_EXPORTER_OTLP_ENDPOINT", "http://c:4317"),
                    ("OTEL_EXPORTER_OTLP_TRACES_CLIENT_CERTIFICATE", "/c.pem"),
                ],
                "OTEL_EXPORTER_OTLP_TRACES_CLIENT_CERTIFICATE",
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
    fn a_member_shown_in_a_problem_is_cut() {
        let long = "x".repeat(10_000);
        let err = config(&[("OTEL_RESOURCE_ATTRIBUTES", long.as_str())]).unwrap_err();
        let text = err.to_string();
        assert!(text.len() < 200, "{} bytes", text.len());
        assert!(text.contains(&format!("{:?}...", "x".repeat(64))), "{text}");
        // Escapes count: 64 control characters take 384 bytes escaped.
        let err =
            config(&[("OTEL_RESOURCE_ATTRIBUTES", "\u{1a}".repeat(64).as_str())]).unwrap_err();
        assert!(err.to_string().len() < 200, "{err}");
        // The headers' members are never shown, whatever their length.
        let err = config(&[
            ("OTEL_EXPORTER_OTLP_ENDPOINT", "http://c:4317"),
            ("OTEL_EXPORTER_OTLP_HEADERS", "token-abc"),
        ])
        .unwrap_err();
        assert!(!err.to_string().contains("token-abc"), "{err}");
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
            ("INSTRUMENT_TAIL_ERRORS", "yes", "true or false"),
            ("INSTRUMENT_TAIL_SLOW_MS", "1s", "milliseconds"),
            ("INSTRUMENT_TAIL_SLOW_ROUTES", "GET /a", "name=milliseconds"),
            ("INSTRUMENT_TAIL_SLOW_ROUTES", "GET /a=fast", "milliseconds"),
            ("INSTRUMENT_TAIL_MAX_SPANS", "0", "above zero"),
            ("INSTRUMENT_TAIL_MAX_SPANS_PER_REQUEST", "-1", "above zero"),
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
    fn consistent_samplers_and_tail_bias_are_read() {
        let c = config(&[
            ("OTEL_TRACES_SAMPLER", "ParentBased_Consistent_Probability"),
            ("OTEL_TRACES_SAMPLER_ARG", "0.01"),
            ("INSTRUMENT_TAIL_ERRORS", "TRUE"),
            ("INSTRUMENT_TAIL_SLOW_MS", "500"),
            (
                "INSTRUMENT_TAIL_SLOW_ROUTES",
                " GET /users/{id}=250 , workflow.v1.WorkflowService/StartWorkflow=2000,",
            ),
            ("INSTRUMENT_TAIL_MAX_SPANS", "100"),
            ("INSTRUMENT_TAIL_MAX_SPANS_PER_REQUEST", "8"),
        ])
        .unwrap();
        assert_eq!(
            c.sampler,
            SamplerConfig::ParentBasedConsistentProbability(0.01)
        );
        let ms = Duration::from_millis;
        assert_eq!(
            c.tail,
            TailBias::default()
                .errors(true)
                .slow(ms(500))
                .slow_for("GET /users/{id}", ms(250))
                .slow_for("workflow.v1.WorkflowService/StartWorkflow", ms(2000))
                .max_spans(100)
                .max_spans_per_request(8)
        );
        assert_eq!(c.tail.slow_threshold("GET /users/{id}"), Some(ms(250)));
        assert_eq!(c.tail.slow_threshold("GET /orders"), Some(ms(500)));
        let c = config(&[("OTEL_TRACES_SAMPLER", "consistent_probability")]).unwrap();
        assert_eq!(c.sampler, SamplerConfig::ConsistentProbability(1.0));
        assert!(!config(&[]).unwrap().tail.is_enabled());
        // Other INSTRUMENT_ variables are not the pipeline's.
        assert!(config(&[("INSTRUMENT_PYTHON", "x")]).is_ok());
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

    /// Logs follow the generic endpoint as traces do, their own variables win, and
    /// `none` (or `console`: the JSON lines, written in any case) sends none.
    #[test]
    fn logs_go_over_otlp_where_an_endpoint_says_with_their_own_batch_settings() {
        let c = config(&[]).unwrap();
        assert_eq!(
            c.logs,
            LogsConfig::JsonLines,
            "no endpoint: JSON lines only"
        );
        let c = config(&[
            ("OTEL_EXPORTER_OTLP_ENDPOINT", "http://collector:4318"),
            ("OTEL_EXPORTER_OTLP_PROTOCOL", "http/protobuf"),
            ("OTEL_EXPORTER_OTLP_LOGS_HEADERS", "x-team=logs"),
            ("OTEL_BLRP_SCHEDULE_DELAY", "250"),
            ("OTEL_BLRP_MAX_QUEUE_SIZE", "100"),
        ])
        .unwrap();
        let LogsConfig::Otlp { otlp, batch } = c.logs else {
            panic!("{:?}", c.logs)
        };
        assert_eq!(otlp.endpoint, "http://collector:4318/v1/logs");
        assert_eq!(otlp.headers, [("x-team".to_owned(), "logs".to_owned())]);
        assert_eq!(batch.schedule_delay, Duration::from_millis(250));
        assert_eq!(batch.max_queue_size, 100);
        assert_eq!(batch.max_export_batch_size, 100, "cut to the queue");
        assert_eq!(batch.export_timeout, Duration::from_secs(30));
        let c = config(&[("OTEL_LOGS_EXPORTER", "otlp")]).unwrap();
        assert!(
            matches!(&c.logs, LogsConfig::Otlp { otlp, batch } if otlp.endpoint == "http://localhost:4317" && batch.schedule_delay == Duration::from_secs(1)),
            "{:?}",
            c.logs
        );
        for off in ["none", "console"] {
            let c = config(&[
                ("OTEL_EXPORTER_OTLP_ENDPOINT", "http://collector:4317"),
                ("OTEL_LOGS_EXPORTER", off),
            ])
            .unwrap();
            assert_eq!(c.logs, LogsConfig::JsonLines, "{off}");
        }
        let (c, problems) = PipelineConfig::from_vars_lenient([("OTEL_LOGS_EXPORTER", "syslog")]);
        assert_eq!(c.logs, LogsConfig::JsonLines);
        assert_eq!(problems[0].variable(), "OTEL_LOGS_EXPORTER");
    }
}
