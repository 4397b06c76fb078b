//! Metric label cardinality: caps on distinct label sets, redacted label values, and
//! label-friendly forms of routes and statuses.
//!
//! One tenant id per label value is fine for ten tenants and fatal for a million (about
//! 2 GB of resident memory in a bare Prometheus recorder, against tens of MB guarded:
//! `examples/cardinality_memory.rs`). A [`LabelGuard`] caps each metric's
//! distinct label sets (and optionally each label's values), redirects the rest to an
//! overflow label set, counts the overflow, and keeps its own memory bounded by the caps.
//! [`GuardedRecorder`] puts any `metrics` recorder behind it, so every `counter!`,
//! `gauge!` and `histogram!` in the process is guarded:
//!
//! ```
//! use instrument_core::cardinality::{normalize_route, status_group, GuardedRecorder, LabelGuard};
//! use instrument_core::semconv::MetricNames;
//!
//! let guard = LabelGuard::builder().max_label_sets(1000).label_cap("tenant_id", 500).build();
//! let recorder = GuardedRecorder::new(metrics::NoopRecorder, guard, &MetricNames::default());
//! metrics::with_local_recorder(&recorder, || {
//!     let route = normalize_route("/sessions/123");
//!     metrics::counter!("http_requests_total",
//!         "route" => route.into_owned(), "status" => status_group(200)).increment(1);
//! });
//! ```

mod guard;
mod lasting;
mod recorder;
mod route;

pub use guard::{
    Admission, CardinalityError, LabelGuard, LabelGuardBuilder, OverflowMode, CONDITIONAL_KEYS,
    DEFAULT_MAX_LABEL_SETS,
};
pub(crate) use lasting::KeptHandles;
pub use lasting::{keep_handles_for, keep_handles_for_global};
pub use recorder::GuardedRecorder;
pub use route::{api_version, normalize_route, status_group, ID_PLACEHOLDER};
