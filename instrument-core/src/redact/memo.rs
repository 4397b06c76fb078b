//! Per-thread memos of what a redactor decided about short strings: which values are
//! clean, which keys are sensitive.
//!
//! Most of what a server exports repeats: span names, routes, methods, attribute
//! keys, and an id captured by `#[workflow_span]` is scanned again when each of its
//! two spans is exported. Scanning a clean 64-byte value costs about 1,000
//! instructions and deciding a key about 360; finding either here costs a hash and a
//! compare of at most [`MAX_LEN`] bytes.
//!
//! A memo is a small set-associative cache: a string's hash picks a set of [`WAYS`]
//! slots, and a new answer replaces the set's oldest. Strings that repeat stay;
//! strings seen once (request ids) pass through without pushing out more than one slot
//! each. A slot holds the string's bytes and the redactor that decided, so a hit is
//! exact: the same bytes, decided by the same policy (a redactor's id is never
//! reused). [`CLEAN`] keeps only clean verdicts, so a value with something to mask is
//! scanned every time. Colliding strings (chosen to collide or not) only push each
//! other out, which costs a decision, never a wrong answer.
//!
//! A thread's table is allocated on its first remembered answer: [`SETS`] x [`WAYS`]
//! slots of [`MAX_LEN`] bytes, 10 KiB per memo and thread that redacts.

use std::cell::RefCell;
use std::hash::BuildHasher as _;
use std::sync::atomic::{AtomicU64, Ordering};
use std::thread::LocalKey;

/// Longer strings are decided every time.
pub(super) const MAX_LEN: usize = 64;
/// Sets per thread and memo (a power of two).
const SETS: usize = 32;
/// Slots per set.
const WAYS: usize = 4;

/// Owner of an empty slot; redactor ids start above it.
const EMPTY: u64 = 0;
static NEXT_OWNER: AtomicU64 = AtomicU64::new(EMPTY + 1);

/// A fresh redactor id, never handed out before.
pub(super) fn next_owner() -> u64 {
    NEXT_OWNER.fetch_add(1, Ordering::Relaxed)
}

#[derive(Clone, Copy)]
struct Slot {
    owner: u64,
    verdict: u8,
    len: u8,
    bytes: [u8; MAX_LEN],
}

impl Slot {
    fn holds(&self, owner: u64, s: &[u8]) -> bool {
        self.owner == owner && usize::from(self.len) == s.len() && &self.bytes[..s.len()] == s
    }
}

#[derive(Clone, Copy)]
struct Set {
    slots: [Slot; WAYS],
    /// The slot the next answer replaces (the oldest).
    oldest: u8,
}

const EMPTY_SET: Set = Set {
    slots: [Slot {
        owner: EMPTY,
        verdict: 0,
        len: 0,
        bytes: [0; MAX_LEN],
    }; WAYS],
    oldest: 0,
};

type Table = RefCell<Option<Box<[Set; SETS]>>>;

thread_local! {
    static CLEAN_VALUES: Table = const { RefCell::new(None) };
    static SENSITIVE_KEYS: Table = const { RefCell::new(None) };
}

/// One of the per-thread memos.
#[derive(Clone, Copy)]
pub(super) struct Memo(&'static LocalKey<Table>);

/// Values found clean (every verdict kept is [`IS_CLEAN`]).
pub(super) const CLEAN: Memo = Memo(&CLEAN_VALUES);
/// What a key names (a [`KeyClass`](super::keys::KeyClass) as `u8`). Its own table, so
/// that values seen once do not push out the few keys seen on every span.
pub(super) const SENSITIVE: Memo = Memo(&SENSITIVE_KEYS);

/// Which set `s` lives in.
fn set_of(s: &[u8]) -> usize {
    // A fixed seed: a slot's contents are never an answer on their own (a hit compares
    // the bytes), so a predictable hash can cost decisions, not correctness.
    let hash = foldhash::fast::FixedState::with_seed(0).hash_one(s);
    // The top bits: foldhash's low bits vary least for short inputs.
    (hash >> (u64::BITS - SETS.trailing_zeros())) as usize
}

/// The verdict [`CLEAN`] keeps.
pub(super) const IS_CLEAN: u8 = 1;

/// What a memo knows of a string.
pub(super) enum Lookup {
    /// Decided by this redactor before.
    Known(u8),
    /// Not known; [`Memo::remember`] the answer in this set.
    Unknown(usize),
    /// Too long to keep, or the memo is unavailable (the thread is being torn down).
    Untracked,
}

impl Memo {
    /// What `owner` decided about `s` before, on this thread.
    pub(super) fn lookup(self, owner: u64, s: &str) -> Lookup {
        let bytes = s.as_bytes();
        if bytes.len() > MAX_LEN {
            return Lookup::Untracked;
        }
        let set = set_of(bytes);
        self.0
            .try_with(|table| {
                let Ok(table) = table.try_borrow() else {
                    return Lookup::Untracked;
                };
                let found = table
                    .as_deref()
                    .and_then(|table| table[set].slots.iter().find(|s| s.holds(owner, bytes)));
                match found {
                    Some(slot) => Lookup::Known(slot.verdict),
                    None => Lookup::Unknown(set),
                }
            })
            .unwrap_or(Lookup::Untracked)
    }

    /// Records that `owner` decided `verdict` about `s` (looked up as
    /// [`Lookup::Unknown`]`(set)`).
    pub(super) fn remember(self, owner: u64, set: usize, s: &str, verdict: u8) {
        let bytes = s.as_bytes();
        let Ok(len) = u8::try_from(bytes.len()) else {
            return;
        };
        if bytes.len() > MAX_LEN || set >= SETS {
            return;
        }
        // Ignored when the thread is being torn down: the answer is simply not kept.
        let _ = self.0.try_with(|table| {
            let Ok(mut table) = table.try_borrow_mut() else {
                return;
            };
            let set = &mut table.get_or_insert_with(|| Box::new([EMPTY_SET; SETS]))[set];
            let way = usize::from(set.oldest) % WAYS;
            set.oldest = ((way + 1) % WAYS) as u8;
            let slot = &mut set.slots[way];
            slot.owner = owner;
            slot.verdict = verdict;
            slot.len = len;
            slot.bytes[..bytes.len()].copy_from_slice(bytes);
        });
    }

    /// `decide(s)`, remembered for `owner` on this thread.
    pub(super) fn decided(self, owner: u64, s: &str, decide: impl FnOnce(&str) -> u8) -> u8 {
        match self.lookup(owner, s) {
            Lookup::Known(verdict) => verdict,
            Lookup::Unknown(set) => {
                let verdict = decide(s);
                self.remember(owner, set, s, verdict);
                verdict
            }
            Lookup::Untracked => decide(s),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_value_is_known_only_to_the_redactor_that_judged_it() {
        let (a, b) = (next_owner(), next_owner());
        let Lookup::Unknown(set) = CLEAN.lookup(a, "GET /v1/orders") else {
            panic!("not seen yet");
        };
        CLEAN.remember(a, set, "GET /v1/orders", IS_CLEAN);
        assert!(matches!(
            CLEAN.lookup(a, "GET /v1/orders"),
            Lookup::Known(IS_CLEAN)
        ));
        assert!(matches!(
            CLEAN.lookup(b, "GET /v1/orders"),
            Lookup::Unknown(_)
        ));
        // Same set or not, a different value is not a hit.
        assert!(matches!(
            CLEAN.lookup(a, "GET /v1/order"),
            Lookup::Unknown(_)
        ));
        assert!(matches!(
            CLEAN.lookup(a, "GET /v1/orders "),
            Lookup::Unknown(_)
        ));
        assert!(matches!(CLEAN.lookup(a, ""), Lookup::Unknown(_)));
    }

    #[test]
    fn each_memo_keeps_its_own_verdicts() {
        let owner = next_owner();
        let decisions = std::cell::Cell::new(0);
        let decide = |verdict| {
            decisions.set(decisions.get() + 1);
            verdict
        };
        assert_eq!(SENSITIVE.decided(owner, "db.password", |_| decide(2)), 2);
        assert_eq!(SENSITIVE.decided(owner, "http.route", |_| decide(0)), 0);
        // Answered from the memo: not decided again.
        assert_eq!(SENSITIVE.decided(owner, "db.password", |_| decide(0)), 2);
        assert_eq!(SENSITIVE.decided(owner, "http.route", |_| decide(2)), 0);
        assert_eq!(decisions.get(), 2);
        // The value memo is another table.
        assert!(matches!(
            CLEAN.lookup(owner, "http.route"),
            Lookup::Unknown(_)
        ));
        // Too long to keep: decided every time.
        let long = "k".repeat(MAX_LEN + 1);
        assert_eq!(SENSITIVE.decided(owner, &long, |_| decide(2)), 2);
        assert_eq!(SENSITIVE.decided(owner, &long, |_| decide(0)), 0);
        assert_eq!(decisions.get(), 4);
    }

    #[test]
    fn values_longer_than_the_slots_are_not_kept() {
        let owner = next_owner();
        let long = "a".repeat(MAX_LEN + 1);
        assert!(matches!(CLEAN.lookup(owner, &long), Lookup::Untracked));
        let fits = "a".repeat(MAX_LEN);
        let Lookup::Unknown(set) = CLEAN.lookup(owner, &fits) else {
            panic!("not seen yet");
        };
        CLEAN.remember(owner, set, &fits, IS_CLEAN);
        assert!(matches!(
            CLEAN.lookup(owner, &fits),
            Lookup::Known(IS_CLEAN)
        ));
        assert!(matches!(CLEAN.lookup(owner, &long), Lookup::Untracked));
    }

    /// `n` values that share `first`'s set.
    fn colliding(first: &str, n: usize) -> Vec<String> {
        let target = set_of(first.as_bytes());
        (0..100_000)
            .map(|i| format!("value-{i}"))
            .filter(|v| set_of(v.as_bytes()) == target)
            .take(n)
            .collect()
    }

    #[test]
    fn a_set_keeps_its_last_four_values() {
        let owner = next_owner();
        let first = "workflow.start";
        let set = set_of(first.as_bytes());
        let others = colliding(first, WAYS);
        assert_eq!(others.len(), WAYS);
        CLEAN.remember(owner, set, first, IS_CLEAN);
        for other in &others[..WAYS - 1] {
            CLEAN.remember(owner, set, other, IS_CLEAN);
        }
        // Four values sharing a set all stay.
        assert!(matches!(
            CLEAN.lookup(owner, first),
            Lookup::Known(IS_CLEAN)
        ));
        for other in &others[..WAYS - 1] {
            assert!(
                matches!(CLEAN.lookup(owner, other), Lookup::Known(IS_CLEAN)),
                "{other}"
            );
        }
        // A fifth pushes out the oldest, and only it.
        CLEAN.remember(owner, set, &others[WAYS - 1], IS_CLEAN);
        assert!(matches!(CLEAN.lookup(owner, first), Lookup::Unknown(_)));
        for other in &others {
            assert!(
                matches!(CLEAN.lookup(owner, other), Lookup::Known(IS_CLEAN)),
                "{other}"
            );
        }
    }

    #[test]
    fn each_thread_has_its_own_memo() {
        let owner = next_owner();
        let Lookup::Unknown(set) = CLEAN.lookup(owner, "order-fulfilment") else {
            panic!("not seen yet");
        };
        CLEAN.remember(owner, set, "order-fulfilment", IS_CLEAN);
        std::thread::spawn(move || {
            assert!(matches!(
                CLEAN.lookup(owner, "order-fulfilment"),
                Lookup::Unknown(_)
            ));
        })
        .join()
        .expect("thread");
    }
}
