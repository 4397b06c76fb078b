//! The tracer a layer records with: the one its builder was given, else the provider
//! `pipeline::init` installed, else the global provider's, taken at first use (so a
//! pipeline installed after the layer was built still counts).
//!
//! The SDK's own tracer is kept as it is, not behind the global API's boxes: through
//! `BoxedTracer` every span is boxed twice (once by the tracer, once more when it
//! becomes a context's active span) and every call on it goes through two vtables
//! (`full_stack_request/*`: about 400 instructions and an allocation per request).

#[cfg(feature = "sdk")]
use std::any::Any;
use std::borrow::Cow;
use std::sync::{Arc, OnceLock};
use std::time::SystemTime;

use instrument_core::semconv;
use opentelemetry::global::{BoxedSpan, BoxedTracer};
use opentelemetry::trace::noop::NoopTracer;
use opentelemetry::trace::{Span, SpanBuilder, SpanContext, Status, Tracer};
use opentelemetry::{Context, KeyValue};

/// A layer's tracer, shared by the services it builds.
#[derive(Clone, Default)]
pub(crate) struct LayerTracer(Arc<OnceLock<Chosen>>);

/// The tracer chosen.
enum Chosen {
    /// The SDK's tracer, called directly.
    #[cfg(feature = "sdk")]
    Sdk {
        tracer: opentelemetry_sdk::trace::SdkTracer,
        /// Its sampler drops every span whose parent was not sampled.
        follows_parent: bool,
        /// Its sampler samples every span without a parent.
        samples_roots: bool,
    },
    /// Any other tracer, through the global API's object-safe wrapper.
    Boxed(BoxedTracer),
}

impl LayerTracer {
    /// Always `tracer`.
    pub(crate) fn of<T>(tracer: T) -> Self
    where
        T: Tracer + Send + Sync + 'static,
        T::Span: Span + Send + Sync + 'static,
    {
        let lock = OnceLock::new();
        let _ = lock.set(Chosen::of(tracer));
        Self(Arc::new(lock))
    }

    /// `tracer`, whose sampler drops every span whose parent was not sampled
    /// (OpenTelemetry's parent-based samplers): the layer then starts no span under
    /// such a parent, only the context its downstream calls need. Only the SDK's own
    /// tracer is taken at its word; any other is asked for every span.
    pub(crate) fn of_parent_based<T>(tracer: T) -> Self
    where
        T: Tracer + Send + Sync + 'static,
        T::Span: Span + Send + Sync + 'static,
    {
        let chosen = match Chosen::of(tracer) {
            #[cfg(feature = "sdk")]
            Chosen::Sdk { tracer, .. } => Chosen::Sdk {
                tracer,
                follows_parent: true,
                samples_roots: false,
            },
            other => other,
        };
        Self(Arc::new(OnceLock::from(chosen)))
    }

    /// The SDK's `tracer`, of a provider sampling by `sampler`, as if `pipeline::init`
    /// had installed it.
    #[cfg(feature = "sdk")]
    pub(crate) fn sampled_by(
        tracer: opentelemetry_sdk::trace::SdkTracer,
        sampler: instrument_core::pipeline::SamplerConfig,
    ) -> Self {
        Self(Arc::new(OnceLock::from(Chosen::installed(tracer, sampler))))
    }

    /// The tracer: the one given, else the installed pipeline's or the global
    /// provider's (from the first call on).
    pub(crate) fn get(&self) -> &Self {
        self.chosen();
        self
    }

    /// Whether the tracer is known to drop every span whose parent was not sampled,
    /// so that none need be started under such a parent.
    #[cfg(feature = "sdk")]
    pub(crate) fn drops_unsampled_children(&self) -> bool {
        match self.chosen() {
            #[cfg(feature = "sdk")]
            Chosen::Sdk { follows_parent, .. } => *follows_parent,
            Chosen::Boxed(_) => false,
        }
    }

    /// Whether the tracer is known to sample every span without a parent (the
    /// pipeline's, under its default sampler), so that a root's attributes are best
    /// given to the span as it starts.
    pub(crate) fn samples_roots(&self) -> bool {
        match self.chosen() {
            #[cfg(feature = "sdk")]
            Chosen::Sdk { samples_roots, .. } => *samples_roots,
            Chosen::Boxed(_) => false,
        }
    }

    /// A fresh span id, as the tracer would give a span it drops.
    #[cfg(feature = "sdk")]
    pub(crate) fn new_span_id() -> opentelemetry::trace::SpanId {
        use opentelemetry_sdk::trace::{IdGenerator as _, RandomIdGenerator};
        RandomIdGenerator::default().new_span_id()
    }

    fn chosen(&self) -> &Chosen {
        self.0.get_or_init(|| {
            let scope = semconv::scope(semconv::TOWER_SCOPE);
            #[cfg(feature = "sdk")]
            if let Some((provider, sampler)) =
                instrument_core::pipeline::installed_tracer_provider()
            {
                use opentelemetry::trace::TracerProvider as _;
                return Chosen::installed(provider.tracer_with_scope(scope), sampler);
            }
            Chosen::Boxed(opentelemetry::global::tracer_with_scope(scope))
        })
    }
}

impl Chosen {
    /// The SDK's `tracer`, of a provider sampling by `sampler` (as `pipeline::init`
    /// installs it).
    #[cfg(feature = "sdk")]
    fn installed(
        tracer: opentelemetry_sdk::trace::SdkTracer,
        sampler: instrument_core::pipeline::SamplerConfig,
    ) -> Self {
        Self::Sdk {
            tracer,
            follows_parent: sampler.follows_parent(),
            samples_roots: sampler.samples_roots(),
        }
    }

    fn of<T>(tracer: T) -> Self
    where
        T: Tracer + Send + Sync + 'static,
        T::Span: Span + Send + Sync + 'static,
    {
        #[cfg_attr(not(feature = "sdk"), allow(unused_mut))]
        let mut slot = Some(tracer);
        #[cfg(feature = "sdk")]
        if let Some(sdk) = (&mut slot as &mut dyn Any)
            .downcast_mut::<Option<opentelemetry_sdk::trace::SdkTracer>>()
            .and_then(Option::take)
        {
            return Self::Sdk {
                tracer: sdk,
                follows_parent: false,
                samples_roots: false,
            };
        }
        match slot {
            Some(tracer) => Self::Boxed(BoxedTracer::new(Box::new(tracer))),
            // Taken only when it is the SDK's tracer, returned above.
            None => Self::Boxed(BoxedTracer::new(Box::new(NoopTracer::new()))),
        }
    }
}

impl Tracer for LayerTracer {
    type Span = LayerSpan;

    fn build_with_context(&self, builder: SpanBuilder, parent_cx: &Context) -> LayerSpan {
        match self.chosen() {
            #[cfg(feature = "sdk")]
            Chosen::Sdk { tracer, .. } => {
                LayerSpan::Sdk(tracer.build_with_context(builder, parent_cx))
            }
            Chosen::Boxed(tracer) => {
                LayerSpan::Boxed(tracer.build_with_context(builder, parent_cx))
            }
        }
    }
}

/// A span of a [`LayerTracer`].
// The SDK's span is the large one, and the one used: boxing it would be the box this
// type exists to save (the context a span becomes active in boxes it once).
#[allow(clippy::large_enum_variant)]
#[derive(Debug)]
pub(crate) enum LayerSpan {
    #[cfg(feature = "sdk")]
    Sdk(opentelemetry_sdk::trace::Span),
    Boxed(BoxedSpan),
}

/// Calls `$call` on the span, whichever it is.
macro_rules! each {
    ($span:expr, $s:ident => $call:expr) => {
        match $span {
            #[cfg(feature = "sdk")]
            LayerSpan::Sdk($s) => $call,
            LayerSpan::Boxed($s) => $call,
        }
    };
}

impl Span for LayerSpan {
    fn add_event_with_timestamp<T>(
        &mut self,
        name: T,
        timestamp: SystemTime,
        attributes: Vec<KeyValue>,
    ) where
        T: Into<Cow<'static, str>>,
    {
        each!(self, s => s.add_event_with_timestamp(name, timestamp, attributes));
    }

    fn span_context(&self) -> &SpanContext {
        each!(self, s => s.span_context())
    }

    fn is_recording(&self) -> bool {
        each!(self, s => s.is_recording())
    }

    fn set_attribute(&mut self, attribute: KeyValue) {
        each!(self, s => s.set_attribute(attribute));
    }

    fn set_attributes(&mut self, attributes: impl IntoIterator<Item = KeyValue>) {
        each!(self, s => s.set_attributes(attributes));
    }

    fn set_status(&mut self, status: Status) {
        each!(self, s => s.set_status(status));
    }

    fn update_name<T>(&mut self, new_name: T)
    where
        T: Into<Cow<'static, str>>,
    {
        each!(self, s => s.update_name(new_name));
    }

    fn add_link(&mut self, span_context: SpanContext, attributes: Vec<KeyValue>) {
        each!(self, s => s.add_link(span_context, attributes));
    }

    fn end_with_timestamp(&mut self, timestamp: SystemTime) {
        each!(self, s => s.end_with_timestamp(timestamp));
    }
}

#[cfg(all(test, feature = "sdk"))]
mod tests {
    use opentelemetry::trace::TracerProvider as _;
    use opentelemetry_sdk::trace::{InMemorySpanExporter, SdkTracerProvider};

    use super::*;

    #[test]
    fn the_sdk_tracer_is_kept_as_it_is_and_others_are_boxed() {
        let exporter = InMemorySpanExporter::default();
        let provider = SdkTracerProvider::builder()
            .with_simple_exporter(exporter.clone())
            .build();
        let sdk = LayerTracer::of(provider.tracer("t"));
        assert!(matches!(sdk.chosen(), Chosen::Sdk { .. }));
        assert!(!sdk.drops_unsampled_children());
        let parent_based = LayerTracer::of_parent_based(provider.tracer("t"));
        assert!(parent_based.drops_unsampled_children());
        let mut span = sdk.get().build_with_context(
            sdk.span_builder("s")
                .with_attributes([KeyValue::new("k", "v")]),
            &Context::new(),
        );
        assert!(matches!(span, LayerSpan::Sdk(_)));
        span.set_attribute(KeyValue::new("k2", "v2"));
        span.end();
        let spans = exporter.get_finished_spans().expect("spans");
        assert_eq!(spans[0].attributes.len(), 2);

        let noop = LayerTracer::of(opentelemetry::trace::noop::NoopTracer::new());
        assert!(matches!(noop.chosen(), Chosen::Boxed(_)));
        let span = noop.build_with_context(noop.span_builder("s"), &Context::new());
        assert!(!span.is_recording());
    }
}
