//! Property tests of the parsers and the guard's invariants.

use std::sync::atomic::{AtomicUsize, Ordering};

use instrument_core::cardinality::{normalize_route, LabelGuard};
use instrument_core::context::{extract, parse_tracestate, restore, TraceParent};
use instrument_core::tenant::TenantId;
use metrics::{Key, Label};
use proptest::prelude::*;

fn valid_traceparent() -> impl Strategy<Value = String> {
    ("[0-9a-f]{32}", "[0-9a-f]{16}", "[0-9a-f]{2}")
        .prop_filter("ids must not be all zero", |(t, p, _)| {
            t.bytes().any(|b| b != b'0') && p.bytes().any(|b| b != b'0')
        })
        .prop_map(|(t, p, f)| format!("00-{t}-{p}-{f}"))
}

proptest! {
    #[test]
    fn format_of_parse_is_identity_for_valid_traceparents(tp in valid_traceparent()) {
        let parsed = TraceParent::parse(&tp).unwrap();
        prop_assert_eq!(parsed.to_string(), tp.clone());
        let restored = restore(Some(&tp));
        prop_assert_eq!(
            TraceParent::from_span_context(restored.span_context().unwrap()).unwrap().to_string(),
            tp
        );
    }

    #[test]
    fn traceparent_parse_never_panics_on_arbitrary_bytes(bytes in proptest::collection::vec(any::<u8>(), 0..80)) {
        let _ = TraceParent::parse_header(&bytes);
        if let Ok(s) = std::str::from_utf8(&bytes) {
            let _ = restore(Some(s));
        }
    }

    #[test]
    fn traceparent_parse_rejects_any_single_byte_corruption(tp in valid_traceparent(), pos in 0usize..55, byte in any::<u8>()) {
        let mut b = tp.clone().into_bytes();
        let original = b[pos];
        b[pos] = byte;
        let parsed = TraceParent::parse_header(&b);
        let still_lower_hex = |c: u8| c.is_ascii_digit() || (b'a'..=b'f').contains(&c);
        let is_field = !matches!(pos, 2 | 35 | 52);
        if byte == original || (is_field && still_lower_hex(byte) && still_lower_hex(original)) {
            // A different hex digit is another (possibly valid) traceparent.
            prop_assume!(false);
        }
        prop_assert!(parsed.is_err(), "{:?}", String::from_utf8_lossy(&b));
    }

    #[test]
    fn tracestate_parse_never_panics(lines in proptest::collection::vec(proptest::collection::vec(any::<u8>(), 0..100), 0..5)) {
        let _ = parse_tracestate(lines.iter().map(Vec::as_slice));
        let tp = b"00-12345678901234567890123456789012-1234567890123456-01";
        let _ = extract([&tp[..]], lines.iter().map(Vec::as_slice));
    }

    #[test]
    fn tracestate_round_trips_valid_members(members in proptest::collection::btree_map("[a-z][a-z0-9_*/-]{0,20}", "[!-+\\--<>-~]{1,20}", 0..32)) {
        let header: Vec<String> = members.iter().map(|(k, v)| format!("{k}={v}")).collect();
        let header = header.join(",");
        let parsed = parse_tracestate([header.as_bytes()]).unwrap();
        prop_assert_eq!(parsed.len(), members.len());
    }

    #[test]
    fn tenant_parse_never_panics_and_accepts_exactly_the_alphabet(raw in ".{0,200}") {
        let ok = !raw.is_empty()
            && raw.len() <= 128
            && raw.bytes().all(|b| b.is_ascii_alphanumeric() || b".-_:".contains(&b));
        prop_assert_eq!(TenantId::parse(&raw).is_ok(), ok);
        if let Err(e) = TenantId::parse(&raw) {
            prop_assert!(e.to_string().len() < 100);
        }
    }

    #[test]
    fn normalized_routes_never_keep_numeric_segments(segments in proptest::collection::vec("[a-z]{1,8}|[0-9]{1,12}", 0..8)) {
        let path = format!("/{}", segments.join("/"));
        let normalized = normalize_route(&path);
        prop_assert!(normalized.split('/').all(|s| s.is_empty() || !s.bytes().all(|b| b.is_ascii_digit())));
    }
}

#[test]
fn guard_never_exceeds_its_caps_under_concurrent_threads() {
    const SETS: usize = 64;
    const VALUES: usize = 16;
    let guard = LabelGuard::builder()
        .max_label_sets(SETS)
        .label_cap("tenant_id", VALUES)
        .build();
    let distinct_keys = std::sync::Mutex::new(std::collections::HashSet::new());
    let admitted = AtomicUsize::new(0);
    std::thread::scope(|s| {
        for t in 0..8usize {
            let (guard, distinct_keys, admitted) = (&guard, &distinct_keys, &admitted);
            s.spawn(move || {
                let mut seen = Vec::new();
                for i in 0..5_000usize {
                    let key = Key::from_parts(
                        "work_total",
                        vec![
                            Label::new("tenant_id", format!("t{}", (i * 31 + t) % 200)),
                            Label::new("status", ["ok", "err", "cancelled"][i % 3]),
                            Label::new("queue", format!("q{}", i % 7)),
                        ],
                    );
                    let a = guard.admit(&key).unwrap();
                    admitted.fetch_add(1, Ordering::Relaxed);
                    seen.push(a.key().clone());
                }
                distinct_keys.lock().unwrap().extend(seen);
            });
        }
    });
    let distinct = distinct_keys.into_inner().unwrap();
    assert!(guard.label_sets("work_total") <= SETS);
    // Every measurement landed in an admitted set or the single overflow set.
    assert!(distinct.len() <= SETS + 1, "{}", distinct.len());
    let tenants: std::collections::HashSet<_> = distinct
        .iter()
        .filter_map(|k| {
            k.labels()
                .find(|l| l.key() == "tenant_id")
                .map(|l| l.value().to_owned())
        })
        .collect();
    assert!(tenants.len() <= VALUES + 1, "{}", tenants.len());
    assert_eq!(admitted.into_inner(), 8 * 5_000);
}
