//! Consistent probability sampling's arithmetic: the 56-bit rejection threshold, the
//! randomness it is compared with, and the `ot` member of `tracestate` that carries
//! both (`th` and `rv`), as the OpenTelemetry specification defines them
//! (`trace/tracestate-probability-sampling.md`, `trace/tracestate-handling.md`).

use std::fmt;

use opentelemetry::trace::{TraceId, TraceState};

/// 2^56: the number of distinct randomness values, and the rejection threshold that
/// would reject everything.
pub const MAX_ADJUSTED_COUNT: u64 = 1 << 56;
const MASK_56: u64 = MAX_ADJUSTED_COUNT - 1;

/// The `ot` member of `tracestate`.
pub const OT_KEY: &str = "ot";
/// Longest `ot` value (the W3C limit for any member's value).
const MAX_OT_LEN: usize = 256;

/// The hexadecimal digits of precision the specification recommends for an encoded
/// threshold (it raises them by one for every four leading `f`s, so that small
/// probabilities keep their precision).
pub const DEFAULT_PRECISION: u8 = 4;

/// A rejection threshold: a 56-bit value `T`; a span whose randomness `R` satisfies
/// `R >= T` is sampled. `T = 0` samples everything; the sampling probability is
/// `(2^56 - T) / 2^56`.
///
/// ```
/// use instrument_core::sampling::Threshold;
///
/// let one_percent = Threshold::from_probability(0.01).unwrap();
/// assert_eq!(one_percent.to_string(), "fd70a");
/// assert!((one_percent.adjusted_count() - 100.0).abs() < 0.01);
/// assert_eq!(Threshold::parse("c").unwrap().probability(), 0.25);
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Threshold(u64);

/// Why a sampling probability cannot be a threshold.
#[derive(Debug, Clone, Copy, PartialEq)]
#[non_exhaustive]
pub enum ThresholdError {
    /// The probability is not a number in `[2^-56, 1]`.
    OutOfRange(f64),
}

impl fmt::Display for ThresholdError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::OutOfRange(p) => write!(
                f,
                "sampling probability {p} is outside [2^-56, 1] (use always_off to sample nothing)"
            ),
        }
    }
}

impl std::error::Error for ThresholdError {}

impl Threshold {
    /// Samples everything (`th:0`).
    pub const ALWAYS: Self = Self(0);

    /// The threshold of a 56-bit value; `None` above 2^56 - 1.
    pub fn new(value: u64) -> Option<Self> {
        (value <= MASK_56).then_some(Self(value))
    }

    /// The threshold for `probability` with the recommended precision
    /// ([`DEFAULT_PRECISION`]).
    pub fn from_probability(probability: f64) -> Result<Self, ThresholdError> {
        Self::with_precision(probability, DEFAULT_PRECISION)
    }

    /// The threshold for `probability` (in `[2^-56, 1]`), rounded to `precision`
    /// hexadecimal digits (1 to 12), plus one digit for every four leading `f`s: the
    /// specification's algorithm, so that every SDK encodes a ratio alike.
    pub fn with_precision(probability: f64, precision: u8) -> Result<Self, ThresholdError> {
        // NaN fails both comparisons.
        if !(probability >= f64::from_bits(0x3C70_0000_0000_0000) && probability <= 1.0) {
            return Err(ThresholdError::OutOfRange(probability));
        }
        if probability == 1.0 {
            return Ok(Self::ALWAYS);
        }
        // `probability = m * 2^exp` with `m` in [0.5, 1): every value here is normal.
        let exp = ((probability.to_bits() >> 52) & 0x7ff) as i32 - 1022;
        let digits = (i32::from(precision) + (-exp) / 4).clamp(1, 12) as u32;
        // 1 + the rejection probability, rounded at the last kept digit.
        let rejection = 2.0 - probability + f64::from_bits((1023 - 1 - 4 * digits as u64) << 52);
        let mantissa = if rejection >= 2.0 {
            (1u64 << 52) - 1
        } else {
            rejection.to_bits() & ((1u64 << 52) - 1)
        };
        // The mantissa's 13 hex digits are the threshold's first 13 of 14.
        let kept = mantissa >> (52 - 4 * digits);
        Ok(Self(kept << (56 - 4 * digits)))
    }

    /// Parses a `th` value: 1 to 14 lowercase hexadecimal digits, extended with
    /// trailing zeros to 14.
    pub fn parse(text: &str) -> Option<Self> {
        let bytes = text.as_bytes();
        if bytes.is_empty() || bytes.len() > 14 {
            return None;
        }
        let mut value = 0u64;
        for &b in bytes {
            value = (value << 4) | u64::from(lower_hex(b)?);
        }
        Some(Self(value << (4 * (14 - bytes.len()))))
    }

    /// The 56-bit value.
    pub fn value(self) -> u64 {
        self.0
    }

    /// Whether randomness `r` is sampled: `r >= T`.
    pub fn samples(self, r: Randomness) -> bool {
        r.0 >= self.0
    }

    /// The sampling probability, `(2^56 - T) / 2^56`.
    pub fn probability(self) -> f64 {
        (MAX_ADJUSTED_COUNT - self.0) as f64 / MAX_ADJUSTED_COUNT as f64
    }

    /// How many spans one sampled span stands for: `2^56 / (2^56 - T)`.
    pub fn adjusted_count(self) -> f64 {
        MAX_ADJUSTED_COUNT as f64 / (MAX_ADJUSTED_COUNT - self.0) as f64
    }
}

impl fmt::Display for Threshold {
    /// The `th` value: hexadecimal with trailing zeros removed, `0` for zero.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.0 == 0 {
            return f.write_str("0");
        }
        let digits = 14 - (self.0.trailing_zeros() / 4) as usize;
        write!(
            f,
            "{:0width$x}",
            self.0 >> (4 * (14 - digits)),
            width = digits
        )
    }
}

/// A 56-bit randomness value: the explicit `rv`, else the trace id's 56 rightmost bits.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct Randomness(u64);

impl Randomness {
    /// The 56 rightmost bits of `trace_id`.
    pub fn of_trace_id(trace_id: TraceId) -> Self {
        let bytes = trace_id.to_bytes();
        let mut low = [0u8; 8];
        low[1..].copy_from_slice(&bytes[9..]);
        Self(u64::from_be_bytes(low))
    }

    /// Parses an `rv` value: exactly 14 lowercase hexadecimal digits.
    pub fn parse(text: &str) -> Option<Self> {
        let bytes = text.as_bytes();
        if bytes.len() != 14 {
            return None;
        }
        let mut value = 0u64;
        for &b in bytes {
            value = (value << 4) | u64::from(lower_hex(b)?);
        }
        Some(Self(value))
    }

    /// The randomness of a span in `trace_id` whose `tracestate` is `state`: its valid
    /// `rv`, else the trace id's.
    pub fn of(trace_id: TraceId, state: &TraceState) -> Self {
        state
            .get(OT_KEY)
            .and_then(|ot| OtValue::new(ot).rv())
            .unwrap_or_else(|| Self::of_trace_id(trace_id))
    }

    /// The 56-bit value.
    pub fn value(self) -> u64 {
        self.0
    }
}

fn lower_hex(b: u8) -> Option<u8> {
    match b {
        b'0'..=b'9' => Some(b - b'0'),
        b'a'..=b'f' => Some(b - b'a' + 10),
        _ => None,
    }
}

/// An `ot` member's value, `key:value` sub-members separated by `;`, read leniently:
/// a sub-member that breaks the grammar is ignored (never the others), and a `th` or
/// `rv` that breaks its own grammar is as if absent.
#[derive(Debug, Clone, Copy)]
pub struct OtValue<'a>(&'a str);

impl<'a> OtValue<'a> {
    /// Reads `text`, an `ot` member's value.
    pub fn new(text: &'a str) -> Self {
        Self(text)
    }

    /// The well-formed sub-members, in order, each key once (the first).
    pub fn members(self) -> impl Iterator<Item = (&'a str, &'a str)> {
        let mut seen: Vec<&str> = Vec::new();
        self.0.split(';').filter_map(move |member| {
            let (key, value) = member.split_once(':')?;
            if !valid_key(key) || !valid_value(value) || seen.contains(&key) {
                return None;
            }
            seen.push(key);
            Some((key, value))
        })
    }

    fn get(self, key: &str) -> Option<&'a str> {
        self.members().find(|(k, _)| *k == key).map(|(_, v)| v)
    }

    /// The valid `th`.
    pub fn th(self) -> Option<Threshold> {
        self.get("th").and_then(Threshold::parse)
    }

    /// The valid `rv`.
    pub fn rv(self) -> Option<Randomness> {
        self.get("rv").and_then(Randomness::parse)
    }

    /// The value with `th` set to `th` (or removed, for `None`) and every other
    /// well-formed sub-member kept in order; `None` when that would be empty.
    fn with_th(self, th: Option<Threshold>) -> Option<String> {
        let mut out = String::new();
        if let Some(th) = th {
            out.push_str("th:");
            out.push_str(&th.to_string());
        }
        for (key, value) in self.members().filter(|(k, _)| *k != "th") {
            if !out.is_empty() {
                out.push(';');
            }
            out.push_str(key);
            out.push(':');
            out.push_str(value);
        }
        (!out.is_empty()).then_some(out)
    }
}

fn valid_key(key: &str) -> bool {
    let mut bytes = key.bytes();
    matches!(bytes.next(), Some(b'a'..=b'z'))
        && bytes.all(|b| b.is_ascii_lowercase() || b.is_ascii_digit())
}

fn valid_value(value: &str) -> bool {
    value
        .bytes()
        .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-'))
}

/// The `th` of `state`'s `ot` member, when valid.
pub fn threshold_of(state: &TraceState) -> Option<Threshold> {
    state.get(OT_KEY).and_then(|ot| OtValue::new(ot).th())
}

/// `state` with its `ot` member's `th` set to `th`, other sub-members and members
/// unchanged. When the `ot` value would grow past 256 characters, `state` is returned
/// unchanged except that its `th` is removed (a span without `th` has an unknown
/// probability, which is true; a stale one would be a lie).
pub fn with_threshold(state: &TraceState, th: Threshold) -> TraceState {
    let old = state.get(OT_KEY).unwrap_or("");
    match OtValue::new(old).with_th(Some(th)) {
        Some(ot) if ot.len() <= MAX_OT_LEN => state
            .insert(OT_KEY, ot)
            .unwrap_or_else(|_| without_threshold(state)),
        _ => without_threshold(state),
    }
}

/// `state` without a `th` in its `ot` member (the member removed when nothing else is
/// left in it); every other member and sub-member unchanged.
pub fn without_threshold(state: &TraceState) -> TraceState {
    let Some(old) = state.get(OT_KEY) else {
        return state.clone();
    };
    if !old.contains("th:") {
        return state.clone();
    }
    let result = match OtValue::new(old).with_th(None) {
        Some(ot) => state.insert(OT_KEY, ot),
        None => state.delete(OT_KEY),
    };
    result.unwrap_or_else(|_| state.clone())
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn th(p: f64, precision: u8) -> String {
        Threshold::with_precision(p, precision).unwrap().to_string()
    }

    #[test]
    fn the_specification_table_is_reproduced() {
        // trace/tracestate-probability-sampling.md, "1-in-N", precision 3, 4 and 5.
        let table: &[(f64, [&str; 3])] = &[
            (1.0, ["0", "0", "0"]),
            (0.5, ["8", "8", "8"]),
            (1.0 / 3.0, ["aab", "aaab", "aaaab"]),
            (0.25, ["c", "c", "c"]),
            (0.2, ["ccd", "cccd", "ccccd"]),
            (0.125, ["e", "e", "e"]),
            (0.1, ["e66", "e666", "e6666"]),
            (0.0625, ["f", "f", "f"]),
            (0.01, ["fd71", "fd70a", "fd70a4"]),
            (0.001, ["ffbe7", "ffbe77", "ffbe76d"]),
            (0.0001, ["fff972", "fff9724", "fff97247"]),
            (0.00001, ["ffff584", "ffff583a", "ffff583a5"]),
            (0.000001, ["ffffef4", "ffffef39", "ffffef391"]),
        ];
        for (p, expected) in table {
            for (precision, want) in [3, 4, 5].into_iter().zip(expected) {
                assert_eq!(th(*p, precision), *want, "p={p} precision={precision}");
            }
        }
    }

    #[test]
    fn out_of_range_probabilities_are_refused() {
        for p in [0.0, -0.5, 1.5, f64::NAN, f64::INFINITY, 1e-30] {
            assert!(Threshold::from_probability(p).is_err(), "{p}");
        }
        // The specification's algorithm keeps at most 12 digits (a double's precision).
        let smallest = 2f64.powi(-56);
        assert_eq!(
            Threshold::from_probability(smallest).unwrap().value(),
            0xff_ffff_ffff_ff00
        );
    }

    #[test]
    fn th_values_parse_as_the_specification_says() {
        assert_eq!(Threshold::parse("c").unwrap().value(), 0xc0_0000_0000_0000);
        assert_eq!(Threshold::parse("0").unwrap(), Threshold::ALWAYS);
        assert_eq!(Threshold::parse("ffffffffffffff").unwrap().value(), MASK_56);
        for bad in ["", "C", "g", "fffffffffffffff", "-1", " c", "0x1"] {
            assert_eq!(Threshold::parse(bad), None, "{bad:?}");
        }
        assert!(Randomness::parse("6e6d1a75832a2f").is_some());
        for bad in ["6e6d1a75832a2", "6E6D1A75832A2F", "6e6d1a75832a2f0", ""] {
            assert_eq!(Randomness::parse(bad), None, "{bad:?}");
        }
    }

    #[test]
    fn randomness_is_the_trace_ids_56_rightmost_bits_unless_rv_says() {
        let id = TraceId::from_hex("4bf92f3577b34da6a3ce929d0e0e4736").unwrap();
        assert_eq!(Randomness::of_trace_id(id).value(), 0xce929d0e0e4736);
        let state = TraceState::from_key_value([("ot", "th:8;rv:00000000000001")]).unwrap();
        assert_eq!(Randomness::of(id, &state).value(), 1);
        let bad = TraceState::from_key_value([("ot", "rv:xyz")]).unwrap();
        assert_eq!(Randomness::of(id, &bad).value(), 0xce929d0e0e4736);
    }

    #[test]
    fn setting_th_keeps_the_other_sub_keys_and_members() {
        let state =
            TraceState::from_key_value([("vendor", "v1"), ("ot", "p:8;th:4;r:62")]).unwrap();
        let set = with_threshold(&state, Threshold::parse("fd70a").unwrap());
        assert_eq!(set.get("ot"), Some("th:fd70a;p:8;r:62"));
        assert_eq!(set.get("vendor"), Some("v1"));
        let erased = without_threshold(&set);
        assert_eq!(erased.get("ot"), Some("p:8;r:62"));
        assert_eq!(erased.get("vendor"), Some("v1"));
        let only = TraceState::from_key_value([("a", "1"), ("ot", "th:0")]).unwrap();
        let erased = without_threshold(&only);
        assert_eq!(erased.get("ot"), None);
        assert_eq!(erased.get("a"), Some("1"));
    }

    #[test]
    fn a_malformed_ot_value_is_ignored_and_its_good_parts_kept() {
        let state = TraceState::from_key_value([("ot", "th:zz;;junk;Rv:1;k1:13;th:8")]).unwrap();
        assert_eq!(threshold_of(&state), None);
        let set = with_threshold(&state, Threshold::parse("c").unwrap());
        assert_eq!(set.get("ot"), Some("th:c;k1:13"));
    }

    proptest! {
        #[test]
        fn thresholds_round_trip_through_their_text(value in 0u64..MAX_ADJUSTED_COUNT) {
            let t = Threshold::new(value).unwrap();
            prop_assert_eq!(Threshold::parse(&t.to_string()), Some(t));
        }

        #[test]
        fn the_threshold_is_within_the_precision_of_the_probability(
            p in 1e-16f64..=1.0,
            precision in 1u8..=12,
        ) {
            let t = Threshold::with_precision(p, precision).unwrap();
            // The digits kept, as the specification's algorithm counts them (one more
            // for every four leading `f`s, at most 12); the probability is within
            // half a unit of the last one (one unit, for the float arithmetic).
            let exp = ((p.to_bits() >> 52) & 0x7ff) as i32 - 1022;
            let digits = (i32::from(precision) + (-exp) / 4).clamp(1, 12);
            let unit = 16f64.powi(-digits);
            prop_assert!((t.probability() - p).abs() <= unit,
                "p={} precision={} got={} ({}) unit={}", p, precision, t.probability(), t, unit);
        }

        #[test]
        fn a_higher_probability_never_has_a_higher_threshold(a in 1e-9f64..=1.0, b in 1e-9f64..=1.0) {
            let (lo, hi) = if a <= b { (a, b) } else { (b, a) };
            let (tl, th) = (Threshold::from_probability(lo).unwrap(), Threshold::from_probability(hi).unwrap());
            prop_assert!(th <= tl);
        }

        #[test]
        fn any_ot_value_is_read_and_rewritten_without_panic(
            ot in "[a-z0-9:;._A-Z-]{0,80}",
            other in "[a-z]{1,8}",
            t in 0u64..MAX_ADJUSTED_COUNT,
        ) {
            let Ok(state) = TraceState::from_key_value([(other.as_str(), "x"), ("ot", ot.as_str())]) else {
                return Ok(());
            };
            let _ = threshold_of(&state);
            let _ = Randomness::of(TraceId::from(7u128), &state);
            let set = with_threshold(&state, Threshold::new(t).unwrap());
            if other != "ot" {
                prop_assert_eq!(set.get(&other), Some("x"));
            }
            prop_assert_eq!(threshold_of(&set), Some(Threshold::new(t).unwrap()));
            let erased = without_threshold(&set);
            prop_assert_eq!(threshold_of(&erased), None);
            if other != "ot" {
                prop_assert_eq!(erased.get(&other), Some("x"));
            }
        }
    }
}
