//! What a million distinct tenant values cost in memory, with and without the label guard.
//!
//! Each mode runs in a child process of its own, so each peak RSS is its own: the same
//! request counter and duration histogram (`tenant_id`, `method`, `route`) recorded for
//! 1,000,000 distinct tenants, once through the toolkit's guarded Prometheus recorder
//! (`pipeline::prometheus_recorder`, default `LabelGuard`: 2000 label sets per metric,
//! then one overflow series) and once through a bare `metrics-exporter-prometheus`
//! recorder (one series per tenant, kept for the life of the process).
//!
//! ```text
//! cargo run --release --example cardinality_memory               # both, a million values
//! cargo run --release --example cardinality_memory -- 200000     # fewer values
//! ```
//!
//! Peak RSS is the kernel's `VmHWM` (Linux only; elsewhere it reads "unavailable").

use std::process::{Command, ExitCode};
use std::time::Instant;

use instrument::cardinality::LabelGuard;
use instrument::pipeline::prometheus_recorder;
use instrument::semconv::MetricNames;
use metrics::Recorder;

const DEFAULT_VALUES: u64 = 1_000_000;

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    match args.as_slice() {
        [mode, values] if mode == "--child-guarded" || mode == "--child-bare" => {
            match values.parse() {
                Ok(values) => child(mode == "--child-guarded", values),
                Err(_) => usage(),
            }
        }
        [] => parent(DEFAULT_VALUES),
        [values] => match values.parse() {
            Ok(values) if values > 0 => parent(values),
            _ => usage(),
        },
        _ => usage(),
    }
}

fn usage() -> ExitCode {
    eprintln!("usage: cardinality_memory [DISTINCT_TENANTS]   (default {DEFAULT_VALUES})");
    ExitCode::from(2)
}

/// Runs both modes as children and prints their figures side by side.
fn parent(values: u64) -> ExitCode {
    let exe = match std::env::current_exe() {
        Ok(exe) => exe,
        Err(e) => {
            eprintln!("cannot find this program's path: {e}");
            return ExitCode::FAILURE;
        }
    };
    println!("{values} distinct tenant_id values, one counter and one histogram each\n");
    println!(
        "{:<10} {:>14} {:>16} {:>14} {:>10}",
        "recorder", "baseline RSS", "peak RSS", "growth", "time"
    );
    for (name, flag) in [("guarded", "--child-guarded"), ("bare", "--child-bare")] {
        let output = match Command::new(&exe)
            .arg(flag)
            .arg(values.to_string())
            .output()
        {
            Ok(output) if output.status.success() => output,
            Ok(output) => {
                eprintln!(
                    "{name}: exited with {}: {}",
                    output.status,
                    String::from_utf8_lossy(&output.stderr)
                );
                return ExitCode::FAILURE;
            }
            Err(e) => {
                eprintln!("{name}: cannot run: {e}");
                return ExitCode::FAILURE;
            }
        };
        let report = String::from_utf8_lossy(&output.stdout);
        let field = |key: &str| {
            report
                .split_whitespace()
                .find_map(|kv| kv.strip_prefix(key)?.strip_prefix('='))
                .unwrap_or("?")
                .to_owned()
        };
        let (baseline, peak) = (field("baseline_kib"), field("peak_kib"));
        let growth = match (baseline.parse::<u64>(), peak.parse::<u64>()) {
            (Ok(b), Ok(p)) => mib(p.saturating_sub(b)),
            _ => "unavailable".to_owned(),
        };
        println!(
            "{name:<10} {:>14} {:>16} {growth:>14} {:>9}s",
            kib_to_mib(&baseline),
            kib_to_mib(&peak),
            field("seconds"),
        );
        if let Some(series) = report
            .split_whitespace()
            .find_map(|kv| kv.strip_prefix("series="))
        {
            println!(
                "{:<10} series in /metrics for the request counter: {series}",
                ""
            );
        }
    }
    ExitCode::SUCCESS
}

fn kib_to_mib(kib: &str) -> String {
    kib.parse()
        .map(mib)
        .unwrap_or_else(|_| "unavailable".to_owned())
}

fn mib(kib: u64) -> String {
    format!("{:.1} MiB", kib as f64 / 1024.0)
}

/// Records `values` distinct tenants through one recorder; prints `key=value` figures.
fn child(guarded: bool, values: u64) -> ExitCode {
    let baseline = peak_rss_kib();
    let start = Instant::now();
    let series = if guarded {
        let (recorder, handle) =
            match prometheus_recorder(LabelGuard::default(), &MetricNames::default()) {
                Ok(pair) => pair,
                Err(e) => {
                    eprintln!("recorder: {e}");
                    return ExitCode::FAILURE;
                }
            };
        record(&recorder, values);
        let peak = peak_rss_kib();
        // Rendered after the peak is read: the guarded output is small.
        let series = handle
            .render()
            .lines()
            .filter(|l| l.starts_with("instrument_requests_total{"))
            .count();
        print_figures(baseline, peak, start);
        Some(series)
    } else {
        let recorder = metrics_exporter_prometheus::PrometheusBuilder::new().build_recorder();
        record(&recorder, values);
        // Not rendered: a million histograms render to gigabytes of text.
        print_figures(baseline, peak_rss_kib(), start);
        None
    };
    if let Some(series) = series {
        println!("series={series}");
    }
    ExitCode::SUCCESS
}

fn print_figures(baseline: Option<u64>, peak: Option<u64>, start: Instant) {
    let show = |v: Option<u64>| v.map_or("unavailable".to_owned(), |v| v.to_string());
    println!(
        "baseline_kib={} peak_kib={} seconds={:.1}",
        show(baseline),
        show(peak),
        start.elapsed().as_secs_f64()
    );
}

/// What a request-metrics layer records per request, for `values` distinct tenants.
fn record(recorder: &dyn Recorder, values: u64) {
    metrics::with_local_recorder(recorder, || {
        for i in 0..values {
            let tenant = format!("tenant-{i:07}");
            let labels = [
                ("tenant_id", tenant),
                ("method", "POST".to_owned()),
                ("route", "/workflows/{id}/tasks".to_owned()),
            ];
            metrics::counter!("instrument_requests_total", &labels).increment(1);
            metrics::histogram!("instrument_request_duration_seconds", &labels).record(0.003);
        }
    });
}

/// The process's peak resident set so far (`VmHWM`), in KiB.
fn peak_rss_kib() -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
    line.split_whitespace().nth(1)?.parse().ok()
}
