//! Property tests of the `OTEL_*` variables' reader (`PipelineConfig::from_vars`):
//! whatever a deployment sets, reading it never panics; each problem names a variable
//! that was set and stays short; the strict reader fails exactly when the lenient one
//! found a problem, with the first; and a header value (a collector's token) never shows
//! in a problem, whatever else is wrong around it.
#![cfg(feature = "pipeline")]

use instrument_core::pipeline::{ConfigError, PipelineConfig};
use proptest::prelude::*;

/// Every variable the reader knows, and two it does not.
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
    "OTEL_BSP_EXPORT_TIMEOUT",
    "OTEL_BSP_MAX_QUEUE_SIZE",
    "OTEL_BSP_MAX_EXPORT_BATCH_SIZE",
    "OTEL_BLRP_SCHEDULE_DELAY",
    "OTEL_BLRP_EXPORT_TIMEOUT",
    "OTEL_BLRP_MAX_QUEUE_SIZE",
    "OTEL_BLRP_MAX_EXPORT_BATCH_SIZE",
    "OTEL_METRIC_EXPORT_INTERVAL",
    "OTEL_METRIC_EXPORT_TIMEOUT",
    "OTEL_EXPORTER_OTLP_METRICS_TEMPORALITY_PREFERENCE",
    "OTEL_EXPORTER_OTLP_ENDPOINT",
    "OTEL_EXPORTER_OTLP_PROTOCOL",
    "OTEL_EXPORTER_OTLP_HEADERS",
    "OTEL_EXPORTER_OTLP_TIMEOUT",
    "OTEL_EXPORTER_OTLP_COMPRESSION",
    "OTEL_EXPORTER_OTLP_INSECURE",
    "OTEL_EXPORTER_OTLP_CERTIFICATE",
    "OTEL_EXPORTER_OTLP_CLIENT_CERTIFICATE",
    "OTEL_EXPORTER_OTLP_CLIENT_KEY",
    "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT",
    "OTEL_EXPORTER_OTLP_TRACES_PROTOCOL",
    "OTEL_EXPORTER_OTLP_TRACES_HEADERS",
    "OTEL_EXPORTER_OTLP_TRACES_TIMEOUT",
    "OTEL_EXPORTER_OTLP_TRACES_COMPRESSION",
    "OTEL_EXPORTER_OTLP_TRACES_INSECURE",
    "OTEL_EXPORTER_OTLP_METRICS_ENDPOINT",
    "OTEL_EXPORTER_OTLP_METRICS_HEADERS",
    "OTEL_EXPORTER_OTLP_LOGS_ENDPOINT",
    "OTEL_EXPORTER_OTLP_LOGS_HEADERS",
    "INSTRUMENT_TAIL_ERRORS",
    "INSTRUMENT_TAIL_SLOW_MS",
    "INSTRUMENT_TAIL_SLOW_ROUTES",
    "INSTRUMENT_TAIL_MAX_SPANS",
    "INSTRUMENT_TAIL_MAX_SPANS_PER_REQUEST",
    "OTEL_NOT_A_VARIABLE",
    "HOME",
];

/// Values near the edges of what each variable takes.
const EDGES: &[&str] = &[
    "",
    " ",
    "true",
    "FALSE",
    "yes",
    "0",
    "-1",
    "1.5",
    "NaN",
    "inf",
    "1e309",
    "18446744073709551616",
    "none",
    "otlp",
    "console",
    "grpc",
    "http/protobuf",
    "http/json",
    "gzip",
    "zstd",
    "always_on",
    "parentbased_traceidratio",
    "traceidratio",
    "tracecontext,baggage",
    "b3multi,jaeger,xray",
    "http://",
    "https://collector:4317",
    "http://user:pass@collector:4318",
    "collector:4317",
    "ftp://collector",
    "http://[::1]:4317/v1/traces",
    "a=b,c=d",
    "a=%ZZ,=b,,c",
    "a=%E2%82",
    "=",
    ",,,",
    "delta",
    "lowmemory",
    "debug",
    "/ready,/health",
];

/// What is put in a headers variable: a token no problem may show.
const TOKEN: &str = "s3cr3t-T0KEN-do-not-show";

fn value() -> impl Strategy<Value = String> {
    prop_oneof![
        3 => proptest::sample::select(EDGES).prop_map(str::to_owned),
        2 => ".{0,40}",
        1 => "[a-z=,%0-9A-F ]{0,60}",
        1 => "[a-z ]{200,400}",
        1 => proptest::collection::vec(any::<char>(), 0..300)
            .prop_map(|chars| chars.into_iter().collect()),
    ]
}

fn vars() -> impl Strategy<Value = Vec<(&'static str, String)>> {
    proptest::collection::vec((proptest::sample::select(VARIABLES), value()), 0..12)
}

/// Each problem: a variable that was set, a short text that never holds the token.
fn check_problems(vars: &[(&str, String)], problems: &[ConfigError]) {
    for problem in problems {
        let text = problem.to_string();
        assert!(
            vars.iter()
                .any(|(name, v)| *name == problem.variable() && !v.is_empty()),
            "{text:?} names a variable not set in {vars:?}"
        );
        assert!(
            !text.is_empty() && text.len() <= 300,
            "{} bytes: {text:?}",
            text.len()
        );
        assert!(!text.contains(TOKEN), "{text:?}");
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn any_variables_are_read_without_a_panic_and_problems_are_clear(vars in vars()) {
        let (_, problems) = PipelineConfig::from_vars_lenient(vars.clone());
        check_problems(&vars, &problems);
        match PipelineConfig::from_vars(vars.clone()) {
            Ok(_) => prop_assert!(problems.is_empty(), "strict read passed: {problems:?}"),
            Err(e) => {
                let first = problems.first().expect("a problem");
                prop_assert_eq!(e.variable(), first.variable());
                prop_assert_eq!(e.problem(), first.problem());
            }
        }
    }

    #[test]
    fn a_header_value_never_shows_in_a_problem(
        signal in proptest::sample::select(&["", "TRACES_", "METRICS_", "LOGS_"][..]),
        before in "[a-z=,% ]{0,12}",
        after in "[a-z=,% ]{0,12}",
        as_key in any::<bool>(),
        others in vars(),
    ) {
        let member = if as_key {
            TOKEN.to_owned()
        } else {
            format!("authorization=Bearer {TOKEN}")
        };
        let mut vars = others;
        let name: &'static str = match signal {
            "" => "OTEL_EXPORTER_OTLP_HEADERS",
            "TRACES_" => "OTEL_EXPORTER_OTLP_TRACES_HEADERS",
            "METRICS_" => "OTEL_EXPORTER_OTLP_METRICS_HEADERS",
            _ => "OTEL_EXPORTER_OTLP_LOGS_HEADERS",
        };
        // An OTLP exporter, so that the headers are read.
        vars.push(("OTEL_EXPORTER_OTLP_ENDPOINT", "http://collector:4317".to_owned()));
        vars.push((name, format!("{before},{member},{after}")));
        let (_, problems) = PipelineConfig::from_vars_lenient(vars.clone());
        check_problems(&vars, &problems);
    }
}
