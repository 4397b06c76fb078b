//! The domain core of the **instrument** toolkit: W3C trace context restored from
//! stored `traceparent`s, validated tenant identity, semantic conventions, redaction of
//! secrets and personal data, and a metric label-cardinality guard.
//!
//! It has no tower middleware; `instrument-tower` builds the layers on it and
//! `instrument-macros` generates calls into it.
//!
//! | module | for |
//! |---|---|
//! | [`context`] | `traceparent`/`tracestate` parse and format, [`context::restore`], [`context::capture`], parent policy |
//! | [`tenant`] | [`tenant::TenantId`] and the cross-tenant check |
//! | [`semconv`] | every attribute key, span name and metric name |
//! | [`redact`] | [`redact::Redactor`] and [`redact::sanitize_sql`] |
//! | [`cardinality`] | [`cardinality::LabelGuard`], route normalisation, status groups |
//! | [`measure`] | request metrics with their handles kept per label set |
//! | [`report`] | spans a worker reports through the server's span proxy: the rules, and (feature `report`) the worker's `SpanCollector` |
//! | [`work`] | the run time of `#[workflow_span]`: a handler's spans and metrics |
//! | `pipeline` (feature `pipeline`) | span processors that stamp `tenant.id` and redact every exported span |
#![warn(missing_docs)]
#![deny(unreachable_pub)]
#![forbid(unsafe_code)]
#![cfg_attr(docsrs, feature(doc_cfg))]

pub mod cardinality;
pub mod context;
pub mod measure;
pub mod outstanding;
#[cfg(feature = "pipeline")]
pub mod pipeline;
pub mod redact;
pub mod report;
pub mod sampling;
pub mod semconv;
pub mod tenant;
pub mod work;

/// The README's example, compiled and run as a doctest.
#[cfg(doctest)]
#[doc = include_str!("../README.md")]
struct ReadmeDoctests;
