//! The span proxy's input: a reported span of any content is refused or accepted
//! without a panic; an accepted one carries only allowed keys, values within the
//! limits, an error of at most 1 KiB, and names at most 16 dropped keys of 64 bytes.
#![no_main]

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use instrument_core::report::{
    ExecutionSpan, ReportRules, DEFAULT_ATTRIBUTE_KEYS, DEFAULT_SPAN_TYPES,
};
use libfuzzer_sys::fuzz_target;

/// The next field of `data`: up to the next 0xff byte, as text (lossy).
fn field(parts: &mut std::slice::Split<'_, u8, impl FnMut(&u8) -> bool>) -> String {
    parts
        .next()
        .map(|p| String::from_utf8_lossy(p).into_owned())
        .unwrap_or_default()
}

fn time(text: &str) -> SystemTime {
    let seconds = text
        .bytes()
        .fold(0u64, |n, b| n.wrapping_mul(31).wrapping_add(u64::from(b)));
    UNIX_EPOCH + Duration::from_secs(seconds % 4_000_000_000)
}

fuzz_target!(|data: &[u8]| {
    let rules = ReportRules::default();
    let mut parts = data.split(|b| *b == 0xff);
    let span_id = field(&mut parts);
    let parent = field(&mut parts);
    let kind = field(&mut parts);
    let span_type = match kind.as_bytes().first() {
        Some(&b) if usize::from(b) < DEFAULT_SPAN_TYPES.len() => {
            DEFAULT_SPAN_TYPES[usize::from(b)].to_owned()
        }
        _ => kind,
    };
    let name = field(&mut parts);
    let (start, end) = (time(&field(&mut parts)), time(&field(&mut parts)));
    let mut span = ExecutionSpan::new(&span_id, &span_type, "wf-1", start, end);
    span.parent_span_id = parent;
    span.name = name;
    span.error = Some(field(&mut parts)).filter(|e| !e.is_empty());
    while let Some(key) = parts.next() {
        let key = String::from_utf8_lossy(key).into_owned();
        let value = field(&mut parts);
        span.attributes.push((key, value));
    }
    let now = SystemTime::now();
    for workflow_start in [None, Some(start), Some(now)] {
        match rules.check(&span, now, workflow_start) {
            Ok(checked) => {
                for kv in &checked.attributes {
                    let key = kv.key.as_str();
                    assert!(
                        key == "workflow.id"
                            || key == "task.id"
                            || DEFAULT_ATTRIBUTE_KEYS.contains(&key),
                        "{key}"
                    );
                    assert!(kv.value.as_str().len() <= rules.max_value);
                }
                assert!(checked.error.map_or(0, |e| e.len()) <= 1024);
                assert!(checked.dropped.len() <= 16);
                assert!(checked.dropped.iter().all(|k| k.len() <= 64));
                assert!(checked.name.len() <= 256 || checked.name == span.span_type);
            }
            Err(refusal) => assert!(!refusal.as_str().is_empty()),
        }
    }
});
