//! **instrument**: production-grade tracing and metrics for workflow and task servers.
//!
//! Trace context restored from stored `traceparent`s so a workflow that runs for days
//! is one trace, `tenant.id` enforced on every span, sensitive data scrubbed before it
//! leaves the process, and metric label cardinality capped.
//!
//! This facade re-exports the toolkit's crates:
//! - the domain core ([`context`], [`tenant`], [`semconv`], [`redact`], [`cardinality`],
//!   [`work`], [`outstanding`], [`report`])
//!   and the telemetry [`pipeline`] from `instrument-core`;
//! - the tower layers from `instrument-tower` as [`tower`];
//! - the `#[workflow_span]` attribute from `instrument-macros`.
//!
//! ```
//! use instrument::context::{capture, restore, Restored};
//! use instrument::redact::Redactor;
//!
//! let redactor = Redactor::default();
//! assert_eq!(redactor.redact_attribute("db_password", "hunter2"), "[REDACTED]");
//!
//! let restored = restore(Some("00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"));
//! assert!(matches!(restored, Restored::Parent(_)));
//! # let _ = capture();
//! ```
#![warn(missing_docs)]
#![deny(unreachable_pub)]
#![forbid(unsafe_code)]
#![cfg_attr(docsrs, feature(doc_cfg))]

/// The README's example, compiled and run as a doctest.
#[cfg(doctest)]
#[doc = include_str!("../README.md")]
struct ReadmeDoctests;

pub use instrument_core::{
    cardinality, context, outstanding, pipeline, redact, report, sampling, semconv, tenant, work,
};

/// Tower layers for HTTP and tonic/gRPC servers (`instrument-tower`).
pub use instrument_tower as tower;

/// The OpenTelemetry API the toolkit is built on (the same version), for a handler
/// that adds to its request's span:
///
/// ```
/// use instrument::opentelemetry::trace::TraceContextExt as _;
/// use instrument::opentelemetry::{Context, KeyValue};
///
/// // Inside a handler the layers serve: the request's server span.
/// Context::map_current(|cx| cx.span().set_attribute(KeyValue::new("order.items", 3)));
/// ```
///
/// A `tracing::info!`/`error!` in the handler lands on that span as an event when
/// the subscriber [`pipeline::init`] installs is in place
/// ([`pipeline::SpanEventLayer`]).
pub use opentelemetry;

/// The `metrics` facade the toolkit records through (the same version): a handler's
/// own `metrics::counter!` goes through the label guard of
/// [`pipeline::install_prometheus`].
pub use metrics;

/// Completion spans and metrics for a workflow or task handler; see
/// [`instrument_macros::workflow_span`].
pub use instrument_macros::workflow_span;
