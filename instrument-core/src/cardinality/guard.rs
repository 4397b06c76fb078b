//! [`LabelGuard`]: caps on distinct label sets per metric and distinct values per label.

use std::collections::HashMap;
use std::fmt;
use std::hash::{BuildHasherDefault, Hasher};
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::Arc;

use dashmap::{DashMap, DashSet};
use metrics::{Key, Label};

use crate::redact::Redactor;
use crate::semconv::{OVERFLOW_LABEL, OVERFLOW_VALUE};

/// Default cap on distinct label sets per metric, as in the OpenTelemetry metrics SDK
/// specification (cardinality limit 2000).
pub const DEFAULT_MAX_LABEL_SETS: usize = 2000;

/// What happens to a label set over a cap.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
#[non_exhaustive]
pub enum OverflowMode {
    /// Record it under the overflow label set (`otel.metric.overflow="true"`), so every
    /// measurement is still counted once.
    #[default]
    Overflow,
    /// Refuse it with a [`CardinalityError`].
    Reject,
}

/// A label set refused in [`OverflowMode::Reject`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CardinalityError {
    metric: String,
    /// Set when the label set was refused for its label keys, not for a cap: the keys
    /// the metric was first registered with, and the ones refused.
    keys: Option<(String, String)>,
}

impl CardinalityError {
    /// The metric whose cap was reached.
    pub fn metric(&self) -> &str {
        &self.metric
    }
}

impl fmt::Display for CardinalityError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.keys {
            None => write!(
                f,
                "metric {} reached its label cardinality cap",
                self.metric
            ),
            Some((first, refused)) => write!(
                f,
                "metric {} is labelled {{{first}}}; a label set with keys {{{refused}}} would be a second series family of the same name",
                self.metric
            ),
        }
    }
}

impl std::error::Error for CardinalityError {}

/// The label set to record a measurement under, as decided by [`LabelGuard::admit`].
#[derive(Debug, Clone)]
pub enum Admission<'a> {
    /// Admitted unchanged.
    AsIs(&'a Key),
    /// Admitted with label values rewritten (redacted, or a per-label overflow value).
    Rewritten(Arc<Key>),
    /// Over the metric's cap: recorded under the overflow label set.
    Overflow(Arc<Key>),
}

impl Admission<'_> {
    /// The key to record under.
    pub fn key(&self) -> &Key {
        match self {
            Self::AsIs(k) => k,
            Self::Rewritten(k) | Self::Overflow(k) => k,
        }
    }

    /// Whether a cap redirected this measurement (metric or per-label).
    pub fn overflowed(&self) -> bool {
        match self {
            Self::AsIs(_) => false,
            Self::Rewritten(k) => k.labels().any(|l| l.value() == OVERFLOW_VALUE),
            Self::Overflow(_) => true,
        }
    }
}

/// `metrics::Key` hashes itself by writing its precomputed hash; pass it through.
#[derive(Default)]
struct PrehashedKey(u64);

impl Hasher for PrehashedKey {
    fn finish(&self) -> u64 {
        self.0
    }

    fn write(&mut self, bytes: &[u8]) {
        // Not reached for `Key`; defined for completeness.
        for &b in bytes {
            self.0 = self.0.rotate_left(8) ^ u64::from(b);
        }
    }

    fn write_u64(&mut self, n: u64) {
        self.0 = n;
    }
}

/// Equality of keys, trying the labels in the same order first: `Key`'s own `Eq` sorts
/// both label lists (for three or more labels) on every comparison, which cost ~15 ns of
/// the guard's fast path (`guard/admitted`). Keys built by the same call site keep their
/// label order, so the positional test almost always decides.
fn same_key(a: &Key, b: &Key) -> bool {
    a.get_hash() == b.get_hash() && a.name() == b.name() && (a.labels().eq(b.labels()) || a == b)
}

/// A `Key` in the admitted map, hashed by its precomputed hash and compared with [`same_key`].
struct AdmittedKey(Key);

/// Lets the map be searched with a plain `&Key`.
trait AsKey {
    fn as_key(&self) -> &Key;
}

impl AsKey for Key {
    fn as_key(&self) -> &Key {
        self
    }
}

impl AsKey for AdmittedKey {
    fn as_key(&self) -> &Key {
        &self.0
    }
}

impl std::hash::Hash for dyn AsKey + '_ {
    fn hash<H: Hasher>(&self, state: &mut H) {
        state.write_u64(self.as_key().get_hash());
    }
}

impl PartialEq for dyn AsKey + '_ {
    fn eq(&self, other: &Self) -> bool {
        same_key(self.as_key(), other.as_key())
    }
}

impl Eq for dyn AsKey + '_ {}

impl std::hash::Hash for AdmittedKey {
    fn hash<H: Hasher>(&self, state: &mut H) {
        (self as &dyn AsKey).hash(state);
    }
}

impl PartialEq for AdmittedKey {
    fn eq(&self, other: &Self) -> bool {
        same_key(&self.0, &other.0)
    }
}

impl Eq for AdmittedKey {}

impl<'a> std::borrow::Borrow<dyn AsKey + 'a> for AdmittedKey {
    fn borrow(&self) -> &(dyn AsKey + 'a) {
        self
    }
}

type KeyMap<V> = DashMap<AdmittedKey, V, BuildHasherDefault<PrehashedKey>>;

#[derive(Debug)]
enum Decision {
    AsIs,
    Rewritten(Arc<Key>),
}

#[derive(Default)]
struct MetricState {
    /// Label sets admitted (each holds one entry of `LabelGuard::admitted`).
    sets: AtomicUsize,
    /// Measurements redirected by a cap.
    overflows: AtomicU64,
    /// Values admitted per capped label.
    labels: DashMap<String, LabelValues>,
    overflow_key: std::sync::OnceLock<Arc<Key>>,
    /// The label keys of the first label set admitted, sorted, without the
    /// conditionally present ones ([`CONDITIONAL_KEYS`]).
    keys: std::sync::OnceLock<Box<[String]>>,
    /// A label set with other keys was refused (logged once per metric).
    said: std::sync::atomic::AtomicBool,
}

/// Label keys the semantic conventions make conditional: present on some series of a
/// metric and not others (`error_type` on failures, a status code when there was one).
/// Two label sets of one metric may differ by these and nothing else.
pub const CONDITIONAL_KEYS: &[&str] = &[
    crate::semconv::LABEL_ERROR_TYPE,
    crate::semconv::LABEL_HTTP_RESPONSE_STATUS_CODE,
    crate::semconv::LABEL_RPC_RESPONSE_STATUS_CODE,
];

/// The label keys of `key` as [`MetricState::keys`] keeps them.
fn key_set(key: &Key) -> Vec<&str> {
    let mut keys: Vec<&str> = key
        .labels()
        .map(Label::key)
        .filter(|k| !CONDITIONAL_KEYS.contains(k))
        .collect();
    keys.sort_unstable();
    keys
}

#[derive(Default)]
struct LabelValues {
    values: DashSet<String>,
    count: AtomicUsize,
}

/// Caps the number of distinct label sets per metric (and of values per label),
/// redacting label values on the way, with memory bounded by the caps.
///
/// The fast path, a label set already admitted, is one sharded hash-map read keyed by
/// the precomputed hash `metrics::Key` carries: no global lock, no allocation
/// (`benches/core.rs`, `guard/admitted`). New label sets take the slow path once.
///
/// ```
/// use metrics::{Key, Label};
/// use instrument_core::cardinality::LabelGuard;
///
/// let guard = LabelGuard::builder().max_label_sets(2).build();
/// for tenant in ["a", "b", "c"] {
///     let key = Key::from_parts("requests_total", vec![Label::new("tenant_id", tenant)]);
///     let admission = guard.admit(&key)?;
///     assert_eq!(admission.overflowed(), tenant == "c");
/// }
/// assert_eq!(guard.overflow_count("requests_total"), 1);
/// # Ok::<(), instrument_core::cardinality::CardinalityError>(())
/// ```
#[derive(Clone)]
pub struct LabelGuard {
    inner: Arc<GuardInner>,
}

struct GuardInner {
    max_label_sets: usize,
    metric_caps: HashMap<String, usize>,
    label_caps: HashMap<String, usize>,
    mode: OverflowMode,
    redaction: LabelRedaction,
    admitted: KeyMap<Decision>,
    metrics: DashMap<String, Arc<MetricState>>,
}

/// Which redactor label values pass through.
#[derive(Debug, Clone)]
enum LabelRedaction {
    /// The process-wide one ([`redact::global`](crate::redact::global)), looked up when
    /// a label value is first redacted.
    Global,
    /// The builder's.
    Own(Redactor),
    /// None: label values are already safe.
    Off,
}

/// Builds a [`LabelGuard`].
#[derive(Debug, Clone)]
pub struct LabelGuardBuilder {
    max_label_sets: usize,
    metric_caps: HashMap<String, usize>,
    label_caps: HashMap<String, usize>,
    mode: OverflowMode,
    redaction: LabelRedaction,
}

impl Default for LabelGuardBuilder {
    fn default() -> Self {
        Self {
            max_label_sets: DEFAULT_MAX_LABEL_SETS,
            metric_caps: HashMap::new(),
            label_caps: HashMap::new(),
            mode: OverflowMode::Overflow,
            redaction: LabelRedaction::Global,
        }
    }
}

impl LabelGuardBuilder {
    /// Cap on distinct label sets of every metric (default 2000); at least 1.
    pub fn max_label_sets(mut self, cap: usize) -> Self {
        self.max_label_sets = cap.max(1);
        self
    }

    /// Cap on distinct label sets of one metric, overriding the default cap.
    pub fn metric_cap(mut self, metric: impl Into<String>, cap: usize) -> Self {
        self.metric_caps.insert(metric.into(), cap.max(1));
        self
    }

    /// Cap on distinct values of one label (by label name, in every metric); values
    /// over it become `__overflow__`.
    pub fn label_cap(mut self, label: impl Into<String>, cap: usize) -> Self {
        self.label_caps.insert(label.into(), cap.max(1));
        self
    }

    /// What happens over a cap (default [`OverflowMode::Overflow`]).
    pub fn mode(mut self, mode: OverflowMode) -> Self {
        self.mode = mode;
        self
    }

    /// The redactor label values pass through. By default, the process-wide one
    /// ([`redact::global`](crate::redact::global): the policy `pipeline::init`
    /// installed, as the layers and `#[workflow_span]` use), looked up when a label
    /// value is first redacted, so a guard made before the policy is installed follows
    /// it, and no second redactor is built.
    pub fn redactor(mut self, redactor: Redactor) -> Self {
        self.redaction = LabelRedaction::Own(redactor);
        self
    }

    /// Label values are not redacted (they must already be safe).
    pub fn without_redaction(mut self) -> Self {
        self.redaction = LabelRedaction::Off;
        self
    }

    /// Builds the guard.
    pub fn build(self) -> LabelGuard {
        LabelGuard {
            inner: Arc::new(GuardInner {
                max_label_sets: self.max_label_sets,
                metric_caps: self.metric_caps,
                label_caps: self.label_caps,
                mode: self.mode,
                redaction: self.redaction,
                admitted: KeyMap::default(),
                metrics: DashMap::new(),
            }),
        }
    }
}

impl Default for LabelGuard {
    fn default() -> Self {
        LabelGuardBuilder::default().build()
    }
}

impl fmt::Debug for LabelGuard {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("LabelGuard")
            .field("max_label_sets", &self.inner.max_label_sets)
            .field("mode", &self.inner.mode)
            .field("admitted", &self.inner.admitted.len())
            .finish_non_exhaustive()
    }
}

impl LabelGuard {
    /// A builder with the defaults (2000 label sets per metric, overflow mode, the
    /// process-wide redactor).
    pub fn builder() -> LabelGuardBuilder {
        LabelGuardBuilder::default()
    }

    /// Decides which label set a measurement for `key` is recorded under.
    pub fn admit<'k>(&self, key: &'k Key) -> Result<Admission<'k>, CardinalityError> {
        if let Some(decision) = self.inner.admitted.get(key as &dyn AsKey) {
            return Ok(match &*decision {
                Decision::AsIs => Admission::AsIs(key),
                Decision::Rewritten(k) => Admission::Rewritten(Arc::clone(k)),
            });
        }
        self.admit_slow(key)
    }

    #[cold]
    fn admit_slow<'k>(&self, key: &'k Key) -> Result<Admission<'k>, CardinalityError> {
        let metric = self.metric(key.name());
        // Per-label caps first: values over a label's cap become `__overflow__`.
        if !self.inner.label_caps.is_empty() {
            let mut labels: Vec<Label> = key.labels().cloned().collect();
            let mut capped = false;
            for label in &mut labels {
                let Some(&cap) = self.inner.label_caps.get(label.key()) else {
                    continue;
                };
                if !admit_value(&metric, label, cap) {
                    capped = true;
                    *label = Label::new(label.key().to_owned(), OVERFLOW_VALUE);
                }
            }
            if capped {
                metric.overflows.fetch_add(1, Ordering::Relaxed);
                if self.inner.mode == OverflowMode::Reject {
                    return Err(self.rejected(key));
                }
                let capped_key = Key::from_parts(key.name().to_owned(), labels);
                // Recorded as the label set with `__overflow__` in it, itself capped.
                return self
                    .admit_set(&metric, &capped_key)
                    .map(Admission::into_static);
            }
        }
        self.admit_set(&metric, key)
    }

    fn admit_set<'k>(
        &self,
        metric: &MetricState,
        key: &'k Key,
    ) -> Result<Admission<'k>, CardinalityError> {
        if let Some(decision) = self.inner.admitted.get(key as &dyn AsKey) {
            return Ok(match &*decision {
                Decision::AsIs => Admission::AsIs(key),
                Decision::Rewritten(k) => Admission::Rewritten(Arc::clone(k)),
            });
        }
        // One label-key set per metric: the first one admitted. A label set with other
        // keys is refused as one over the cap would be (the overflow set, or an error),
        // and logged once: two families under one name break every query of it.
        let keys = key_set(key);
        let first = metric
            .keys
            .get_or_init(|| keys.iter().map(|k| (*k).to_owned()).collect());
        if !first.iter().map(String::as_str).eq(keys.iter().copied()) {
            metric.overflows.fetch_add(1, Ordering::Relaxed);
            let error = CardinalityError {
                metric: key.name().to_owned(),
                keys: Some((first.join(","), keys.join(","))),
            };
            if !metric.said.swap(true, Ordering::Relaxed) {
                tracing::error!(%error, "metric registered with two label-key sets");
            }
            return match self.inner.mode {
                OverflowMode::Reject => Err(error),
                OverflowMode::Overflow => Ok(Admission::Overflow(Arc::clone(
                    metric.overflow_key.get_or_init(|| {
                        Arc::new(Key::from_parts(
                            key.name().to_owned(),
                            vec![Label::new(OVERFLOW_LABEL, "true")],
                        ))
                    }),
                ))),
            };
        }
        let cap = self
            .inner
            .metric_caps
            .get(key.name())
            .copied()
            .unwrap_or(self.inner.max_label_sets);
        let reserved = metric
            .sets
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |n| {
                (n < cap).then_some(n + 1)
            })
            .is_ok();
        if !reserved {
            metric.overflows.fetch_add(1, Ordering::Relaxed);
            return match self.inner.mode {
                OverflowMode::Reject => Err(self.rejected(key)),
                OverflowMode::Overflow => Ok(Admission::Overflow(Arc::clone(
                    metric.overflow_key.get_or_init(|| {
                        Arc::new(Key::from_parts(
                            key.name().to_owned(),
                            vec![Label::new(OVERFLOW_LABEL, "true")],
                        ))
                    }),
                ))),
            };
        }
        let decision = match self.redacted(key) {
            None => Decision::AsIs,
            Some(k) => Decision::Rewritten(Arc::new(k)),
        };
        match self.inner.admitted.entry(AdmittedKey(key.clone())) {
            dashmap::Entry::Occupied(existing) => {
                // Another thread admitted the same set first: give the slot back.
                metric.sets.fetch_sub(1, Ordering::AcqRel);
                Ok(match existing.get() {
                    Decision::AsIs => Admission::AsIs(key),
                    Decision::Rewritten(k) => Admission::Rewritten(Arc::clone(k)),
                })
            }
            dashmap::Entry::Vacant(slot) => {
                let admission = match &decision {
                    Decision::AsIs => Admission::AsIs(key),
                    Decision::Rewritten(k) => Admission::Rewritten(Arc::clone(k)),
                };
                slot.insert(decision);
                Ok(admission)
            }
        }
    }

    /// `key` with redacted label values, or `None` if every value is clean.
    fn redacted(&self, key: &Key) -> Option<Key> {
        let redactor = match &self.inner.redaction {
            LabelRedaction::Global => crate::redact::global(),
            LabelRedaction::Own(redactor) => redactor,
            LabelRedaction::Off => return None,
        };
        let mut changed = false;
        let labels: Vec<Label> = key
            .labels()
            .map(|l| match redactor.redact_attribute(l.key(), l.value()) {
                std::borrow::Cow::Borrowed(_) => l.clone(),
                std::borrow::Cow::Owned(v) => {
                    changed = true;
                    Label::new(l.key().to_owned(), v)
                }
            })
            .collect();
        changed.then(|| Key::from_parts(key.name().to_owned(), labels))
    }

    fn metric(&self, name: &str) -> Arc<MetricState> {
        if let Some(m) = self.inner.metrics.get(name) {
            return Arc::clone(&m);
        }
        Arc::clone(
            &self
                .inner
                .metrics
                .entry(name.to_owned())
                .or_insert_with(|| Arc::new(MetricState::default())),
        )
    }

    fn rejected(&self, key: &Key) -> CardinalityError {
        CardinalityError {
            keys: None,
            metric: key.name().to_owned(),
        }
    }

    /// Measurements of `metric` redirected (or rejected) by a cap so far.
    pub fn overflow_count(&self, metric: &str) -> u64 {
        self.inner
            .metrics
            .get(metric)
            .map_or(0, |m| m.overflows.load(Ordering::Relaxed))
    }

    /// Label sets of `metric` admitted so far (at most its cap).
    pub fn label_sets(&self, metric: &str) -> usize {
        self.inner
            .metrics
            .get(metric)
            .map_or(0, |m| m.sets.load(Ordering::Acquire))
    }

    /// Entries the guard holds in all (admitted label sets plus tracked label values):
    /// bounded by the caps, whatever arrives.
    pub fn tracked_entries(&self) -> usize {
        self.inner.admitted.len()
            + self
                .inner
                .metrics
                .iter()
                .map(|m| m.labels.iter().map(|l| l.values.len()).sum::<usize>())
                .sum::<usize>()
    }
}

impl Admission<'_> {
    fn into_static(self) -> Admission<'static> {
        match self {
            Admission::AsIs(k) => Admission::Rewritten(Arc::new(k.clone())),
            Admission::Rewritten(k) => Admission::Rewritten(k),
            Admission::Overflow(k) => Admission::Overflow(k),
        }
    }
}

/// Admits `label`'s value under the label's `cap`; `false` when over it.
fn admit_value(metric: &MetricState, label: &Label, cap: usize) -> bool {
    if label.value() == OVERFLOW_VALUE {
        return true;
    }
    let values = metric.labels.entry(label.key().to_owned()).or_default();
    if values.values.contains(label.value()) {
        return true;
    }
    let reserved = values
        .count
        .fetch_update(Ordering::AcqRel, Ordering::Acquire, |n| {
            (n < cap).then_some(n + 1)
        })
        .is_ok();
    if reserved && !values.values.insert(label.value().to_owned()) {
        // Raced with another thread inserting the same value.
        values.count.fetch_sub(1, Ordering::AcqRel);
    }
    reserved
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_metric_has_one_label_key_set_give_or_take_the_conditional_keys() {
        let started = |second: &'static str| {
            key(
                "instrument_workflows_started_total",
                &[("tenant_id", "acme".into()), (second, "payment".into())],
            )
        };
        for mode in [OverflowMode::Overflow, OverflowMode::Reject] {
            let guard = LabelGuard::builder().mode(mode).build();
            let first = started("name");
            assert!(matches!(guard.admit(&first), Ok(Admission::AsIs(_))));
            // The example's own counter under the macro's name: refused, not a second
            // family of series.
            let other = started("workflow_kind");
            match (mode, guard.admit(&other)) {
                (OverflowMode::Overflow, Ok(admission)) => assert!(admission.overflowed()),
                (OverflowMode::Reject, Err(e)) => {
                    assert!(e.to_string().contains("{name,tenant_id}"), "{e}");
                    assert!(e.to_string().contains("{tenant_id,workflow_kind}"), "{e}");
                }
                (_, got) => panic!("{mode:?}: {got:?}"),
            }
            // The same keys in another order, and with a conditional key, are the
            // same family.
            let reordered = key(
                "instrument_workflows_started_total",
                &[("name", "b".into()), ("tenant_id", "globex".into())],
            );
            assert!(matches!(guard.admit(&reordered), Ok(Admission::AsIs(_))));
            let failed = key(
                "instrument_workflows_started_total",
                &[
                    ("tenant_id", "acme".into()),
                    ("name", "c".into()),
                    ("error_type", "500".into()),
                ],
            );
            assert!(matches!(guard.admit(&failed), Ok(Admission::AsIs(_))));
        }
    }

    fn key(metric: &'static str, labels: &[(&'static str, String)]) -> Key {
        Key::from_parts(
            metric,
            labels
                .iter()
                .map(|(k, v)| Label::new(*k, v.clone()))
                .collect::<Vec<_>>(),
        )
    }

    fn tenant(i: usize) -> Key {
        key(
            "m",
            &[("tenant_id", format!("t{i}")), ("status", "ok".into())],
        )
    }

    #[test]
    fn admitted_sets_pass_as_is() {
        let g = LabelGuard::default();
        let k = tenant(1);
        assert!(matches!(g.admit(&k).unwrap(), Admission::AsIs(_)));
        assert!(matches!(g.admit(&k).unwrap(), Admission::AsIs(_)));
        assert_eq!(g.label_sets("m"), 1);
    }

    #[test]
    fn sets_over_the_cap_go_to_the_overflow_set() {
        let g = LabelGuard::builder().max_label_sets(3).build();
        for i in 0..3 {
            assert!(!g.admit(&tenant(i)).unwrap().overflowed());
        }
        let over = tenant(99);
        let a = g.admit(&over).unwrap();
        assert!(a.overflowed());
        let labels: Vec<_> = a
            .key()
            .labels()
            .map(|l| (l.key().to_owned(), l.value().to_owned()))
            .collect();
        assert_eq!(labels, [(OVERFLOW_LABEL.to_owned(), "true".to_owned())]);
        assert_eq!(a.key().name(), "m");
        assert_eq!(g.overflow_count("m"), 1);
        // Admitted sets keep working after the cap is reached.
        assert!(!g.admit(&tenant(0)).unwrap().overflowed());
    }

    #[test]
    fn caps_are_per_metric_with_overrides() {
        let g = LabelGuard::builder()
            .max_label_sets(1)
            .metric_cap("big", 5)
            .build();
        for i in 0..5 {
            assert!(!g
                .admit(&key("big", &[("x", i.to_string())]))
                .unwrap()
                .overflowed());
        }
        assert!(!g
            .admit(&key("small", &[("x", "1".into())]))
            .unwrap()
            .overflowed());
        assert!(g
            .admit(&key("small", &[("x", "2".into())]))
            .unwrap()
            .overflowed());
    }

    #[test]
    fn reject_mode_returns_an_error() {
        let g = LabelGuard::builder()
            .max_label_sets(1)
            .mode(OverflowMode::Reject)
            .build();
        g.admit(&tenant(1)).unwrap();
        let err = g.admit(&tenant(2)).unwrap_err();
        assert_eq!(err.metric(), "m");
        assert_eq!(g.overflow_count("m"), 1);
    }

    #[test]
    fn per_label_cap_replaces_only_that_value() {
        let g = LabelGuard::builder().label_cap("tenant_id", 2).build();
        g.admit(&tenant(1)).unwrap();
        g.admit(&tenant(2)).unwrap();
        let (k3, k4) = (tenant(3), tenant(4));
        let a = g.admit(&k3).unwrap();
        assert!(a.overflowed());
        let labels: Vec<_> = a.key().labels().map(|l| l.value().to_owned()).collect();
        assert_eq!(labels, [OVERFLOW_VALUE, "ok"]);
        // Every later over-cap value lands in the same set.
        let b = g.admit(&k4).unwrap();
        assert_eq!(a.key(), b.key());
        assert_eq!(g.label_sets("m"), 3);
    }

    #[test]
    fn label_values_are_redacted() {
        let g = LabelGuard::default();
        let k = key("m", &[("user", "bob@example.com".into())]);
        let a = g.admit(&k).unwrap();
        assert!(matches!(a, Admission::Rewritten(_)));
        assert_eq!(a.key().labels().next().unwrap().value(), "[REDACTED]");
        assert!(!a.overflowed());
        let again = g.admit(&k).unwrap();
        assert_eq!(again.key(), a.key());
        let off = LabelGuard::builder().without_redaction().build();
        assert!(matches!(off.admit(&k).unwrap(), Admission::AsIs(_)));
    }

    #[test]
    fn a_million_distinct_values_keep_memory_bounded() {
        let g = LabelGuard::builder()
            .max_label_sets(1000)
            .label_cap("tenant_id", 500)
            .build();
        for i in 0..1_000_000 {
            g.admit(&tenant(i)).unwrap();
        }
        assert!(g.label_sets("m") <= 1000);
        assert!(g.tracked_entries() <= 1000 + 500, "{}", g.tracked_entries());
        assert_eq!(g.overflow_count("m"), 1_000_000 - 500);
    }

    #[test]
    fn concurrent_admission_never_exceeds_the_cap() {
        let g = LabelGuard::builder().max_label_sets(100).build();
        let overflowed = AtomicU64::new(0);
        std::thread::scope(|s| {
            for t in 0..4 {
                let (g, overflowed) = (&g, &overflowed);
                s.spawn(move || {
                    for i in 0..1000 {
                        // Overlapping values across threads exercise the insert race.
                        let k = tenant((i * 7 + t) % 400);
                        let a = g.admit(&k).unwrap();
                        if a.overflowed() {
                            overflowed.fetch_add(1, Ordering::Relaxed);
                        }
                    }
                });
            }
        });
        assert_eq!(g.label_sets("m"), 100);
        assert_eq!(g.inner.admitted.len(), 100);
        assert_eq!(g.overflow_count("m"), overflowed.into_inner());
    }
}
