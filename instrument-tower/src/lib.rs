//! Tower layers of the **instrument** toolkit for HTTP and tonic/gRPC servers.
//!
//! | module | layer |
//! |---|---|
//! | [`trace`] | [`TraceContextLayer`](trace::TraceContextLayer): one server span per request, parent restored from the stored trace |
//! | [`tenant`] | [`TenantLayer`](tenant::TenantLayer): every request has a valid tenant, carried to every span |
//! | [`metrics`] | [`RequestMetricsLayer`](metrics::RequestMetricsLayer): request count, duration, errors, in flight |
//! | [`stack`] | [`InstrumentLayer`](stack::InstrumentLayer): all of the above, in the right order |
#![warn(missing_docs)]
#![deny(unreachable_pub)]
#![forbid(unsafe_code)]

pub mod body;
pub mod metrics;
pub mod protocol;
pub mod source;
pub mod stack;
pub mod tenant;
pub mod trace;

pub use instrument_core as core;

#[cfg(test)]
mod test_support;
