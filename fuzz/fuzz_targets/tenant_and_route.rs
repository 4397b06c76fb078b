//! Tenant ids, routes and versions: no panic on any input; errors stay short.
#![no_main]

use instrument_core::cardinality::{api_version, normalize_route};
use instrument_core::tenant::TenantId;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Err(e) = TenantId::parse_bytes(data) {
        assert!(e.to_string().len() < 100);
    }
    if let Ok(s) = std::str::from_utf8(data) {
        let normalized = normalize_route(s);
        assert!(normalized.len() <= s.len() * 4);
        let _ = api_version(s);
    }
});
