//! Reducing SQL text to its structure: literals become `?`, comments are dropped.

use std::borrow::Cow;

/// SQL with every string, number, hex/bit and dollar-quoted literal replaced by `?` and
/// every comment removed, so a statement can be recorded (`db.query.text`) without the
/// values in it.
///
/// Double-quoted text is kept when it looks like an identifier (`"users"`, `"Order"`),
/// and replaced otherwise, because MySQL reads `"..."` as a string. An unterminated
/// literal or comment is replaced to the end (fail closed). Statements with no literal
/// come back borrowed.
///
/// ```
/// use instrument_core::redact::sanitize_sql;
///
/// assert_eq!(
///     sanitize_sql("SELECT * FROM users WHERE email = 'bob@example.com' AND age > 42 -- vip"),
///     "SELECT * FROM users WHERE email = ? AND age > ? ",
/// );
/// assert_eq!(sanitize_sql("SELECT id FROM t"), "SELECT id FROM t");
/// ```
pub fn sanitize_sql(sql: &str) -> Cow<'_, str> {
    let b = sql.as_bytes();
    let mut out = Output {
        sql,
        text: None,
        copied: 0,
        last: [None; 2],
    };
    let mut i = 0;
    while i < b.len() {
        let c = b[i];
        match c {
            b'\'' => {
                // A one-letter prefix (E'', N'', X'', B'') belongs to the literal.
                let prefixed = matches!(
                    out.last[0],
                    Some(b'e' | b'E' | b'n' | b'N' | b'x' | b'X' | b'b' | b'B')
                ) && !out.last[1].is_some_and(is_ident);
                let end = end_of_quoted(b, i, b'\'');
                out.replace(if prefixed { i - 1 } else { i }, end, "?");
                i = end;
            }
            b'"' => {
                let end = end_of_quoted(b, i, b'"');
                let closed = end > i + 1 && b[end - 1] == b'"';
                let inner = if closed {
                    &b[i + 1..end - 1]
                } else {
                    &b[i + 1..]
                };
                let identifier = closed
                    && !inner.is_empty()
                    && inner.len() <= 63
                    && inner.iter().all(|&x| is_ident(x) || x == b'.');
                if identifier {
                    out.keep(&b[i..end]);
                } else {
                    out.replace(i, end, "?");
                }
                i = end;
            }
            b'`' => {
                let end = end_of_quoted(b, i, b'`');
                out.keep(&b[i..end]);
                i = end;
            }
            b'-' if b.get(i + 1) == Some(&b'-') => {
                let end = memchr::memchr(b'\n', &b[i..]).map_or(b.len(), |n| i + n);
                out.replace(i, end, "");
                i = end;
            }
            // MySQL line comment; a `#` elsewhere is an operator (PostgreSQL's XOR).
            b'#' if out.last[0].is_none_or(|l| l.is_ascii_whitespace()) => {
                let end = memchr::memchr(b'\n', &b[i..]).map_or(b.len(), |n| i + n);
                out.replace(i, end, "");
                i = end;
            }
            b'/' if b.get(i + 1) == Some(&b'*') => {
                let end =
                    memchr::memmem::find(&b[i + 2..], b"*/").map_or(b.len(), |n| i + 2 + n + 2);
                out.replace(i, end, " ");
                i = end;
            }
            b'$' if !out.after_ident() => match dollar_quote_end(b, i) {
                Some(end) => {
                    out.replace(i, end, "?");
                    i = end;
                }
                None => {
                    out.keep(&b[i..=i]);
                    i += 1;
                }
            },
            b'0'..=b'9' if !out.after_ident() => {
                let end = end_of_number(b, i);
                out.replace(i, end, "?");
                i = end;
            }
            b'.' if !out.after_ident() && b.get(i + 1).is_some_and(u8::is_ascii_digit) => {
                let end = end_of_number(b, i);
                out.replace(i, end, "?");
                i = end;
            }
            _ => {
                out.keep(&b[i..=i]);
                i += 1;
            }
        }
    }
    match out.text {
        None => Cow::Borrowed(sql),
        Some(mut text) => {
            text.push_str(&sql[out.copied..]);
            Cow::Owned(text)
        }
    }
}

/// The sanitised text as it is built, and its last two characters.
///
/// Context rules (is this digit part of an identifier? does this `#` start a comment?)
/// look at the *output*, not the input, so that sanitising is idempotent: `1$$$` first
/// becomes `?$$$`, and the `$` after `?` must then read the same way both times (found
/// by the `sql` fuzz target).
struct Output<'s> {
    sql: &'s str,
    /// `None` until the first replacement: then `sql` is returned borrowed.
    text: Option<String>,
    /// Bytes of `sql` accounted for in `text`.
    copied: usize,
    /// Last and second-to-last output bytes.
    last: [Option<u8>; 2],
}

impl Output<'_> {
    /// Replaces `sql[start..end]` with `with`.
    fn replace(&mut self, start: usize, end: usize, with: &str) {
        let text = self
            .text
            .get_or_insert_with(|| String::with_capacity(self.sql.len()));
        text.push_str(&self.sql[self.copied..start]);
        text.push_str(with);
        self.copied = end;
        for &c in with.as_bytes() {
            self.last = [Some(c), self.last[0]];
        }
    }

    /// Keeps input bytes unchanged.
    fn keep(&mut self, kept: &[u8]) {
        for &c in kept.iter().rev().take(2).rev() {
            self.last = [Some(c), self.last[0]];
        }
    }

    fn after_ident(&self) -> bool {
        self.last[0].is_some_and(is_ident)
    }
}

fn is_ident(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b == b'_' || b == b'$' || b >= 0x80
}

/// End (exclusive) of a literal opened by `q` at `start`; doubled quotes and backslash
/// escapes stay inside. Unterminated: the end of the text.
fn end_of_quoted(b: &[u8], start: usize, q: u8) -> usize {
    let mut i = start + 1;
    while i < b.len() {
        match b[i] {
            b'\\' if q != b'`' => i += 2,
            x if x == q => {
                if b.get(i + 1) == Some(&q) {
                    i += 2;
                } else {
                    return i + 1;
                }
            }
            _ => i += 1,
        }
    }
    b.len()
}

/// End of a PostgreSQL dollar-quoted literal (`$$...$$`, `$tag$...$tag$`) starting at
/// `start`, or `None` if `$` does not open one (a `$1` parameter).
fn dollar_quote_end(b: &[u8], start: usize) -> Option<usize> {
    let tag_len = b[start + 1..].iter().position(|&x| x == b'$')?;
    let tag = &b[start..start + tag_len + 2];
    if !tag[1..tag.len() - 1]
        .iter()
        .all(|&x| x.is_ascii_alphabetic() || x == b'_')
    {
        return None;
    }
    let body = start + tag.len();
    Some(memchr::memmem::find(&b[body..], tag).map_or(b.len(), |n| body + n + tag.len()))
}

fn end_of_number(b: &[u8], start: usize) -> usize {
    let mut i = start;
    if b[i] == b'0' && matches!(b.get(i + 1), Some(b'x' | b'X')) {
        i += 2;
        while i < b.len() && b[i].is_ascii_hexdigit() {
            i += 1;
        }
        return i;
    }
    while i < b.len() && (b[i].is_ascii_digit() || b[i] == b'.' || b[i] == b'_') {
        i += 1;
    }
    if i < b.len() && matches!(b[i], b'e' | b'E') {
        let mut j = i + 1;
        if j < b.len() && matches!(b[j], b'+' | b'-') {
            j += 1;
        }
        if j < b.len() && b[j].is_ascii_digit() {
            i = j;
            while i < b.len() && b[i].is_ascii_digit() {
                i += 1;
            }
        }
    }
    i
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn literals_become_placeholders() {
        assert_eq!(
            sanitize_sql("INSERT INTO t (a, b, c) VALUES ('x''y', 3.14, -2e10)"),
            "INSERT INTO t (a, b, c) VALUES (?, ?, -?)"
        );
        assert_eq!(
            sanitize_sql("SELECT E'a\\'b', N'c', X'ff', 0xFF"),
            "SELECT ?, ?, ?, ?"
        );
        assert_eq!(
            sanitize_sql("SELECT $$secret$$, $tag$x$y$tag$"),
            "SELECT ?, ?"
        );
        assert_eq!(sanitize_sql("SELECT .5"), "SELECT ?");
    }

    #[test]
    fn identifiers_and_parameters_are_kept() {
        let sql =
            r#"SELECT "user"."id", `order`, col1, t2.x FROM s3_bucket WHERE a = $1 AND b = ?"#;
        assert_eq!(sanitize_sql(sql), sql);
        assert!(matches!(sanitize_sql(sql), Cow::Borrowed(_)));
    }

    #[test]
    fn double_quoted_text_that_is_not_an_identifier_is_replaced() {
        assert_eq!(
            sanitize_sql(r#"SELECT * FROM u WHERE pw = "hunter2 secret""#),
            "SELECT * FROM u WHERE pw = ?"
        );
    }

    #[test]
    fn comments_are_dropped() {
        assert_eq!(
            sanitize_sql("SELECT 1 -- pw=abc\nFROM t"),
            "SELECT ? \nFROM t"
        );
        assert_eq!(sanitize_sql("SELECT /* token=abc */ a"), "SELECT   a");
        assert_eq!(sanitize_sql("SELECT a # card 4111\n"), "SELECT a \n");
    }

    #[test]
    fn sanitising_is_idempotent_after_a_replaced_literal() {
        // Found by the `sql` fuzz target: the `$` after `1` once read as part of an identifier.
        let once = sanitize_sql("1$$$").into_owned();
        assert_eq!(sanitize_sql(&once), once);
    }

    #[test]
    fn unterminated_literals_fail_closed() {
        assert_eq!(sanitize_sql("SELECT 'open secret"), "SELECT ?");
        assert_eq!(sanitize_sql("SELECT /* open secret"), "SELECT  ");
        assert_eq!(sanitize_sql("SELECT $$open secret"), "SELECT ?");
        assert_eq!(sanitize_sql("x = '\\"), "x = ?");
    }
}
