//! The tracer a layer records with: the one its builder was given, else the global
//! provider's, taken at first use (so a pipeline installed after the layer was built
//! still counts).

use std::sync::{Arc, OnceLock};

use instrument_core::semconv;
use opentelemetry::global::BoxedTracer;
use opentelemetry::trace::{Span, Tracer};

/// A layer's tracer, shared by the services it builds.
#[derive(Clone, Default)]
pub(crate) struct LayerTracer(Arc<OnceLock<BoxedTracer>>);

impl LayerTracer {
    /// Always `tracer`.
    pub(crate) fn of<T>(tracer: T) -> Self
    where
        T: Tracer + Send + Sync + 'static,
        T::Span: Span + Send + Sync + 'static,
    {
        let lock = OnceLock::new();
        let _ = lock.set(BoxedTracer::new(Box::new(tracer)));
        Self(Arc::new(lock))
    }

    /// The tracer: the one given, else the global provider's (from the first call on).
    pub(crate) fn get(&self) -> &BoxedTracer {
        self.0.get_or_init(|| {
            opentelemetry::global::tracer_with_scope(semconv::scope(semconv::TOWER_SCOPE))
        })
    }
}
