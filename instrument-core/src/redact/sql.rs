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
    let mut out: Option<String> = None;
    let mut copied = 0; // bytes of `sql` already accounted for in `out`
    let mut i = 0;
    // Replaces sql[start..end] with `with`.
    let mut emit = |start: usize, end: usize, with: &str, copied: &mut usize| {
        let o = out.get_or_insert_with(|| String::with_capacity(sql.len()));
        o.push_str(&sql[*copied..start]);
        o.push_str(with);
        *copied = end;
    };
    while i < b.len() {
        let c = b[i];
        let prev_ident = i > 0 && is_ident(b[i - 1]);
        match c {
            b'\'' => {
                // A one-letter prefix (E'', N'', X'', B'') belongs to the literal.
                let start = if i > 0
                    && matches!(
                        b[i - 1],
                        b'e' | b'E' | b'n' | b'N' | b'x' | b'X' | b'b' | b'B'
                    )
                    && !(i > 1 && is_ident(b[i - 2]))
                {
                    i - 1
                } else {
                    i
                };
                let end = end_of_quoted(b, i, b'\'');
                emit(start, end, "?", &mut copied);
                i = end;
            }
            b'"' => {
                let end = end_of_quoted(b, i, b'"');
                let inner = &b[i + 1..end.saturating_sub(1).max(i + 1)];
                let identifier = end <= b.len()
                    && b[end - 1] == b'"'
                    && end > i + 1
                    && !inner.is_empty()
                    && inner.len() <= 63
                    && inner.iter().all(|&x| is_ident(x) || x == b'.');
                if !identifier {
                    emit(i, end, "?", &mut copied);
                }
                i = end;
            }
            b'`' => i = end_of_quoted(b, i, b'`'),
            b'-' if b.get(i + 1) == Some(&b'-') => {
                let end = memchr::memchr(b'\n', &b[i..]).map_or(b.len(), |n| i + n);
                emit(i, end, "", &mut copied);
                i = end;
            }
            b'#' if i == 0 || b[i - 1].is_ascii_whitespace() => {
                // MySQL line comment (a `#` elsewhere is an operator, e.g. PostgreSQL's XOR).
                let end = memchr::memchr(b'\n', &b[i..]).map_or(b.len(), |n| i + n);
                emit(i, end, "", &mut copied);
                i = end;
            }
            b'/' if b.get(i + 1) == Some(&b'*') => {
                let end =
                    memchr::memmem::find(&b[i + 2..], b"*/").map_or(b.len(), |n| i + 2 + n + 2);
                emit(i, end, " ", &mut copied);
                i = end;
            }
            b'$' if !prev_ident => match dollar_quote_end(b, i) {
                Some(end) => {
                    emit(i, end, "?", &mut copied);
                    i = end;
                }
                None => i += 1,
            },
            b'0'..=b'9' if !prev_ident => {
                let end = end_of_number(b, i);
                emit(i, end, "?", &mut copied);
                i = end;
            }
            b'.' if !prev_ident && b.get(i + 1).is_some_and(u8::is_ascii_digit) => {
                let end = end_of_number(b, i);
                emit(i, end, "?", &mut copied);
                i = end;
            }
            _ => i += 1,
        }
    }
    match out {
        None => Cow::Borrowed(sql),
        Some(mut o) => {
            o.push_str(&sql[copied..]);
            Cow::Owned(o)
        }
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
    fn unterminated_literals_fail_closed() {
        assert_eq!(sanitize_sql("SELECT 'open secret"), "SELECT ?");
        assert_eq!(sanitize_sql("SELECT /* open secret"), "SELECT  ");
        assert_eq!(sanitize_sql("SELECT $$open secret"), "SELECT ?");
        assert_eq!(sanitize_sql("x = '\\"), "x = ?");
    }
}
