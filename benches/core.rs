//! Core hot paths, each beside the alternative a team would otherwise use.
//!
//! `cargo bench --bench core`; medians are recorded in `benches/README.md`.

use std::collections::HashMap;
use std::hint::black_box;

use criterion::{criterion_group, criterion_main, BatchSize, Criterion};
use instrument::cardinality::{GuardedRecorder, LabelGuard};
use instrument::context::{extract, restore, TraceParent, TRACEPARENT_LEN};
use instrument::redact::Redactor;
use instrument::semconv::MetricNames;
use opentelemetry::propagation::TextMapPropagator;
use opentelemetry::trace::TraceContextExt;
use opentelemetry::Context;
use opentelemetry_sdk::propagation::TraceContextPropagator;

mod support;
use support::{clean_64b_values, requests_key, CLEAN_64B};

const TP: &str = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";

fn traceparent(c: &mut Criterion) {
    let mut g = c.benchmark_group("traceparent");
    g.bench_function("parse", |b| b.iter(|| TraceParent::parse(black_box(TP))));
    g.bench_function("extract_headers", |b| {
        b.iter(|| extract([black_box(TP.as_bytes())], []))
    });
    let propagator = TraceContextPropagator::new();
    let mut carrier = HashMap::new();
    carrier.insert("traceparent".to_string(), TP.to_string());
    g.bench_function("otel_propagator_extract", |b| {
        b.iter(|| propagator.extract(black_box(&carrier)))
    });
    let tp = TraceParent::parse(TP).unwrap();
    g.bench_function("format", |b| {
        b.iter(|| {
            let mut buf = [0u8; TRACEPARENT_LEN];
            black_box(black_box(&tp).encode(&mut buf).len())
        })
    });
    let cx = Context::new().with_remote_span_context(tp.to_span_context(Default::default()));
    g.bench_function("otel_propagator_inject", |b| {
        b.iter_batched(
            HashMap::<String, String>::new,
            |mut out| {
                propagator.inject_context(black_box(&cx), &mut out);
                out
            },
            BatchSize::SmallInput,
        )
    });
    g.bench_function("restore", |b| b.iter(|| restore(black_box(Some(TP)))));
    g.finish();
}

fn redaction(c: &mut Criterion) {
    let r = Redactor::default();
    let clean = CLEAN_64B;
    assert_eq!(clean.len(), 64);
    let dirty = "login failed for bob@example.com with card 4111 1111 1111 1111";
    let mut body = String::from("{\"items\":[");
    while body.len() < 4000 {
        body.push_str("{\"sku\":\"A-1234\",\"qty\":2,\"note\":\"gift wrap please\"},");
    }
    body.push_str(
        "{\"sku\":\"B\"}],\"customer\":{\"email\":\"bob@example.com\",\"password\":\"hunter2\"}}",
    );
    let mut g = c.benchmark_group("redact");
    // First sight: a value the memo of clean values does not hold (scanned).
    let fresh = clean_64b_values(4096);
    let mut next = fresh.iter().cycle();
    g.bench_function("clean_64b", |b| {
        b.iter_batched(
            || next.next().map_or(clean, String::as_str),
            |value| r.redact_attribute(black_box("note"), value).len(),
            BatchSize::SmallInput,
        )
    });
    // The same value again: found in the memo.
    g.bench_function("clean_64b_repeated", |b| {
        b.iter(|| r.redact_attribute(black_box("note"), black_box(clean)))
    });
    g.bench_function("dirty_64b", |b| {
        b.iter(|| r.redact_attribute(black_box("note"), black_box(dirty)))
    });
    g.bench_function("sensitive_key", |b| {
        b.iter(|| r.redact_attribute(black_box("db_password"), black_box("hunter2")))
    });
    g.bench_function("json_4kib", |b| b.iter(|| r.redact_value(black_box(&body))));
    g.bench_function("prose_secret_64b", |b| {
        b.iter(|| {
            r.redact_attribute(
                black_box("log.message"),
                black_box("login failed: password is hunter2 for bob on node-7"),
            )
        })
    });
    // Scanned whole, in time linear in the length: a fourth of the size, a fourth of
    // the time (compare `clean_256kib`).
    let clean_1mib = "step completed for queue default-eu-west; ".repeat((1 << 20) / 42);
    let clean_256kib = &clean_1mib[..clean_1mib.len() / 4];
    g.sample_size(20);
    g.bench_function("clean_256kib", |b| {
        b.iter(|| r.redact_value(black_box(clean_256kib)).len())
    });
    g.bench_function("clean_1mib", |b| {
        b.iter(|| r.redact_value(black_box(&clean_1mib)).len())
    });
    g.finish();
}

fn guard(c: &mut Criterion) {
    let guard = LabelGuard::default();
    let key = requests_key();
    guard.admit(&key).unwrap();
    let mut g = c.benchmark_group("guard");
    g.bench_function("admitted", |b| {
        b.iter(|| guard.admit(black_box(&key)).map(|a| a.overflowed()))
    });

    let prometheus = metrics_exporter_prometheus::PrometheusBuilder::new().build_recorder();
    g.bench_function("counter_prometheus", |b| {
        metrics::with_local_recorder(&prometheus, || {
            b.iter(|| metrics::counter!("requests_total", "tenant_id" => black_box("acme"), "route" => "/v1/x", "status" => "2xx").increment(1))
        })
    });
    let guarded = GuardedRecorder::new(
        metrics_exporter_prometheus::PrometheusBuilder::new().build_recorder(),
        LabelGuard::default(),
        &MetricNames::default(),
    );
    g.bench_function("counter_guarded_prometheus", |b| {
        metrics::with_local_recorder(&guarded, || {
            b.iter(|| metrics::counter!("requests_total", "tenant_id" => black_box("acme"), "route" => "/v1/x", "status" => "2xx").increment(1))
        })
    });
    g.finish();
}

criterion_group!(benches, traceparent, redaction, guard);
criterion_main!(benches);
