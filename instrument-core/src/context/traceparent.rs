//! The W3C `traceparent` header: strict parsing and formatting.
//!
//! Hand-written rather than taken from `opentelemetry_sdk`'s `TraceContextPropagator`:
//! that parser fails 13 of the 41 W3C conformance tests (missing length checks, only the
//! first of repeated headers, the `random` flag dropped) and costs several times more
//! per extract; both are measured side by side in `benches/core.rs`
//! (`traceparent/parse` and `traceparent/extract_headers` against
//! `traceparent/otel_propagator_extract`).

use std::fmt;

use opentelemetry::trace::{SpanContext, SpanId, TraceContextExt, TraceFlags, TraceId, TraceState};
use opentelemetry::Context;

/// Length of a version-`00` `traceparent`: `2 + 1 + 32 + 1 + 16 + 1 + 2`.
pub const TRACEPARENT_LEN: usize = 55;

/// The trace-flag bits version `00` defines: `sampled` (0x01) and `random` (0x02, W3C
/// Trace Context Level 2, 3.2.2.5.2). Every other bit is reserved: never sent, never
/// carried into a span context.
pub(crate) const DEFINED_FLAGS: u8 = 0x03;

/// A parsed W3C `traceparent`: version, trace id, parent (span) id and trace flags.
///
/// Parsing follows the W3C Trace Context specification, section 3.2: version `00`
/// must be exactly 55 characters; a higher version is parsed forward-compatibly (the
/// first 55 characters, then a `-` or the end); version `ff`, upper-case hex and
/// all-zero ids are invalid. All eight flag bits are kept as received, not only
/// `sampled`. Formatting always writes version `00`, the version this implementation
/// speaks, with the flags that version defines (`sampled` and `random`, W3C 3.2.2.5):
/// the others are reserved and a sender must set them to zero.
///
/// ```
/// use instrument_core::context::TraceParent;
///
/// let tp: TraceParent = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01".parse()?;
/// assert!(tp.is_sampled());
/// assert_eq!(tp.to_string(), "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01");
/// # Ok::<(), instrument_core::context::TraceParentError>(())
/// ```
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct TraceParent {
    version: u8,
    trace_id: TraceId,
    parent_id: SpanId,
    flags: TraceFlags,
}

/// Why a `traceparent` value was rejected.
///
/// The message never repeats the input, so it is safe to log whatever arrived.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum TraceParentError {
    /// Wrong total length (version `00` must be exactly 55 characters, others at least 55).
    Length {
        /// The length that arrived, in bytes.
        actual: usize,
    },
    /// The version field is not two lower-case hex digits, or is the forbidden `ff`.
    Version,
    /// A field separator `-` is missing or misplaced.
    Delimiter,
    /// The trace id is not 32 lower-case hex digits.
    TraceIdHex,
    /// The parent id is not 16 lower-case hex digits.
    ParentIdHex,
    /// The trace flags are not two lower-case hex digits.
    FlagsHex,
    /// The trace id is all zeros.
    ZeroTraceId,
    /// The parent id is all zeros.
    ZeroParentId,
    /// More than one `traceparent` header arrived (W3C 3.2: the request's context is invalid).
    Duplicate,
}

impl fmt::Display for TraceParentError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Length { actual } => write!(
                f,
                "traceparent has length {actual}, expected {TRACEPARENT_LEN} (version 00) or more (later versions)"
            ),
            Self::Version => f.write_str("traceparent version is not two lower-case hex digits other than ff"),
            Self::Delimiter => f.write_str("traceparent fields are not separated by '-' where required"),
            Self::TraceIdHex => f.write_str("traceparent trace-id is not 32 lower-case hex digits"),
            Self::ParentIdHex => f.write_str("traceparent parent-id is not 16 lower-case hex digits"),
            Self::FlagsHex => f.write_str("traceparent trace-flags are not two lower-case hex digits"),
            Self::ZeroTraceId => f.write_str("traceparent trace-id is all zeros"),
            Self::ZeroParentId => f.write_str("traceparent parent-id is all zeros"),
            Self::Duplicate => f.write_str("more than one traceparent header"),
        }
    }
}

impl std::error::Error for TraceParentError {}

/// Value of a lower-case hex digit, or `0xff` for anything else (upper case included:
/// the spec's grammar is `HEXDIGLC`).
const HEX: [u8; 256] = {
    let mut table = [0xffu8; 256];
    let mut i = 0;
    while i < 10 {
        table[b'0' as usize + i] = i as u8;
        i += 1;
    }
    let mut i = 0;
    while i < 6 {
        table[b'a' as usize + i] = 10 + i as u8;
        i += 1;
    }
    table
};

/// Decodes up to 8 lower-case hex digits into an integer, or `None` on any other byte.
#[inline]
fn decode_hex(digits: &[u8]) -> Option<u32> {
    let mut value: u32 = 0;
    let mut bad = 0u8;
    for &b in digits {
        let nibble = HEX[b as usize];
        // Accumulate instead of branching per digit; 0xff has the high bit set.
        bad |= nibble;
        value = (value << 4) | u32::from(nibble & 0x0f);
    }
    (bad & 0xf0 == 0).then_some(value)
}

/// Decodes 8 lower-case hex digits into the 4 bytes they spell, or `None` on any other
/// byte: eight digits at a time in one 64-bit word (the ids are 48 of a traceparent's
/// 52 digits; a digit at a time, the table above, costs about three times as much).
/// Not inlined: LLVM unrolls [`decode_hex_into`]'s loop anyway, and each unrolled
/// step is then a call, not a copy of these 40 instructions.
#[inline(never)]
fn decode_hex8(digits: [u8; 8]) -> Option<[u8; 4]> {
    const ONES: u64 = 0x0101_0101_0101_0101;
    const HIGH: u64 = 0x8080_8080_8080_8080;
    let x = u64::from_le_bytes(digits);
    if x & HIGH != 0 {
        return None;
    }
    // Every byte is below 0x80, so adding below 0x80 to each never carries into the
    // next: a byte's high bit then says whether it reached the bound.
    let at_least = |low: u64| (x + (0x80 - low) * ONES) & HIGH;
    let digit = at_least(0x30) & !at_least(0x3a);
    let letter = at_least(0x61) & !at_least(0x67);
    if digit | letter != HIGH {
        return None;
    }
    // '0'..'9' are 0x30..0x39 and 'a'..'f' 0x61..0x66: the low nibble, plus 9 for a letter.
    let nibbles = (x & (0x0f * ONES)) + (letter >> 7) * 9;
    // Two digits to a byte (the first is the high nibble), then the bytes side by side.
    let pairs = ((nibbles & 0x00ff_00ff_00ff_00ff) << 4) | ((nibbles >> 8) & 0x00ff_00ff_00ff_00ff);
    let quads = (pairs | (pairs >> 8)) & 0x0000_ffff_0000_ffff;
    let bytes = (quads | (quads >> 16)) as u32;
    Some(bytes.to_le_bytes())
}

/// The lower-case hex digits of `bytes` into `out` (twice as long), a digit at a time
/// from a 16-byte table. A word-at-a-time version (as [`decode_hex8`]) ran fewer
/// instructions, but LLVM vectorised it with constants from a dozen places: one cold
/// call under gungraun's cache simulation read 20 lines from memory against the
/// table's 13 (2026-12-07).
///
/// Kept a loop: not inlined, its trip count unknown where it is compiled, so LLVM does
/// not unroll it into a copy of the body per byte. A request runs it on an idle server,
/// where every distinct line of code it touches costs a fetch: unrolled, the trace
/// id's 16 bytes were 153 distinct instructions in 10 lines; as a loop, three lines
/// shared by every caller.
#[inline(never)]
fn encode_hex_into(bytes: &[u8], out: &mut [u8]) {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    for (pair, b) in out.chunks_exact_mut(2).zip(bytes) {
        pair[0] = DIGITS[usize::from(b >> 4)];
        pair[1] = DIGITS[usize::from(b & 0x0f)];
    }
}

/// A trace id as the W3C formats write it, and the layers' tracking header: 32
/// lower-case hex digits, on the stack.
///
/// ```
/// use instrument_core::context::trace_id_hex;
/// use opentelemetry::trace::TraceId;
///
/// let id = TraceId::from_hex("4bf92f3577b34da6a3ce929d0e0e4736").unwrap();
/// assert_eq!(&trace_id_hex(id), b"4bf92f3577b34da6a3ce929d0e0e4736");
/// ```
pub fn trace_id_hex(id: TraceId) -> [u8; 32] {
    let mut out = [0u8; 32];
    encode_hex_into(&id.to_bytes(), &mut out);
    out
}

/// Decodes `2 * N` lower-case hex digits (`N` a multiple of 4) into `N` bytes.
#[inline]
fn decode_hex_bytes<const N: usize>(digits: &[u8]) -> Option<[u8; N]> {
    let mut out = [0u8; N];
    decode_hex_into(digits, &mut out).then_some(out)
}

/// [`decode_hex_bytes`]'s loop, eight digits at a time, out of line for the reason
/// [`encode_hex_into`] is: inlined for both ids and unrolled, it was 241 distinct
/// instructions in 15 lines. LLVM still unrolls it here, but each step calls the one
/// [`decode_hex8`]. False on a byte that is not a lower-case hex digit.
#[inline(never)]
fn decode_hex_into(digits: &[u8], out: &mut [u8]) -> bool {
    for (four, eight) in out.chunks_exact_mut(4).zip(digits.chunks_exact(8)) {
        let Ok(eight) = <[u8; 8]>::try_from(eight) else {
            return false;
        };
        match decode_hex8(eight) {
            Some(bytes) => four.copy_from_slice(&bytes),
            None => return false,
        }
    }
    true
}

impl TraceParent {
    /// Parses a `traceparent` value exactly as it must appear, without surrounding whitespace.
    ///
    /// Use [`TraceParent::parse_header`] for a raw header value (it strips the optional
    /// whitespace HTTP allows around a field value).
    pub fn parse(value: &str) -> Result<Self, TraceParentError> {
        Self::parse_bytes(value.as_bytes())
    }

    /// Parses a raw `traceparent` header value: leading and trailing spaces and tabs
    /// (RFC 9110 OWS) are ignored, everything else is as strict as [`TraceParent::parse`].
    pub fn parse_header(value: &[u8]) -> Result<Self, TraceParentError> {
        Self::parse_bytes(trim_ows(value))
    }

    fn parse_bytes(b: &[u8]) -> Result<Self, TraceParentError> {
        if b.len() < TRACEPARENT_LEN {
            return Err(TraceParentError::Length { actual: b.len() });
        }
        let version = decode_hex(&b[0..2]).ok_or(TraceParentError::Version)? as u8;
        if version == 0xff {
            return Err(TraceParentError::Version);
        }
        // W3C 3.2.4: version 00 is exactly 55 long; a later version may append fields, but
        // only after a '-' at position 55.
        if version == 0 && b.len() != TRACEPARENT_LEN {
            return Err(TraceParentError::Length { actual: b.len() });
        }
        if b[2] != b'-' || b[35] != b'-' || b[52] != b'-' {
            return Err(TraceParentError::Delimiter);
        }
        if b.len() > TRACEPARENT_LEN && b[TRACEPARENT_LEN] != b'-' {
            return Err(TraceParentError::Delimiter);
        }
        let trace_id = decode_hex_bytes::<16>(&b[3..35]).ok_or(TraceParentError::TraceIdHex)?;
        let parent_id = decode_hex_bytes::<8>(&b[36..52]).ok_or(TraceParentError::ParentIdHex)?;
        let flags = decode_hex(&b[53..55]).ok_or(TraceParentError::FlagsHex)? as u8;
        if trace_id == [0; 16] {
            return Err(TraceParentError::ZeroTraceId);
        }
        if parent_id == [0; 8] {
            return Err(TraceParentError::ZeroParentId);
        }
        Ok(Self {
            version,
            trace_id: TraceId::from_bytes(trace_id),
            parent_id: SpanId::from_bytes(parent_id),
            flags: TraceFlags::new(flags),
        })
    }

    /// Builds a version-`00` traceparent from ids, or `None` if either id is invalid (all zeros).
    pub fn new(trace_id: TraceId, parent_id: SpanId, flags: TraceFlags) -> Option<Self> {
        (trace_id != TraceId::INVALID && parent_id != SpanId::INVALID).then_some(Self {
            version: 0,
            trace_id,
            parent_id,
            flags,
        })
    }

    /// The traceparent describing `span_context`, or `None` if it is not valid.
    pub fn from_span_context(span_context: &SpanContext) -> Option<Self> {
        Self::new(
            span_context.trace_id(),
            span_context.span_id(),
            span_context.trace_flags(),
        )
    }

    /// The traceparent of the span active in `cx`, if it has a valid one.
    pub fn from_context(cx: &Context) -> Option<Self> {
        Self::from_span_context(cx.span().span_context())
    }

    /// `base` with this traceparent (and `trace_state`) as its remote parent span, so
    /// that spans started under it join the trace.
    ///
    /// ```
    /// use instrument_core::context::TraceParent;
    /// use opentelemetry::{trace::TraceState, Context};
    ///
    /// let tp = TraceParent::parse("00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01")?;
    /// let cx = tp.to_context(&Context::new(), TraceState::NONE);
    /// assert_eq!(TraceParent::from_context(&cx), Some(tp));
    /// # Ok::<(), instrument_core::context::TraceParentError>(())
    /// ```
    pub fn to_context(&self, base: &Context, trace_state: TraceState) -> Context {
        base.with_remote_span_context(self.to_span_context(trace_state))
    }

    /// A remote [`SpanContext`] with these ids, the flags version `00` defines
    /// (`sampled`, `random`) and the given `tracestate`.
    pub fn to_span_context(&self, trace_state: TraceState) -> SpanContext {
        SpanContext::new(
            self.trace_id,
            self.parent_id,
            defined(self.flags),
            true,
            trace_state,
        )
    }

    /// The version that was parsed (formatting always writes `00`).
    pub fn version(&self) -> u8 {
        self.version
    }

    /// The trace id.
    pub fn trace_id(&self) -> TraceId {
        self.trace_id
    }

    /// The parent (span) id.
    pub fn parent_id(&self) -> SpanId {
        self.parent_id
    }

    /// All eight trace-flag bits as received.
    pub fn flags(&self) -> TraceFlags {
        self.flags
    }

    /// Whether the `sampled` flag (bit 0) is set.
    pub fn is_sampled(&self) -> bool {
        self.flags.is_sampled()
    }

    /// Whether the `random` flag (bit 1) is set: the right-most 7 bytes of the trace
    /// id are random (W3C Trace Context Level 2, 3.2.2.5.2).
    pub fn is_random(&self) -> bool {
        self.flags.to_u8() & 0x02 != 0
    }

    /// Writes the version-`00` form into a stack buffer and returns it as text; no
    /// allocation. Reserved flag bits are written as zero.
    pub fn encode<'b>(&self, buf: &'b mut [u8; TRACEPARENT_LEN]) -> &'b str {
        buf[0] = b'0';
        buf[1] = b'0';
        buf[2] = b'-';
        encode_hex_into(&self.trace_id.to_bytes(), &mut buf[3..35]);
        buf[35] = b'-';
        encode_hex_into(&self.parent_id.to_bytes(), &mut buf[36..52]);
        buf[52] = b'-';
        encode_hex_into(&[self.flags.to_u8() & DEFINED_FLAGS], &mut buf[53..55]);
        // Every byte written above is ASCII.
        std::str::from_utf8(buf).unwrap_or_default()
    }
}

/// `flags` without the bits version `00` reserves.
pub(crate) fn defined(flags: TraceFlags) -> TraceFlags {
    TraceFlags::new(flags.to_u8() & DEFINED_FLAGS)
}

impl fmt::Display for TraceParent {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut buf = [0u8; TRACEPARENT_LEN];
        f.write_str(self.encode(&mut buf))
    }
}

impl fmt::Debug for TraceParent {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "TraceParent({self})")
    }
}

impl std::str::FromStr for TraceParent {
    type Err = TraceParentError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::parse(s)
    }
}

/// Strips RFC 9110 optional whitespace (spaces and horizontal tabs) from both ends.
pub(crate) fn trim_ows(mut b: &[u8]) -> &[u8] {
    while let [b' ' | b'\t', rest @ ..] = b {
        b = rest;
    }
    while let [rest @ .., b' ' | b'\t'] = b {
        b = rest;
    }
    b
}

#[cfg(test)]
mod tests {
    use super::*;

    const VALID: &str = "00-12345678901234567890123456789012-1234567890123456-01";

    fn err(s: &str) -> TraceParentError {
        TraceParent::parse_header(s.as_bytes()).unwrap_err()
    }

    /// The word-at-a-time decoder against the digit-at-a-time one, on every byte in
    /// every position and on random words.
    #[test]
    fn eight_digits_at_once_decode_as_one_at_a_time() {
        let reference = |digits: [u8; 8]| decode_hex(&digits).map(u32::to_be_bytes);
        let base = *b"0a1b2c3d";
        for position in 0..8 {
            for byte in 0..=255u8 {
                let mut digits = base;
                digits[position] = byte;
                assert_eq!(decode_hex8(digits), reference(digits), "{digits:?}");
            }
        }
        let mut state = 0x9e37_79b9_7f4a_7c15u64;
        for _ in 0..100_000 {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            // Mostly digits, sometimes anything.
            let digits: [u8; 8] = std::array::from_fn(|i| {
                let r = (state >> (i * 8)) as u8;
                if r & 0x80 == 0 {
                    b"0123456789abcdef"[usize::from(r & 0x0f)]
                } else {
                    r.rotate_left(3)
                }
            });
            assert_eq!(decode_hex8(digits), reference(digits), "{digits:?}");
        }
    }

    /// The encoder against `format!`, on random ids, and back through the decoder.
    #[test]
    fn trace_ids_encode_as_format_does() {
        let mut state = 0x9e37_79b9_7f4a_7c15u64;
        for _ in 0..100_000 {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            let id = TraceId::from(u128::from(state) << 64 | u128::from(state.rotate_left(29)));
            let digits = trace_id_hex(id);
            assert_eq!(&digits[..], format!("{id:032x}").as_bytes());
            assert_eq!(decode_hex_bytes::<16>(&digits), Some(id.to_bytes()));
        }
    }

    #[test]
    fn valid_version_00_round_trips() {
        let tp = TraceParent::parse(VALID).unwrap();
        assert_eq!(tp.version(), 0);
        assert_eq!(
            tp.trace_id(),
            TraceId::from_hex("12345678901234567890123456789012").unwrap()
        );
        assert_eq!(
            tp.parent_id(),
            SpanId::from_hex("1234567890123456").unwrap()
        );
        assert!(tp.is_sampled());
        assert_eq!(tp.to_string(), VALID);
    }

    #[test]
    fn all_flag_bits_are_read_and_only_defined_ones_are_sent() {
        let tp =
            TraceParent::parse("00-12345678901234567890123456789012-1234567890123456-ff").unwrap();
        assert_eq!(tp.flags().to_u8(), 0xff);
        assert!(tp.is_sampled() && tp.is_random());
        // W3C 3.2.2.5.3: the reserved bits are set to zero by a sender.
        assert!(tp.to_string().ends_with("-03"));
        assert_eq!(
            tp.to_span_context(TraceState::NONE).trace_flags().to_u8(),
            0x03
        );
        let random_only =
            TraceParent::parse("00-12345678901234567890123456789012-1234567890123456-02").unwrap();
        assert!(!random_only.is_sampled() && random_only.is_random());
        assert_eq!(random_only.flags().to_u8(), 0x02);
        assert!(random_only.to_string().ends_with("-02"));
        let reserved_only =
            TraceParent::parse("00-12345678901234567890123456789012-1234567890123456-fc").unwrap();
        assert!(reserved_only.to_string().ends_with("-00"));
    }

    #[test]
    fn version_00_rejects_trailing_data() {
        assert_eq!(
            err(&format!("{VALID}.")),
            TraceParentError::Length { actual: 56 }
        );
        assert!(matches!(
            err(&format!("{VALID}-what-the-future-will-be-like")),
            TraceParentError::Length { .. }
        ));
    }

    #[test]
    fn future_version_is_parsed_forward_compatibly() {
        let base = "cc-12345678901234567890123456789012-1234567890123456-01";
        let tp = TraceParent::parse(base).unwrap();
        assert_eq!(tp.version(), 0xcc);
        assert_eq!(tp.to_string(), VALID, "formatting writes version 00");
        assert!(TraceParent::parse(&format!("{base}-what-the-future-will-be-like")).is_ok());
        assert_eq!(
            err(&format!("{base}.what-the-future-will-be-like")),
            TraceParentError::Delimiter
        );
    }

    #[test]
    fn version_ff_and_bad_versions_are_invalid() {
        assert_eq!(
            err("ff-12345678901234567890123456789012-1234567890123456-01"),
            TraceParentError::Version
        );
        assert_eq!(
            err(".0-12345678901234567890123456789012-1234567890123456-01"),
            TraceParentError::Version
        );
        assert_eq!(
            err("0.-12345678901234567890123456789012-1234567890123456-01"),
            TraceParentError::Version
        );
        assert!(
            TraceParent::parse("000-12345678901234567890123456789012-1234567890123456-01").is_err()
        );
        assert!(
            TraceParent::parse("0000-12345678901234567890123456789012-1234567890123456-01")
                .is_err()
        );
        assert!(matches!(
            err("0-12345678901234567890123456789012-1234567890123456-01"),
            TraceParentError::Length { actual: 54 }
        ));
    }

    #[test]
    fn upper_case_hex_is_invalid() {
        assert_eq!(
            err("00-1234567890123456789012345678901A-1234567890123456-01"),
            TraceParentError::TraceIdHex
        );
        assert_eq!(
            err("00-12345678901234567890123456789012-123456789012345A-01"),
            TraceParentError::ParentIdHex
        );
        assert_eq!(
            err("00-12345678901234567890123456789012-1234567890123456-0A"),
            TraceParentError::FlagsHex
        );
        assert_eq!(
            err("0A-12345678901234567890123456789012-1234567890123456-01"),
            TraceParentError::Version
        );
    }

    #[test]
    fn zero_ids_are_invalid() {
        assert_eq!(
            err("00-00000000000000000000000000000000-1234567890123456-01"),
            TraceParentError::ZeroTraceId
        );
        assert_eq!(
            err("00-12345678901234567890123456789012-0000000000000000-01"),
            TraceParentError::ZeroParentId
        );
    }

    #[test]
    fn field_length_errors_are_detected() {
        for bad in [
            "00-123456789012345678901234567890123-1234567890123456-01",
            "00-1234567890123456789012345678901-1234567890123456-01",
            "00-12345678901234567890123456789012-12345678901234567-01",
            "00-12345678901234567890123456789012-123456789012345-01",
            "00-12345678901234567890123456789012-1234567890123456-001",
            "00-12345678901234567890123456789012-1234567890123456-1",
            "00-.2345678901234567890123456789012-1234567890123456-01",
            "00-12345678901234567890123456789012-.234567890123456-01",
            "00-12345678901234567890123456789012-1234567890123456-.0",
            "",
        ] {
            assert!(
                TraceParent::parse_header(bad.as_bytes()).is_err(),
                "{bad:?}"
            );
        }
    }

    #[test]
    fn surrounding_ows_is_ignored_by_parse_header_only() {
        for padded in [
            format!(" {VALID}"),
            format!("\t{VALID}"),
            format!("{VALID} "),
            format!("{VALID}\t"),
            format!("\t {VALID} \t"),
        ] {
            assert!(
                TraceParent::parse_header(padded.as_bytes()).is_ok(),
                "{padded:?}"
            );
            assert!(TraceParent::parse(&padded).is_err(), "{padded:?}");
        }
    }

    #[test]
    fn error_messages_do_not_echo_input() {
        let secret = "00-12345678901234567890123456789012-1234567890123456-0Z";
        assert!(!err(secret).to_string().contains("0Z"));
    }

    #[test]
    fn span_context_conversion_keeps_flags_and_is_remote() {
        let tp =
            TraceParent::parse("00-12345678901234567890123456789012-1234567890123456-03").unwrap();
        let sc = tp.to_span_context(TraceState::default());
        assert!(sc.is_remote() && sc.is_valid() && sc.is_sampled());
        assert_eq!(sc.trace_flags().to_u8(), 0x03);
        assert_eq!(TraceParent::from_span_context(&sc), Some(tp));
        assert_eq!(TraceParent::from_span_context(&SpanContext::NONE), None);
    }
}
