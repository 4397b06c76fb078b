//! W3C trace context: parse and format `traceparent` / `tracestate`, restore a context
//! stored with a workflow row, capture the current one, and choose a parent when a
//! request has both.
//!
//! A workflow that runs for days is one trace when every request about it continues
//! from the `traceparent` stored with the workflow:
//!
//! ```
//! use instrument_core::context::{capture, in_context, restore, Restored};
//!
//! // On start: store the current traceparent with the new row (None outside a span).
//! let to_store: Option<String> = capture().map(|tp| tp.to_string());
//!
//! // Days later, on completion: continue from what was stored.
//! let row_traceparent = Some("00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01");
//! let restored = restore(row_traceparent);
//! if let Restored::Fresh { reason } = &restored {
//!     eprintln!("starting a fresh trace: {reason}");
//! }
//! in_context(&restored.to_context(), || {
//!     // spans started here are children of the stored span
//! });
//! ```

mod child;
mod ids;
mod outgoing;
mod policy;
mod propagation;
mod propagator;
mod request_id;
mod restore;
mod traceparent;
mod tracestate;

pub use child::{child_context, unsampled_child};
pub use ids::with_preset_ids;
#[cfg(feature = "pipeline")]
pub(crate) use ids::{take_preset_span_id, take_preset_trace_id};
pub use outgoing::{inject_baggage, inject_outgoing, BAGGAGE_HEADER};
pub use policy::{ParentChoice, ParentPolicy};
pub use propagation::{
    extract, extract_from_pairs, inject, Incoming, TRACEPARENT_HEADER, TRACESTATE_HEADER,
};
pub use propagator::W3cPropagator;
pub use request_id::{request_id_from, with_request_id, RequestId, MAX_REQUEST_ID_LEN};
pub use restore::{
    capture, capture_from, in_context, restore, FreshReason, InContextExt, Restored,
};
pub use traceparent::{trace_id_hex, TraceParent, TraceParentError, TRACEPARENT_LEN};
pub use tracestate::{TraceStateError, TraceStateList, MAX_MEMBERS};
