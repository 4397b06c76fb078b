//! Tower layers of the **instrument** toolkit for HTTP and tonic/gRPC servers.
//!
//! | module | layer |
//! |---|---|
//! | [`stack`] | [`InstrumentLayer`](stack::InstrumentLayer): the three below in one service, in the right order |
//! | [`trace`] | [`TraceLayer`](trace::TraceLayer): one server span per request, parent restored from the stored trace |
//! | [`tenant`] | [`TenantLayer`](tenant::TenantLayer): every request has a valid tenant, carried to every span |
//! | [`metrics`] | [`RequestMetricsLayer`](metrics::RequestMetricsLayer): request count, duration, errors, in flight |
//!
//! Each middleware follows tower-http's shape: `XLayer` builds the service `X<S>`,
//! whose future is `x::ResponseFuture` and whose response body is `x::ResponseBody`.
//! What the layers share about a request is read once ([`request`]); which responses
//! are failures is a tower-http classifier ([`classify`]); where a request's stored
//! trace comes from is a [`source::TraceSource`].
#![warn(missing_docs)]
#![deny(unreachable_pub)]
#![forbid(unsafe_code)]
#![cfg_attr(docsrs, feature(doc_cfg))]

pub mod body;
pub mod classify;
pub mod metrics;
pub mod protocol;
pub mod request;
pub mod source;
pub mod stack;
pub mod tenant;
pub mod trace;

#[cfg(test)]
mod test_support;

/// The README's example, compiled and run as a doctest.
#[cfg(doctest)]
#[doc = include_str!("../README.md")]
struct ReadmeDoctests;
