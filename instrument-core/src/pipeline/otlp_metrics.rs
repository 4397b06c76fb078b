//! Metrics over OTLP (feature `otlp`): the `metrics` facade bridged to the
//! OpenTelemetry metrics SDK behind the label guard, exported periodically.
//!
//! No maintained bridge from `metrics` 0.24 to opentelemetry 0.33 exists (the
//! `metrics-exporter-opentelemetry` crates follow older OpenTelemetry releases), so
//! this is a small recorder of the toolkit's own: one OpenTelemetry instrument per
//! metric name, the labels as attributes, created once per label set (the handles
//! are what `metrics` keeps).

use std::borrow::Cow;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use dashmap::DashMap;
use metrics::{
    Counter, CounterFn, Gauge, GaugeFn, Histogram, HistogramFn, Key, KeyName, Metadata, Recorder,
    SharedString, Unit,
};
use opentelemetry::metrics::{Meter, MeterProvider as _};
use opentelemetry::KeyValue;
use opentelemetry_sdk::metrics::{PeriodicReader, SdkMeterProvider};

use super::{MetricsConfig, MetricsError, PipelineConfig};
use crate::cardinality::{GuardedRecorder, LabelGuard};
use crate::semconv::{self, MetricNames};

/// The metrics pipeline [`install_otlp_metrics`] started: flushes on
/// [`OtlpMetrics::shutdown`] (or, best effort, on drop).
#[derive(Debug)]
pub struct OtlpMetrics {
    provider: Option<SdkMeterProvider>,
}

impl OtlpMetrics {
    /// Exports what was recorded since the last export, then stops.
    pub fn shutdown(mut self) -> Result<(), MetricsError> {
        match self.provider.take() {
            Some(provider) => provider
                .shutdown()
                .map_err(|e| MetricsError::Export(e.to_string())),
            None => Ok(()),
        }
    }
}

impl Drop for OtlpMetrics {
    fn drop(&mut self) {
        if let Some(provider) = self.provider.take() {
            let _ = provider.shutdown();
        }
    }
}

/// Installs a recorder that sends every `counter!`, `gauge!` and `histogram!` of the
/// process over OTLP as `config.metrics` says ([`MetricsConfig::Otlp`]), through
/// `guard` (the same caps and redaction as the Prometheus endpoint), and makes `names`
/// the process-wide [`MetricNames`]. Needs a Tokio runtime (the exporter's
/// connections run on it).
///
/// Metric names and label keys are those of the Prometheus endpoint; histograms get
/// the same buckets (request-scale for requests, handlers and exports, seconds to
/// days for the work's lifetime). The resource is the service's, as for spans.
///
/// ```no_run
/// use instrument_core::cardinality::LabelGuard;
/// use instrument_core::pipeline::{install_otlp_metrics, PipelineConfig};
/// use instrument_core::semconv::MetricNames;
///
/// # async fn main_() -> Result<(), Box<dyn std::error::Error>> {
/// // OTEL_METRICS_EXPORTER=otlp OTEL_EXPORTER_OTLP_ENDPOINT=http://collector:4317
/// let config = PipelineConfig::from_env()?;
/// let metrics = install_otlp_metrics(LabelGuard::default(), &MetricNames::default(), &config)?;
/// // ... serve ...
/// metrics.shutdown()?;
/// # Ok(()) }
/// ```
pub fn install_otlp_metrics(
    guard: LabelGuard,
    names: &MetricNames,
    config: &PipelineConfig,
) -> Result<OtlpMetrics, MetricsError> {
    let MetricsConfig::Otlp(otlp) = &config.metrics else {
        return Err(MetricsError::Export(
            "the configuration does not export metrics over OTLP (OTEL_METRICS_EXPORTER=otlp)"
                .to_owned(),
        ));
    };
    let exporter =
        super::otlp::metric_exporter(otlp).map_err(|e| MetricsError::Export(e.to_string()))?;
    let reader = PeriodicReader::builder(exporter)
        .with_interval(otlp.interval)
        .build();
    let provider = SdkMeterProvider::builder()
        .with_reader(reader)
        .with_resource(super::init::resource(config))
        .build();
    let meter = provider.meter_with_scope(semconv::scope(semconv::SCOPE));
    let recorder = GuardedRecorder::new(OtelRecorder::new(meter), guard, names);
    // HELP and units for the toolkit's own metrics, as on the Prometheus endpoint.
    metrics::with_local_recorder(&recorder, || names.describe());
    // Kept for the rest of the program: metric handles may be kept for it.
    recorder.declare_once_global();
    metrics::set_global_recorder(recorder).map_err(|_| MetricsError::RecorderAlreadySet)?;
    let _ = names.clone().set_global();
    Ok(OtlpMetrics {
        provider: Some(provider),
    })
}

/// A unit as UCUM, the form OTLP carries.
fn ucum(unit: Unit) -> &'static str {
    match unit {
        Unit::Seconds => "s",
        Unit::Milliseconds => "ms",
        Unit::Microseconds => "us",
        Unit::Nanoseconds => "ns",
        Unit::Bytes => "By",
        Unit::Percent => "%",
        Unit::Count => "1",
        _ => "",
    }
}

/// The `metrics` recorder over an OpenTelemetry meter.
struct OtelRecorder {
    meter: Meter,
    /// Descriptions and units given before the instrument was made.
    described: DashMap<String, (Option<Unit>, SharedString)>,
    counters: DashMap<String, opentelemetry::metrics::Counter<u64>>,
    gauges: DashMap<String, opentelemetry::metrics::Gauge<f64>>,
    histograms: DashMap<String, opentelemetry::metrics::Histogram<f64>>,
    /// Each gauge's value (f64 bits), shared by every handle of its label set: a
    /// gauge changed through two handles is one value. Bounded by the label guard.
    gauge_values: DashMap<Key, Arc<AtomicU64>>,
}

impl OtelRecorder {
    fn new(meter: Meter) -> Self {
        Self {
            meter,
            described: DashMap::new(),
            counters: DashMap::new(),
            gauges: DashMap::new(),
            histograms: DashMap::new(),
            gauge_values: DashMap::new(),
        }
    }

    fn describe(&self, key: KeyName, unit: Option<Unit>, description: SharedString) {
        self.described
            .insert(key.as_str().to_owned(), (unit, description));
    }

    /// The description and UCUM unit `name` was described with, if any.
    fn description(&self, name: &str) -> (Cow<'static, str>, &'static str) {
        match self.described.get(name) {
            Some(entry) => (Cow::Owned(entry.1.to_string()), entry.0.map_or("", ucum)),
            None => (Cow::Borrowed(""), ""),
        }
    }
}

/// The labels of `key` as attributes, the conventions' under their OpenTelemetry keys
/// (`http_request_method` as `http.request.method`).
fn attributes(key: &Key) -> Vec<KeyValue> {
    key.labels()
        .map(|l| {
            let name =
                semconv::otel_name(l.key()).map_or_else(|| l.key().to_owned(), str::to_owned);
            KeyValue::new(name, l.value().to_owned())
        })
        .collect()
}

/// The instrument name of the metric `name`: the conventions' under their
/// OpenTelemetry names (`http_server_request_duration_seconds` as
/// `http.server.request.duration`), the toolkit's own as they are.
fn instrument_name(name: &str) -> String {
    semconv::otel_name(name).map_or_else(|| name.to_owned(), str::to_owned)
}

impl Recorder for OtelRecorder {
    fn describe_counter(&self, key: KeyName, unit: Option<Unit>, description: SharedString) {
        self.describe(key, unit, description);
    }

    fn describe_gauge(&self, key: KeyName, unit: Option<Unit>, description: SharedString) {
        self.describe(key, unit, description);
    }

    fn describe_histogram(&self, key: KeyName, unit: Option<Unit>, description: SharedString) {
        self.describe(key, unit, description);
    }

    fn register_counter(&self, key: &Key, _: &Metadata<'_>) -> Counter {
        let name = key.name();
        let instrument = match self.counters.get(name) {
            Some(counter) => counter.clone(),
            None => {
                let (description, unit) = self.description(name);
                let counter = self
                    .meter
                    .u64_counter(instrument_name(name))
                    .with_description(description)
                    .with_unit(unit)
                    .build();
                self.counters
                    .entry(name.to_owned())
                    .or_insert(counter)
                    .clone()
            }
        };
        Counter::from_arc(Arc::new(OtelCounter {
            instrument,
            attributes: attributes(key),
            absolute: AtomicU64::new(0),
        }))
    }

    fn register_gauge(&self, key: &Key, _: &Metadata<'_>) -> Gauge {
        let name = key.name();
        let instrument = match self.gauges.get(name) {
            Some(gauge) => gauge.clone(),
            None => {
                let (description, unit) = self.description(name);
                let gauge = self
                    .meter
                    .f64_gauge(instrument_name(name))
                    .with_description(description)
                    .with_unit(unit)
                    .build();
                self.gauges.entry(name.to_owned()).or_insert(gauge).clone()
            }
        };
        let value = Arc::clone(
            &self
                .gauge_values
                .entry(key.clone())
                .or_insert_with(|| Arc::new(AtomicU64::new(0f64.to_bits()))),
        );
        Gauge::from_arc(Arc::new(OtelGauge {
            instrument,
            attributes: attributes(key),
            value,
        }))
    }

    fn register_histogram(&self, key: &Key, _: &Metadata<'_>) -> Histogram {
        let name = key.name();
        let instrument = match self.histograms.get(name) {
            Some(histogram) => histogram.clone(),
            None => {
                let (description, unit) = self.description(name);
                let mut builder = self
                    .meter
                    .f64_histogram(instrument_name(name))
                    .with_description(description)
                    .with_unit(unit);
                if let Some(boundaries) = MetricNames::global().buckets(name) {
                    builder = builder.with_boundaries(boundaries.to_vec());
                }
                let histogram = builder.build();
                self.histograms
                    .entry(name.to_owned())
                    .or_insert(histogram)
                    .clone()
            }
        };
        Histogram::from_arc(Arc::new(OtelHistogram {
            instrument,
            attributes: attributes(key),
        }))
    }
}

struct OtelCounter {
    instrument: opentelemetry::metrics::Counter<u64>,
    attributes: Vec<KeyValue>,
    /// The last absolute value set through this handle: `absolute` adds only the
    /// difference (a counter set absolutely is kept in one handle, as the metrics
    /// crate's own exporters expect).
    absolute: AtomicU64,
}

impl CounterFn for OtelCounter {
    fn increment(&self, value: u64) {
        self.instrument.add(value, &self.attributes);
    }

    fn absolute(&self, value: u64) {
        let before = self.absolute.fetch_max(value, Ordering::AcqRel);
        if value > before {
            self.instrument.add(value - before, &self.attributes);
        }
    }
}

struct OtelGauge {
    instrument: opentelemetry::metrics::Gauge<f64>,
    attributes: Vec<KeyValue>,
    /// The gauge's value (f64 bits): `increment` and `decrement` change it.
    value: Arc<AtomicU64>,
}

impl OtelGauge {
    fn update(&self, change: impl Fn(f64) -> f64) {
        let mut now = 0.0;
        let _ = self
            .value
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |bits| {
                now = change(f64::from_bits(bits));
                Some(now.to_bits())
            });
        self.instrument.record(now, &self.attributes);
    }
}

impl GaugeFn for OtelGauge {
    fn increment(&self, value: f64) {
        self.update(|v| v + value);
    }

    fn decrement(&self, value: f64) {
        self.update(|v| v - value);
    }

    fn set(&self, value: f64) {
        self.update(|_| value);
    }
}

struct OtelHistogram {
    instrument: opentelemetry::metrics::Histogram<f64>,
    attributes: Vec<KeyValue>,
}

impl HistogramFn for OtelHistogram {
    fn record(&self, value: f64) {
        self.instrument.record(value, &self.attributes);
    }
}
