//! Finding API key prefixes (`sk_live_`, `ghp_`, `AKIA`, ...) without scanning every byte.
//!
//! An automaton over all prefixes costs several times more per 64-byte value than this
//! index (`redact/clean_64b`): common bigrams of English (`sh`, `do`, `gh`) make its
//! prefilter verify constantly. Nearly every prefix ends in a separator (`_`, `-`,
//! `.`), so this index jumps from separator to separator with `memchr` and looks up the
//! four bytes ending there (a prefix of three bytes or fewer, such as `sk-` or `hf_`,
//! is compared there directly); the few other prefixes are found from their first
//! byte. A key must also start at a word boundary, as the detector's regex demands.

use aho_corasick::AhoCorasick;

/// Prefix bytes that may end a separator-terminated prefix.
const SEPARATORS: [u8; 3] = [b'_', b'-', b'.'];
/// Bytes before the final separator needed for the tail lookup.
const TAIL: usize = 3;
/// Prefixes the tail table and the first-byte scheme may hold between them (a bit each
/// in a mask); past them, a prefix goes to the automaton.
const INDEXED: usize = 128;
/// Slots of the tail table (a power of two, at least twice the prefixes it may hold).
const TAIL_SLOTS: usize = 256;

fn slot(key: u32) -> usize {
    (key.wrapping_mul(0x9E37_79B1) >> 24) as usize
}

#[derive(Debug)]
pub(crate) struct PrefixIndex {
    prefixes: Vec<Box<[u8]>>,
    /// Open-addressing table of `(last four bytes, bitmask of prefixes)`; key 0 marks an
    /// empty slot (a real key ends in a separator, so it is never 0). Measured against a
    /// sorted `Vec` with binary search, which dominated `redact/clean_64b`.
    tails: Box<[(u32, u128); TAIL_SLOTS]>,
    has_tails: bool,
    /// Separator-terminated prefixes too short for a four-byte tail (`sk-`, `hf_`).
    short: Vec<Box<[u8]>>,
    /// The bytes just before the separator of a `short` prefix (`k`, `f`): a separator
    /// after any other byte ends none of them.
    short_before: [bool; 256],
    /// Prefixes found from their first byte, when they start with at most three distinct bytes.
    heads: Vec<(u8, usize)>,
    head_bytes: Vec<u8>,
    /// Whatever fits neither scheme (more than [`INDEXED`] prefixes, or too many first
    /// bytes).
    fallback: Option<AhoCorasick>,
}

fn tail_key(b: &[u8]) -> u32 {
    u32::from_le_bytes([b[0], b[1], b[2], b[3]])
}

fn at_word_start(text: &[u8], start: usize) -> bool {
    start == 0 || !text[start - 1].is_ascii_alphanumeric()
}

impl PrefixIndex {
    pub(crate) fn new(prefixes: &[String]) -> Result<Self, aho_corasick::BuildError> {
        let mut index = Self {
            prefixes: Vec::new(),
            tails: Box::new([(0, 0); TAIL_SLOTS]),
            has_tails: false,
            short: Vec::new(),
            short_before: [false; 256],
            heads: Vec::new(),
            head_bytes: Vec::new(),
            fallback: None,
        };
        let mut leftovers: Vec<&str> = Vec::new();
        for p in prefixes {
            let b = p.as_bytes();
            let id = index.prefixes.len();
            let tail_fits = b.len() > TAIL && SEPARATORS.contains(&b[b.len() - 1]);
            if b.len() > 1 && b.len() <= TAIL && SEPARATORS.contains(&b[b.len() - 1]) {
                index.short.push(b.into());
                index.short_before[usize::from(b[b.len() - 2])] = true;
                index.has_tails = true;
            } else if id >= INDEXED {
                leftovers.push(p);
            } else if tail_fits {
                index.insert_tail(tail_key(&b[b.len() - 4..]), 1 << id);
                index.prefixes.push(b.into());
            } else if !b.is_empty()
                && (index.head_bytes.contains(&b[0]) || index.head_bytes.len() < 3)
            {
                if !index.head_bytes.contains(&b[0]) {
                    index.head_bytes.push(b[0]);
                }
                index.heads.push((b[0], id));
                index.prefixes.push(b.into());
            } else {
                leftovers.push(p);
            }
        }
        if !leftovers.is_empty() {
            index.fallback = Some(AhoCorasick::new(&leftovers)?);
        }
        Ok(index)
    }

    fn insert_tail(&mut self, key: u32, bit: u128) {
        self.has_tails = true;
        let mut i = slot(key);
        loop {
            let (k, mask) = &mut self.tails[i];
            if *k == 0 || *k == key {
                *k = key;
                *mask |= bit;
                return;
            }
            i = (i + 1) % TAIL_SLOTS;
        }
    }

    fn tail_mask(&self, key: u32) -> u128 {
        let mut i = slot(key);
        loop {
            match self.tails[i] {
                (0, _) => return 0,
                (k, mask) if k == key => return mask,
                _ => i = (i + 1) % TAIL_SLOTS,
            }
        }
    }

    /// Whether a prefix starts at a word boundary somewhere in `text`. `separators`
    /// says whether `text` has any `_`, `-` or `.` at all (known from the first pass).
    pub(crate) fn is_match(&self, text: &[u8], separators: bool) -> bool {
        if separators && self.has_tails {
            for end in memchr::memchr3_iter(b'_', b'-', b'.', text) {
                let maybe_short = end > 0 && self.short_before[usize::from(text[end - 1])];
                for p in self.short.iter().filter(|_| maybe_short) {
                    if let Some(start) = (end + 1).checked_sub(p.len()) {
                        if text[start..=end] == **p && at_word_start(text, start) {
                            return true;
                        }
                    }
                }
                if end < TAIL {
                    continue;
                }
                let mut mask = self.tail_mask(tail_key(&text[end - TAIL..=end]));
                while mask != 0 {
                    let id = mask.trailing_zeros() as usize;
                    mask &= mask - 1;
                    let p = &self.prefixes[id];
                    if let Some(start) = (end + 1).checked_sub(p.len()) {
                        if text[start..=end] == **p && at_word_start(text, start) {
                            return true;
                        }
                    }
                }
            }
        }
        if !self.heads.is_empty() && self.head_matches(text) {
            return true;
        }
        self.fallback.as_ref().is_some_and(|ac| ac.is_match(text))
    }

    fn head_matches(&self, text: &[u8]) -> bool {
        let check = |start: usize| {
            at_word_start(text, start)
                && self.heads.iter().any(|(first, id)| {
                    *first == text[start] && text[start..].starts_with(&self.prefixes[*id])
                })
        };
        match *self.head_bytes.as_slice() {
            [a] => memchr::memchr_iter(a, text).any(check),
            [a, b] => memchr::memchr2_iter(a, b, text).any(check),
            [a, b, c] => memchr::memchr3_iter(a, b, c, text).any(check),
            _ => false,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::redact::policy::DEFAULT_API_KEY_PREFIXES;

    fn index(extra: &[&str]) -> PrefixIndex {
        let all: Vec<String> = DEFAULT_API_KEY_PREFIXES
            .iter()
            .chain(extra)
            .map(|p| (*p).to_owned())
            .collect();
        PrefixIndex::new(&all).unwrap()
    }

    fn found(ix: &PrefixIndex, text: &str) -> bool {
        ix.is_match(text.as_bytes(), text.contains(['_', '-', '.']))
    }

    #[test]
    fn every_default_prefix_is_found_at_a_word_start() {
        let ix = index(&[]);
        for p in DEFAULT_API_KEY_PREFIXES {
            assert!(found(&ix, &format!("{p}abcdefgh12345")), "{p}");
            assert!(found(&ix, &format!("key: {p}abcdefgh12345")), "{p}");
            assert!(found(&ix, &format!("stripe_{p}abcdefgh12345")), "{p}");
            assert!(
                !found(&ix, &format!("x{p}abcdefgh12345")),
                "inside a word: {p}"
            );
        }
    }

    #[test]
    fn ordinary_text_has_no_prefix() {
        let ix = index(&[]);
        for text in [
            "order-fulfilment step 3 of 7 completed for queue default-eu-west",
            "she does the shopping at the ghost shop.",
            "a_b-c.d",
            "",
        ] {
            assert!(!found(&ix, text), "{text}");
        }
    }

    #[test]
    fn short_prefixes_are_found_at_their_separator() {
        let ix = index(&[]);
        for text in ["sk-abcdefgh", "key hf_abcdefgh", "(SG.abc.def)"] {
            assert!(found(&ix, text), "{text}");
        }
        for text in ["task-abcdefgh", "of_abcdefgh", "ASG.x"] {
            assert!(!found(&ix, text), "{text}");
        }
    }

    #[test]
    fn custom_prefixes_of_every_shape() {
        let ix = index(&["acme_", "x_", "QQ", "zz", "yy", "ww"]);
        for text in ["acme_123", "x_123", "QQ123", "zz1", "yy1", "ww1"] {
            assert!(found(&ix, text), "{text}");
        }
        assert!(
            ix.fallback.is_some(),
            "a fourth first byte falls back to the automaton"
        );
    }

    #[test]
    fn a_policy_s_own_prefixes_beside_the_defaults_stay_indexed_up_to_the_limit() {
        let own: Vec<String> = (0..INDEXED).map(|i| format!("acme{i}_")).collect();
        // `sk-`, `hf_` and `SG.` are compared at their separator, outside the count.
        let short = DEFAULT_API_KEY_PREFIXES
            .iter()
            .filter(|p| p.len() <= TAIL)
            .count();
        let indexed = INDEXED - (DEFAULT_API_KEY_PREFIXES.len() - short);
        let fits: Vec<&str> = own[..indexed].iter().map(String::as_str).collect();
        let ix = index(&fits);
        assert!(ix.fallback.is_none(), "{indexed} of a policy's own fit");
        let over: Vec<&str> = own.iter().map(String::as_str).collect();
        let ix = index(&over);
        assert!(ix.fallback.is_some(), "past the limit, the automaton");
        for p in own
            .iter()
            .map(String::as_str)
            .chain(DEFAULT_API_KEY_PREFIXES.iter().copied())
        {
            assert!(found(&ix, &format!("key: {p}abcdefgh12345")), "{p}");
        }
    }
}
