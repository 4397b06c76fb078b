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
use crate::semconv::{MetricNames, LABEL_STATUS, LABEL_TENANT_ID};
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

/// The metrics of one site, recorder and tenant, each registered when first recorded
/// (a site whose calls never start work has no `started` series, not one stuck at 0).
#[derive(Debug)]
pub(super) struct TenantHandles {
    tenant: Option<TenantId>,
    /// The `labels(...)` of the call.
    labels: Box<[(&'static str, String)]>,
    started: OnceLock<Counter>,
    /// Per [`Ending`]: its lifecycle counter.
    ended: [OnceLock<Counter>; 3],
    /// Per [`Ending`]: the lifetime histogram with that `status`.
    lifetime: [OnceLock<Histogram>; 3],
    /// Per [`Ending`]: the handler histogram with that `status`.
    handler: [OnceLock<Histogram>; 3],
}

impl TenantHandles {
    fn register(tenant: Option<&TenantId>, labels: Box<[(&'static str, String)]>) -> Self {
        Self {
            tenant: tenant.cloned(),
            labels,
            started: OnceLock::new(),
            ended: Default::default(),
            lifetime: Default::default(),
            handler: Default::default(),
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

    /// The run-time histogram of calls of `site` that ended with `ending`.
    pub(super) fn handler(&self, site: &Site, ending: Ending) -> &Histogram {
        self.handler[ending.index()].get_or_init(|| {
            let names = site.metrics.names(site.kind);
            metrics::histogram!(names.handler.clone(), self.labels_with_status(site, ending))
        })
    }

    /// The lifecycle counter of work of `site` that ended with `ending`.
    pub(super) fn ended(&self, site: &Site, ending: Ending) -> &Counter {
        self.ended[ending.index()].get_or_init(|| {
            let names = site.metrics.names(site.kind);
            metrics::counter!(names.ended[ending.index()].clone(), self.labels(site))
        })
    }

    /// The lifetime histogram of work of `site` that ended with `ending`.
    pub(super) fn lifetime(&self, site: &Site, ending: Ending) -> &Histogram {
        self.lifetime[ending.index()].get_or_init(|| {
            let names = site.metrics.names(site.kind);
            metrics::histogram!(
                names.duration.clone(),
                self.labels_with_status(site, ending)
            )
        })
    }

    fn labels_with_status(&self, site: &Site, ending: Ending) -> Vec<Label> {
        let mut labels = self.labels(site);
        labels.push(Label::from_static_parts(LABEL_STATUS, ending.label()));
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
