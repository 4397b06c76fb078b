//! [`TraceService`]: `Service::call` of the trace-context layer, and how a server span
//! starts.

use std::borrow::Cow;
use std::sync::Arc;
use std::task::{Context as TaskContext, Poll};
use std::time::SystemTime;

use http::{HeaderName, HeaderValue, Method, Request, Response};
use instrument_core::cardinality::normalize_route;
use instrument_core::context::{
    child_context, extract, Incoming, Restored, TRACEPARENT_HEADER, TRACESTATE_HEADER,
};
use instrument_core::semconv::{
    HTTP_REQUEST_METHOD, HTTP_ROUTE, INCOMING_PARENT_INVALID, RPC_METHOD, RPC_SERVICE, RPC_SYSTEM,
    STORED_PARENT_UNUSED,
};
use instrument_core::tenant::with_tenant;
use opentelemetry::trace::{Link, SpanKind, TraceContextExt as _, Tracer as _};
use opentelemetry::{Context, KeyValue, StringValue, Value};

use super::future::TraceFuture;
use super::layer::TraceConfig;
use crate::protocol::{grpc_service_method, Protocol};
use crate::source::{Answer, SourceError, StoredTrace, TraceSource};
use crate::stack::Read;
use crate::tenant::resolve_tenant;

/// The trace-context layer's service (see [`TraceContextLayer`](super::TraceContextLayer)).
#[derive(Debug)]
pub struct TraceService<S, Src> {
    pub(crate) inner: S,
    pub(crate) config: Arc<TraceConfig>,
    pub(crate) source: Arc<Src>,
}

impl<S: Clone, Src> Clone for TraceService<S, Src> {
    fn clone(&self) -> Self {
        Self {
            inner: self.inner.clone(),
            config: Arc::clone(&self.config),
            source: Arc::clone(&self.source),
        }
    }
}

impl<S, Src, ReqBody, ResBody> tower::Service<Request<ReqBody>> for TraceService<S, Src>
where
    S: tower::Service<Request<ReqBody>, Response = Response<ResBody>> + Clone,
    S::Error: std::fmt::Display,
    Src: TraceSource,
    ResBody: http_body::Body,
{
    type Response = Response<crate::body::ObservedBody<ResBody, super::future::SpanEnd>>;
    type Error = S::Error;
    type Future = TraceFuture<S, S::Future, Src::Lookup, ReqBody>;

    fn poll_ready(&mut self, cx: &mut TaskContext<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, request: Request<ReqBody>) -> Self::Future {
        let start = SystemTime::now();
        let (mut parts, body) = request.into_parts();
        let found = match self.source.key(&parts).map(|key| self.source.answer(key)) {
            None => None,
            Some(Answer::Now(found)) => Some(found),
            Some(Answer::Later(lookup)) => {
                // The service polled ready goes with the future; this one is the clone.
                let ready = self.inner.clone();
                let service = std::mem::replace(&mut self.inner, ready);
                let request = Request::from_parts(parts, body);
                return TraceFuture::lookup(
                    Arc::clone(&self.config),
                    lookup,
                    service,
                    request,
                    start,
                );
            }
        };
        let started = begin(&self.config, &mut parts, found, start);
        let request = Request::from_parts(parts, body);
        let future = {
            let _attached = started.cx.clone().attach();
            self.inner.call(request)
        };
        TraceFuture::serve(Arc::clone(&self.config), future, started)
    }
}

/// A server span that has started, in the context the request is served in.
#[derive(Debug)]
pub(crate) struct Started {
    pub(crate) cx: Context,
    pub(crate) protocol: Protocol,
}

/// The trace-context headers, parsed once (a `&str` name is parsed on every lookup).
const TRACEPARENT: HeaderName = HeaderName::from_static(TRACEPARENT_HEADER);
const TRACESTATE: HeaderName = HeaderName::from_static(TRACESTATE_HEADER);

/// Headers never recorded in clear, whatever the redaction policy says.
const NEVER_IN_CLEAR: &[&str] = &[
    "authorization",
    "proxy-authorization",
    "cookie",
    "set-cookie",
    "x-api-key",
    "x-auth-token",
    "x-csrf-token",
    "x-amz-security-token",
];

/// Starts the server span of a request: its parent chosen from what the source `found`
/// and the caller's `traceparent`, its name and attributes from the request, the
/// request's tenant in its context. A stored trace found is put in the request's
/// extensions for the tenant layer, and under an
/// [`InstrumentLayer`](crate::stack::InstrumentLayer) what was read (see [`Read`]).
pub(crate) fn begin(
    config: &TraceConfig,
    parts: &mut http::request::Parts,
    found: Option<Result<Option<StoredTrace>, SourceError>>,
    start: SystemTime,
) -> Started {
    let protocol = Protocol::of_headers(&parts.headers);
    let mut attributes = Vec::with_capacity(8);
    let incoming = extract(
        parts
            .headers
            .get_all(TRACEPARENT)
            .iter()
            .map(HeaderValue::as_bytes),
        parts
            .headers
            .get_all(TRACESTATE)
            .iter()
            .map(HeaderValue::as_bytes),
    );
    if let Incoming::Invalid(e) = &incoming {
        attributes.push(KeyValue::new(INCOMING_PARENT_INVALID, e.to_string()));
    }
    let tenant = resolve_tenant(&parts.headers, &parts.extensions, &config.tenant_header);
    let stored = match found {
        None => None,
        Some(Err(e)) => {
            tracing::warn!(
                error = %config.redactor().error_text(&e.to_string()),
                "trace source lookup failed; the request goes on without its stored context"
            );
            attributes.push(KeyValue::new(STORED_PARENT_UNUSED, "lookup failed"));
            None
        }
        Some(Ok(None)) => {
            attributes.push(KeyValue::new(STORED_PARENT_UNUSED, "not found"));
            None
        }
        Some(Ok(Some(trace))) => {
            let parent = match trace.restored() {
                // Another tenant's trace is never joined (nor its id sent back).
                _ if tenant.as_ref().ok() != Some(trace.tenant()) => {
                    attributes.push(KeyValue::new(STORED_PARENT_UNUSED, "another tenant"));
                    None
                }
                Restored::Parent(sc) => Some(sc.clone()),
                Restored::Fresh { reason } => {
                    attributes.push(KeyValue::new(STORED_PARENT_UNUSED, reason.to_string()));
                    None
                }
            };
            parts.extensions.insert(trace);
            parent
        }
    };
    let choice = config
        .policy
        .choose(stored.as_ref(), incoming.span_context());

    let mut http_route = None;
    let name = match protocol {
        Protocol::Grpc => grpc_name(parts.uri.path(), &mut attributes),
        Protocol::Http => {
            let method = method_label(&parts.method);
            let route: Arc<str> = match config.route.as_ref().and_then(|route| route(parts)) {
                Some(route) => route.into(),
                None => normalize_route(parts.uri.path()).into(),
            };
            let mut name = String::with_capacity(method.len() + 1 + route.len());
            name.push_str(method);
            name.push(' ');
            name.push_str(&route);
            attributes.push(KeyValue::new(HTTP_REQUEST_METHOD, method));
            attributes.push(KeyValue::new(HTTP_ROUTE, Arc::clone(&route)));
            http_route = Some(route);
            Cow::Owned(name)
        }
    };
    for (name, key) in &config.headers {
        let values: Vec<StringValue> = parts
            .headers
            .get_all(name)
            .iter()
            .map(|value| header_value(config, name.as_str(), value))
            .collect();
        if !values.is_empty() {
            attributes.push(KeyValue::new(key.clone(), Value::Array(values.into())));
        }
    }

    let base = Context::current();
    let parent_cx = match choice.parent {
        // The caller's parent: its whole tracestate goes on with it.
        Some(sc) if incoming.span_context() == Some(&sc) => incoming.apply_to(&base),
        Some(sc) => base.with_remote_span_context(sc),
        None => base,
    };
    if config.shares_reads {
        parts.extensions.insert(Read {
            protocol,
            tenant: tenant.clone(),
            route: http_route,
        });
    }
    let parent_cx = match tenant {
        Ok(tenant) => with_tenant(&parent_cx, tenant),
        Err(_) => parent_cx,
    };
    let tracer = config.tracer();
    let builder = tracer
        .span_builder(name)
        .with_kind(SpanKind::Server)
        .with_start_time(start)
        .with_attributes(attributes)
        .with_links(choice.link.map(Link::with_context).into_iter().collect());
    let span = tracer.build_with_context(builder, &parent_cx);
    Started {
        cx: child_context(&parent_cx, span),
        protocol,
    }
}

/// `package.Service/Method` and the `rpc.*` attributes; a path of another shape is not
/// used as a name (clients choose paths, names must stay few).
fn grpc_name(path: &str, attributes: &mut Vec<KeyValue>) -> Cow<'static, str> {
    attributes.push(KeyValue::new(RPC_SYSTEM, "grpc"));
    match grpc_service_method(path) {
        Some((service, method)) => {
            attributes.push(KeyValue::new(RPC_SERVICE, service.to_owned()));
            attributes.push(KeyValue::new(RPC_METHOD, method.to_owned()));
            Cow::Owned(path[1..].to_owned())
        }
        None => Cow::Borrowed("grpc"),
    }
}

/// The method as OpenTelemetry records it: the standard ones by name, others `_OTHER`.
pub(crate) fn method_label(method: &Method) -> &'static str {
    match *method {
        Method::GET => "GET",
        Method::POST => "POST",
        Method::PUT => "PUT",
        Method::DELETE => "DELETE",
        Method::PATCH => "PATCH",
        Method::HEAD => "HEAD",
        Method::OPTIONS => "OPTIONS",
        Method::CONNECT => "CONNECT",
        Method::TRACE => "TRACE",
        _ => "_OTHER",
    }
}

/// A header value as recorded: redacted, and masked whole for credential headers the
/// policy let through.
fn header_value(config: &TraceConfig, name: &str, value: &HeaderValue) -> StringValue {
    let text = String::from_utf8_lossy(value.as_bytes());
    let clean = config.redactor().redact_header(name, &text);
    if NEVER_IN_CLEAR.contains(&name) && clean == text {
        return StringValue::from(config.redactor().replacement().to_owned());
    }
    StringValue::from(clean.into_owned())
}
