//! Tower layers of the **instrument** toolkit for HTTP and tonic/gRPC servers.
//!
//! | module | layer |
//! |---|---|
//! | [`stack`] | [`InstrumentLayer`](stack::InstrumentLayer): the three below in one service, in the right order |
//! | [`trace`] | [`TraceLayer`](trace::TraceLayer): one server span per request, parent restored from the stored trace |
//! | [`tenant`] | [`TenantLayer`](tenant::TenantLayer): every request has a valid tenant, carried to every span |
//! | [`metrics`] | [`RequestMetricsLayer`](metrics::RequestMetricsLayer): request count, duration, errors, in flight |
//! | [`client`] | [`ClientLayer`](client::ClientLayer): client spans, trace context and tenant on outgoing calls, client durations |
//! | [`proxy`] | [`SpanProxy`](proxy::SpanProxy): spans workers report, checked and recorded in their workflow's trace |
//!
//! Each middleware follows tower-http's shape: `XLayer` builds the service `X<S>`,
//! whose future is `x::ResponseFuture` and whose response body is `x::ResponseBody`.
//! What the layers share about a request is read once ([`request`]); which responses
//! are failures is a tower-http classifier ([`classify`]); where a request's stored
//! trace comes from is a [`source::TraceSource`].
//!
//! # What a client can put in a label
//!
//! Every metric label set is a series kept for as long as the process runs, and the
//! label guard caps each metric at 2,000 of them (then `otel.metric.overflow`): a
//! client that could mint label values could fill the cap and blind every dashboard.
//! What a request can influence, and how each is bounded:
//!
//! | label / attribute | from | bounded by |
//! |---|---|---|
//! | `rpc_service`, `rpc_method`; span name and `rpc.*` | the gRPC path | only methods the server recognised (answered with anything but `UNIMPLEMENTED`, or listed with `grpc_methods`), at most 512 per layer; any other is `_OTHER`, with the path as `rpc.method_original` on the span (redacted, at most 256 bytes) |
//! | `route`; span name and `http.route` | the route hook (axum's `MatchedPath`, a function) | only routes the server answered with anything but 404, at most 512 per layer; any other is `_OTHER` |
//! | `method` | the HTTP method | the standard methods, else `_OTHER` |
//! | `status` | the response | a closed set: gRPC code names, HTTP status classes, `error`, `cancelled` |
//! | `tenant_id` | the tenant | only a tenant the tenant check admitted (a refused request is `unknown`, and counts in the rejection counter by reason); then the guard's caps: 2,000 label sets per metric, and a cap on tenant values when set (`LabelGuard::builder().label_cap("tenant_id", n)`, then `__overflow__`); an overflow is counted in `<prefix>_metric_label_overflow_total{metric}` and warned about once per metric in the log |
//!
//! A tenant taken from a plain header is the client's to choose: any client can send
//! valid-looking tenant ids up to the tenant label's cap. Where the tenant comes from
//! authentication, put it in the request's extensions (a `TenantId`, which the layers
//! take before any header) rather than trusting a header.
#![warn(missing_docs)]
#![deny(unreachable_pub)]
#![forbid(unsafe_code)]
#![cfg_attr(docsrs, feature(doc_cfg))]

/// `get_ref`, `get_mut` and `into_inner` for a middleware service whose wrapped service
/// is its `inner` field, and a `Debug` that shows only that (the rest is
/// configuration), as tower-http does for its services. `$name<S, ...>`: the type and
/// its parameters, the wrapped service's first.
macro_rules! inner_service_accessors {
    ($name:ident < S $(, $param:ident)* >) => {
        impl<S $(, $param)*> $name<S $(, $param)*> {
            /// The wrapped service.
            pub fn get_ref(&self) -> &S {
                &self.inner
            }

            /// The wrapped service, mutably.
            pub fn get_mut(&mut self) -> &mut S {
                &mut self.inner
            }

            /// The wrapped service, unwrapped.
            pub fn into_inner(self) -> S {
                self.inner
            }
        }

        impl<S: std::fmt::Debug $(, $param)*> std::fmt::Debug for $name<S $(, $param)*> {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.debug_struct(stringify!($name))
                    .field("inner", &self.inner)
                    .finish_non_exhaustive()
            }
        }
    };
}

mod around;
pub mod body;
pub mod classify;
pub mod client;
pub mod messages;
pub mod metrics;
mod names;
pub mod protocol;
pub mod proxy;
pub mod request;
pub mod source;
pub mod stack;
pub mod tenant;
pub mod trace;
mod tracer;

#[cfg(test)]
mod test_support;

/// The README's example, compiled and run as a doctest.
#[cfg(doctest)]
#[doc = include_str!("../README.md")]
struct ReadmeDoctests;
