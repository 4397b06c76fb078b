//! Structural sanitising of JSON found in a value: sensitive members masked by key,
//! every string scanned by the value rules, nesting bounded.
//!
//! The document is walked in place and only the values that are masked are rewritten;
//! every other byte (whitespace, member order, number formats, escapes) stays as it
//! was, so `{"jwt": "<token>", "ttl": 3600}` keeps `"ttl": 3600` exactly.
//!
//! Rules beyond the key of each member:
//! - an object or array held under a sensitive key is sensitive throughout, except
//!   for members whose key only describes the secret (`{"auth": {"method":
//!   "password"}}` keeps `"password"`; `{"credentials": {"user": "svc", "key": "k"}}`
//!   masks both);
//! - a `{"name": "DB_PASSWORD", "value": "..."}` pair (also `key` / `Value`, as in
//!   Kubernetes `env` lists and .NET settings) masks `value` when `name` is a
//!   sensitive key.

use std::borrow::Cow;

use super::keys::KeyClass;
use super::policy::Rule;
use super::summary::RedactionSummary;
use super::text::{is_card_number, mask_card};
use super::Redactor;

/// One rewrite of the document: `start..end` becomes `text`.
struct Edit {
    start: usize,
    end: usize,
    text: String,
}

/// The document is not JSON (the caller scans it as text instead).
#[derive(Debug)]
pub(super) struct NotJson;

/// How a value is held.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Held {
    /// Under a key that names nothing sensitive: scanned by the value rules.
    Plain,
    /// Under a sensitive key (or inside a value that is).
    Secret(KeyClass),
}

struct Walk<'r, 't, 's> {
    redactor: &'r Redactor,
    text: &'t str,
    bytes: &'t [u8],
    pos: usize,
    edits: Vec<Edit>,
    summary: &'s mut RedactionSummary,
}

impl Redactor {
    /// Sanitises the JSON document `text`: `Ok(None)` when nothing changed, the
    /// rewritten document otherwise, `Err` when `text` is not one JSON document.
    /// `depth` is how deep in JSON `text` itself sits (a document inside a string).
    pub(super) fn sanitize_json_text(
        &self,
        text: &str,
        depth: usize,
        summary: &mut RedactionSummary,
    ) -> Result<Option<String>, NotJson> {
        let mut inner = RedactionSummary::default();
        let mut walk = Walk {
            redactor: self,
            text,
            bytes: text.as_bytes(),
            pos: 0,
            edits: Vec::new(),
            summary: &mut inner,
        };
        walk.space();
        walk.value(depth, Held::Plain)?;
        walk.space();
        if walk.pos != walk.bytes.len() {
            return Err(NotJson);
        }
        let edits = std::mem::take(&mut walk.edits);
        summary.merge(&inner);
        if edits.is_empty() {
            return Ok(None);
        }
        let mut out = String::with_capacity(text.len());
        let mut last = 0;
        for edit in edits {
            out.push_str(&text[last..edit.start]);
            out.push_str(&edit.text);
            last = edit.end;
        }
        out.push_str(&text[last..]);
        Ok(Some(out))
    }
}

/// `s` as a JSON string literal.
fn quoted(s: &str) -> String {
    // Serialising a `str` cannot fail.
    serde_json::to_string(s).unwrap_or_else(|_| "\"\"".to_owned())
}

impl<'t> Walk<'_, 't, '_> {
    fn space(&mut self) {
        while self
            .bytes
            .get(self.pos)
            .is_some_and(|b| matches!(b, b' ' | b'\t' | b'\n' | b'\r'))
        {
            self.pos += 1;
        }
    }

    fn peek(&self) -> Option<u8> {
        self.bytes.get(self.pos).copied()
    }

    fn expect(&mut self, b: u8) -> Result<(), NotJson> {
        if self.peek() == Some(b) {
            self.pos += 1;
            Ok(())
        } else {
            Err(NotJson)
        }
    }

    fn edit(&mut self, start: usize, end: usize, text: String) {
        self.edits.push(Edit { start, end, text });
    }

    fn value(&mut self, depth: usize, held: Held) -> Result<(), NotJson> {
        let det = self.redactor.inner.detectors();
        if depth > self.redactor.inner.max_json_depth {
            // Too deep to walk: fail closed.
            let start = self.pos;
            self.skip_value()?;
            self.summary.record(Rule::JsonStructure);
            let masked = quoted(det.replacement());
            self.edit(start, self.pos, masked);
            return Ok(());
        }
        match self.peek().ok_or(NotJson)? {
            b'{' => self.object(depth, held),
            b'[' => self.array(depth, held),
            b'"' => {
                let (start, end, s) = self.string()?;
                self.string_value(start, end, &s, depth, held);
                Ok(())
            }
            b't' | b'f' | b'n' => self.literal(),
            _ => {
                let (start, end) = self.number()?;
                self.number_value(start, end, held);
                Ok(())
            }
        }
    }

    fn string_value(&mut self, start: usize, end: usize, s: &str, depth: usize, held: Held) {
        let r = self.redactor;
        let det = r.inner.detectors();
        match held {
            Held::Secret(class) => {
                if !det.keeps_under_key(class, s) {
                    self.summary.record(Rule::SensitiveKey);
                    self.edit(start, end, quoted(&det.mask_whole(s)));
                }
            }
            Held::Plain => {
                if let Cow::Owned(clean) = r.scan_text(s, depth + 1, self.summary) {
                    self.edit(start, end, quoted(&clean));
                }
            }
        }
    }

    fn number_value(&mut self, start: usize, end: usize, held: Held) {
        let det = self.redactor.inner.detectors();
        let digits = &self.text[start..end];
        match held {
            Held::Secret(class) => {
                if !det.keeps_under_key(class, digits) {
                    self.summary.record(Rule::SensitiveKey);
                    self.edit(start, end, quoted(&det.mask_whole(digits)));
                }
            }
            Held::Plain => {
                // A card number written as a JSON number.
                if det.on(Rule::PaymentCard)
                    && digits.bytes().all(|b| b.is_ascii_digit())
                    && is_card_number(digits.as_bytes())
                {
                    self.summary.record(Rule::PaymentCard);
                    self.edit(start, end, quoted(&mask_card(digits)));
                }
            }
        }
    }

    fn object(&mut self, depth: usize, held: Held) -> Result<(), NotJson> {
        let r = self.redactor;
        let key_rule = r.inner.detectors().on(Rule::SensitiveKey);
        self.expect(b'{')?;
        self.space();
        // A `name` member naming a sensitive key, and where the `value` member is.
        let mut named: Option<KeyClass> = None;
        let mut value_member: Option<(usize, usize, usize)> = None;
        if self.peek() == Some(b'}') {
            self.pos += 1;
            return Ok(());
        }
        loop {
            self.space();
            let (_, _, key) = self.string()?;
            self.space();
            self.expect(b':')?;
            self.space();
            let own = if key_rule {
                r.inner.keys().classify(&key)
            } else {
                KeyClass::Plain
            };
            let member = match (own, held) {
                (KeyClass::Plain, Held::Secret(class)) if !r.inner.keys().is_description(&key) => {
                    Held::Secret(class)
                }
                (KeyClass::Plain, _) => Held::Plain,
                (class, _) => Held::Secret(class),
            };
            let edits_before = self.edits.len();
            let value_start = self.pos;
            let is_string = self.peek() == Some(b'"');
            if key_rule
                && is_string
                && (key.eq_ignore_ascii_case("name") || key.eq_ignore_ascii_case("key"))
            {
                let (start, end, s) = self.string()?;
                let class = r.inner.keys().classify(&s);
                if class.is_sensitive() {
                    named = Some(class);
                }
                self.string_value(start, end, &s, depth + 1, member);
            } else {
                self.value(depth + 1, member)?;
            }
            if key.eq_ignore_ascii_case("value") && member == Held::Plain {
                value_member = Some((edits_before, value_start, self.pos));
            }
            self.space();
            match self.peek() {
                Some(b',') => self.pos += 1,
                Some(b'}') => {
                    self.pos += 1;
                    break;
                }
                _ => return Err(NotJson),
            }
        }
        if let (Some(class), Some((edits_before, start, end))) = (named, value_member) {
            self.mask_member_again(class, edits_before, start, end, depth);
        }
        Ok(())
    }

    /// Masks the member at `start..end`, walked as plain, as a secret of `class`: the
    /// `value` of a `{"name": <sensitive key>, "value": ...}` pair.
    fn mask_member_again(
        &mut self,
        class: KeyClass,
        edits_before: usize,
        start: usize,
        end: usize,
        depth: usize,
    ) {
        // Its own edits go; the walk is done again as a secret.
        let later: Vec<Edit> = self
            .edits
            .drain(edits_before..)
            .filter(|e| e.start >= end)
            .collect();
        let resume = self.pos;
        self.pos = start;
        if self.value(depth + 1, Held::Secret(class)).is_err() {
            // It was walked once already; a second walk cannot fail.
            self.pos = end;
        }
        self.pos = resume;
        self.edits.extend(later);
    }

    fn array(&mut self, depth: usize, held: Held) -> Result<(), NotJson> {
        self.expect(b'[')?;
        self.space();
        if self.peek() == Some(b']') {
            self.pos += 1;
            return Ok(());
        }
        loop {
            self.space();
            self.value(depth + 1, held)?;
            self.space();
            match self.peek() {
                Some(b',') => self.pos += 1,
                Some(b']') => {
                    self.pos += 1;
                    return Ok(());
                }
                _ => return Err(NotJson),
            }
        }
    }

    /// A string token: its span (quotes included) and its decoded text.
    fn string(&mut self) -> Result<(usize, usize, Cow<'t, str>), NotJson> {
        let start = self.pos;
        self.expect(b'"')?;
        let mut escaped = false;
        loop {
            let at = memchr::memchr2(b'"', b'\\', &self.bytes[self.pos..]).ok_or(NotJson)?;
            self.pos += at;
            if self.bytes[self.pos] == b'\\' {
                escaped = true;
                self.pos += 2;
                if self.pos > self.bytes.len() {
                    return Err(NotJson);
                }
                continue;
            }
            self.pos += 1;
            break;
        }
        let end = self.pos;
        let raw: &'t str = &self.text[start..end];
        if raw[1..raw.len() - 1].bytes().any(|b| b < 0x20) {
            return Err(NotJson);
        }
        let text = if escaped {
            Cow::Owned(serde_json::from_str::<String>(raw).map_err(|_| NotJson)?)
        } else {
            Cow::Borrowed(&raw[1..raw.len() - 1])
        };
        Ok((start, end, text))
    }

    fn literal(&mut self) -> Result<(), NotJson> {
        for word in [&b"true"[..], b"false", b"null"] {
            if self.bytes[self.pos..].starts_with(word) {
                self.pos += word.len();
                return Ok(());
            }
        }
        Err(NotJson)
    }

    /// A number token's span (JSON's grammar: `-? int frac? exp?`).
    fn number(&mut self) -> Result<(usize, usize), NotJson> {
        let start = self.pos;
        let digits = |w: &mut Self| {
            let from = w.pos;
            while w.peek().is_some_and(|b| b.is_ascii_digit()) {
                w.pos += 1;
            }
            w.pos > from
        };
        if self.peek() == Some(b'-') {
            self.pos += 1;
        }
        let int_start = self.pos;
        if !digits(self) || (self.bytes[int_start] == b'0' && self.pos - int_start > 1) {
            return Err(NotJson);
        }
        if self.peek() == Some(b'.') {
            self.pos += 1;
            if !digits(self) {
                return Err(NotJson);
            }
        }
        if matches!(self.peek(), Some(b'e' | b'E')) {
            self.pos += 1;
            if matches!(self.peek(), Some(b'+' | b'-')) {
                self.pos += 1;
            }
            if !digits(self) {
                return Err(NotJson);
            }
        }
        Ok((start, self.pos))
    }

    /// Steps over one value without looking into it (a value too deep to walk).
    fn skip_value(&mut self) -> Result<(), NotJson> {
        let mut open = 0usize;
        loop {
            self.space();
            match self.peek().ok_or(NotJson)? {
                b'{' | b'[' => {
                    open += 1;
                    self.pos += 1;
                }
                b'}' | b']' => {
                    open = open.checked_sub(1).ok_or(NotJson)?;
                    self.pos += 1;
                }
                b'"' => {
                    self.string()?;
                }
                b',' | b':' => self.pos += 1,
                b't' | b'f' | b'n' => self.literal()?,
                _ => {
                    self.number()?;
                }
            }
            if open == 0 {
                return Ok(());
            }
        }
    }
}
