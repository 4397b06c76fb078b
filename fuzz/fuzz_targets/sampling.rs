//! Consistent probability sampling's parsers never panic: any `th`, `rv` and `ot`
//! member, with a threshold set into and erased from the state, leaves the other
//! members alone and reads back what was set (or nothing, past the length limit).
#![no_main]

use instrument_core::sampling::{
    threshold_of, with_threshold, without_threshold, Randomness, Threshold, OT_KEY,
};
use libfuzzer_sys::fuzz_target;
use opentelemetry::trace::{TraceId, TraceState};

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let _ = Threshold::parse(text);
    let _ = Randomness::parse(text);
    if data.len() >= 8 {
        let p = f64::from_le_bytes(data[..8].try_into().unwrap_or([0; 8]));
        if let Ok(t) = Threshold::from_probability(p) {
            assert!(t.value() < 1 << 56);
            assert_eq!(Threshold::parse(&t.to_string()), Some(t));
        }
    }
    let Ok(state) = TraceState::from_key_value([("vendor", "v"), (OT_KEY, text)]) else {
        return;
    };
    let _ = threshold_of(&state);
    let _ = Randomness::of(TraceId::from(1u128), &state);
    let t = Threshold::parse("fd70a").unwrap_or(Threshold::ALWAYS);
    let set = with_threshold(&state, t);
    assert_eq!(set.get("vendor"), Some("v"));
    // Set, unless the `ot` value would pass 256 characters (then erased).
    assert!(threshold_of(&set).is_none_or(|th| th == t));
    let erased = without_threshold(&set);
    assert_eq!(erased.get("vendor"), Some("v"));
    assert_eq!(threshold_of(&erased), None);
});
