//! Tower layers of the **instrument** toolkit for HTTP and tonic/gRPC servers.
//!
//! | module | layer |
//! |---|---|
//! | [`tenant`] | [`TenantLayer`](tenant::TenantLayer): every request has a valid tenant, carried to every span |
//!
//! The trace-context, request-metrics and tracking layers follow.
#![warn(missing_docs)]
#![deny(unreachable_pub)]
#![forbid(unsafe_code)]

pub mod protocol;
pub mod tenant;

pub use instrument_core as core;
