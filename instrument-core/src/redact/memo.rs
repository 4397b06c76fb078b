//! A per-thread memo of short values a redactor found clean.
//!
//! Most values a server exports repeat: span names, routes, methods, workflow kinds,
//! and an id captured by `#[workflow_span]` is scanned again when each of its two
//! spans is exported. Scanning a clean 64-byte value costs about 1,000 instructions;
//! finding it here costs a hash and a compare of at most [`MAX_LEN`] bytes.
//!
//! The memo is a small set-associative cache: a value's hash picks a set of [`WAYS`]
//! slots, and a value found clean replaces the set's oldest entry. Values that repeat
//! stay; values seen once (request ids) pass through without pushing out more than
//! one slot each. A slot holds the value's bytes and the redactor that judged it, so
//! a hit is exact: the same bytes, judged by the same policy (a redactor's id is never
//! reused). Only clean verdicts are kept; a value with something to mask is scanned
//! every time. Colliding values (chosen to collide or not) only push each other out,
//! which costs a scan, never a wrong answer.
//!
//! The table is allocated on a thread's first remembered value: [`SETS`] x [`WAYS`]
//! slots of [`MAX_LEN`] bytes, 10 KiB per thread that redacts.

use std::cell::RefCell;
use std::hash::BuildHasher as _;
use std::sync::atomic::{AtomicU64, Ordering};

/// Longer values are scanned every time.
pub(super) const MAX_LEN: usize = 64;
/// Sets per thread (a power of two).
const SETS: usize = 32;
/// Slots per set.
const WAYS: usize = 4;

/// Slot owner of an empty slot; redactor ids start above it.
const EMPTY: u64 = 0;
static NEXT_OWNER: AtomicU64 = AtomicU64::new(EMPTY + 1);

/// A fresh redactor id, never handed out before.
pub(super) fn next_owner() -> u64 {
    NEXT_OWNER.fetch_add(1, Ordering::Relaxed)
}

#[derive(Clone, Copy)]
struct Slot {
    owner: u64,
    len: u8,
    bytes: [u8; MAX_LEN],
}

impl Slot {
    fn holds(&self, owner: u64, value: &[u8]) -> bool {
        self.owner == owner
            && usize::from(self.len) == value.len()
            && &self.bytes[..value.len()] == value
    }
}

#[derive(Clone, Copy)]
struct Set {
    slots: [Slot; WAYS],
    /// The slot the next remembered value replaces (the oldest).
    oldest: u8,
}

const EMPTY_SET: Set = Set {
    slots: [Slot {
        owner: EMPTY,
        len: 0,
        bytes: [0; MAX_LEN],
    }; WAYS],
    oldest: 0,
};

thread_local! {
    static CLEAN: RefCell<Option<Box<[Set; SETS]>>> = const { RefCell::new(None) };
}

/// Which set `value` lives in.
fn set_of(value: &[u8]) -> usize {
    // A fixed seed: the memo's contents are never an answer on their own (a hit
    // compares the bytes), so a predictable hash can cost scans, not correctness.
    let hash = foldhash::fast::FixedState::with_seed(0).hash_one(value);
    // The top bits: foldhash's low bits vary least for short inputs.
    (hash >> (u64::BITS - SETS.trailing_zeros())) as usize
}

/// What the memo knows of a value.
pub(super) enum Lookup {
    /// Judged clean by this redactor before.
    Clean,
    /// Not known; [`remember`] it in this set once it is found clean.
    Unknown(usize),
    /// Too long to keep, or the memo is unavailable (the thread is being torn down).
    Untracked,
}

/// Whether `owner` found `value` clean before, on this thread.
pub(super) fn lookup(owner: u64, value: &str) -> Lookup {
    let bytes = value.as_bytes();
    if bytes.len() > MAX_LEN {
        return Lookup::Untracked;
    }
    let set = set_of(bytes);
    CLEAN
        .try_with(|table| {
            let Ok(table) = table.try_borrow() else {
                return Lookup::Untracked;
            };
            match table.as_deref() {
                Some(table) if table[set].slots.iter().any(|s| s.holds(owner, bytes)) => {
                    Lookup::Clean
                }
                _ => Lookup::Unknown(set),
            }
        })
        .unwrap_or(Lookup::Untracked)
}

/// Records that `owner` found `value` (at most [`MAX_LEN`] bytes, looked up as
/// [`Lookup::Unknown`]`(set)`) clean.
pub(super) fn remember(owner: u64, set: usize, value: &str) {
    let bytes = value.as_bytes();
    let Ok(len) = u8::try_from(bytes.len()) else {
        return;
    };
    if bytes.len() > MAX_LEN || set >= SETS {
        return;
    }
    // Ignored when the thread is being torn down: the value is simply not kept.
    let _ = CLEAN.try_with(|table| {
        let Ok(mut table) = table.try_borrow_mut() else {
            return;
        };
        let set = &mut table.get_or_insert_with(|| Box::new([EMPTY_SET; SETS]))[set];
        let way = usize::from(set.oldest) % WAYS;
        set.oldest = ((way + 1) % WAYS) as u8;
        let slot = &mut set.slots[way];
        slot.owner = owner;
        slot.len = len;
        slot.bytes[..bytes.len()].copy_from_slice(bytes);
    });
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_value_is_known_only_to_the_redactor_that_judged_it() {
        let (a, b) = (next_owner(), next_owner());
        let Lookup::Unknown(set) = lookup(a, "GET /v1/orders") else {
            panic!("not seen yet");
        };
        remember(a, set, "GET /v1/orders");
        assert!(matches!(lookup(a, "GET /v1/orders"), Lookup::Clean));
        assert!(matches!(lookup(b, "GET /v1/orders"), Lookup::Unknown(_)));
        // Same set or not, a different value is not a hit.
        assert!(matches!(lookup(a, "GET /v1/order"), Lookup::Unknown(_)));
        assert!(matches!(lookup(a, "GET /v1/orders "), Lookup::Unknown(_)));
        assert!(matches!(lookup(a, ""), Lookup::Unknown(_)));
    }

    #[test]
    fn values_longer_than_the_slots_are_not_kept() {
        let owner = next_owner();
        let long = "a".repeat(MAX_LEN + 1);
        assert!(matches!(lookup(owner, &long), Lookup::Untracked));
        let fits = "a".repeat(MAX_LEN);
        let Lookup::Unknown(set) = lookup(owner, &fits) else {
            panic!("not seen yet");
        };
        remember(owner, set, &fits);
        assert!(matches!(lookup(owner, &fits), Lookup::Clean));
        assert!(matches!(lookup(owner, &long), Lookup::Untracked));
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
        remember(owner, set, first);
        for other in &others[..WAYS - 1] {
            remember(owner, set, other);
        }
        // Four values sharing a set all stay.
        assert!(matches!(lookup(owner, first), Lookup::Clean));
        for other in &others[..WAYS - 1] {
            assert!(matches!(lookup(owner, other), Lookup::Clean), "{other}");
        }
        // A fifth pushes out the oldest, and only it.
        remember(owner, set, &others[WAYS - 1]);
        assert!(matches!(lookup(owner, first), Lookup::Unknown(_)));
        for other in &others {
            assert!(matches!(lookup(owner, other), Lookup::Clean), "{other}");
        }
    }

    #[test]
    fn each_thread_has_its_own_memo() {
        let owner = next_owner();
        let Lookup::Unknown(set) = lookup(owner, "order-fulfilment") else {
            panic!("not seen yet");
        };
        remember(owner, set, "order-fulfilment");
        std::thread::spawn(move || {
            assert!(matches!(
                lookup(owner, "order-fulfilment"),
                Lookup::Unknown(_)
            ));
        })
        .join()
        .expect("thread");
    }
}
