//! Procedural macros of the **instrument** toolkit (`#[workflow_span]`).
//!
//! The attribute is not part of this release yet; the crate exists so the workspace
//! and the `instrument` facade have their final shape.
#![warn(missing_docs)]
#![deny(unreachable_pub)]
#![forbid(unsafe_code)]
