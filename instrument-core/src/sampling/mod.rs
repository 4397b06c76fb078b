//! Sampling: consistent probability sampling as the OpenTelemetry specification
//! defines it, and tail bias for the requests a head sampler drops.
//!
//! **Consistent probability sampling.** A sampling ratio becomes a 56-bit rejection
//! threshold `T` ([`Threshold`]); a span is sampled when its randomness `R` (the `rv`
//! in the `ot` member of `tracestate`, else the trace id's 56 rightmost bits) satisfies
//! `R >= T`. Every service sampling the same trace at the same ratio decides alike,
//! and one at a higher ratio keeps everything one at a lower ratio keeps. A sampled
//! span carries `th` in the `ot` member of its `tracestate` (propagated downstream and
//! exported with the span), from which a backend computes its adjusted count,
//! `2^56 / (2^56 - T)`: how many requests it stands for. Spans kept for another reason
//! (tail bias) carry no `th`.
//!
//! **Tail bias** (feature `pipeline`): see [`TailBias`].
//!
//! ```
//! use instrument_core::sampling::{Randomness, Threshold};
//! use opentelemetry::trace::TraceId;
//!
//! let t = Threshold::from_probability(0.25).unwrap();
//! assert_eq!(t.to_string(), "c");
//! let id = TraceId::from_hex("4bf92f3577b34da6a3ce929d0e0e4736").unwrap();
//! assert!(t.samples(Randomness::of_trace_id(id))); // 0xce929d... >= 0xc00000...
//! ```

#[cfg(feature = "pipeline")]
mod sampler;
#[cfg(feature = "pipeline")]
mod tail;
mod threshold;

#[cfg(feature = "pipeline")]
pub use sampler::{ParentBasedProbabilitySampler, ProbabilitySampler};
#[cfg(feature = "pipeline")]
pub use tail::{
    installed as installed_tail_bias, KeptFor, Tail, TailBias, TailProcessor, TailSampler,
    TailStats, TailWatch,
};
pub use threshold::{
    threshold_of, with_threshold, without_threshold, OtValue, Randomness, Threshold,
    ThresholdError, DEFAULT_PRECISION, MAX_ADJUSTED_COUNT, OT_KEY,
};
