//! The `OTEL_*` variables' reader never panics, whatever a deployment sets; each
//! problem stays a line, the strict reader fails exactly when the lenient one found a
//! problem, and a header's value never shows in a problem.
#![no_main]

use instrument_core::pipeline::PipelineConfig;
use libfuzzer_sys::fuzz_target;

const VARIABLES: &[&str] = &[
    "OTEL_SDK_DISABLED",
    "OTEL_SERVICE_NAME",
    "OTEL_RESOURCE_ATTRIBUTES",
    "OTEL_TRACES_EXPORTER",
    "OTEL_METRICS_EXPORTER",
    "OTEL_LOGS_EXPORTER",
    "OTEL_LOG_LEVEL",
    "OTEL_TRACES_SAMPLER",
    "OTEL_TRACES_SAMPLER_ARG",
    "OTEL_PROPAGATORS",
    "OTEL_BSP_SCHEDULE_DELAY",
    "OTEL_BSP_MAX_QUEUE_SIZE",
    "OTEL_BSP_MAX_EXPORT_BATCH_SIZE",
    "OTEL_BLRP_MAX_QUEUE_SIZE",
    "OTEL_METRIC_EXPORT_INTERVAL",
    "OTEL_EXPORTER_OTLP_METRICS_TEMPORALITY_PREFERENCE",
    "OTEL_EXPORTER_OTLP_ENDPOINT",
    "OTEL_EXPORTER_OTLP_PROTOCOL",
    "OTEL_EXPORTER_OTLP_HEADERS",
    "OTEL_EXPORTER_OTLP_TIMEOUT",
    "OTEL_EXPORTER_OTLP_COMPRESSION",
    "OTEL_EXPORTER_OTLP_INSECURE",
    "OTEL_EXPORTER_OTLP_CLIENT_CERTIFICATE",
    "OTEL_EXPORTER_OTLP_CLIENT_KEY",
    "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT",
    "OTEL_EXPORTER_OTLP_TRACES_HEADERS",
    "OTEL_EXPORTER_OTLP_LOGS_HEADERS",
    "INSTRUMENT_TAIL_ERRORS",
    "INSTRUMENT_TAIL_SLOW_MS",
    "INSTRUMENT_TAIL_SLOW_ROUTES",
    "INSTRUMENT_TAIL_MAX_SPANS",
];

/// Put in every headers variable: no problem may show it.
const TOKEN: &str = "s3cr3t-T0KEN";

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    // A line per variable: its first byte picks the variable, the rest is the value
    // (a headers variable's with a token among its members).
    let vars: Vec<(&str, String)> = text
        .lines()
        .filter_map(|line| {
            let first = *line.as_bytes().first()?;
            let name = VARIABLES[usize::from(first) % VARIABLES.len()];
            let value = line.get(1..).unwrap_or("");
            Some(if name.ends_with("_HEADERS") {
                (name, format!("{value},{TOKEN}"))
            } else {
                (name, value.to_owned())
            })
        })
        .collect();
    let (_, problems) = PipelineConfig::from_vars_lenient(vars.iter().cloned());
    for problem in &problems {
        let text = problem.to_string();
        assert!(text.len() <= 300, "{} bytes: {text}", text.len());
        if problem.variable().ends_with("_HEADERS") {
            assert!(!text.contains(TOKEN), "{text}");
        }
    }
    let strict = PipelineConfig::from_vars(vars.iter().cloned());
    assert_eq!(strict.is_err(), !problems.is_empty());
});
