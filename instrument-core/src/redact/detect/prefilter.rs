//! The first pass over a value: a vectorised count of byte classes, then only the
//! literal searches those classes allow, giving the detectors that could fire.

use super::words::{
    MIN_BOT_ID_DIGITS, MIN_NATIONAL_PHONE_DIGITS, MIN_PHONE_DIGITS, MIN_SENSITIVE_DIGITS,
    PEM_DASHES, PUTTY_DASHES,
};
use super::Detectors;

// Trigger bits: which detectors may fire on a value.
pub(super) const T_PEM: u32 = 1 << 0;
pub(super) const T_URL: u32 = 1 << 1;
pub(super) const T_JWT: u32 = 1 << 2;
pub(super) const T_AUTH: u32 = 1 << 3;
pub(super) const T_API_KEY: u32 = 1 << 4;
pub(super) const T_KEYWORD: u32 = 1 << 5;
pub(super) const T_EMAIL: u32 = 1 << 6;
pub(super) const T_DIGITS: u32 = 1 << 7;
pub(super) const T_IP: u32 = 1 << 8;
pub(super) const T_PROSE: u32 = 1 << 9;
pub(super) const T_MARKUP: u32 = 1 << 10;
pub(super) const T_PERCENT: u32 = 1 << 11;
pub(super) const T_PHONE: u32 = 1 << 12;
pub(super) const T_CLI: u32 = 1 << 13;
pub(super) const T_BOT: u32 = 1 << 14;
pub(super) const T_AZURE_SECRET: u32 = 1 << 15;
pub(super) const T_MAILCHIMP: u32 = 1 << 16;
pub(super) const T_HEX_KEY: u32 = 1 << 17;
pub(super) const T_LONG: u32 = 1 << 18;
pub(super) const T_DISCORD: u32 = 1 << 19;

// Byte classes for the first pass. Each detector needs at least one byte of some class
// (a URL needs ':', a JWT '.', a PEM block '-', `key=value` '=' or ':'), so most
// literal searches are skipped for most values.
pub(super) const C_AT: u16 = 1;
pub(super) const C_SEP: u16 = 2; // '=' or ':'
pub(super) const C_COLON: u16 = 4;
pub(super) const C_DOT: u16 = 8;
pub(super) const C_DASH: u16 = 16;
pub(super) const C_UNDERSCORE: u16 = 32;
/// ASCII whitespace or control, and any non-ASCII byte (it may be Unicode whitespace).
pub(super) const C_SPACE: u16 = 64;
/// `b` or `B`, which `bearer` and `basic` start with.
pub(super) const C_B: u16 = 128;
/// `%`, which percent-encoded text has.
pub(super) const C_PERCENT: u16 = 256;
/// `<`, which markup has.
pub(super) const C_LT: u16 = 512;
/// `+`, which an international telephone number starts with.
pub(super) const C_PLUS: u16 = 1024;
/// `~`, which a Microsoft Entra ID client secret has (`...8Q~...`).
pub(super) const C_TILDE: u16 = 2048;
// `byte_stats` shifts by these positions.
const _: () = assert!(
    C_AT == 1 << 0
        && C_SEP == 1 << 1
        && C_COLON == 1 << 2
        && C_DOT == 1 << 3
        && C_DASH == 1 << 4
        && C_UNDERSCORE == 1 << 5
        && C_SPACE == 1 << 6
        && C_B == 1 << 7
        && C_PERCENT == 1 << 8
        && C_LT == 1 << 9
        && C_PLUS == 1 << 10
        && C_TILDE == 1 << 11
);

/// What the first pass counts in a value.
pub(super) struct ByteStats {
    /// Which byte classes (`C_*`) occur.
    pub(super) class: u16,
    /// ASCII digits.
    pub(super) digits: usize,
    /// `-` bytes (a PEM block starts with five).
    pub(super) dashes: usize,
}

/// Which byte classes occur in `bytes`, how many ASCII digits and dashes.
///
/// Comparisons only, no table lookups, over fixed 32-byte blocks, so the compiler
/// vectorises the whole pass: the last, partial block is padded with a byte of no
/// class (`a`) rather than finished by a scalar loop, which on a 25-byte value (a
/// span name, a route) cost more than the vector part. Kept out of line: inlined into
/// a large caller it was compiled as a scalar loop (~200 ns, seen with `perf annotate`).
#[inline(never)]
pub(super) fn byte_stats(bytes: &[u8]) -> ByteStats {
    let mut stats = ByteStats {
        class: 0,
        digits: 0,
        dashes: 0,
    };
    let blocks = bytes.chunks_exact(BLOCK);
    let rest = blocks.remainder();
    for block in blocks {
        stats.add(block_stats(block.try_into().unwrap_or(&[PAD; BLOCK])));
    }
    if !rest.is_empty() {
        let mut last = [PAD; BLOCK];
        last[..rest.len()].copy_from_slice(rest);
        stats.add(block_stats(&last));
    }
    stats
}

/// Whether one of `a`, `b` is an ASCII letter and the other an ASCII digit.
#[inline(always)]
pub(super) fn mixed_pair(a: u8, b: u8) -> bool {
    let digit = |c: u8| c.wrapping_sub(b'0') < 10;
    let letter = |c: u8| (c | 0x20).wrapping_sub(b'a') < 26;
    (digit(a) & letter(b)) | (letter(a) & digit(b))
}

/// Bytes per block of the first pass.
pub(super) const BLOCK: usize = 32;
/// What a partial block is padded with: a byte of no class, neither a letter, a digit
/// nor a dash.
pub(super) const PAD: u8 = 0x7f;

impl ByteStats {
    fn add(&mut self, (class, digits, dashes): (u16, u8, u8)) {
        self.class |= class;
        self.digits += usize::from(digits);
        self.dashes += usize::from(dashes);
    }
}

/// [`byte_stats`] of one block: classes, digits, dashes.
pub(super) fn block_stats(block: &[u8; BLOCK]) -> (u16, u8, u8) {
    // Two `u8` accumulators rather than one `u16`, comparisons only (no table, no
    // `match`): so the loop stays vectorised.
    let (mut low, mut high, mut digits, mut dashes) = (0u8, 0u8, 0u8, 0u8);
    for &b in block {
        digits += u8::from(b.wrapping_sub(b'0') < 10);
        dashes += u8::from(b == b'-');
        low |= u8::from(b == b'@')
            | u8::from(b == b'=' || b == b':') << 1
            | u8::from(b == b':') << 2
            | u8::from(b == b'.') << 3
            | u8::from(b == b'-') << 4
            | u8::from(b == b'_') << 5
            | u8::from(b <= b' ' || b >= 0x80) << 6
            | u8::from(b | 0x20 == b'b') << 7;
        high |= u8::from(b == b'%')
            | u8::from(b == b'<') << 1
            | u8::from(b == b'+') << 2
            | u8::from(b == b'~') << 3;
    }
    (u16::from(low) | u16::from(high) << 8, digits, dashes)
}

/// Whether `bytes` has a symbol of [`is_secret_symbol`] or a letter next to a digit:
/// what a secret written in prose has (see [`looks_like_secret`]). A second pass, run
/// only for text with whitespace, so the first stays as cheap as it was for the
/// values most spans carry (names, routes, ids).
#[inline(never)]
pub(super) fn has_secret_shape(bytes: &[u8]) -> bool {
    let mut found = 0u8;
    let blocks = bytes.chunks_exact(BLOCK);
    let rest = blocks.remainder();
    let mut before = PAD;
    for block in blocks {
        let block: &[u8; BLOCK] = block.try_into().unwrap_or(&[PAD; BLOCK]);
        found |= shape_of_block(block) | u8::from(mixed_pair(before, block[0]));
        before = block[BLOCK - 1];
    }
    if !rest.is_empty() {
        let mut last = [PAD; BLOCK];
        last[..rest.len()].copy_from_slice(rest);
        found |= shape_of_block(&last) | u8::from(mixed_pair(before, last[0]));
    }
    found != 0
}

/// [`has_secret_shape`] of one block, as 0 or 1.
pub(super) fn shape_of_block(block: &[u8; BLOCK]) -> u8 {
    // Digit and letter masks once, then each against its neighbour's (the last byte's
    // neighbour is padding, of neither kind).
    let mut digit = [0u8; BLOCK + 1];
    let mut letter = [0u8; BLOCK + 1];
    let mut found = 0u8;
    for (i, &b) in block.iter().enumerate() {
        digit[i] = u8::from(b.wrapping_sub(b'0') < 10);
        letter[i] = u8::from((b | 0x20).wrapping_sub(b'a') < 26);
        found |= u8::from(is_secret_symbol(b));
    }
    for i in 0..BLOCK {
        found |= (digit[i] & letter[i + 1]) | (letter[i] & digit[i + 1]);
    }
    found
}

/// A symbol a secret may hold and prose rarely does, as ranges of ASCII (so the pass
/// stays vectorised): `! " # $ % & ' ( ) * +`, `/`, `; < = > ? @`, `[ \ ] ^`,
/// `` ` ``, `{ | } ~`.
#[inline(always)]
pub(super) fn is_secret_symbol(b: u8) -> bool {
    (b.wrapping_sub(b'!') < 11)
        | (b == b'/')
        | (b == b'`')
        | (b.wrapping_sub(b';') < 6)
        | (b.wrapping_sub(b'[') < 4)
        | (b.wrapping_sub(b'{') < 4)
}

/// The most digits in one run of `bytes` shaped like a telephone number: digits with
/// at most two of ` - . ( ) /` between neighbours (`(415) 555-2671`, `+44 20 7946
/// 0958`). Every phone pattern needs a run of at least [`MIN_PHONE_DIGITS`].
pub(crate) fn longest_phone_run(bytes: &[u8]) -> usize {
    let (mut best, mut run, mut gap) = (0, 0, 0);
    for &b in bytes {
        if b.is_ascii_digit() {
            run += 1;
            gap = 0;
            best = best.max(run);
        } else if run > 0 && gap < 2 && matches!(b, b' ' | b'-' | b'.' | b'(' | b')' | b'/') {
            gap += 1;
        } else {
            run = 0;
            gap = 0;
        }
    }
    best
}

/// Whether a command line's user flag (`-u `, `-u=`, `--user`) occurs in `bytes`.
pub(super) fn has_user_flag(bytes: &[u8]) -> bool {
    memchr::memchr_iter(b'-', bytes).any(|i| {
        let rest = &bytes[i + 1..];
        rest.starts_with(b"-user")
            || (rest.starts_with(b"u") && matches!(rest.get(1), Some(b' ' | b'=')))
    })
}

/// Whether a closing tag (`</`) occurs in `bytes`.
pub(super) fn has_closing_tag(bytes: &[u8]) -> bool {
    memchr::memchr_iter(b'<', bytes).any(|i| bytes.get(i + 1) == Some(&b'/'))
}

/// Whether `bytes` has a valid percent escape (`%3A`).
pub(super) fn has_percent_escape(bytes: &[u8]) -> bool {
    memchr::memchr_iter(b'%', bytes).any(|i| {
        bytes
            .get(i + 1..i + 3)
            .is_some_and(|h| h.iter().all(u8::is_ascii_hexdigit))
    })
}

/// The most digits in one run of `bytes`, a run going on over a single space or dash
/// between two digits: the shape of the card (`[0-9](?:[ \-]?[0-9]){12,18}`) and SSN
/// (`[0-9]{3}-[0-9]{2}-[0-9]{4}`) patterns, so neither can match in fewer digits.
pub(crate) fn longest_digit_run(bytes: &[u8]) -> usize {
    let (mut best, mut run) = (0, 0);
    for (i, &b) in bytes.iter().enumerate() {
        if b.is_ascii_digit() {
            run += 1;
            best = best.max(run);
        } else if !(run > 0
            && (b == b' ' || b == b'-')
            && bytes.get(i + 1).is_some_and(u8::is_ascii_digit))
        {
            run = 0;
        }
    }
    best
}

/// The first char boundary after `i` (past the end when `i` is the end).
pub(super) fn next_char_boundary(text: &str, i: usize) -> usize {
    text[i..].chars().next().map_or(i + 1, |c| i + c.len_utf8())
}

/// Whether `bearer` or `basic` (any case) starts a word somewhere in `bytes`.
pub(super) fn has_auth_word(bytes: &[u8]) -> bool {
    memchr::memchr2_iter(b'b', b'B', bytes).any(|i| {
        (i == 0 || !bytes[i - 1].is_ascii_alphanumeric())
            && [&b"bearer"[..], b"basic"].iter().any(|w| {
                bytes
                    .get(i..i + w.len())
                    .is_some_and(|s| s.eq_ignore_ascii_case(w))
            })
    })
}

/// Whether what `start` finds begins a word somewhere in `bytes` with 32 hex digits
/// after it.
fn hex_key_after(start: &memchr::memmem::Finder<'_>, bytes: &[u8]) -> bool {
    let after = start.needle().len();
    start.find_iter(bytes).any(|i| {
        (i == 0 || !bytes[i - 1].is_ascii_alphanumeric())
            && bytes
                .get(i + after..i + after + 32)
                .is_some_and(|hex| hex.iter().all(u8::is_ascii_hexdigit))
    })
}

/// Bytes in the shortest Discord bot token: 23 (a 17-digit id), a dot, 6, a dot, 27.
pub(super) const MIN_DISCORD_TOKEN: usize = 23 + 1 + 6 + 1 + 27;

/// A byte of base64's URL-safe alphabet (a Discord token's parts).
fn is_base64url(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b == b'-' || b == b'_'
}

/// Whether `bytes` has a Discord bot token's middle: a dot, six base64 bytes, a dot,
/// with 23 or more base64 bytes before it and 27 or more after.
pub(super) fn has_discord_shape(bytes: &[u8]) -> bool {
    memchr::memchr_iter(b'.', bytes).any(|i| {
        i >= 23
            && bytes.get(i + 7) == Some(&b'.')
            && bytes[i + 1..i + 7].iter().all(|&b| is_base64url(b))
            && bytes[i - 23..i].iter().all(|&b| is_base64url(b))
            && bytes
                .get(i + 8..i + 35)
                .is_some_and(|s| s.iter().all(|&b| is_base64url(b)))
    })
}

/// Whether `part`, base64 (URL-safe or not, unpadded), decodes to 17 to 20 ASCII
/// digits: a Discord user's id, as a bot token's first part holds it.
pub(super) fn is_base64_snowflake(part: &[u8]) -> bool {
    let value = |b: u8| -> Option<u32> {
        Some(u32::from(match b {
            b'A'..=b'Z' => b - b'A',
            b'a'..=b'z' => b - b'a' + 26,
            b'0'..=b'9' => b - b'0' + 52,
            b'+' | b'-' => 62,
            b'/' | b'_' => 63,
            _ => return None,
        }))
    };
    let mut digits = 0;
    for chunk in part.chunks(4) {
        let mut word = 0u32;
        for (k, &b) in chunk.iter().enumerate() {
            match value(b) {
                Some(v) => word |= v << (18 - 6 * k),
                None => return false,
            }
        }
        // Bytes a chunk of 2, 3 or 4 characters holds: 1, 2 or 3.
        let bytes = (chunk.len() * 6) / 8;
        if bytes == 0 {
            return false;
        }
        for k in 0..bytes {
            let byte = (word >> (16 - 8 * k)) & 0xff;
            if !(u32::from(b'0')..=u32::from(b'9')).contains(&byte) {
                return false;
            }
            digits += 1;
        }
    }
    (17..=20).contains(&digits)
}

/// Literals inside the long tokens `Detectors::long_tokens` masks: Terraform Cloud's
/// `.atlasv1.`, Grafana's `eyJrIjoi` (`{"k":"` in base64), AWS STS session tokens'
/// starts, Google OAuth refresh tokens' `1//0`, Airtable's `pat`, the run of `A`s an
/// X (Twitter) app's bearer token starts with.
pub(super) const LONG_TOKEN_LITERALS: &[&str] = &[
    ".atlasv1.",
    "eyJrIjoi",
    "FwoGZXIvYXdzE",
    "IQoJb3JpZ2luX2Vj",
    "1//0",
    "pat",
    "AAAAAAAAAAAAAAAAAAAA",
];

/// Bytes in the shortest long token (a Grafana key: `eyJrIjoi` and 70 more): values
/// shorter than this (most: names, routes, ids) skip the literal search.
pub(super) const MIN_LONG_TOKEN: usize = 8 + 70;

/// Digits a Mailchimp key, a Databricks token or a Twilio API key has at the least: 32
/// random hex digits hold about 20, fewer than 8 once in thousands of keys.
pub(super) const MIN_HEX_KEY_DIGITS: usize = 8;

impl Detectors {
    /// Whether `bytes` has a `-us` with a hex digit before it, 32 bytes or more in, and
    /// a digit after it: where a Mailchimp key's data centre starts (`...ef-us21`).
    /// `default-us-east` has none.
    pub(super) fn has_mailchimp_shape(&self, bytes: &[u8]) -> bool {
        self.mailchimp_start.find_iter(bytes).any(|i| {
            i >= 32
                && bytes[i - 1].is_ascii_hexdigit()
                && bytes.get(i + 3).is_some_and(u8::is_ascii_digit)
        })
    }

    /// Whether `bytes` has `dapi` or `SK` starting a word and 32 hex digits after it:
    /// a Databricks token or a Twilio API key (as many digits as a Mailchimp key, at
    /// the least).
    pub(super) fn has_hex_key_shape(&self, bytes: &[u8]) -> bool {
        self.hex_key_starts
            .iter()
            .any(|start| hex_key_after(start, bytes))
    }

    /// The first pass: which detectors could fire on `text`.
    pub(super) fn triggers(&self, text: &str) -> u32 {
        let bytes = text.as_bytes();
        let ByteStats {
            class,
            digits,
            dashes,
        } = byte_stats(bytes);
        let has = |c: u16| class & c != 0;
        let mut t = 0;
        if has(C_AT) {
            t |= T_EMAIL;
        }
        // Cards and SSNs are runs of digits (single spaces or dashes between them):
        // nine digits scattered through an id (`task-5f0c2a9e8d1b4c37`) are neither,
        // and used to send every such id through both regexes.
        if digits >= MIN_SENSITIVE_DIGITS && longest_digit_run(bytes) >= MIN_SENSITIVE_DIGITS {
            t |= T_DIGITS;
        }
        if digits >= 2 && has(C_DOT | C_COLON) {
            t |= T_IP;
        }
        if (dashes >= PEM_DASHES && self.pem_start.find(bytes).is_some())
            || (dashes >= PUTTY_DASHES && self.putty_start.find(bytes).is_some())
        {
            t |= T_PEM;
        }
        if has(C_COLON) && self.url_scheme.find(bytes).is_some() {
            t |= T_URL;
        }
        if has(C_DOT) && self.jwt_start.find(bytes).is_some() {
            t |= T_JWT;
        }
        if has(C_SPACE) && has(C_B) && has_auth_word(bytes) {
            t |= T_AUTH;
        }
        let separators = has(C_DASH | C_UNDERSCORE | C_DOT);
        if self
            .api_prefixes
            .as_ref()
            .is_some_and(|ix| ix.is_match(bytes, separators))
        {
            t |= T_API_KEY;
        }
        if has(C_COLON) && digits >= MIN_BOT_ID_DIGITS && self.bot_start.find(bytes).is_some() {
            t |= T_BOT;
        }
        if has(C_TILDE) && digits > 0 && self.azure_start.find(bytes).is_some() {
            t |= T_AZURE_SECRET;
        }
        if has(C_DASH) && digits >= MIN_HEX_KEY_DIGITS && self.has_mailchimp_shape(bytes) {
            t |= T_MAILCHIMP;
        }
        if digits >= MIN_HEX_KEY_DIGITS && self.has_hex_key_shape(bytes) {
            t |= T_HEX_KEY;
        }
        if has(C_DOT) && bytes.len() >= MIN_DISCORD_TOKEN && has_discord_shape(bytes) {
            t |= T_DISCORD;
        }
        if bytes.len() >= MIN_LONG_TOKEN && self.long_literals.is_match(bytes) {
            t |= T_LONG;
        }
        if has(C_SEP) && self.keywords.is_match(bytes) {
            t |= T_KEYWORD;
        }
        // A secret after a key word in prose has a symbol or mixes letters and digits
        // (or is a PIN's digits): without one, the key words are not even looked for.
        let secretish = has(C_SPACE)
            && (has(C_SEP | C_PERCENT | C_LT | C_PLUS | C_AT)
                || (digits >= 4 && longest_digit_run(bytes) >= 4)
                || has_secret_shape(bytes));
        if secretish && has(C_SPACE) && self.prose_words.is_match(bytes) {
            t |= T_PROSE;
        }
        if has(C_LT) && has_closing_tag(bytes) {
            t |= T_MARKUP;
        }
        if has(C_PERCENT) && has_percent_escape(bytes) {
            t |= T_PERCENT;
        }
        if digits >= MIN_PHONE_DIGITS {
            let run = longest_phone_run(bytes);
            if run >= MIN_NATIONAL_PHONE_DIGITS || (run >= MIN_PHONE_DIGITS && has(C_PLUS)) {
                t |= T_PHONE;
            }
        }
        if secretish && has(C_DASH) && has(C_SPACE) && has_user_flag(bytes) {
            t |= T_CLI;
        }
        t
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_snowflake_in_base64_is_told_from_other_base64() {
        // Ids of 17 to 20 digits, unpadded, standard and URL-safe alphabets alike.
        for id in [
            "MTIzNDU2Nzg5MDEyMzQ1Njc4",
            "ODAzNTExMTAyMjQ2Nzg5MTI",
            "MTA4NzY1NDMyMTA5ODc2NTQzMg",
        ] {
            assert!(is_base64_snowflake(id.as_bytes()), "{id}");
        }
        for other in [
            "Mu8jzPde0IgxLd6GncfBAepf",
            // 16 digits, 21 digits.
            "MTIzNDU2Nzg5MDEyMzQ1Ng",
            "MTIzNDU2Nzg5MDEyMzQ1Njc4OTAx",
            // A character outside base64, a lone trailing character.
            "MTIzNDU2Nzg5MDEyMzQ1Njc4!",
            "MTIzNDU2Nzg5MDEyMzQ1Njc4M",
            "",
        ] {
            assert!(!is_base64_snowflake(other.as_bytes()), "{other}");
        }
    }
}
