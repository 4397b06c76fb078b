//! The redaction filter behind `cargo run --example redact`: one JSON line in, its
//! sanitised value out, with the default policy.
//!
//! Each input line is `{"kind": ..., "key": ..., "value": ...}` where `kind` is one of
//! `attribute`, `log_field`, `header`, `json_body`, `url`, `sql` (`key` is needed by the
//! first three). Each output line is `{"value": <sanitised>}`, in input order. A line that
//! cannot be read gets `{"value": "[REDACTED]", "error": "..."}` (fail closed) and the
//! filter keeps going; error messages never repeat the input. Exits 0 at end of input.
//!
//! ```
//! use instrument::redact::Redactor;
//! use instrument_examples::redact_filter::process;
//!
//! let line = br#"{"kind":"attribute","key":"db_password","value":"hunter2"}"#;
//! assert_eq!(process(&Redactor::default(), line), Ok(serde_json::json!("[REDACTED]")));
//! ```

use instrument::redact::{Kind, RedactionSummary, Redactor};
use serde_json::Value;

/// Sanitises one input line, or says why it cannot be read.
pub fn process(redactor: &Redactor, line: &[u8]) -> Result<Value, String> {
    let text = std::str::from_utf8(line).map_err(|_| "input line is not valid UTF-8".to_owned())?;
    let input: Value =
        serde_json::from_str(text).map_err(|e| format!("input line is not JSON: {e}"))?;
    let Value::Object(fields) = input else {
        return Err("input line is not a JSON object".into());
    };
    let kind: Kind = match fields.get("kind") {
        Some(Value::String(k)) => k.parse().map_err(|e| format!("{e}"))?,
        Some(_) => return Err("field \"kind\" is not a string".into()),
        None => return Err("missing field \"kind\"".into()),
    };
    let needs_key = matches!(kind, Kind::Attribute | Kind::LogField | Kind::Header);
    let key = match fields.get("key") {
        Some(Value::String(k)) => k.as_str(),
        Some(Value::Null) | None if !needs_key => "",
        Some(_) => return Err("field \"key\" is not a string".into()),
        None => return Err("missing field \"key\"".into()),
    };
    let mut summary = RedactionSummary::default();
    match fields.get("value") {
        None | Some(Value::Null) => Err("missing field \"value\"".into()),
        Some(Value::String(v)) => Ok(Value::String(
            redactor.redact(kind, key, v, &mut summary).into_owned(),
        )),
        // A JSON body given as JSON rather than as text keeps its shape.
        Some(body @ (Value::Object(_) | Value::Array(_))) if kind == Kind::JsonBody => {
            let text = body.to_string();
            let clean = redactor.redact(kind, key, &text, &mut summary);
            serde_json::from_str(&clean).or(Ok(Value::String(clean.into_owned())))
        }
        Some(other) => {
            let text = other.to_string();
            Ok(Value::String(
                redactor.redact(kind, key, &text, &mut summary).into_owned(),
            ))
        }
    }
}
