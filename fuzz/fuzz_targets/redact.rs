//! Redaction never panics on any key or value, never grows a value without bound, and
//! keeps a JSON document a JSON document.
#![no_main]

use std::sync::OnceLock;

use instrument_core::redact::{Kind, RedactionSummary, Redactor};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    static REDACTOR: OnceLock<Redactor> = OnceLock::new();
    let redactor = REDACTOR.get_or_init(Redactor::default);
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let (key, value) = text.split_once('\u{1f}').unwrap_or(("", text));
    let mut summary = RedactionSummary::default();
    for kind in [
        Kind::Attribute,
        Kind::Header,
        Kind::JsonBody,
        Kind::Url,
        Kind::Sql,
    ] {
        let out = redactor.redact(kind, key, value, &mut summary);
        // Masks are never much longer than what they replace.
        assert!(out.len() <= value.len() * 12 + 64, "{kind:?}");
    }
    // An object or array is rewritten in place: what parsed before still parses.
    let document = value.trim_start().starts_with(['{', '[']);
    if document && serde_json::from_str::<serde_json::Value>(value).is_ok() {
        let out = redactor.redact(Kind::JsonBody, key, value, &mut summary);
        assert!(
            serde_json::from_str::<serde_json::Value>(&out).is_ok(),
            "{out}"
        );
    }
});
