//! Reading a Prometheus text exposition in tests.
#![allow(dead_code)] // each test binary uses part of it

use std::collections::BTreeSet;

/// The series of `exposition` (each sample line without its value; comments left out).
pub fn series(exposition: &str) -> BTreeSet<String> {
    exposition
        .lines()
        .filter(|line| !line.starts_with('#') && !line.is_empty())
        .map(|line| {
            line.rsplit_once(' ')
                .map_or(line, |(series, _)| series)
                .to_owned()
        })
        .collect()
}
