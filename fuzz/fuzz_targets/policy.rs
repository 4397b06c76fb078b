//! Policy text from a file never panics the loader or the redactor built from it.
#![no_main]

use instrument_core::redact::{RedactionPolicy, Redactor};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    if let Ok(policy) = RedactionPolicy::from_toml_str(text) {
        if let Ok(r) = Redactor::new(&policy) {
            let _ = r.redact_attribute("password", "hunter2 bob@example.com");
        }
    }
});
