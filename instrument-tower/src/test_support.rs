//! What the layer tests share: a body with trailers, an in-memory tracer, a recorder.

use std::collections::BTreeMap;
use std::convert::Infallible;
use std::pin::Pin;
use std::task::{Context, Poll};

use bytes::Bytes;
use http::{HeaderMap, HeaderValue, Request};
use http_body::{Body, Frame};
use instrument_core::pipeline::{MissingTenant, TenantProcessor};
use metrics_util::debugging::{DebugValue, DebuggingRecorder};
use opentelemetry::trace::TracerProvider as _;
use opentelemetry_sdk::trace::{
    InMemorySpanExporter, Sampler, SdkTracer, SdkTracerProvider, SimpleSpanProcessor, SpanData,
};

/// A response body: one data frame, then trailers if any.
#[derive(Debug, Default)]
pub(crate) struct Reply {
    pub(crate) data: Option<Bytes>,
    pub(crate) trailers: Option<HeaderMap>,
}

impl Reply {
    pub(crate) fn text(text: &'static str) -> Self {
        Self {
            data: Some(Bytes::from_static(text.as_bytes())),
            trailers: None,
        }
    }

    /// A gRPC reply: one message, then `grpc-status: code`.
    pub(crate) fn grpc(code: u16) -> Self {
        let mut trailers = HeaderMap::new();
        trailers.insert("grpc-status", HeaderValue::from(code));
        Self {
            data: Some(Bytes::from_static(b"\0\0\0\0\0")),
            trailers: Some(trailers),
        }
    }
}

impl Body for Reply {
    type Data = Bytes;
    type Error = Infallible;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        _: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Infallible>>> {
        if let Some(data) = self.data.take() {
            return Poll::Ready(Some(Ok(Frame::data(data))));
        }
        Poll::Ready(self.trailers.take().map(|t| Ok(Frame::trailers(t))))
    }

    fn is_end_stream(&self) -> bool {
        self.data.is_none() && self.trailers.is_none()
    }
}

/// Reads a response body to its end.
pub(crate) async fn drain<B: Body + Unpin>(body: B) {
    use http_body_util::BodyExt as _;
    let _ = body.collect().await;
}

/// A tracer exporting to memory through the tenant processor.
pub(crate) fn tracer() -> (SdkTracer, InMemorySpanExporter, SdkTracerProvider) {
    tracer_sampled_by(Sampler::ParentBased(Box::new(Sampler::AlwaysOn)))
}

/// [`tracer`] with its own sampler.
pub(crate) fn tracer_sampled_by(
    sampler: Sampler,
) -> (SdkTracer, InMemorySpanExporter, SdkTracerProvider) {
    let exporter = InMemorySpanExporter::default();
    let provider = SdkTracerProvider::builder()
        .with_sampler(sampler)
        .with_span_processor(TenantProcessor::new(
            MissingTenant::MarkMissing,
            SimpleSpanProcessor::new(exporter.clone()),
        ))
        .build();
    (provider.tracer("test"), exporter, provider)
}

pub(crate) fn spans(exporter: &InMemorySpanExporter) -> Vec<SpanData> {
    exporter.get_finished_spans().unwrap()
}

pub(crate) fn attr<'a>(span: &'a SpanData, key: &str) -> Option<&'a opentelemetry::Value> {
    span.attributes
        .iter()
        .find(|kv| kv.key.as_str() == key)
        .map(|kv| &kv.value)
}

pub(crate) fn attr_str(span: &SpanData, key: &str) -> Option<String> {
    attr(span, key).map(|v| v.as_str().into_owned())
}

pub(crate) const TP: &str = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";
pub(crate) const TP_CALLER: &str = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01";

pub(crate) fn grpc_request(path: &str, tenant: Option<&str>) -> Request<()> {
    let mut b = Request::builder()
        .method("POST")
        .uri(path)
        .header("content-type", "application/grpc");
    if let Some(t) = tenant {
        b = b.header("x-tenant-id", t);
    }
    b.body(()).unwrap()
}

/// Everything `recorder` holds (and drains it), as `name{labels}` → value, labels sorted.
pub(crate) fn snapshot(recorder: &DebuggingRecorder) -> BTreeMap<String, String> {
    recorder
        .snapshotter()
        .snapshot()
        .into_vec()
        .into_iter()
        .map(|(k, _, _, v)| {
            let mut labels: Vec<String> = k
                .key()
                .labels()
                .map(|l| format!("{}={}", l.key(), l.value()))
                .collect();
            labels.sort();
            let value = match v {
                DebugValue::Counter(n) => n.to_string(),
                DebugValue::Gauge(g) => g.into_inner().to_string(),
                DebugValue::Histogram(h) => format!("{} samples", h.len()),
            };
            (format!("{}{{{}}}", k.key().name(), labels.join(",")), value)
        })
        .collect()
}

pub(crate) fn run(recorder: &DebuggingRecorder, f: impl std::future::Future<Output = ()>) {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_time()
        .build()
        .unwrap();
    metrics::with_local_recorder(recorder, || runtime.block_on(f));
}

/// The length and capacity of each ended span's attributes, as the SDK hands them on.
#[cfg(feature = "sdk")]
#[derive(Debug, Default, Clone)]
pub(crate) struct Room(std::sync::Arc<std::sync::Mutex<Vec<(usize, usize)>>>);

#[cfg(feature = "sdk")]
impl Room {
    /// Asserts that `spans` spans ended, each with at most four places to spare in its
    /// attributes' vector (a vector grown to twice its size has more).
    pub(crate) fn assert_snug(&self, spans: usize, case: &str) {
        let rooms = self.0.lock().unwrap().clone();
        assert_eq!(rooms.len(), spans, "{case}");
        for (len, capacity) in rooms {
            assert!(
                capacity >= len && capacity - len <= 4,
                "{case}: {len} attributes in room for {capacity}"
            );
        }
    }
}

#[cfg(feature = "sdk")]
impl opentelemetry_sdk::trace::SpanProcessor for Room {
    fn on_start(&self, _: &mut opentelemetry_sdk::trace::Span, _: &opentelemetry::Context) {}

    fn on_end(&self, span: opentelemetry_sdk::trace::SpanData) {
        let room = (span.attributes.len(), span.attributes.capacity());
        self.0.lock().unwrap().push(room);
    }

    fn force_flush(&self) -> opentelemetry_sdk::error::OTelSdkResult {
        Ok(())
    }

    fn shutdown_with_timeout(
        &self,
        _: std::time::Duration,
    ) -> opentelemetry_sdk::error::OTelSdkResult {
        Ok(())
    }
}
