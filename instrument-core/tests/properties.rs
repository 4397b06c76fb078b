//! Property tests of the parsers and the guard's invariants.

use std::sync::atomic::{AtomicUsize, Ordering};

use instrument_core::cardinality::{normalize_route, LabelGuard};
use instrument_core::context::{extract, restore, TraceParent, TraceStateList};
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
    fn format_of_parse_keeps_ids_and_defined_flags(tp in valid_traceparent()) {
        let parsed = TraceParent::parse(&tp).unwrap();
        // Only `sampled` and `random` are sent on; reserved bits go out as zero.
        let flags = u8::from_str_radix(&tp[53..], 16).unwrap();
        let expected = format!("{}{:02x}", &tp[..53], flags & 0x03);
        prop_assert_eq!(parsed.flags().to_u8(), flags);
        prop_assert_eq!(parsed.to_string(), expected.clone());
        let restored = restore(Some(&tp));
        prop_assert_eq!(
            TraceParent::from_span_context(restored.span_context().unwrap()).unwrap().to_string(),
            expected
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
        if let Ok(list) = TraceStateList::parse(lines.iter().map(Vec::as_slice)) {
            // What is sent on reads back as the same list.
            let again = TraceStateList::parse([list.header().as_bytes()]).unwrap();
            prop_assert_eq!(again, list);
        }
        let tp = b"00-12345678901234567890123456789012-1234567890123456-01";
        let _ = extract([&tp[..]], lines.iter().map(Vec::as_slice));
    }

    #[test]
    fn tracestate_round_trips_valid_members(members in proptest::collection::btree_map("[a-z0-9][a-z0-9_*/@-]{0,40}", "[ -+\\--<>-~]{0,19}[!-+\\--<>-~]", 0..32)) {
        let header: Vec<String> = members.iter().map(|(k, v)| format!("{k}={v}")).collect();
        let header = header.join(",");
        let parsed = TraceStateList::parse([header.as_bytes()]).unwrap();
        prop_assert_eq!(parsed.len(), members.len());
        prop_assert_eq!(parsed.header(), header.as_str());
        for (k, v) in &members {
            prop_assert_eq!(parsed.get(k), Some(v.as_str()));
        }
    }

    /// The key grammar of W3C 3.3.1.3.1, written as the specification's ABNF reads:
    /// `key = ( lcalpha / DIGIT ) 0*255 ( keychar )`.
    #[test]
    fn tracestate_keys_follow_the_abnf(key in "[a-zA-Z0-9_*/@. -]{0,12}|[a-z0-9@]{250,260}") {
        let keychar = |c: char| c.is_ascii_lowercase() || c.is_ascii_digit() || "_-*/@".contains(c);
        // Spaces before a member are optional whitespace, not part of its key.
        let abnf_key = key.trim_start_matches(' ');
        let first = abnf_key.chars().next();
        let by_abnf = matches!(first, Some(c) if c.is_ascii_lowercase() || c.is_ascii_digit())
            && abnf_key.len() <= 256
            && abnf_key.chars().all(keychar);
        let member = format!("{key}=1");
        let parsed = TraceStateList::parse([member.as_bytes()]);
        // A key of only spaces is an empty member, which is allowed and ignored.
        if key.trim_matches(' ').is_empty() {
            prop_assert!(parsed.is_err() || parsed.unwrap().is_empty());
        } else {
            prop_assert_eq!(parsed.is_ok(), by_abnf, "{:?}", key);
        }
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
