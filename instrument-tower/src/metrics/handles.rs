//! [`HandleCache`]: the metric handles of each label set, registered once.
//!
//! Registering a metric (`counter!(name, labels)`) builds a `metrics::Key`, hashes it,
//! and looks it up in the recorder (and, behind a `GuardedRecorder`, in the label
//! guard): about 300 ns per metric, four metrics per request. The handles it returns
//! stay valid, so the layer keeps them per label set and each request after the first
//! costs one hash and one map read.
//!
//! They are kept in a [`KeptHandles`]: only under a lasting recorder (the one
//! `pipeline::install_prometheus` installs, or one declared with `keep_handles_for`),
//! for at most [`MAX_LABEL_SETS`] label sets. Under any other recorder (a test's local
//! one), and past that many label sets, each request registers its metrics (the label
//! guard still caps what reaches the recorder).

use std::sync::{Arc, OnceLock, RwLock};

use instrument_core::cardinality::KeptHandles;
use instrument_core::semconv::{LABEL_STATUS, LABEL_TENANT_ID};
use metrics::{Counter, Gauge, Histogram, Label};

use super::measure::{shared, MetricsConfig};

/// Label sets a layer keeps handles for.
pub(crate) const MAX_LABEL_SETS: usize = 4096;

/// The label values of one request, borrowed from it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub(crate) struct LabelValues<'a> {
    /// `(rpc_service, rpc_method)` or `(method, route)` label names.
    pub(crate) names: (&'static str, &'static str),
    /// Their values.
    pub(crate) values: (&'a str, &'a str),
    pub(crate) tenant: &'a str,
}

impl LabelValues<'_> {
    fn labels(&self) -> Vec<Label> {
        vec![
            Label::new(self.names.0, shared(self.values.0)),
            Label::new(self.names.1, shared(self.values.1)),
            Label::new(LABEL_TENANT_ID, shared(self.tenant)),
        ]
    }
}

/// The metrics of one label set.
pub(crate) struct Handles {
    /// The label set (as [`LabelValues::labels`] makes it), without `status`.
    labels: Vec<Label>,
    pub(crate) in_flight: Gauge,
    /// Per `status` label: requests, duration, errors (for an error status).
    by_status: RwLock<Vec<StatusHandles>>,
}

/// The metrics of one label set and status.
struct StatusHandles {
    status: &'static str,
    /// The labels, `status` included.
    labels: Vec<Label>,
    requests: Counter,
    duration: Histogram,
    /// Registered on the first error with this status (a classifier may call one
    /// response of a status class a failure and another not).
    errors: OnceLock<Counter>,
}

impl StatusHandles {
    fn record(&self, config: &MetricsConfig, error: bool, seconds: f64) {
        if error {
            self.errors
                .get_or_init(|| metrics::counter!(config.errors.clone(), self.labels.clone()))
                .increment(1);
        }
        self.duration.record(seconds);
        self.requests.increment(1);
    }
}

impl std::fmt::Debug for Handles {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Handles")
            .field("labels", &self.labels)
            .finish_non_exhaustive()
    }
}

impl Handles {
    fn register(config: &MetricsConfig, values: &LabelValues<'_>) -> Self {
        let labels = values.labels();
        Self {
            in_flight: metrics::gauge!(config.in_flight.clone(), labels.clone()),
            labels,
            by_status: RwLock::new(Vec::new()),
        }
    }

    fn matches(&self, values: &LabelValues<'_>) -> bool {
        let [first, second, tenant] = &self.labels[..] else {
            return false;
        };
        (first.key(), first.value()) == (values.names.0, values.values.0)
            && (second.key(), second.value()) == (values.names.1, values.values.1)
            && tenant.value() == values.tenant
    }

    /// Records one finished request with `status` (its handles registered on first
    /// use); `error` says whether the classifier called it a failure.
    pub(crate) fn record(
        &self,
        config: &MetricsConfig,
        status: &'static str,
        error: bool,
        seconds: f64,
    ) {
        let read = self.by_status.read().unwrap_or_else(|e| e.into_inner());
        if let Some(found) = read.iter().find(|h| h.status == status) {
            found.record(config, error, seconds);
            return;
        }
        drop(read);
        let handles = self.register_status(config, status);
        handles.record(config, error, seconds);
        let mut write = self.by_status.write().unwrap_or_else(|e| e.into_inner());
        if !write.iter().any(|h| h.status == status) {
            write.push(handles);
        }
    }

    fn register_status(&self, config: &MetricsConfig, status: &'static str) -> StatusHandles {
        let mut labels = self.labels.clone();
        labels.push(Label::new(LABEL_STATUS, status));
        StatusHandles {
            status,
            requests: metrics::counter!(config.requests.clone(), labels.clone()),
            duration: metrics::histogram!(config.duration.clone(), labels.clone()),
            errors: OnceLock::new(),
            labels,
        }
    }
}

/// Handles per label set, kept under a lasting recorder (see the [module docs](self)).
pub(crate) struct HandleCache(KeptHandles<Handles>);

impl Default for HandleCache {
    fn default() -> Self {
        Self(KeptHandles::new(MAX_LABEL_SETS))
    }
}

impl std::fmt::Debug for HandleCache {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        self.0.fmt(f)
    }
}

impl HandleCache {
    /// The handles of `values` under the current recorder.
    pub(crate) fn get(&self, config: &MetricsConfig, values: &LabelValues<'_>) -> Arc<Handles> {
        self.0.get(
            values,
            |kept| kept.matches(values),
            || Handles::register(config, values),
        )
    }
}

#[cfg(test)]
mod tests {
    use super::{Handles, LabelValues};
    use crate::metrics::RequestMetricsLayer;

    /// Kept handles are found by a 64-bit hash; `matches` is what tells a colliding
    /// label set apart, so each label, name and value, must count.
    #[test]
    fn handles_match_only_their_own_label_set() {
        let config = RequestMetricsLayer::new().config;
        let config = &config.measure;
        let own = LabelValues {
            names: ("method", "route"),
            values: ("GET", "/jobs"),
            tenant: "acme",
        };
        let handles = Handles::register(config, &own);
        assert!(handles.matches(&own));
        for other in [
            LabelValues {
                names: ("rpc_service", "route"),
                ..own
            },
            LabelValues {
                names: ("method", "rpc_method"),
                ..own
            },
            LabelValues {
                values: ("POST", "/jobs"),
                ..own
            },
            LabelValues {
                values: ("GET", "/jobs/{id}"),
                ..own
            },
            LabelValues {
                tenant: "globex",
                ..own
            },
        ] {
            assert!(!handles.matches(&other), "{other:?}");
        }
    }
}
