//! What an outgoing request carries: the trace context, the baggage and the tenant.

use std::fmt::Write as _;

use opentelemetry::baggage::BaggageExt as _;
use opentelemetry::Context;

use super::propagation::inject;
use crate::semconv::TENANT_HEADER;
use crate::tenant::tenant_from;

/// Header name of W3C Baggage.
pub const BAGGAGE_HEADER: &str = "baggage";

/// Writes the baggage `cx` carries as one W3C `baggage` header through `set`; writes
/// nothing when there is none. Values are percent-encoded where the W3C Baggage grammar
/// requires it (and `%` itself), so any value round-trips; OpenTelemetry's `Baggage`
/// already enforced the size limits when the entries were added.
///
/// ```
/// use instrument_core::context::inject_baggage;
/// use opentelemetry::baggage::BaggageExt as _;
/// use opentelemetry::{Context, KeyValue};
///
/// let cx = Context::new().with_baggage([KeyValue::new("region", "eu west")]);
/// let mut headers = Vec::new();
/// inject_baggage(&cx, |name, value| headers.push((name, value.to_owned())));
/// assert_eq!(headers, [("baggage", "region=eu%20west".to_owned())]);
/// ```
pub fn inject_baggage(cx: &Context, mut set: impl FnMut(&'static str, &str)) {
    let baggage = cx.baggage();
    if baggage.is_empty() {
        return;
    }
    let mut header = String::new();
    for (key, (value, metadata)) in baggage.iter() {
        if !header.is_empty() {
            header.push(',');
        }
        encode(key.as_str().trim(), &mut header);
        header.push('=');
        encode(value.as_str().trim(), &mut header);
        let metadata = metadata.as_str().trim();
        if !metadata.is_empty() {
            header.push(';');
            header.push_str(metadata);
        }
    }
    set(BAGGAGE_HEADER, &header);
}

/// Appends `text` to `out`, percent-encoding every byte that is not a W3C
/// `baggage-octet`, and `%`.
fn encode(text: &str, out: &mut String) {
    for &b in text.as_bytes() {
        let plain =
            matches!(b, 0x21 | 0x23..=0x2B | 0x2D..=0x3A | 0x3C..=0x5B | 0x5D..=0x7E) && b != b'%';
        if plain {
            out.push(char::from(b));
        } else {
            let _ = write!(out, "%{b:02X}");
        }
    }
}

/// Writes everything an outgoing request should carry from `cx` through `set(name,
/// value)`: `traceparent` and `tracestate` (see [`inject`]), `baggage` (see
/// [`inject_baggage`]) and, when `forward_tenant` is true and `cx` carries a tenant, the
/// tenant as `x-tenant-id`.
///
/// This is what the client layer sends; call it directly where a layer cannot be used,
/// such as a tonic interceptor. Forward the tenant only to your own services: a third
/// party has no use for it.
///
/// ```
/// use instrument_core::context::{inject_outgoing, restore};
/// use instrument_core::tenant::{with_tenant, TenantId};
///
/// let cx = restore(Some("00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01")).to_context();
/// let cx = with_tenant(&cx, TenantId::parse("acme")?);
/// let mut headers = Vec::new();
/// inject_outgoing(&cx, true, |name, value| headers.push((name, value.to_owned())));
/// assert_eq!(headers[1], ("x-tenant-id", "acme".to_owned()));
/// # Ok::<(), instrument_core::tenant::TenantIdError>(())
/// ```
pub fn inject_outgoing(
    cx: &Context,
    forward_tenant: bool,
    mut set: impl FnMut(&'static str, &str),
) {
    inject(cx, &mut set);
    inject_baggage(cx, &mut set);
    if forward_tenant {
        if let Some(tenant) = tenant_from(cx) {
            set(TENANT_HEADER, tenant.as_str());
        }
    }
}

#[cfg(test)]
mod tests {
    use opentelemetry::baggage::BaggageMetadata;
    use opentelemetry::KeyValue;

    use super::*;

    #[test]
    fn baggage_values_with_separators_are_encoded_and_metadata_kept() {
        let mut baggage = opentelemetry::baggage::Baggage::new();
        baggage.insert_with_metadata("user", "a,b;c=d%", BaggageMetadata::from("prop"));
        let cx = Context::new().with_baggage(baggage);
        let mut out = Vec::new();
        inject_baggage(&cx, |n, v| out.push((n, v.to_owned())));
        assert_eq!(out, [("baggage", "user=a%2Cb%3Bc=d%25;prop".to_owned())]);
    }

    #[test]
    fn nothing_is_written_without_a_span_baggage_or_tenant() {
        let mut out = Vec::new();
        inject_outgoing(&Context::new(), true, |n, v| out.push((n, v.to_owned())));
        assert!(out.is_empty());
        let cx = Context::new().with_baggage([KeyValue::new("k", "v")]);
        inject_outgoing(&cx, false, |n, v| out.push((n, v.to_owned())));
        assert_eq!(out, [("baggage", "k=v".to_owned())]);
    }
}
