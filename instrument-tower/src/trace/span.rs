//! The trace stage: how a server span starts and how it ends. Used by
//! [`Trace`](super::Trace) and by the [`InstrumentLayer`](crate::stack::InstrumentLayer)'s
//! service, over the request's [`RequestFacts`].

use std::borrow::Cow;
use std::net::IpAddr;
use std::sync::Arc;

use http::header::{HOST, USER_AGENT};
use http::request::Parts;
use http::uri::Authority;
use http::{HeaderName, HeaderValue, Response, Version};
#[cfg(feature = "sdk")]
use instrument_core::context::unsampled_child;
use instrument_core::context::{
    child_context, extract, trace_id_hex, with_request_id, Incoming, ParentPolicy, RequestId,
    Restored,
};
use instrument_core::redact::Redactor;
#[cfg(feature = "sdk")]
use instrument_core::sampling::{KeptFor, TailWatch};
use instrument_core::semconv::{
    RpcConventions, CANCELLED, CLIENT_ADDRESS, CLIENT_PORT, ERROR_TYPE, HTTP_REQUEST_HEADER_PREFIX,
    HTTP_REQUEST_ID, HTTP_REQUEST_METHOD_ORIGINAL, HTTP_RESPONSE_STATUS_CODE,
    INCOMING_PARENT_INVALID, MAX_ORIGINAL_LEN, NETWORK_PEER_ADDRESS, NETWORK_PEER_PORT,
    NETWORK_PROTOCOL_VERSION, OTHER, REQUEST_ID_HEADER, RPC_GRPC_STATUS_CODE,
    RPC_RESPONSE_STATUS_CODE, SERVER_ADDRESS, SERVER_PORT, STORED_PARENT_UNUSED, TRACKING_HEADER,
    URL_PATH, URL_QUERY, URL_SCHEME, USER_AGENT_ORIGINAL,
};
use instrument_core::tenant::with_tenant;
use opentelemetry::trace::{Link, Span as _, SpanKind, Status, TraceContextExt as _, Tracer as _};
use opentelemetry::{Context, Key, KeyValue, StringValue, Value};

use crate::body::{Observe, Outcome};
use crate::names::{cut, Looked, Names, Repeated, Settled};
use crate::protocol::grpc_code_name;
use crate::protocol::Protocol;
use crate::request::{forwarded_client, peer_of, RequestFacts, Wanted, TRACEPARENT, TRACESTATE};
use crate::source::{SourceError, StoredTrace};
use crate::tracer::LayerTracer;

/// How server spans are made: the trace stage's configuration.
#[derive(Clone)]
pub(crate) struct SpanConfig {
    pub(crate) tracer: LayerTracer,
    pub(crate) policy: ParentPolicy,
    pub(crate) tracking: Option<HeaderName>,
    /// Headers recorded on the span, with their attribute keys.
    pub(crate) headers: Vec<(HeaderName, Key)>,
    /// Set by the builder; else the process-wide one.
    pub(crate) redactor: Option<Redactor>,
    /// The names of the targets seen, redacted.
    pub(crate) names: Names,
    /// `client.address` from `Forwarded` / `X-Forwarded-For`: a trusted proxy sets them.
    pub(crate) behind_proxy: bool,
    /// Streamed gRPC responses' messages counted, sized and (capped) on the span.
    pub(crate) record_messages: bool,
    /// The address attributes of the first few peers, redacted by `redactor`.
    pub(crate) peers: Arc<Peers>,
}

/// `network.peer.address` and `client.address` made once for each of the first few
/// addresses a layer sees (the proxy, sidecar or load balancer in front of a service,
/// an internal service's few clients), later requests from them sharing the value:
/// formatting an address and redacting it cost about 1,700 instructions and an
/// allocation per request. Past them, each request makes its own.
#[derive(Debug, Default)]
pub(crate) struct Peers {
    network: Repeated<KeyValue, IpAddr>,
    client: Repeated<KeyValue, IpAddr>,
}

impl std::fmt::Debug for SpanConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SpanConfig")
            .field("policy", &self.policy)
            .field("tracking", &self.tracking)
            .field("headers", &self.headers)
            .finish_non_exhaustive()
    }
}

impl Default for SpanConfig {
    fn default() -> Self {
        Self {
            tracer: LayerTracer::default(),
            policy: ParentPolicy::default(),
            tracking: Some(HeaderName::from_static(TRACKING_HEADER)),
            headers: Vec::new(),
            redactor: None,
            names: Names::default(),
            behind_proxy: false,
            record_messages: false,
            peers: Arc::default(),
        }
    }
}

impl SpanConfig {
    /// Redacts with `redactor` from now on (values made by the one before are dropped).
    pub(crate) fn set_redactor(&mut self, redactor: Redactor) {
        self.redactor = Some(redactor);
        self.peers = Arc::default();
    }

    pub(crate) fn redactor(&self) -> &Redactor {
        match &self.redactor {
            Some(redactor) => redactor,
            None => instrument_core::redact::global(),
        }
    }

    pub(crate) fn tracer(&self) -> &LayerTracer {
        self.tracer.get()
    }

    pub(crate) fn record_headers(&mut self, names: impl IntoIterator<Item = HeaderName>) {
        self.headers = names
            .into_iter()
            .map(|name| {
                let key = Key::from(format!("{HTTP_REQUEST_HEADER_PREFIX}{}", name.as_str()));
                (name, key)
            })
            .collect();
    }
}

/// A server span that has started, in the context the request is served in.
#[derive(Debug)]
pub(crate) struct Started {
    pub(crate) cx: Context,
    /// What the request is for, as named when it started.
    pub(crate) looked: Looked,
}

/// What a sampled-out request's end needs under tail bias (see
/// `instrument_core::sampling::TailBias`), kept in its watch: when it started, its
/// parent, and the few request facts its span would carry that the end cannot tell.
#[cfg(feature = "sdk")]
#[derive(Debug)]
pub(crate) struct TailRequest {
    start: std::time::Instant,
    start_wall: std::time::SystemTime,
    /// The remote parent's span id; `None` for a root.
    parent: Option<opentelemetry::trace::SpanId>,
    protocol: Protocol,
    /// HTTP only: `url.*`.
    uri: Option<http::Uri>,
    peer: Option<std::net::SocketAddr>,
    forwarded: Option<IpAddr>,
}

/// `cx` under a tail watch for its sampled-out request (whose parent is `parent`),
/// with the request facts its end will need, when tail bias is on.
#[cfg(feature = "sdk")]
#[inline(never)]
fn watched(
    config: &SpanConfig,
    cx: Context,
    parent: Option<opentelemetry::trace::SpanId>,
    facts: &RequestFacts<'_>,
    parts: &Parts,
) -> Context {
    let request = || TailRequest {
        start: facts.start,
        start_wall: facts.start_wall,
        parent,
        protocol: facts.protocol,
        uri: (facts.protocol == Protocol::Http).then(|| parts.uri.clone()),
        peer: peer_of(&parts.extensions),
        forwarded: if config.behind_proxy && facts.protocol == Protocol::Http {
            forwarded_client(&parts.headers)
        } else {
            None
        },
    };
    match TailWatch::begin(request) {
        Some(watch) => cx.with_value(watch),
        None => cx,
    }
}

/// Headers never recorded in clear, whatever the redaction policy says (beside any a
/// layer such as tower-http's `SetSensitiveRequestHeadersLayer` marked sensitive).
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
/// and the caller's `traceparent`, its name and attributes from the `facts`, the
/// request's tenant (as found) in its context. Returns the stored trace found, for the
/// caller to put in the request's extensions.
pub(crate) fn start(
    config: &SpanConfig,
    facts: &RequestFacts<'_>,
    parts: &Parts,
    found: Option<Result<Option<StoredTrace>, SourceError>>,
) -> (Started, Option<StoredTrace>) {
    let redactor = config.redactor();
    let looked = config
        .names
        .of(&facts.target, facts.method, parts.uri.path(), redactor);
    let wanted = &facts.headers;
    let incoming = extract(
        wanted.traceparent.all(&parts.headers, &TRACEPARENT),
        wanted.tracestate.all(&parts.headers, &TRACESTATE),
    );
    // Why a parent was not used: rare, so no allocation unless there is one.
    let mut notes = Vec::new();
    if let Incoming::Invalid(e) = &incoming {
        notes.push(clean(redactor, INCOMING_PARENT_INVALID, &e.to_string()));
    }
    let (stored_parent, stored) = stored_parent(config, facts, found, &mut notes);
    let choice = config
        .policy
        .choose(stored_parent.as_ref(), incoming.span_context());

    let tracer = config.tracer();
    let base = Context::current();
    // The request's tenant (as found) and tower-http's request id, for what runs and is
    // logged while serving the request.
    let scoped = |cx: Context| {
        let cx = match &facts.tenant {
            Ok(tenant) => with_tenant(&cx, tenant.clone()),
            Err(_) => cx,
        };
        match wanted
            .request_id
            .and_then(|id| RequestId::parse(id.as_bytes()))
        {
            Some(id) => with_request_id(&cx, id),
            None => cx,
        }
    };
    // Under an unsampled parent, a tracer whose sampler follows the parent records
    // nothing: the request continues in the context of a span it would drop, made
    // without asking it (no span, builder, parent context or processors:
    // `full_stack_request/sampled_out`).
    #[cfg(feature = "sdk")]
    if let Some(parent) = choice
        .parent
        .as_ref()
        .filter(|sc| !sc.is_sampled() && tracer.drops_unsampled_children())
    {
        let own = unsampled_child(parent, LayerTracer::new_span_id());
        let cx = if incoming.span_context() == Some(parent) {
            incoming.apply_child_to(&base, own)
        } else {
            base.with_remote_span_context(own)
        };
        let mut cx = scoped(cx);
        if instrument_core::sampling::installed_tail_bias().is_some() {
            cx = watched(config, cx, Some(parent.span_id()), facts, parts);
        }
        return (Started { cx, looked }, stored);
    }
    // Under a sampled parent the span is almost surely recorded (parent-based
    // sampling), and so is a root under a sampler known to sample every root (the
    // pipeline's default): its attributes go to the sampler with it, in the vector the
    // span keeps. Otherwise (an unsampled parent: at 1 % sampling, 99 requests in 100;
    // a root under a ratio) they are made only once the sampler chose to record the
    // span: nothing is built for a span nobody sees.
    let likely_recorded = match &choice.parent {
        Some(parent) => parent.is_sampled(),
        None => tracer.samples_roots(),
    };
    let parent_cx = scoped(match choice.parent {
        // The caller's parent: its whole tracestate goes on with it.
        Some(sc) if incoming.span_context() == Some(&sc) => incoming.apply_to(&base),
        Some(sc) => base.with_remote_span_context(sc),
        None => base,
    });
    let attributes = || {
        span_attributes(
            config,
            redactor,
            &looked,
            notes,
            parts,
            wanted,
            facts.protocol,
        )
    };
    let mut builder = tracer
        .span_builder(looked.span_name())
        .with_kind(SpanKind::Server)
        .with_start_time(facts.start_wall);
    if let Some(link) = choice.link {
        builder = builder.with_links(vec![Link::with_context(link)]);
    }
    let mut later = None;
    if likely_recorded {
        builder = builder.with_attributes(attributes());
    } else {
        later = Some(attributes);
    }
    let mut span = tracer.build_with_context(builder, &parent_cx);
    if let Some(attributes) = later.filter(|_| span.is_recording()) {
        span.set_attributes(attributes());
    }
    #[cfg(feature = "sdk")]
    if !span.is_recording() && instrument_core::sampling::installed_tail_bias().is_some() {
        let parent = parent_cx.span();
        let parent = Some(parent.span_context())
            .filter(|sc| sc.is_valid())
            .map(|sc| sc.span_id());
        let cx = watched(
            config,
            child_context(&parent_cx, span),
            parent,
            facts,
            parts,
        );
        return (Started { cx, looked }, stored);
    }
    (
        Started {
            cx: child_context(&parent_cx, span),
            looked,
        },
        stored,
    )
}

/// The attributes a server span starts with: what the request is for, why a parent was
/// not used (`notes`), the recorded headers and the request id, then the redactor's
/// vouch for all of them.
fn span_attributes(
    config: &SpanConfig,
    redactor: &Redactor,
    looked: &Looked,
    notes: Vec<KeyValue>,
    parts: &Parts,
    wanted: &Wanted<'_>,
    protocol: Protocol,
) -> Vec<KeyValue> {
    // The SDK keeps this vector as the span's until the span is exported: room for
    // what the span starts with and for what a request's end usually adds
    // ([`later_attributes`]), no more. Spare room would wait in the export queue with
    // every span, and past 18 attributes (1 KiB) glibc's `malloc` serves the vector from
    // its large bins, consolidating its fast bins first (about 800 instructions, in
    // `full_stack_request/sampled`). A span that gets more than counted here (a
    // handler's own attributes) grows it once.
    let http = match protocol {
        // `url.path`, `url.scheme`, `network.protocol.version`, `user_agent.original`,
        // `client.*`; `url.query` and `http.request.method_original` when there are.
        Protocol::Http => {
            6 + usize::from(parts.uri.query().is_some()) + usize::from(looked.method() == OTHER)
        }
        _ => 0,
    };
    // `server.*` and `network.peer.*` (two each), the vouch; the request id when sent.
    let capacity = looked.span_attributes().len()
        + notes.len()
        + http
        + 5
        + usize::from(wanted.request_id.is_some())
        + config.headers.len()
        + later_attributes(protocol, looked.named.rpc);
    let mut attributes = Vec::with_capacity(capacity);
    attributes.extend(looked.span_attributes().iter().cloned());
    attributes.extend(notes);
    if protocol == Protocol::Http {
        http_attributes(redactor, looked, parts, &mut attributes);
    }
    server_attributes(redactor, looked, parts, &mut attributes);
    peer_attributes(config, redactor, parts, protocol, &mut attributes);
    for (name, key) in &config.headers {
        let values: Vec<StringValue> = parts
            .headers
            .get_all(name)
            .iter()
            .map(|value| header_value(redactor, name.as_str(), key.as_str(), value))
            .collect();
        if !values.is_empty() {
            attributes.push(KeyValue::new(key.clone(), Value::Array(values.into())));
        }
    }
    // tower-http's `SetRequestIdLayer` id, when it ran before (or a caller sent one).
    if let Some(id) = wanted.request_id {
        let value = header_value(redactor, REQUEST_ID_HEADER, HTTP_REQUEST_ID, id);
        attributes.push(KeyValue::new(
            HTTP_REQUEST_ID,
            Value::Array(vec![value].into()),
        ));
    }
    // Everything so far went through the redactor: the export need not scan it again.
    attributes.extend(redactor.vouch());
    attributes
}

/// Attributes a request's span (`protocol`, following `rpc`) usually gets after it
/// starts: the pipeline's tenant, the status code (gRPC's two under both RPC
/// conventions), `error.type` when it failed.
pub(crate) fn later_attributes(protocol: Protocol, rpc: RpcConventions) -> usize {
    3 + usize::from(protocol == Protocol::Grpc && rpc.old() && rpc.current())
}

/// Longest `url.path`, `url.query`, `user_agent.original` or recorded header value, in
/// bytes (cut on a char boundary): a client's 64 KiB header is not a 64 KiB attribute.
const MAX_URL_LEN: usize = 2048;

/// `value` redacted as the attribute `key`, cut to `max` bytes.
fn capped(redactor: &Redactor, key: &'static str, value: &str, max: usize) -> KeyValue {
    let mut clean = redactor.redact_attribute(key, value).into_owned();
    cut(&mut clean, max);
    KeyValue::new(key, clean)
}

/// [`capped`], its value shared: kept for a target's later requests, each clones it by
/// a reference count.
fn capped_shared(redactor: &Redactor, key: &'static str, value: &str, max: usize) -> KeyValue {
    let mut clean = redactor.redact_attribute(key, value);
    if clean.len() > max {
        let mut owned = clean.into_owned();
        cut(&mut owned, max);
        clean = Cow::Owned(owned);
    }
    KeyValue::new(key, StringValue::from(Arc::<str>::from(clean.as_ref())))
}

/// The attribute made from `value` for `looked`'s target, from its repeated values
/// `seen` when they hold it.
fn repeated<T: Clone>(seen: &Repeated<T>, value: &str, make: impl Fn() -> T) -> T {
    kept_or_made(seen.get_or_make(value, make))
}

/// A kept value's clone (a reference count), or the one made for this request.
fn kept_or_made<T: Clone>(found: Result<&T, T>) -> T {
    match found {
        Ok(kept) => kept.clone(),
        Err(made) => made,
    }
}

/// The HTTP server conventions' attributes the request tells: `url.path`, `url.query`,
/// `url.scheme`, `network.protocol.version`, `user_agent.original`, and
/// `http.request.method_original` for a method the conventions do not know. Values a
/// client chose are redacted and capped.
fn http_attributes(
    redactor: &Redactor,
    looked: &Looked,
    parts: &Parts,
    attributes: &mut Vec<KeyValue>,
) {
    attributes.push(capped(redactor, URL_PATH, parts.uri.path(), MAX_URL_LEN));
    if let Some(query) = parts.uri.query() {
        attributes.push(capped(redactor, URL_QUERY, query, MAX_URL_LEN));
    }
    let scheme = match parts.uri.scheme_str() {
        Some("https") => "https",
        _ => "http",
    };
    attributes.push(KeyValue::new(URL_SCHEME, scheme));
    let version = match parts.version {
        Version::HTTP_09 => Some("0.9"),
        Version::HTTP_10 => Some("1.0"),
        Version::HTTP_11 => Some("1.1"),
        Version::HTTP_2 => Some("2"),
        Version::HTTP_3 => Some("3"),
        _ => None,
    };
    if let Some(version) = version {
        attributes.push(KeyValue::new(NETWORK_PROTOCOL_VERSION, version));
    }
    // One pass, as the attribute (not as the header too: `user-agent` is no credential).
    match parts.headers.get(USER_AGENT) {
        Some(agent) if agent.is_sensitive() => attributes.push(KeyValue::new(
            USER_AGENT_ORIGINAL,
            redactor.replacement().to_owned(),
        )),
        Some(agent) => {
            let text = String::from_utf8_lossy(agent.as_bytes());
            let make = || capped_shared(redactor, USER_AGENT_ORIGINAL, &text, MAX_URL_LEN);
            attributes.push(repeated(&looked.named.seen.agent, &text, make));
        }
        None => {}
    }
    if looked.method() == OTHER {
        let method = parts.method.as_str();
        attributes.push(capped(
            redactor,
            HTTP_REQUEST_METHOD_ORIGINAL,
            method,
            MAX_ORIGINAL_LEN,
        ));
    }
}

/// `server.address` and `server.port`: the host and port the client addressed (the
/// URL's authority, else the `Host` header), redacted; made once for each of the first
/// few authorities a target's requests address.
fn server_attributes(
    redactor: &Redactor,
    looked: &Looked,
    parts: &Parts,
    attributes: &mut Vec<KeyValue>,
) {
    let authority = match parts.uri.authority() {
        Some(authority) => authority.as_str(),
        None => match parts.headers.get(HOST).and_then(|v| v.to_str().ok()) {
            Some(host) => host,
            None => return,
        },
    };
    let make = || server_of(redactor, authority);
    match looked.named.seen.server.get_or_make(authority, make) {
        Ok(kept) => attributes.extend(kept.iter().cloned()),
        Err(made) => attributes.extend(made),
    }
}

/// `network.peer.address` and `network.peer.port` (the connection's other end, when the
/// server put it in the request's extensions), and for HTTP `client.address`: the client
/// a trusted proxy names (`behind_trusted_proxy`), else the peer. Addresses go through
/// the redactor (its IP rule, off by default, masks them).
fn peer_attributes(
    config: &SpanConfig,
    redactor: &Redactor,
    parts: &Parts,
    protocol: Protocol,
    attributes: &mut Vec<KeyValue>,
) {
    let peer = peer_of(&parts.extensions);
    let forwarded = if config.behind_proxy && protocol == Protocol::Http {
        forwarded_client(&parts.headers)
    } else {
        None
    };
    addresses(
        redactor,
        &config.peers,
        peer,
        forwarded,
        protocol,
        attributes,
    );
}

/// The attributes of [`peer_attributes`], from the peer and the client a trusted proxy
/// named.
#[inline]
fn addresses(
    redactor: &Redactor,
    peers: &Peers,
    peer: Option<std::net::SocketAddr>,
    forwarded: Option<IpAddr>,
    protocol: Protocol,
    attributes: &mut Vec<KeyValue>,
) {
    let address = |seen: &Repeated<KeyValue, IpAddr>, key: &'static str, ip: IpAddr| {
        let make = || {
            let text = ip.to_string();
            let clean = redactor.redact_attribute(key, &text);
            KeyValue::new(key, StringValue::from(Arc::<str>::from(clean.as_ref())))
        };
        kept_or_made(seen.find(&ip, |ip| *ip, make))
    };
    if let Some(peer) = peer {
        attributes.push(address(&peers.network, NETWORK_PEER_ADDRESS, peer.ip()));
        attributes.push(KeyValue::new(NETWORK_PEER_PORT, i64::from(peer.port())));
    }
    if protocol != Protocol::Http {
        return;
    }
    match (forwarded, peer) {
        (Some(client), _) => attributes.push(address(&peers.client, CLIENT_ADDRESS, client)),
        (None, Some(peer)) => {
            attributes.push(address(&peers.client, CLIENT_ADDRESS, peer.ip()));
            attributes.push(KeyValue::new(CLIENT_PORT, i64::from(peer.port())));
        }
        (None, None) => {}
    }
}

/// `server.address` and `server.port` of `authority`; none when it is no authority.
fn server_of(redactor: &Redactor, authority: &str) -> Vec<KeyValue> {
    let Ok(authority) = authority.parse::<Authority>() else {
        return Vec::new();
    };
    let mut attributes = Vec::with_capacity(2);
    attributes.push(capped_shared(
        redactor,
        SERVER_ADDRESS,
        authority.host(),
        MAX_ORIGINAL_LEN,
    ));
    if let Some(port) = authority.port_u16() {
        attributes.push(KeyValue::new(SERVER_PORT, i64::from(port)));
    }
    attributes
}

/// The stored parent to use, and the stored trace found (never another tenant's
/// parent); why a stored context was not used is recorded.
fn stored_parent(
    config: &SpanConfig,
    facts: &RequestFacts<'_>,
    found: Option<Result<Option<StoredTrace>, SourceError>>,
    attributes: &mut Vec<KeyValue>,
) -> (
    Option<opentelemetry::trace::SpanContext>,
    Option<StoredTrace>,
) {
    match found {
        None => (None, None),
        Some(Err(e)) => {
            tracing::warn!(
                error = %config.redactor().error_text(&e.to_string()),
                "trace source lookup failed; the request goes on without its stored context"
            );
            attributes.push(clean(
                config.redactor(),
                STORED_PARENT_UNUSED,
                "lookup failed",
            ));
            (None, None)
        }
        Some(Ok(None)) => {
            attributes.push(clean(config.redactor(), STORED_PARENT_UNUSED, "not found"));
            (None, None)
        }
        Some(Ok(Some(trace))) => {
            let parent = match trace.restored() {
                // Another tenant's trace is never joined (nor its id sent back).
                _ if facts.tenant.as_ref().ok() != Some(trace.tenant()) => {
                    attributes.push(clean(
                        config.redactor(),
                        STORED_PARENT_UNUSED,
                        "another tenant",
                    ));
                    None
                }
                Restored::Parent(sc) => Some(sc.clone()),
                Restored::Fresh { reason } => {
                    attributes.push(clean(
                        config.redactor(),
                        STORED_PARENT_UNUSED,
                        &reason.to_string(),
                    ));
                    None
                }
            };
            (parent, Some(trace))
        }
    }
}

/// `key = value` as the export's redaction would leave it.
fn clean(redactor: &Redactor, key: &'static str, value: &str) -> KeyValue {
    KeyValue::new(key, redactor.redact_attribute(key, value).into_owned())
}

/// A header value as recorded: redacted, and masked whole when it is marked sensitive
/// (tower-http's `SetSensitiveRequestHeadersLayer`) or is a credential header the
/// policy let through.
fn header_value(redactor: &Redactor, name: &str, key: &str, value: &HeaderValue) -> StringValue {
    let mask = || StringValue::from(redactor.replacement().to_owned());
    if value.is_sensitive() {
        return mask();
    }
    let text = String::from_utf8_lossy(value.as_bytes());
    // As the header (`authorization` keeps its scheme), then as the attribute the
    // export would scan.
    let clean = match redactor.redact_attribute(name, &text) {
        Cow::Borrowed(_) => redactor.redact_attribute(key, &text),
        Cow::Owned(masked) => Cow::Owned(redactor.redact_attribute(key, &masked).into_owned()),
    };
    if NEVER_IN_CLEAR.contains(&name) && clean == text {
        return mask();
    }
    let mut clean = clean.into_owned();
    cut(&mut clean, MAX_URL_LEN);
    StringValue::from(clean)
}

/// Puts the trace id in the tracking header of `response`.
pub(crate) fn track<B>(config: &SpanConfig, cx: &Context, response: &mut Response<B>) {
    if let Some(name) = &config.tracking {
        let span = cx.span();
        let sc = span.span_context();
        if sc.is_valid() {
            if let Ok(mut value) = HeaderValue::from_bytes(&trace_id_hex(sc.trace_id())) {
                // Never indexed (HPACK): a value new on every response would only push
                // useful entries out of both ends' header tables (~4,000 instructions
                // of table upkeep per response in h2).
                value.set_sensitive(true);
                response.headers_mut().insert(name.clone(), value);
            }
        }
    }
}

/// Ends a server span when its response body ends (an opaque part of the layers'
/// response body types).
#[derive(Debug)]
pub struct SpanEnd {
    pub(crate) config: Arc<SpanConfig>,
    pub(crate) started: Started,
    /// The answer came from the tenant check, not the service: it recognises nothing.
    refused: bool,
}

impl SpanEnd {
    pub(crate) fn new(config: Arc<SpanConfig>, started: Started) -> Self {
        Self {
            config,
            started,
            refused: false,
        }
    }

    /// The end of a request the tenant check answered (`refused`): its answer says
    /// nothing about the target, which stays as recognised as it was.
    pub(crate) fn answered_by_check(mut self, refused: bool) -> Self {
        self.refused = refused;
        self
    }
}

/// Marks a response the tenant check made (a refusal): a trace layer outside the tenant
/// layer does not take it as the service recognising the target, so a client cannot
/// make up label values with paths that are refused.
#[derive(Debug, Clone, Copy)]
pub(crate) struct RefusedByCheck;

impl Observe for SpanEnd {
    fn finish(self, outcome: &Outcome) {
        let looked = &self.started.looked;
        let settled = if self.refused {
            Names::unanswered(looked)
        } else {
            self.config.names.settle(looked, outcome)
        };
        end(&self.config, &self.started, outcome, settled);
    }
}

/// Whether `cx`'s span records (a span the sampler dropped takes nothing but its end).
fn recording(cx: &Context) -> bool {
    cx.span().is_recording()
}

/// Ends the span `started` with `outcome` (see [`end`]).
pub(crate) fn end_started(config: &SpanConfig, started: &Started, outcome: &Outcome) {
    let settled = config.names.settle(&started.looked, outcome);
    end(config, started, outcome, settled);
}

/// Records how the request ended on its span (and what it was for, when only the end
/// told) and ends it. A sampled-out request under tail bias is decided here: when it
/// is kept, its span is made now and ends the same way.
pub(crate) fn end(config: &SpanConfig, started: &Started, outcome: &Outcome, settled: Settled<'_>) {
    let cx = &started.cx;
    if !recording(cx) {
        #[cfg(feature = "sdk")]
        if let Some(watch) = watch_of(cx) {
            if let Some(kept) = decide(watch, config, started, outcome, &settled) {
                finish(config, &kept, outcome, settled);
            }
            return;
        }
        cx.span().end();
        return;
    }
    finish(config, cx, outcome, settled);
}

/// Records the end on the recording span of `cx` and ends it.
#[inline]
fn finish(config: &SpanConfig, cx: &Context, outcome: &Outcome, settled: Settled<'_>) {
    let span = cx.span();
    if let Some((name, attributes)) = settled.span_update() {
        span.update_name(name);
        for attribute in attributes {
            span.set_attribute(attribute.clone());
        }
    }
    let failure = outcome
        .failure()
        .map(|text| config.redactor().error_text(text));
    match outcome {
        Outcome::Responded {
            http,
            grpc,
            cancelled,
            ..
        } => {
            match grpc {
                Some(code) => {
                    let rpc = settled.rpc();
                    if rpc.old() {
                        span.set_attribute(KeyValue::new(RPC_GRPC_STATUS_CODE, i64::from(*code)));
                    }
                    if rpc.current() {
                        span.set_attribute(KeyValue::new(
                            RPC_RESPONSE_STATUS_CODE,
                            grpc_code_name(*code),
                        ));
                    }
                }
                None => {
                    span.set_attribute(KeyValue::new(HTTP_RESPONSE_STATUS_CODE, i64::from(*http)));
                }
            }
            if *cancelled {
                span.set_attribute(KeyValue::new(CANCELLED, true));
            }
            if let Some(failure) = failure {
                // The code's name says more than tower-http's text for a gRPC status;
                // `error.type` is the code (as the HTTP and RPC conventions say).
                let (description, error_type) = match grpc {
                    Some(code) => {
                        let name = grpc_code_name(*code);
                        (name.to_owned(), Value::from(name))
                    }
                    None => (failure, Value::from(http.to_string())),
                };
                span.set_attribute(KeyValue::new(ERROR_TYPE, error_type));
                span.set_status(Status::error(description));
            }
        }
        Outcome::Failed(_) => {
            // No status to name the failure by: `_OTHER`, the text in the status.
            span.set_attribute(KeyValue::new(ERROR_TYPE, OTHER));
            span.set_status(Status::error(failure.unwrap_or_default()));
        }
        Outcome::Cancelled => span.set_attribute(KeyValue::new(CANCELLED, true)),
    }
    span.end();
}

/// The tail watch of a sampled-out request's context (none unless tail bias is on).
#[cfg(feature = "sdk")]
fn watch_of(cx: &Context) -> Option<&TailWatch> {
    instrument_core::sampling::installed_tail_bias()?;
    cx.get::<TailWatch>()
}

/// Decides whether the sampled-out request `watch` watches is kept (failed, or slower
/// than its threshold): the context of its span, made now, when it is; its held spans
/// follow the decision.
#[cfg(feature = "sdk")]
#[inline(never)]
fn decide(
    watch: &TailWatch,
    config: &SpanConfig,
    started: &Started,
    outcome: &Outcome,
    settled: &Settled<'_>,
) -> Option<Context> {
    let request = watch.request::<TailRequest>()?;
    let failed = outcome.failure().is_some() || watch.failed_inside();
    let name = || match settled.span_update() {
        Some((name, _)) => name,
        None => started.looked.span_name(),
    };
    let Some(why) = watch
        .config()
        .verdict(failed, request.start.elapsed(), name)
    else {
        watch.decide(None);
        return None;
    };
    let cx = request.span(watch, config, started, why);
    watch.decide(Some(why));
    Some(cx)
}

#[cfg(feature = "sdk")]
impl TailRequest {
    /// The kept request's server span, with the ids it already had, its start time,
    /// its target's attributes, URL and peer, and the events its handler logged.
    fn span(
        &self,
        watch: &TailWatch,
        config: &SpanConfig,
        started: &Started,
        why: KeptFor,
    ) -> Context {
        use opentelemetry::trace::{SpanContext, Tracer as _};
        let redactor = config.redactor();
        let looked = &started.looked;
        let own = started.cx.span().span_context().clone();
        let parent = match self.parent {
            Some(id) => SpanContext::new(
                own.trace_id(),
                id,
                own.trace_flags(),
                true,
                own.trace_state().clone(),
            ),
            None => SpanContext::empty_context(),
        };
        let parent_cx = TailWatch::keep_in(&started.cx.with_remote_span_context(parent), why);
        let mut attributes = Vec::with_capacity(looked.span_attributes().len() + 12);
        attributes.extend(looked.span_attributes().iter().cloned());
        if let Some(uri) = &self.uri {
            attributes.push(capped(redactor, URL_PATH, uri.path(), MAX_URL_LEN));
            if let Some(query) = uri.query() {
                attributes.push(capped(redactor, URL_QUERY, query, MAX_URL_LEN));
            }
            let scheme = match uri.scheme_str() {
                Some("https") => "https",
                _ => "http",
            };
            attributes.push(KeyValue::new(URL_SCHEME, scheme));
        }
        addresses(
            redactor,
            &config.peers,
            self.peer,
            self.forwarded,
            self.protocol,
            &mut attributes,
        );
        let tracer = config.tracer();
        let builder = tracer
            .span_builder(looked.span_name())
            .with_kind(SpanKind::Server)
            .with_start_time(self.start_wall)
            .with_attributes(attributes);
        let mut span =
            instrument_core::context::with_preset_ids(Some(own.trace_id()), own.span_id(), || {
                tracer.build_with_context(builder, &parent_cx)
            });
        for (name, time, attributes) in watch.take_events() {
            let error = attributes
                .iter()
                .any(|kv| kv.key.as_str() == "level" && kv.value.as_str() == "ERROR");
            if error {
                span.set_status(Status::error(name.clone()));
            }
            span.add_event_with_timestamp(name, time, attributes);
        }
        child_context(&parent_cx, span)
    }
}
