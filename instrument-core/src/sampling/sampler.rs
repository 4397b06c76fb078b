//! The consistent probability samplers (the specification's `ProbabilitySampler` and
//! its parent-based form) as SDK samplers.

use opentelemetry::trace::{Link, SpanKind, TraceContextExt as _, TraceId, TraceState};
use opentelemetry::{Context, KeyValue};
use opentelemetry_sdk::trace::{SamplingDecision, SamplingResult, ShouldSample};

use super::threshold::{threshold_of, with_threshold, without_threshold, Randomness, Threshold};

/// Samples a span when its randomness reaches the threshold (`R >= T`), whatever its
/// parent decided, and writes `th` into the `ot` member of the `tracestate` of the
/// spans it samples, so that downstream samplers and backends know the probability
/// (adjusted count `2^56 / (2^56 - T)`). The randomness is the parent's `rv` when
/// valid, else the trace id's 56 rightmost bits. The specification's
/// `ProbabilitySampler`.
///
/// ```
/// use instrument_core::sampling::{ProbabilitySampler, Threshold};
/// use opentelemetry_sdk::trace::SdkTracerProvider;
///
/// let sampler = ProbabilitySampler::new(Threshold::from_probability(0.01).unwrap());
/// let provider = SdkTracerProvider::builder().with_sampler(sampler).build();
/// # let _ = provider;
/// ```
#[derive(Debug, Clone, Copy)]
pub struct ProbabilitySampler {
    threshold: Threshold,
}

impl ProbabilitySampler {
    /// Samples with `threshold`.
    pub fn new(threshold: Threshold) -> Self {
        Self { threshold }
    }

    /// The threshold.
    pub fn threshold(&self) -> Threshold {
        self.threshold
    }

    /// The decision for a span of `trace_id` under a parent whose `tracestate` is
    /// `state`.
    fn decide(&self, trace_id: TraceId, state: &TraceState) -> SamplingResult {
        if self.threshold.samples(Randomness::of(trace_id, state)) {
            SamplingResult {
                decision: SamplingDecision::RecordAndSample,
                attributes: Vec::new(),
                trace_state: with_threshold(state, self.threshold),
            }
        } else {
            SamplingResult {
                decision: SamplingDecision::Drop,
                attributes: Vec::new(),
                trace_state: without_threshold(state),
            }
        }
    }
}

impl ShouldSample for ProbabilitySampler {
    fn should_sample(
        &self,
        parent_context: Option<&Context>,
        trace_id: TraceId,
        _name: &str,
        _span_kind: &SpanKind,
        _attributes: &[KeyValue],
        _links: &[Link],
    ) -> SamplingResult {
        let parent = parent_context.map(|cx| cx.span());
        match parent.as_ref().map(|span| span.span_context()) {
            Some(sc) if sc.is_valid() => self.decide(trace_id, sc.trace_state()),
            _ => self.decide(trace_id, &TraceState::NONE),
        }
    }
}

/// Follows a valid parent's decision and its `th`, and samples roots with a
/// [`ProbabilitySampler`]. A sampled parent's `th` goes on unchanged unless it is
/// inconsistent with the randomness (`R < T`: then it is erased, its probability
/// unknown); a sampled parent without `th` gives a child without one.
///
/// ```
/// use instrument_core::sampling::{ParentBasedProbabilitySampler, Threshold};
///
/// let sampler = ParentBasedProbabilitySampler::new(Threshold::from_probability(0.1).unwrap());
/// assert_eq!(sampler.threshold().to_string(), "e666");
/// ```
#[derive(Debug, Clone, Copy)]
pub struct ParentBasedProbabilitySampler {
    root: ProbabilitySampler,
}

impl ParentBasedProbabilitySampler {
    /// Samples roots with `threshold`.
    pub fn new(threshold: Threshold) -> Self {
        Self {
            root: ProbabilitySampler::new(threshold),
        }
    }

    /// The roots' threshold.
    pub fn threshold(&self) -> Threshold {
        self.root.threshold
    }
}

impl ShouldSample for ParentBasedProbabilitySampler {
    fn should_sample(
        &self,
        parent_context: Option<&Context>,
        trace_id: TraceId,
        _name: &str,
        _span_kind: &SpanKind,
        _attributes: &[KeyValue],
        _links: &[Link],
    ) -> SamplingResult {
        let parent = parent_context.map(|cx| cx.span());
        let Some(sc) = parent
            .as_ref()
            .map(|span| span.span_context())
            .filter(|sc| sc.is_valid())
        else {
            return self.root.decide(trace_id, &TraceState::NONE);
        };
        let state = sc.trace_state();
        if !sc.is_sampled() {
            return SamplingResult {
                decision: SamplingDecision::Drop,
                attributes: Vec::new(),
                trace_state: state.clone(),
            };
        }
        let consistent =
            threshold_of(state).is_none_or(|th| th.samples(Randomness::of(trace_id, state)));
        SamplingResult {
            decision: SamplingDecision::RecordAndSample,
            attributes: Vec::new(),
            trace_state: if consistent {
                state.clone()
            } else {
                without_threshold(state)
            },
        }
    }
}

#[cfg(test)]
mod tests {
    use opentelemetry::trace::{SpanContext, SpanId, TraceFlags};
    use proptest::prelude::*;

    use super::*;

    fn parent(trace_id: u128, sampled: bool, state: &str) -> Context {
        let state = if state.is_empty() {
            TraceState::NONE
        } else {
            state.parse().unwrap()
        };
        let flags = if sampled {
            TraceFlags::SAMPLED
        } else {
            TraceFlags::default()
        };
        Context::new().with_remote_span_context(SpanContext::new(
            TraceId::from(trace_id),
            SpanId::from(1u64),
            flags,
            true,
            state,
        ))
    }

    fn decide(sampler: &dyn ShouldSample, cx: Option<&Context>, trace_id: u128) -> SamplingResult {
        sampler.should_sample(
            cx,
            TraceId::from(trace_id),
            "s",
            &SpanKind::Server,
            &[],
            &[],
        )
    }

    #[test]
    fn a_root_is_sampled_when_its_randomness_reaches_the_threshold_and_gets_th() {
        let sampler = ProbabilitySampler::new(Threshold::parse("8").unwrap());
        let high = 0x80_0000_0000_0000u128;
        let kept = decide(&sampler, None, high);
        assert_eq!(kept.decision, SamplingDecision::RecordAndSample);
        assert_eq!(kept.trace_state.get("ot"), Some("th:8"));
        let dropped = decide(&sampler, None, high - 1);
        assert_eq!(dropped.decision, SamplingDecision::Drop);
        assert_eq!(dropped.trace_state.get("ot"), None);
    }

    #[test]
    fn rv_wins_over_the_trace_id_and_stays() {
        let sampler = ProbabilitySampler::new(Threshold::parse("8").unwrap());
        // The trace id alone (randomness 1) would be dropped.
        let cx = parent(1, false, "ot=rv:ffffffffffffff,v=1");
        let kept = decide(&sampler, Some(&cx), 1);
        assert_eq!(kept.decision, SamplingDecision::RecordAndSample);
        assert_eq!(kept.trace_state.get("ot"), Some("th:8;rv:ffffffffffffff"));
        assert_eq!(kept.trace_state.get("v"), Some("1"));
    }

    #[test]
    fn the_parent_based_form_follows_the_parent_and_checks_its_th() {
        let sampler = ParentBasedProbabilitySampler::new(Threshold::parse("f").unwrap());
        let r = 0xc0_0000_0000_0000u128;
        // Sampled, consistent: th goes on.
        let kept = decide(&sampler, Some(&parent(r, true, "ot=th:8")), r);
        assert_eq!(kept.decision, SamplingDecision::RecordAndSample);
        assert_eq!(kept.trace_state.get("ot"), Some("th:8"));
        // Sampled, inconsistent (R < T): th erased, still sampled.
        let odd = decide(&sampler, Some(&parent(r, true, "ot=th:e;k:1")), r);
        assert_eq!(odd.decision, SamplingDecision::RecordAndSample);
        assert_eq!(odd.trace_state.get("ot"), Some("k:1"));
        // Sampled without th: none added.
        let plain = decide(&sampler, Some(&parent(r, true, "")), r);
        assert_eq!(plain.trace_state.get("ot"), None);
        // Unsampled: dropped, whatever the randomness.
        let out = decide(
            &sampler,
            Some(&parent(u128::MAX, false, "ot=th:0")),
            u128::MAX,
        );
        assert_eq!(out.decision, SamplingDecision::Drop);
        // Root: the threshold.
        assert_eq!(decide(&sampler, None, r).decision, SamplingDecision::Drop);
        let root = decide(&sampler, Some(&Context::new()), 0xf0_0000_0000_0000);
        assert_eq!(root.trace_state.get("ot"), Some("th:f"));
    }

    #[test]
    fn th_goes_downstream_in_the_outgoing_tracestate_with_other_members() {
        use opentelemetry::trace::{Tracer as _, TracerProvider as _};
        use opentelemetry_sdk::trace::SdkTracerProvider;
        let provider = SdkTracerProvider::builder()
            .with_sampler(ParentBasedProbabilitySampler::new(Threshold::ALWAYS))
            .build();
        let tracer = provider.tracer("t");
        // A root: th:0 (every span sampled).
        let root = tracer.start("root");
        let cx = Context::new().with_span(root);
        let mut headers = Vec::new();
        crate::context::inject_outgoing(&cx, false, |k, v| headers.push((k, v.to_owned())));
        assert!(
            headers.contains(&("tracestate", "ot=th:0".to_owned())),
            "{headers:?}"
        );
        // Under a sampled caller with th and another vendor's member: both go on.
        let caller = parent(0xab, true, "ot=th:0;rv:ffffffffffffff,vendor=x");
        let child = tracer.start_with_context("child", &caller);
        let cx = Context::new().with_span(child);
        let mut headers = Vec::new();
        crate::context::inject_outgoing(&cx, false, |k, v| headers.push((k, v.to_owned())));
        let state = headers.iter().find(|(k, _)| *k == "tracestate").unwrap();
        assert_eq!(state.1, "ot=th:0;rv:ffffffffffffff,vendor=x");
    }

    proptest! {
        #[test]
        fn a_sampler_samples_what_every_lower_probability_one_does(
            trace_id in any::<u128>(),
            a in 1e-6f64..=1.0,
            b in 1e-6f64..=1.0,
        ) {
            let (lo, hi) = if a <= b { (a, b) } else { (b, a) };
            let low = ProbabilitySampler::new(Threshold::from_probability(lo).unwrap());
            let high = ProbabilitySampler::new(Threshold::from_probability(hi).unwrap());
            if decide(&low, None, trace_id).decision == SamplingDecision::RecordAndSample {
                prop_assert_eq!(decide(&high, None, trace_id).decision, SamplingDecision::RecordAndSample);
            }
        }
    }
}
