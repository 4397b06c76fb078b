//! A site's metric names and handles.
//!
//! Registering a metric builds a `metrics::Key`, hashes it and looks it up in the
//! recorder (and in the label guard): three registrations per call would cost more than
//! the rest of the call's metrics. A site therefore keeps its handles per tenant under a
//! lasting recorder ([`KeptHandles`]), and names its metrics once, from the process-wide
//! [`MetricNames`] it reads when it first records.

use std::sync::{Arc, OnceLock};

use metrics::{Counter, Histogram, Label, SharedString};

use super::{Ending, Site, LABEL_NAME, SITE_TENANTS, UNKNOWN_TENANT};
use crate::cardinality::KeptHandles;
use crate::semconv::{MetricNames, LABEL_ERROR_TYPE, LABEL_STATUS, LABEL_TENANT_ID};
use crate::tenant::TenantId;

/// The metric names of one site.
#[derive(Debug)]
struct Names {
    started: SharedString,
    /// Per [`Ending`]: its counter.
    ended: [SharedString; 3],
    duration: SharedString,
    handler: SharedString,
    /// Per [`Ending`]: its completion span's name.
    spans: [&'static str; 3],
}

/// A site's names, resolved on first use, and its handles per tenant.
#[derive(Debug)]
pub(super) struct SiteMetrics {
    names: OnceLock<Names>,
    kept: KeptHandles<TenantHandles>,
}

impl SiteMetrics {
    pub(super) const fn new() -> Self {
        Self {
            names: OnceLock::new(),
            kept: KeptHandles::new(SITE_TENANTS),
        }
    }

    fn names(&self, kind: &str) -> &Names {
        self.names.get_or_init(|| {
            let names = MetricNames::global().work_unchecked(kind);
            // HELP text and units for this kind's families (the pipeline describes
            // `workflow` and `task` when it installs the recorder; any other kind is
            // known first here).
            names.describe(kind);
            let shared = |name: String| SharedString::from(Arc::<str>::from(name));
            // Once per site (a `static` of the program): the completion spans' names.
            let span = |ending: Ending| -> &'static str {
                Box::leak(ending.span_name(kind).into_boxed_str())
            };
            Names {
                started: shared(names.started),
                ended: [
                    shared(names.completed),
                    shared(names.failed),
                    shared(names.cancelled),
                ],
                duration: shared(names.duration),
                handler: shared(names.handler),
                spans: Ending::ALL.map(span),
            }
        })
    }

    /// The completion span's name for `ending`.
    pub(super) fn span_name(&self, site: &Site, ending: Ending) -> &'static str {
        self.names(site.kind).spans[ending.index()]
    }

    /// The handles of `tenant` and the call's `labels` under the current recorder.
    pub(super) fn handles(
        &self,
        tenant: Option<&TenantId>,
        labels: Box<[(&'static str, String)]>,
    ) -> Arc<TenantHandles> {
        let name = tenant.map(TenantId::as_str);
        self.kept.get(
            &(name, &*labels),
            |kept| kept.tenant.as_ref().map(TenantId::as_str) == name && *kept.labels == *labels,
            || TenantHandles::register(tenant, labels.clone()),
        )
    }
}

/// A metric handle: kept for later calls, or made for this one.
pub(super) enum Handle<'a, T> {
    Kept(&'a T),
    Made(T),
}

impl<T> std::ops::Deref for Handle<'_, T> {
    type Target = T;

    fn deref(&self) -> &T {
        match self {
            Self::Kept(kept) => kept,
            Self::Made(made) => made,
        }
    }
}

/// The `error_type` label of a failure of class `class`.
fn error_label(class: &str) -> Label {
    Label::new(LABEL_ERROR_TYPE, class.to_owned())
}

/// The metrics of one site, recorder and tenant, each registered when first recorded
/// (a site whose calls never start work has no `started` series, not one stuck at 0).
#[derive(Debug)]
pub(super) struct TenantHandles {
    tenant: Option<TenantId>,
    /// The `labels(...)` of the call.
    labels: Box<[(&'static str, String)]>,
    started: OnceLock<Counter>,
    /// Per ending (and, for a failure, per `error_type`): the lifecycle counter, the
    /// lifetime and the handler histograms, for the first few seen.
    ended: [OnceLock<(EndedKey, EndedHandles)>; ENDINGS_KEPT],
}

/// An ending and, for a failure, its class (empty otherwise).
type EndedKey = (Ending, Box<str>);

/// Endings whose handles a site and tenant keeps: completed, cancelled, and a few
/// failure classes. Past them, each call registers its own (the label guard caps what
/// reaches the recorder).
const ENDINGS_KEPT: usize = 6;

/// The metrics of one ending (and failure class).
#[derive(Debug, Default)]
struct EndedHandles {
    ended: OnceLock<Counter>,
    lifetime: OnceLock<Histogram>,
    handler: OnceLock<Histogram>,
}

impl TenantHandles {
    fn register(tenant: Option<&TenantId>, labels: Box<[(&'static str, String)]>) -> Self {
        Self {
            tenant: tenant.cloned(),
            labels,
            started: OnceLock::new(),
            ended: Default::default(),
        }
    }

    pub(super) fn tenant(&self) -> Option<&TenantId> {
        self.tenant.as_ref()
    }

    /// The counter of work of `site` started.
    pub(super) fn started(&self, site: &Site) -> &Counter {
        self.started.get_or_init(|| {
            let names = site.metrics.names(site.kind);
            metrics::counter!(names.started.clone(), self.labels(site))
        })
    }

    /// The run-time histogram of calls of `site` that ended with `ending` (a failure
    /// of class `error_type`).
    pub(super) fn handler(
        &self,
        site: &Site,
        ending: Ending,
        error_type: Option<&str>,
    ) -> Handle<'_, Histogram> {
        let make = || {
            let names = site.metrics.names(site.kind);
            metrics::histogram!(
                names.handler.clone(),
                self.labels_with_status(site, ending, error_type)
            )
        };
        self.for_ending(ending, error_type, |h| &h.handler, make)
    }

    /// The lifecycle counter of work of `site` that ended with `ending` (a failure of
    /// class `error_type`).
    pub(super) fn ended(
        &self,
        site: &Site,
        ending: Ending,
        error_type: Option<&str>,
    ) -> Handle<'_, Counter> {
        let make = || {
            let names = site.metrics.names(site.kind);
            let mut labels = self.labels(site);
            labels.extend(error_type.map(error_label));
            metrics::counter!(names.ended[ending.index()].clone(), labels)
        };
        self.for_ending(ending, error_type, |h| &h.ended, make)
    }

    /// The lifetime histogram of work of `site` that ended with `ending` (a failure of
    /// class `error_type`).
    pub(super) fn lifetime(
        &self,
        site: &Site,
        ending: Ending,
        error_type: Option<&str>,
    ) -> Handle<'_, Histogram> {
        let make = || {
            let names = site.metrics.names(site.kind);
            metrics::histogram!(
                names.duration.clone(),
                self.labels_with_status(site, ending, error_type)
            )
        };
        self.for_ending(ending, error_type, |h| &h.lifetime, make)
    }

    /// The handle `which` of `ending` (of class `error_type`, for a failure), kept in
    /// its slot when there is one.
    fn for_ending<T>(
        &self,
        ending: Ending,
        error_type: Option<&str>,
        which: impl Fn(&EndedHandles) -> &OnceLock<T>,
        make: impl FnOnce() -> T,
    ) -> Handle<'_, T> {
        let class = error_type.unwrap_or_default();
        for slot in &self.ended {
            let ((kept, kept_class), handles) =
                slot.get_or_init(|| ((ending, class.into()), EndedHandles::default()));
            if *kept == ending && **kept_class == *class {
                return Handle::Kept(which(handles).get_or_init(make));
            }
        }
        Handle::Made(make())
    }

    fn labels_with_status(
        &self,
        site: &Site,
        ending: Ending,
        error_type: Option<&str>,
    ) -> Vec<Label> {
        let mut labels = self.labels(site);
        labels.push(Label::from_static_parts(LABEL_STATUS, ending.label()));
        labels.extend(error_type.map(error_label));
        labels
    }

    /// The metric labels `tenant_id`, `name` and the call's own, with room for `status`.
    fn labels(&self, site: &Site) -> Vec<Label> {
        let tenant = match &self.tenant {
            Some(tenant) => SharedString::from_shared(tenant.shared()),
            None => SharedString::const_str(UNKNOWN_TENANT),
        };
        let mut labels = Vec::with_capacity(3 + self.labels.len());
        labels.push(Label::new(LABEL_TENANT_ID, tenant));
        labels.push(Label::from_static_parts(LABEL_NAME, site.name));
        labels.extend(
            self.labels
                .iter()
                .map(|(key, value)| Label::new(*key, value.clone())),
        );
        labels
    }
}
