//! `promtool check metrics` on an exposition: the real tool (Debian package
//! `prometheus`) when it is installed, else a validator of the Prometheus text format
//! written here, so the tests pass on a machine with only Rust. `.ci/run` installs
//! promtool and sets `INSTRUMENT_REQUIRE_PROMTOOL=1`, which makes the real tool
//! mandatory.

use std::collections::{HashMap, HashSet};
use std::io::Write as _;
use std::process::{Command, Stdio};
use std::sync::Once;

/// Fails the test with the complaints unless `exposition` passes promtool's checks (or,
/// without promtool, the format rules [`validate`] knows).
pub fn check_metrics(exposition: &str) {
    let spawned = Command::new("promtool")
        .args(["check", "metrics"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn();
    let mut promtool = match spawned {
        Ok(child) => child,
        Err(e) if std::env::var_os("INSTRUMENT_REQUIRE_PROMTOOL").is_none() => {
            static SAID: Once = Once::new();
            SAID.call_once(|| {
                eprintln!(
                    "promtool not found ({e}): checking the exposition with the built-in \
                     validator (apt-get install -y prometheus for the real tool)"
                )
            });
            if let Err(problems) = validate(exposition) {
                panic!("exposition is not valid:\n{}", problems.join("\n"));
            }
            return;
        }
        Err(e) => panic!("promtool is required (INSTRUMENT_REQUIRE_PROMTOOL is set): {e}"),
    };
    promtool
        .stdin
        .take()
        .expect("piped stdin")
        .write_all(exposition.as_bytes())
        .expect("promtool reads its input");
    let checked = promtool.wait_with_output().expect("promtool runs");
    assert!(
        checked.status.success(),
        "promtool: {}{}",
        String::from_utf8_lossy(&checked.stdout),
        String::from_utf8_lossy(&checked.stderr)
    );
}

/// The rules of the Prometheus text format (0.0.4) and promtool's lint that an
/// exposition of this crate can break: names and label names of the allowed
/// characters, escaped label values, numeric values, one `HELP` and one `TYPE` per
/// family given before its samples, counters ending in `_total`, histograms with
/// increasing `le` buckets up to `+Inf` and their `_sum` and `_count`, no sample twice.
pub fn validate(exposition: &str) -> Result<(), Vec<String>> {
    let mut problems = Vec::new();
    let mut types: HashMap<String, String> = HashMap::new();
    let mut helps: HashSet<String> = HashSet::new();
    let mut seen: HashSet<String> = HashSet::new();
    // Names of the samples so far, to find a TYPE given after them.
    let mut sampled: HashSet<String> = HashSet::new();
    // Per histogram series (name and labels without `le`): the `le` values in order.
    let mut buckets: HashMap<String, Vec<f64>> = HashMap::new();
    let mut histogram_parts: HashMap<String, HashSet<&'static str>> = HashMap::new();
    for (n, line) in exposition.lines().enumerate() {
        let at = |what: String| format!("line {}: {what}", n + 1);
        if line.trim().is_empty() {
            continue;
        }
        if let Some(comment) = line.strip_prefix('#') {
            let mut words = comment.trim_start().splitn(3, ' ');
            match (words.next(), words.next(), words.next()) {
                (Some("HELP"), Some(name), _) => {
                    if !is_metric_name(name) {
                        problems.push(at(format!("bad metric name {name:?}")));
                    }
                    if !helps.insert(name.to_owned()) {
                        problems.push(at(format!("second HELP for {name}")));
                    }
                }
                (Some("TYPE"), Some(name), Some(kind)) => {
                    let kind = kind.trim();
                    if !["counter", "gauge", "histogram", "summary", "untyped"].contains(&kind) {
                        problems.push(at(format!("unknown type {kind:?}")));
                    }
                    if kind == "counter" && !name.ends_with("_total") {
                        problems.push(at(format!("counter {name} should end in _total")));
                    }
                    if types.insert(name.to_owned(), kind.to_owned()).is_some() {
                        problems.push(at(format!("second TYPE for {name}")));
                    }
                    if sampled.iter().any(|s| family_of(s, &types) == name) {
                        problems.push(at(format!("TYPE of {name} after its samples")));
                    }
                }
                _ => {}
            }
            continue;
        }
        let (series, value) = match split_sample(line) {
            Ok(parts) => parts,
            Err(e) => {
                problems.push(at(e));
                continue;
            }
        };
        let (name, labels) = match parse_series(series) {
            Ok(parsed) => parsed,
            Err(e) => {
                problems.push(at(e));
                continue;
            }
        };
        if parse_value(value).is_none() {
            problems.push(at(format!("value {value:?} is not a number")));
        }
        sampled.insert(name.to_owned());
        let key = format!("{name}{{{}}}", canonical(&labels, None));
        if !seen.insert(key) {
            problems.push(at(format!("sample {series} given twice")));
        }
        let family = family_of(name, &types);
        if types.get(family).map(String::as_str) == Some("histogram") {
            let series_key = format!("{family}{{{}}}", canonical(&labels, Some("le")));
            let part = if name.ends_with("_bucket") {
                match labels.iter().find(|(k, _)| k == "le") {
                    Some((_, le)) => match parse_value(le) {
                        Some(bound) => {
                            let bounds = buckets.entry(series_key.clone()).or_default();
                            if bounds.last().is_some_and(|last| *last >= bound) {
                                problems.push(at(format!("buckets of {family} not increasing")));
                            }
                            bounds.push(bound);
                        }
                        None => problems.push(at(format!("le {le:?} is not a number"))),
                    },
                    None => problems.push(at(format!("bucket of {family} without le"))),
                }
                "bucket"
            } else if name.ends_with("_sum") {
                "sum"
            } else if name.ends_with("_count") {
                "count"
            } else {
                problems.push(at(format!("{name} is not a part of histogram {family}")));
                continue;
            };
            histogram_parts.entry(series_key).or_default().insert(part);
        }
    }
    for (series, parts) in &histogram_parts {
        for part in ["bucket", "sum", "count"] {
            if !parts.contains(part) {
                problems.push(format!("histogram {series} has no _{part}"));
            }
        }
        if buckets.get(series).and_then(|b| b.last()) != Some(&f64::INFINITY) {
            problems.push(format!("histogram {series} has no +Inf bucket"));
        }
    }
    if problems.is_empty() {
        Ok(())
    } else {
        Err(problems)
    }
}

/// The family a sample belongs to: its name, or the histogram or summary whose
/// `_bucket`, `_sum` or `_count` it is.
fn family_of<'a>(name: &'a str, types: &HashMap<String, String>) -> &'a str {
    for suffix in ["_bucket", "_sum", "_count"] {
        if let Some(base) = name.strip_suffix(suffix) {
            if matches!(
                types.get(base).map(String::as_str),
                Some("histogram" | "summary")
            ) {
                return base;
            }
        }
    }
    name
}

fn is_metric_name(name: &str) -> bool {
    let mut chars = name.chars();
    chars
        .next()
        .is_some_and(|c| c.is_ascii_alphabetic() || c == '_' || c == ':')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_' || c == ':')
}

fn is_label_name(name: &str) -> bool {
    let mut chars = name.chars();
    chars
        .next()
        .is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
}

/// `series value [timestamp]`, the series possibly with spaces inside label values.
fn split_sample(line: &str) -> Result<(&str, &str), String> {
    let series_end = match line.find('{') {
        Some(open) => {
            let close = closing_brace(line, open).ok_or("unterminated label set")?;
            close + 1
        }
        None => line.find(' ').ok_or("a sample without a value")?,
    };
    let (series, rest) = line.split_at(series_end);
    let mut fields = rest.split_whitespace();
    let value = fields.next().ok_or("a sample without a value")?;
    if let Some(timestamp) = fields.next() {
        if timestamp.parse::<i64>().is_err() {
            return Err(format!("timestamp {timestamp:?} is not an integer"));
        }
    }
    if fields.next().is_some() {
        return Err("text after the timestamp".into());
    }
    Ok((series, value))
}

/// Where the `}` closing the label set opened at `open` is (quotes and escapes honoured).
fn closing_brace(line: &str, open: usize) -> Option<usize> {
    let mut in_quotes = false;
    let mut escaped = false;
    for (i, c) in line[open..].char_indices() {
        match c {
            _ if escaped => escaped = false,
            '\\' if in_quotes => escaped = true,
            '"' => in_quotes = !in_quotes,
            '}' if !in_quotes => return Some(open + i),
            _ => {}
        }
    }
    None
}

type Labels = Vec<(String, String)>;

fn parse_series(series: &str) -> Result<(&str, Labels), String> {
    let (name, labels) = match series.find('{') {
        Some(open) => (&series[..open], &series[open + 1..series.len() - 1]),
        None => (series, ""),
    };
    if !is_metric_name(name) {
        return Err(format!("bad metric name {name:?}"));
    }
    let mut parsed = Vec::new();
    let mut rest = labels.trim();
    while !rest.is_empty() {
        let eq = rest.find('=').ok_or("a label without =")?;
        let label = rest[..eq].trim();
        if !is_label_name(label) {
            return Err(format!("bad label name {label:?}"));
        }
        let after = rest[eq + 1..].trim_start();
        let quoted = after
            .strip_prefix('"')
            .ok_or("a label value without quotes")?;
        let mut value = String::new();
        let mut chars = quoted.char_indices();
        let end = loop {
            match chars.next() {
                Some((_, '\\')) => match chars.next() {
                    Some((_, 'n')) => value.push('\n'),
                    Some((_, c @ ('\\' | '"'))) => value.push(c),
                    _ => return Err("a bad escape in a label value".into()),
                },
                Some((i, '"')) => break i,
                Some((_, c)) => value.push(c),
                None => return Err("an unterminated label value".into()),
            }
        };
        if parsed.iter().any(|(k, _): &(String, String)| k == label) {
            return Err(format!("label {label} given twice"));
        }
        parsed.push((label.to_owned(), value));
        rest = quoted[end + 1..].trim_start();
        rest = rest.strip_prefix(',').unwrap_or(rest).trim_start();
    }
    Ok((name, parsed))
}

fn parse_value(value: &str) -> Option<f64> {
    match value {
        "+Inf" | "Inf" => Some(f64::INFINITY),
        "-Inf" => Some(f64::NEG_INFINITY),
        "NaN" => Some(f64::NAN),
        _ => value.parse().ok(),
    }
}

/// The labels sorted, without `skip`, as `k="v",...`.
fn canonical(labels: &Labels, skip: Option<&str>) -> String {
    let mut sorted: Vec<&(String, String)> = labels
        .iter()
        .filter(|(k, _)| Some(k.as_str()) != skip)
        .collect();
    sorted.sort();
    sorted
        .iter()
        .map(|(k, v)| format!("{k}={v:?}"))
        .collect::<Vec<_>>()
        .join(",")
}

#[cfg(test)]
mod tests {
    use super::validate;

    #[test]
    fn the_validator_accepts_a_good_exposition_and_names_each_problem() {
        let good = "# HELP x_total Things.\n# TYPE x_total counter\nx_total{a=\"1 2\",b=\"q\\\"\"} 3\n\
                    # TYPE h histogram\nh_bucket{le=\"0.1\"} 1\nh_bucket{le=\"+Inf\"} 2\nh_sum 0.3\nh_count 2\n";
        assert_eq!(validate(good), Ok(()));
        for (bad, problem) in [
            ("# TYPE x counter\nx 1\n", "should end in _total"),
            ("x_total{a=1} 1\n", "without quotes"),
            ("x_total one\n", "not a number"),
            ("1x 1\n", "bad metric name"),
            ("x 1\nx 2\n", "given twice"),
            (
                "# TYPE h histogram\nh_bucket{le=\"1\"} 1\nh_sum 1\nh_count 1\n",
                "+Inf",
            ),
            (
                "# TYPE h histogram\nh_bucket{le=\"2\"} 1\nh_bucket{le=\"1\"} 1\n",
                "not increasing",
            ),
            ("x{a=\"1\",a=\"2\"} 1\n", "twice"),
            ("x 1\n# TYPE x gauge\n", "after its samples"),
        ] {
            let problems = validate(bad).unwrap_err().join("\n");
            assert!(problems.contains(problem), "{bad:?}: {problems}");
        }
    }
}
