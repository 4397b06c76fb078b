//! `sanitize_sql` never panics and is idempotent.
#![no_main]

use instrument_core::redact::sanitize_sql;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(sql) = std::str::from_utf8(data) else {
        return;
    };
    let once = sanitize_sql(sql).into_owned();
    assert_eq!(sanitize_sql(&once), once.as_str());
});
