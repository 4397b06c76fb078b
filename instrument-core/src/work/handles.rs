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
                spans: Ending::ALL.map(span),
            }
        })
    }

    /// The completion span's name for `ending`.
    pub(super) fn span_name(&self, site: &Site, ending: Ending) -> &'static str {
        self.names(site.kind).spans[ending.index()]
    }

    /// The handles of `tenant` under the current recorder.
    pub(super) fn handles(&self, site: &Site, tenant: Option<&TenantId>) -> Arc<TenantHandles> {
        let name = tenant.map(TenantId::as_str);
        let names = self.names(site.kind);
        self.kept.get(
            &name,
            |kept| kept.tenant.as_ref().map(TenantId::as_str) == name,
            || TenantHandles::register(site, names, tenant),
        )
    }
}

/// The metrics of one site, recorder and tenant.
#[derive(Debug)]
pub(super) struct TenantHandles {
    tenant: Option<TenantId>,
    started: Counter,
    /// Per [`Ending`]: its counter and the duration histogram with that `status`,
    /// registered when a call first ends that way.
    ended: [OnceLock<(Counter, Histogram)>; 3],
}

impl TenantHandles {
    fn register(site: &Site, names: &Names, tenant: Option<&TenantId>) -> Self {
        Self {
            tenant: tenant.cloned(),
            started: metrics::counter!(names.started.clone(), labels(site, tenant)),
            ended: Default::default(),
        }
    }

    pub(super) fn tenant(&self) -> Option<&TenantId> {
        self.tenant.as_ref()
    }

    pub(super) fn started(&self) -> &Counter {
        &self.started
    }

    /// The counter and histogram of calls of `site` that ended with `ending`.
    pub(super) fn ended(&self, site: &Site, ending: Ending) -> &(Counter, Histogram) {
        self.ended[ending.index()].get_or_init(|| {
            let names = site.metrics.names(site.kind);
            let mut labels = labels(site, self.tenant.as_ref());
            let counter = metrics::counter!(names.ended[ending.index()].clone(), labels.clone());
            labels.push(Label::from_static_parts(LABEL_STATUS, ending.label()));
            (counter, metrics::histogram!(names.duration.clone(), labels))
        })
    }
}

/// The metric labels `tenant_id` and `name`, with room for `status`.
fn labels(site: &Site, tenant: Option<&TenantId>) -> Vec<Label> {
    let tenant = match tenant {
        Some(tenant) => SharedString::from_shared(tenant.shared()),
        None => SharedString::const_str(UNKNOWN_TENANT),
    };
    let mut labels = Vec::with_capacity(3);
    labels.push(Label::new(LABEL_TENANT_ID, tenant));
    labels.push(Label::from_static_parts(LABEL_NAME, site.name));
    labels
}
