//! [`MemoryExporter`]: finished spans kept in memory, for tests.

use std::sync::{Arc, Mutex, PoisonError};

use opentelemetry_sdk::error::OTelSdkResult;
use opentelemetry_sdk::trace::{SpanData, SpanExporter};

/// Keeps every exported span in memory; clones share the same store.
///
/// ```
/// use instrument_core::pipeline::{build, ExporterConfig, MemoryExporter, PipelineConfig};
///
/// let spans = MemoryExporter::default();
/// let telemetry = build(&PipelineConfig::default().with_exporter(ExporterConfig::Memory(spans.clone())))?;
/// # drop(telemetry);
/// # Ok::<(), instrument_core::pipeline::PipelineError>(())
/// ```
#[derive(Debug, Clone, Default)]
pub struct MemoryExporter {
    spans: Arc<Mutex<Vec<SpanData>>>,
}

impl MemoryExporter {
    /// The spans exported so far.
    pub fn spans(&self) -> Vec<SpanData> {
        self.spans
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    /// Forgets the spans exported so far.
    pub fn clear(&self) {
        self.spans
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clear();
    }
}

impl PartialEq for MemoryExporter {
    fn eq(&self, other: &Self) -> bool {
        Arc::ptr_eq(&self.spans, &other.spans)
    }
}

impl SpanExporter for MemoryExporter {
    fn export(
        &self,
        batch: Vec<SpanData>,
    ) -> impl std::future::Future<Output = OTelSdkResult> + Send {
        self.spans
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .extend(batch);
        std::future::ready(Ok(()))
    }
}
