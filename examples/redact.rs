//! A redaction filter: JSON lines in, sanitised JSON lines out, with the default policy
//! (see `instrument_examples::redact_filter`).
//!
//! Each input line is `{"kind": ..., "key": ..., "value": ...}` where `kind` is one of
//! `attribute`, `log_field`, `header`, `json_body`, `url`, `sql` (`key` is needed by the
//! first three). Each output line is `{"value": <sanitised>}`, in input order. A line that
//! cannot be read gets `{"value": "[REDACTED]", "error": "..."}` (fail closed) and the
//! filter keeps going; error messages never repeat the input. Exits 0 at end of input.
//!
//! ```text
//! $ echo '{"kind":"attribute","key":"db_password","value":"hunter2"}' | cargo run -q --example redact
//! {"value":"[REDACTED]"}
//! ```

use std::io::{self, BufRead, Write};

use instrument::redact::{Redactor, REDACTED};
use instrument_examples::redact_filter::process;
use serde_json::json;

fn main() {
    let redactor = Redactor::default();
    let stdin = io::stdin();
    let mut input = stdin.lock();
    let stdout = io::stdout();
    let mut out = stdout.lock();
    let mut line = Vec::new();
    loop {
        line.clear();
        match input.read_until(b'\n', &mut line) {
            Ok(0) => break,
            Ok(_) => {}
            Err(e) => {
                eprintln!("redact: cannot read input: {e}");
                break;
            }
        }
        while matches!(line.last(), Some(b'\n' | b'\r')) {
            line.pop();
        }
        let output = match process(&redactor, &line) {
            Ok(value) => json!({ "value": value }),
            Err(error) => json!({ "value": REDACTED, "error": error }),
        };
        if writeln!(out, "{output}").is_err() {
            // The reader went away (e.g. `| head`): nothing more to do.
            return;
        }
    }
    let _ = out.flush();
}
