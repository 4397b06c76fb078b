//! Recorders whose metric handles may be kept from one call to the next.
//!
//! Registering a metric (`counter!(name, labels)`) builds a `metrics::Key`, hashes it
//! and looks it up in the recorder (and, behind a [`GuardedRecorder`](super::GuardedRecorder),
//! in the label guard): a few hundred nanoseconds, several metrics per request. The
//! handle it returns stays valid, so [`RequestMeasures`](crate::measure::RequestMeasures)
//! and `#[workflow_span]` keep handles per label set, but only for a recorder known to
//! live as long as the program. A handle kept for a recorder that was dropped, and looked up again for
//! another recorder made at the same address, would record into the first one: with
//! local recorders (tests), handles are registered on every call instead.
//!
//! `pipeline::install_prometheus` declares the recorder it installs; a global recorder
//! installed otherwise is declared with [`keep_handles_for_global`], any other
//! `'static` one with [`keep_handles_for`].
//!
//! ```
//! use instrument_core::cardinality::{keep_handles_for, GuardedRecorder, LabelGuard};
//! use instrument_core::semconv::MetricNames;
//!
//! let recorder = GuardedRecorder::new(metrics::NoopRecorder, LabelGuard::default(), &MetricNames::default());
//! let lasting: &'static _ = Box::leak(Box::new(recorder));
//! assert!(keep_handles_for(lasting));
//! ```

use std::collections::HashMap;
use std::hash::{BuildHasher as _, Hash};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, PoisonError, RwLock};

use foldhash::fast::FixedState;

use metrics::Recorder;

/// Lasting recorders a process can declare; later ones are not kept (their handles
/// are registered on every call, which is slower but right).
pub(crate) const MAX_LASTING_RECORDERS: usize = 8;

/// Addresses of the lasting recorders (0: free slot).
static LASTING: [AtomicUsize; MAX_LASTING_RECORDERS] =
    [const { AtomicUsize::new(0) }; MAX_LASTING_RECORDERS];

fn address(recorder: &dyn Recorder) -> usize {
    std::ptr::from_ref(recorder).cast::<()>() as usize
}

/// Declares `recorder`, which lives for the rest of the program, as one whose metric
/// handles may be kept. Returns `false` when eight recorders are declared
/// already, or for a zero-sized recorder (`metrics::NoopRecorder`: such values share
/// addresses, so an address does not tell them apart); the recorder still works, its
/// handles are just not kept.
pub fn keep_handles_for(recorder: &'static dyn Recorder) -> bool {
    declare(recorder)
}

/// Declares the process's global recorder (set with `metrics::set_global_recorder`,
/// which keeps it for the rest of the program) as one whose metric handles may be
/// kept. Call it after installing the recorder. Returns `false` when there is no
/// global recorder yet, or as [`keep_handles_for`] does.
///
/// It reads the global recorder on a new thread: one without a local recorder.
pub fn keep_handles_for_global() -> bool {
    // Local recorders are per thread; a fresh thread sees the global one, or
    // `metrics`' zero-sized no-op recorder when there is none.
    // A thread that cannot be spawned leaves the handles registered on every call.
    std::thread::Builder::new()
        .name("instrument-recorder-probe".into())
        .spawn(|| metrics::with_recorder(declare))
        .ok()
        .and_then(|probe| probe.join().ok())
        .unwrap_or(false)
}

pub(super) fn declare(recorder: &dyn Recorder) -> bool {
    if std::mem::size_of_val(recorder) == 0 {
        return false;
    }
    let address = address(recorder);
    for slot in &LASTING {
        match slot.compare_exchange(0, address, Ordering::AcqRel, Ordering::Acquire) {
            Ok(_) => return true,
            Err(taken) if taken == address => return true,
            Err(_) => {}
        }
    }
    false
}

/// The current recorder (`metrics::with_recorder`'s) as a key for kept handles, when
/// it is a lasting one; `None` otherwise (register metrics on every call).
pub(crate) fn lasting_recorder() -> Option<usize> {
    let current = metrics::with_recorder(address);
    LASTING
        .iter()
        .map(|slot| slot.load(Ordering::Acquire))
        .take_while(|&a| a != 0)
        .any(|a| a == current)
        .then_some(current)
}

/// Metric handles kept per key (a label set) and lasting recorder: what
/// [`RequestMeasures`](crate::measure::RequestMeasures) and `#[workflow_span]`'s sites
/// keep.
///
/// [`KeptHandles::get`] returns the handles kept for a key under the current
/// recorder, or registers them. They are kept only under a lasting recorder (see
/// [`keep_handles_for`]), for at most `cap` keys; past that, and under any other
/// recorder, every call registers (the label guard still caps what reaches the
/// recorder). Keys are found by a hash and confirmed by the caller's `is_for`, so a
/// collision costs a registration, never another key's handles.
pub(crate) struct KeptHandles<T> {
    map: RwLock<HashMap<u64, Kept<T>, FixedState>>,
    cap: usize,
}

/// Handles and the recorder they belong to.
struct Kept<T> {
    recorder: usize,
    handles: Arc<T>,
}

/// Seed of the key hashes. Fixed, so that a `static` can hold a [`KeptHandles`].
const KEY_SEED: u64 = 0x7465_6e61;
/// Seed of the map's hashes of those.
const MAP_SEED: u64 = 0x5173_6e64;

impl<T> std::fmt::Debug for KeptHandles<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let len = self.map.read().map_or(0, |m| m.len());
        f.debug_struct("KeptHandles")
            .field("keys", &len)
            .field("cap", &self.cap)
            .finish()
    }
}

impl<T> KeptHandles<T> {
    /// No handles yet; at most `cap` keys kept (a `static`'s initialiser).
    pub(crate) const fn new(cap: usize) -> Self {
        Self {
            map: RwLock::new(HashMap::with_hasher(FixedState::with_seed(MAP_SEED))),
            cap,
        }
    }

    /// The handles of `key` under the current recorder: kept ones that `is_for`
    /// confirms belong to `key`, else new ones from `register` (kept when the recorder
    /// is lasting and there is room).
    pub(crate) fn get<K: Hash + ?Sized>(
        &self,
        key: &K,
        is_for: impl FnOnce(&T) -> bool,
        register: impl FnOnce() -> T,
    ) -> Arc<T> {
        let Some(recorder) = lasting_recorder() else {
            return Arc::new(register());
        };
        let hash = FixedState::with_seed(KEY_SEED).hash_one((recorder, key));
        let map = self.map.read().unwrap_or_else(PoisonError::into_inner);
        if let Some(kept) = map.get(&hash) {
            if kept.recorder == recorder && is_for(&kept.handles) {
                return Arc::clone(&kept.handles);
            }
        }
        let full = map.len() >= self.cap;
        drop(map);
        let handles = Arc::new(register());
        if !full {
            let mut map = self.map.write().unwrap_or_else(PoisonError::into_inner);
            // A colliding entry stays: the newcomer is simply not kept.
            map.entry(hash).or_insert_with(|| Kept {
                recorder,
                handles: Arc::clone(&handles),
            });
        }
        handles
    }
}
