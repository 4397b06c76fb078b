//! `traceparent` parsing never panics, and what parses formats back to itself (version 00).
#![no_main]

use instrument_core::context::{restore, TraceParent};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(tp) = TraceParent::parse_header(data) {
        let again = TraceParent::parse(&tp.to_string()).expect("formatted traceparent parses");
        assert_eq!(
            (again.trace_id(), again.parent_id(), again.flags()),
            (tp.trace_id(), tp.parent_id(), tp.flags())
        );
    }
    if let Ok(s) = std::str::from_utf8(data) {
        let _ = restore(Some(s));
    }
});
