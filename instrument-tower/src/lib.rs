//! Tower layers of the **instrument** toolkit for HTTP and tonic/gRPC servers: trace
//! context, tenant enforcement, request metrics and tracking headers.
//!
//! The layers are built on `instrument-core`; this release re-exports the core so
//! servers can depend on this crate alone while the layers land.
#![warn(missing_docs)]
#![deny(unreachable_pub)]
#![forbid(unsafe_code)]

pub use instrument_core as core;
