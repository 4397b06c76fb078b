//! `tracestate` parsing never panics; accepted members respect the W3C limits.
#![no_main]

use instrument_core::context::{extract, TraceStateList, MAX_MEMBERS};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    // Split the input into header lines at NUL bytes.
    let lines: Vec<&[u8]> = data.split(|b| *b == 0).collect();
    if let Ok(list) = TraceStateList::parse(lines.iter().copied()) {
        assert!(list.len() <= MAX_MEMBERS);
        for (k, v) in list.iter() {
            assert!(!k.is_empty() && k.len() <= 256 && !v.is_empty() && v.len() <= 256);
        }
        // What is sent on reads back as the same list.
        assert_eq!(
            TraceStateList::parse([list.header().as_bytes()]),
            Ok(list.clone())
        );
        let _ = list.to_otel();
    }
    let tp = b"00-12345678901234567890123456789012-1234567890123456-01";
    let _ = extract([&tp[..]], lines.iter().copied());
    let _ = extract(lines.iter().copied(), []);
});
