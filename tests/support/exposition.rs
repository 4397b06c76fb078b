//! Reading a Prometheus text exposition in tests.
#![allow(dead_code)] // each test binary uses part of it

use std::collections::BTreeSet;

/// The series of `exposition` (each sample line without its value; comments left out),
/// but the pipeline's own export metrics (`otel_sdk_*`, one set per collector), which
/// appear once spans are exported whatever the clients send.
pub fn series(exposition: &str) -> BTreeSet<String> {
    exposition
        .lines()
        .filter(|line| !line.starts_with('#') && !line.is_empty())
        .filter(|line| !line.starts_with("otel_sdk_"))
        .map(|line| {
            line.rsplit_once(' ')
                .map_or(line, |(series, _)| series)
                .to_owned()
        })
        .collect()
}
