//! [`GuardedRecorder`]: any `metrics` recorder behind a [`LabelGuard`].

use std::collections::HashSet;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Mutex;

use metrics::{
    Counter, Gauge, Histogram, Key, KeyName, Label, Metadata, Recorder, SharedString, Unit,
};

use super::guard::LabelGuard;
use crate::semconv::{MetricNames, LABEL_METRIC};

/// Wraps a `metrics` [`Recorder`] so that every metric recorded through the `metrics`
/// facade is cardinality-capped and has its label values redacted.
///
/// Each measurement redirected (or, in reject mode, dropped) by a cap also increments
/// `<prefix>_metric_label_overflow_total{metric="<name>"}` on the inner recorder.
///
/// ```
/// use metrics_util::debugging::DebuggingRecorder;
/// use instrument_core::cardinality::{GuardedRecorder, LabelGuard};
/// use instrument_core::semconv::MetricNames;
///
/// let inner = DebuggingRecorder::new();
/// let snapshotter = inner.snapshotter();
/// let guarded = GuardedRecorder::new(inner, LabelGuard::builder().max_label_sets(1).build(), &MetricNames::default());
/// metrics::with_local_recorder(&guarded, || {
///     metrics::counter!("jobs_total", "tenant_id" => "a").increment(1);
///     metrics::counter!("jobs_total", "tenant_id" => "b").increment(1); // over the cap
/// });
/// let keys: Vec<metrics::Key> = snapshotter.snapshot().into_vec().into_iter()
///     .map(|(k, ..)| k.key().clone()).collect();
/// assert!(keys.iter().any(|k| k.labels().any(|l| l.key() == "otel.metric.overflow")));
/// assert!(keys.iter().any(|k| k.name() == "instrument_metric_label_overflow_total"));
/// ```
#[derive(Debug)]
pub struct GuardedRecorder<R> {
    inner: R,
    guard: LabelGuard,
    overflow_metric: SharedString,
    /// Metrics whose overflow was warned about.
    warned: Mutex<HashSet<String>>,
    /// Installed as the global recorder, where it stays, and not yet declared: its
    /// next call declares it lasting, when `self` is where `metrics` keeps it.
    declare_on_call: AtomicBool,
}

/// Metrics warned about at most (a recorder with more metrics than that overflowing
/// has said enough).
const MAX_WARNED: usize = 64;

impl<R: Recorder> GuardedRecorder<R> {
    /// Puts `inner` behind `guard`; the overflow counter is named after `names`' prefix.
    pub fn new(inner: R, guard: LabelGuard, names: &MetricNames) -> Self {
        Self {
            inner,
            guard,
            overflow_metric: SharedString::from(names.label_overflow_total()),
            warned: Mutex::new(HashSet::new()),
            declare_on_call: AtomicBool::new(false),
        }
    }

    /// Marks the recorder as about to be moved into `metrics::set_global_recorder`,
    /// which keeps it for the rest of the program: on its first call it declares
    /// itself (see [`keep_handles_for`](super::keep_handles_for)), without the thread
    /// [`keep_handles_for_global`](super::keep_handles_for_global) starts to find it.
    #[cfg_attr(not(any(feature = "prometheus", feature = "otlp")), allow(dead_code))]
    pub(crate) fn declare_once_global(&self) {
        self.declare_on_call.store(true, Ordering::Relaxed);
    }

    #[cold]
    fn declare_lasting(&self) {
        if self.declare_on_call.swap(false, Ordering::Relaxed) {
            super::lasting::declare(self);
        }
    }

    /// The guard.
    pub fn guard(&self) -> &LabelGuard {
        &self.guard
    }

    /// The wrapped recorder.
    pub fn inner(&self) -> &R {
        &self.inner
    }

    fn count_overflow(&self, metric: &str, metadata: &Metadata<'_>) {
        self.warn_once(metric);
        let key = Key::from_parts(
            self.overflow_metric.clone(),
            vec![Label::new(LABEL_METRIC, metric.to_owned())],
        );
        self.inner.register_counter(&key, metadata).increment(1);
    }

    /// One warning per metric, on its first overflow: a cap reached is a decision to
    /// make (raise it, or find who mints label values), not an event to log each time.
    fn warn_once(&self, metric: &str) {
        let mut warned = self.warned.lock().unwrap_or_else(|e| e.into_inner());
        if warned.len() < MAX_WARNED && warned.insert(metric.to_owned()) {
            tracing::warn!(
                metric,
                "a metric reached a label cap: further label values are recorded under the \
                 overflow label set (counted in the label overflow counter)"
            );
        }
    }

    fn register<T>(
        &self,
        key: &Key,
        metadata: &Metadata<'_>,
        noop: T,
        register: impl FnOnce(&R, &Key) -> T,
    ) -> T {
        if self.declare_on_call.load(Ordering::Relaxed) {
            self.declare_lasting();
        }
        match self.guard.admit(key) {
            Ok(admission) => {
                if admission.overflowed() {
                    self.count_overflow(key.name(), metadata);
                }
                register(&self.inner, admission.key())
            }
            Err(_) => {
                self.count_overflow(key.name(), metadata);
                noop
            }
        }
    }
}

impl<R: Recorder> Recorder for GuardedRecorder<R> {
    fn describe_counter(&self, key: KeyName, unit: Option<Unit>, description: SharedString) {
        self.inner.describe_counter(key, unit, description);
    }

    fn describe_gauge(&self, key: KeyName, unit: Option<Unit>, description: SharedString) {
        self.inner.describe_gauge(key, unit, description);
    }

    fn describe_histogram(&self, key: KeyName, unit: Option<Unit>, description: SharedString) {
        self.inner.describe_histogram(key, unit, description);
    }

    fn register_counter(&self, key: &Key, metadata: &Metadata<'_>) -> Counter {
        self.register(key, metadata, Counter::noop(), |r, k| {
            r.register_counter(k, metadata)
        })
    }

    fn register_gauge(&self, key: &Key, metadata: &Metadata<'_>) -> Gauge {
        self.register(key, metadata, Gauge::noop(), |r, k| {
            r.register_gauge(k, metadata)
        })
    }

    fn register_histogram(&self, key: &Key, metadata: &Metadata<'_>) -> Histogram {
        self.register(key, metadata, Histogram::noop(), |r, k| {
            r.register_histogram(k, metadata)
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cardinality::OverflowMode;
    use metrics_util::debugging::{DebugValue, DebuggingRecorder};

    /// A recorder marked as installed globally declares itself lasting on its first
    /// call, at the address it is called at; one not marked never does.
    #[test]
    fn a_recorder_installed_globally_declares_itself_on_its_first_call() {
        let names = MetricNames::default();
        let marked = GuardedRecorder::new(metrics::NoopRecorder, LabelGuard::default(), &names);
        marked.declare_once_global();
        // As `metrics::set_global_recorder` keeps it: moved into a leaked box.
        let marked: &'static GuardedRecorder<_> = Box::leak(Box::new(marked));
        let unmarked: &'static GuardedRecorder<_> = Box::leak(Box::new(GuardedRecorder::new(
            metrics::NoopRecorder,
            LabelGuard::default(),
            &names,
        )));
        let lasting = |recorder: &'static GuardedRecorder<metrics::NoopRecorder>| {
            metrics::with_local_recorder(recorder, crate::cardinality::lasting::lasting_recorder)
        };
        assert_eq!(lasting(marked), None, "nothing declared before a call");
        for recorder in [marked, unmarked] {
            metrics::with_local_recorder(recorder, || {
                metrics::counter!("jobs_total").increment(1);
            });
        }
        let address = std::ptr::from_ref(marked).cast::<()>() as usize;
        assert_eq!(lasting(marked), Some(address));
        assert_eq!(lasting(unmarked), None);
        assert!(
            !marked.declare_on_call.load(Ordering::Relaxed),
            "declared once"
        );
    }

    /// `(name{labels}, value)` of everything recorded.
    fn values(snap: metrics_util::debugging::Snapshotter) -> Vec<(String, DebugValue)> {
        let mut v: Vec<_> = snap
            .snapshot()
            .into_vec()
            .into_iter()
            .map(|(k, _, _, v)| {
                let labels: Vec<String> = k
                    .key()
                    .labels()
                    .map(|l| format!("{}={}", l.key(), l.value()))
                    .collect();
                (format!("{}{{{}}}", k.key().name(), labels.join(",")), v)
            })
            .collect();
        v.sort_by(|a, b| a.0.cmp(&b.0));
        v
    }

    #[test]
    fn every_measurement_is_recorded_exactly_once() {
        let inner = DebuggingRecorder::new();
        let snap = inner.snapshotter();
        let guard = LabelGuard::builder().max_label_sets(2).build();
        let rec = GuardedRecorder::new(inner, guard, &MetricNames::default());
        metrics::with_local_recorder(&rec, || {
            for t in ["a", "b", "c", "d", "a"] {
                metrics::counter!("jobs_total", "tenant_id" => t).increment(1);
            }
        });
        let total: u64 = values(snap)
            .into_iter()
            .filter(|(k, _)| k.starts_with("jobs_total"))
            .map(|(_, v)| match v {
                DebugValue::Counter(c) => c,
                _ => 0,
            })
            .sum();
        assert_eq!(total, 5);
    }

    /// Counts the warnings logged while `f` runs.
    fn warnings_during(f: impl FnOnce()) -> usize {
        use std::sync::atomic::{AtomicUsize, Ordering};
        use std::sync::Arc;
        use tracing_subscriber::layer::SubscriberExt as _;

        struct Count(Arc<AtomicUsize>);
        impl<S: tracing::Subscriber> tracing_subscriber::Layer<S> for Count {
            fn on_event(
                &self,
                event: &tracing::Event<'_>,
                _: tracing_subscriber::layer::Context<'_, S>,
            ) {
                if *event.metadata().level() == tracing::Level::WARN {
                    self.0.fetch_add(1, Ordering::Relaxed);
                }
            }
        }
        let count = Arc::new(AtomicUsize::new(0));
        let subscriber = tracing_subscriber::registry().with(Count(Arc::clone(&count)));
        tracing::subscriber::with_default(subscriber, f);
        count.load(Ordering::Relaxed)
    }

    #[test]
    fn an_overflow_is_counted_every_time_and_warned_about_once_per_metric() {
        let inner = DebuggingRecorder::new();
        let snap = inner.snapshotter();
        let guard = LabelGuard::builder().max_label_sets(1).build();
        let rec = GuardedRecorder::new(inner, guard, &MetricNames::default());
        let warnings = warnings_during(|| {
            metrics::with_local_recorder(&rec, || {
                for t in ["a", "b", "c", "d"] {
                    metrics::counter!("jobs_total", "tenant_id" => t).increment(1);
                    metrics::counter!("runs_total", "tenant_id" => t).increment(1);
                }
            });
        });
        assert_eq!(warnings, 2, "one per metric");
        let overflows: u64 = values(snap)
            .into_iter()
            .filter(|(k, _)| k.starts_with("instrument_metric_label_overflow_total"))
            .map(|(_, v)| match v {
                DebugValue::Counter(c) => c,
                _ => 0,
            })
            .sum();
        assert_eq!(overflows, 6);
    }

    #[test]
    fn redacted_labels_reach_the_inner_recorder() {
        let inner = DebuggingRecorder::new();
        let snap = inner.snapshotter();
        let rec = GuardedRecorder::new(inner, LabelGuard::default(), &MetricNames::default());
        metrics::with_local_recorder(&rec, || {
            metrics::histogram!("latency_seconds", "user" => "bob@example.com").record(0.5);
        });
        let keys: Vec<String> = values(snap).into_iter().map(|(k, _)| k).collect();
        assert!(
            keys.iter().all(|k| !k.contains("bob@example.com")),
            "{keys:?}"
        );
    }

    #[test]
    fn reject_mode_drops_and_counts() {
        let inner = DebuggingRecorder::new();
        let snap = inner.snapshotter();
        let guard = LabelGuard::builder()
            .max_label_sets(1)
            .mode(OverflowMode::Reject)
            .build();
        let rec = GuardedRecorder::new(inner, guard, &MetricNames::new("app").unwrap());
        metrics::with_local_recorder(&rec, || {
            metrics::gauge!("queue_depth", "q" => "a").set(1.0);
            metrics::gauge!("queue_depth", "q" => "b").set(2.0);
        });
        let v = values(snap);
        assert!(v
            .iter()
            .any(|(k, val)| k.starts_with("app_metric_label_overflow_total")
                && *val == DebugValue::Counter(1)));
        assert_eq!(
            v.iter()
                .filter(|(k, _)| k.starts_with("queue_depth"))
                .count(),
            1
        );
    }
}
