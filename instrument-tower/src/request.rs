//! What every layer needs to know about a request, read once into one plain record,
//! and the small customisation points that decide it.
//!
//! A request's head is read once into one record: its [`Protocol`], the method
//! label, its target (`package.Service/Method` for gRPC, the route for HTTP) and its
//! tenant as found (not yet checked against the workflow it is about). The
//! [`InstrumentLayer`](crate::stack::InstrumentLayer) reads it once for all three
//! stages; each layer used alone reads what it needs itself.
//!
//! Customisation points, each a trait with an implementation for closures:
//! - [`Route`]: the `http.route` of a plain HTTP request (default [`DefaultRoute`]: the
//!   route the framework matched, never one made from the raw path; [`NormalizedPath`]
//!   to opt in to one made from it);
//! - [`Filter`]: requests that are not instrumented at all, such as health checks and
//!   `/metrics` (default `()`: every request is);
//!
//! and, for which responses are failures, tower-http's
//! [`MakeClassifier`](tower_http::classify::MakeClassifier) (see
//! [`crate::classify`]).
//!
//! ```
//! use http::Request;
//! use instrument_tower::request::{Filter, Route};
//!
//! let skip_metrics = |parts: &http::request::Parts| parts.uri.path() == "/metrics";
//! let (parts, ()) = Request::get("/metrics").body(()).unwrap().into_parts();
//! assert!(skip_metrics.skip(&parts));
//!
//! let route = |parts: &http::request::Parts| {
//!     parts.uri.path().starts_with("/jobs/").then(|| "/jobs/{job}".to_owned())
//! };
//! let (parts, ()) = Request::get("/jobs/nightly").body(()).unwrap().into_parts();
//! assert_eq!(route.route(&parts).as_deref(), Some("/jobs/{job}"));
//! ```

use std::borrow::Cow;
use std::net::{IpAddr, SocketAddr};
use std::time::{Instant, SystemTime};

use http::header::CONTENT_TYPE;
use http::request::Parts;
use http::{Extensions, HeaderMap, HeaderName, HeaderValue, Method};
use instrument_core::cardinality::normalize_route;
use instrument_core::context::{TRACEPARENT_HEADER, TRACESTATE_HEADER};
use instrument_core::semconv::REQUEST_ID_HEADER;
use instrument_core::tenant::TenantId;

use crate::protocol::{grpc_service_method, Protocol};

/// Picks the `http.route` of a plain HTTP request: the route template the request
/// matched (`/users/{id}`), never its raw path when the path holds ids.
pub trait Route: Send + Sync + 'static {
    /// The route of `request`, or `None` when there is none to give.
    fn route<'a>(&self, request: &'a Parts) -> Option<Cow<'a, str>>;
}

/// Any `Fn(&Parts) -> Option<String>` is a [`Route`].
impl<F> Route for F
where
    F: Fn(&Parts) -> Option<String> + Send + Sync + 'static,
{
    fn route<'a>(&self, request: &'a Parts) -> Option<Cow<'a, str>> {
        self(request).map(Cow::Owned)
    }
}

/// A route hook given as a function or closure to the layers' `route` (a `Route` by
/// this wrapper, so that the closure's argument type is inferred at `route`).
pub struct RouteFn<F, O> {
    hook: F,
    returns: std::marker::PhantomData<fn() -> O>,
}

impl<F, O> RouteFn<F, O> {
    pub(crate) fn new(hook: F) -> Self {
        Self {
            hook,
            returns: std::marker::PhantomData,
        }
    }
}

impl<F: Clone, O> Clone for RouteFn<F, O> {
    fn clone(&self) -> Self {
        Self::new(self.hook.clone())
    }
}

impl<F, O> std::fmt::Debug for RouteFn<F, O> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RouteFn").finish_non_exhaustive()
    }
}

impl<F, O> Route for RouteFn<F, O>
where
    F: Fn(&Parts) -> Option<O> + Send + Sync + 'static,
    O: Into<Cow<'static, str>> + 'static,
{
    fn route<'a>(&self, request: &'a Parts) -> Option<Cow<'a, str>> {
        (self.hook)(request).map(Into::into)
    }
}

/// The default [`Route`]: the route template the framework matched, when it put one in
/// the request's extensions (axum's `MatchedPath`, with the feature `axum`), else none.
/// Never a route made from the raw path: the HTTP conventions set `http.route` only
/// from a route the server knows, so a request without one is named by its method
/// (`GET`) and labelled `_OTHER`. Give [`NormalizedPath`] or a function of your own for
/// a server without a router.
#[derive(Debug, Clone, Copy, Default)]
pub struct DefaultRoute;

impl Route for DefaultRoute {
    #[cfg(feature = "axum")]
    fn route<'a>(&self, request: &'a Parts) -> Option<Cow<'a, str>> {
        MatchedPath.route(request)
    }

    #[cfg(not(feature = "axum"))]
    fn route<'a>(&self, _request: &'a Parts) -> Option<Cow<'a, str>> {
        None
    }
}

/// A [`Route`] made from the path, ids replaced by `{id}` (numbers, UUIDs, long hex;
/// see [`normalize_route`]), so that routes stay few: for a server without a router,
/// by choice (the HTTP conventions want a route the server knows; this one is a
/// guess). Only a route the server answered with anything but 404 becomes a label value.
#[derive(Debug, Clone, Copy, Default)]
pub struct NormalizedPath;

impl Route for NormalizedPath {
    fn route<'a>(&self, request: &'a Parts) -> Option<Cow<'a, str>> {
        Some(normalize_route(request.uri.path()))
    }
}

/// The route axum's router matched (its `MatchedPath` request extension, set when the
/// layer runs inside the router, as with `Router::layer`): `/users/{id}`.
#[cfg(feature = "axum")]
#[cfg_attr(docsrs, doc(cfg(feature = "axum")))]
#[derive(Debug, Clone, Copy, Default)]
pub struct MatchedPath;

#[cfg(feature = "axum")]
impl Route for MatchedPath {
    fn route<'a>(&self, request: &'a Parts) -> Option<Cow<'a, str>> {
        request
            .extensions
            .get::<axum::extract::MatchedPath>()
            .map(|matched| Cow::Borrowed(matched.as_str()))
    }
}

/// Whether a route a hook gave is a template: braces balanced and not nested
/// (`/users/{id}`). A hook's bug (`/users/{id`) is not a route: the request is recorded
/// as one without a route (`_OTHER` in labels, the span named by its method alone), and
/// the first such route is logged. Checked when a route is first named, not on every
/// request.
pub(crate) fn well_formed(route: &str) -> bool {
    let mut open = false;
    let ok = route.bytes().all(|b| match b {
        b'{' if !open => {
            open = true;
            true
        }
        b'}' if open => {
            open = false;
            true
        }
        b'{' | b'}' => false,
        _ => true,
    }) && !open;
    if !ok {
        static SAID: std::sync::Once = std::sync::Once::new();
        SAID.call_once(|| {
            let shown: String = route.chars().take(128).collect();
            tracing::warn!(
                route = %shown,
                "the route hook gave a template with unbalanced braces; such requests are recorded without a route"
            );
        });
    }
    ok
}

/// A [`Route`] that asks `first`, then `then` when `first` has none.
#[derive(Debug, Clone, Copy, Default)]
pub struct OrElse<A, B>(pub A, pub B);

impl<A: Route, B: Route> Route for OrElse<A, B> {
    fn route<'a>(&self, request: &'a Parts) -> Option<Cow<'a, str>> {
        self.0.route(request).or_else(|| self.1.route(request))
    }
}

/// Requests that pass through a layer untouched: no span, no tenant check, no metrics.
pub trait Filter: Send + Sync + 'static {
    /// Whether `request` is left alone.
    fn skip(&self, request: &Parts) -> bool;
}

/// Every request is instrumented.
impl Filter for () {
    fn skip(&self, _: &Parts) -> bool {
        false
    }
}

/// Any `Fn(&Parts) -> bool` is a [`Filter`]: `true` skips the request.
impl<F> Filter for F
where
    F: Fn(&Parts) -> bool + Send + Sync + 'static,
{
    fn skip(&self, request: &Parts) -> bool {
        self(request)
    }
}

/// Why a request has no usable tenant.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum TenantProblem {
    /// No tenant extension and no tenant header.
    Missing,
    /// The tenant header is not a valid tenant id, or there are two.
    Malformed,
    /// The tenant is valid but the workflow the request is about is another tenant's.
    OtherTenant,
}

impl TenantProblem {
    /// `missing`, `malformed` or `other_tenant`: the `reason` label of the rejection
    /// counter.
    pub fn label(self) -> &'static str {
        match self {
            Self::Missing => "missing",
            Self::Malformed => "malformed",
            Self::OtherTenant => "other_tenant",
        }
    }
}

/// A request's tenant as found: the upstream `TenantId` extension (an auth layer's)
/// first, then the `header`. Not yet checked against the workflow it is about.
pub(crate) fn find_tenant(
    headers: &HeaderMap,
    extensions: &Extensions,
    header: &HeaderName,
) -> Result<TenantId, TenantProblem> {
    let mut seen = Seen::default();
    headers.get_all(header).iter().for_each(|v| seen.add(v));
    tenant_of(extensions, Some(&seen))
}

/// The tenant from the extensions, else from the tenant header's values as `seen`
/// (`None`: no tenant header is read).
fn tenant_of(extensions: &Extensions, seen: Option<&Seen<'_>>) -> Result<TenantId, TenantProblem> {
    if let Some(tenant) = extensions.get::<TenantId>() {
        return Ok(tenant.clone());
    }
    let seen = seen.ok_or(TenantProblem::Missing)?;
    let value = seen.first.ok_or(TenantProblem::Missing)?;
    if seen.more {
        // Two tenants for one request: refuse rather than guess.
        return Err(TenantProblem::Malformed);
    }
    TenantId::parse_bytes(value.as_bytes()).map_err(|_| TenantProblem::Malformed)
}

/// The values of one header: the first, and whether there are more.
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct Seen<'a> {
    pub(crate) first: Option<&'a HeaderValue>,
    pub(crate) more: bool,
}

impl<'a> Seen<'a> {
    fn add(&mut self, value: &'a HeaderValue) {
        if self.first.is_none() {
            self.first = Some(value);
        } else {
            self.more = true;
        }
    }

    /// Every value, when `name` is the header seen (`headers` its map).
    pub(crate) fn all(
        &self,
        headers: &'a HeaderMap,
        name: &HeaderName,
    ) -> impl Iterator<Item = &'a [u8]> + 'a {
        let (one, many) = if self.more {
            (None, Some(headers.get_all(name).iter()))
        } else {
            (self.first, None)
        };
        one.into_iter()
            .chain(many.into_iter().flatten())
            .map(HeaderValue::as_bytes)
    }
}

/// The headers the stages read, found in one pass over the request's headers: a
/// request carries a few, and comparing each name with the ones wanted costs less
/// than looking each wanted one up (a lookup hashes the name and probes the map).
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct Wanted<'a> {
    pub(crate) content_type: Option<&'a HeaderValue>,
    pub(crate) tenant: Seen<'a>,
    pub(crate) traceparent: Seen<'a>,
    pub(crate) tracestate: Seen<'a>,
    pub(crate) request_id: Option<&'a HeaderValue>,
}

impl<'a> Wanted<'a> {
    /// Reads `headers`, the tenant from `tenant_header` when given.
    pub(crate) fn read(headers: &'a HeaderMap, tenant_header: Option<&HeaderName>) -> Self {
        let mut wanted = Self::default();
        for (name, value) in headers {
            if name == CONTENT_TYPE {
                wanted.content_type.get_or_insert(value);
            } else if name == TRACEPARENT {
                wanted.traceparent.add(value);
            } else if name == TRACESTATE {
                wanted.tracestate.add(value);
            } else if name == X_REQUEST_ID {
                wanted.request_id.get_or_insert(value);
            } else if tenant_header == Some(name) {
                wanted.tenant.add(value);
            }
        }
        wanted
    }
}

/// The socket address of the connection's other end, from the request's extensions:
/// tonic's `TcpConnectInfo` (feature `tonic`), axum's `ConnectInfo<SocketAddr>` (feature
/// `axum`), or a `SocketAddr` an accept loop put there itself.
pub(crate) fn peer_of(extensions: &Extensions) -> Option<SocketAddr> {
    #[cfg(feature = "tonic")]
    if let Some(info) = extensions.get::<tonic::transport::server::TcpConnectInfo>() {
        return info.remote_addr();
    }
    #[cfg(feature = "axum")]
    if let Some(info) = extensions.get::<axum::extract::ConnectInfo<SocketAddr>>() {
        return Some(info.0);
    }
    extensions.get::<SocketAddr>().copied()
}

/// The client a trusted proxy names: the first address of `Forwarded`'s `for=` (RFC
/// 7239), else of `X-Forwarded-For`. `None` when neither names an IP address (an
/// obfuscated `for=_hidden`, `unknown`).
pub(crate) fn forwarded_client(headers: &HeaderMap) -> Option<IpAddr> {
    let first = |name: &HeaderName| headers.get(name).and_then(|v| v.to_str().ok());
    if let Some(forwarded) = first(&FORWARDED) {
        let element = forwarded.split(',').next().unwrap_or_default();
        let client = element.split(';').find_map(|pair| {
            let (key, value) = pair.trim().split_once('=')?;
            key.trim()
                .eq_ignore_ascii_case("for")
                .then_some(value.trim())
        });
        return client.and_then(parse_node);
    }
    first(&X_FORWARDED_FOR)
        .and_then(|list| list.split(',').next())
        .and_then(|client| parse_node(client.trim()))
}

/// An address as proxies write it: `192.0.2.43`, `"[2001:db8::17]:4711"`,
/// `192.0.2.43:8080`.
fn parse_node(node: &str) -> Option<IpAddr> {
    let node = node.trim_matches('"');
    if let Ok(ip) = node.parse::<IpAddr>() {
        return Some(ip);
    }
    if let Some(rest) = node.strip_prefix('[') {
        return rest.split(']').next()?.parse().ok();
    }
    node.rsplit_once(':')?.0.parse().ok()
}

/// `Forwarded` (RFC 7239) and the older `X-Forwarded-For`.
const FORWARDED: HeaderName = http::header::FORWARDED;
const X_FORWARDED_FOR: HeaderName = HeaderName::from_static("x-forwarded-for");

/// The trace-context and request-id headers, parsed once (a `&str` name is parsed on
/// every lookup).
pub(crate) const TRACEPARENT: HeaderName = HeaderName::from_static(TRACEPARENT_HEADER);
pub(crate) const TRACESTATE: HeaderName = HeaderName::from_static(TRACESTATE_HEADER);
pub(crate) const X_REQUEST_ID: HeaderName = HeaderName::from_static(REQUEST_ID_HEADER);

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

/// What a request is for, borrowed from it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Target<'a> {
    /// A gRPC call: `(service, method)` when the path has that shape.
    Grpc(Option<(&'a str, &'a str)>),
    /// A plain HTTP request: its route, when the route hook gave one.
    Http(Option<Cow<'a, str>>),
}

/// What every stage needs to know about one request, read once (see the
/// [module docs](self)); borrowed from the request, so reading allocates only what
/// a route hook returns.
#[derive(Debug, Clone)]
pub(crate) struct RequestFacts<'a> {
    pub(crate) protocol: Protocol,
    /// The HTTP method label (`GET`, ..., `_OTHER`).
    pub(crate) method: &'static str,
    pub(crate) target: Target<'a>,
    /// The tenant as found (see [`find_tenant`]).
    pub(crate) tenant: Result<TenantId, TenantProblem>,
    /// The headers the stages read.
    pub(crate) headers: Wanted<'a>,
    /// When the request reached the layer.
    pub(crate) start: Instant,
    pub(crate) start_wall: SystemTime,
}

/// How to read a request: the tenant header and the route hook.
#[derive(Debug, Clone)]
pub(crate) struct Reading<R> {
    pub(crate) tenant_header: HeaderName,
    pub(crate) route: R,
}

impl<'a> RequestFacts<'a> {
    /// Reads `request` as `reading` says.
    pub(crate) fn read<R: Route>(request: &'a Parts, reading: &Reading<R>) -> Self {
        Self::read_with(request, Some(&reading.tenant_header), &reading.route)
    }

    /// Reads `request` with `route`, its tenant from its extensions and, when given,
    /// from `tenant_header`.
    pub(crate) fn read_with<R: Route>(
        request: &'a Parts,
        tenant_header: Option<&HeaderName>,
        route: &R,
    ) -> Self {
        let headers = Wanted::read(&request.headers, tenant_header);
        let protocol = Protocol::of_content_type(headers.content_type);
        let target = match protocol {
            Protocol::Grpc => Target::Grpc(grpc_service_method(request.uri.path())),
            Protocol::Http => Target::Http(route.route(request)),
        };
        let tenant = tenant_of(&request.extensions, tenant_header.map(|_| &headers.tenant));
        Self {
            protocol,
            method: method_label(&request.method),
            target,
            tenant,
            headers,
            start: Instant::now(),
            start_wall: SystemTime::now(),
        }
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn only_well_formed_templates_are_routes() {
        for good in ["/", "/users/{id}", "/a/{b}/c/{d}", "/plain", ""] {
            assert!(super::well_formed(good), "{good}");
        }
        for bad in ["/users/{id", "/users/id}", "/{a{b}}", "/{{x}}", "}{"] {
            assert!(!super::well_formed(bad), "{bad}");
        }
    }

    use http::Request;

    use super::*;

    fn parts(request: Request<()>) -> Parts {
        request.into_parts().0
    }

    #[test]
    fn one_pass_finds_every_wanted_header_and_counts_repeats() {
        let request = parts(
            Request::post("/pkg.Svc/Do")
                .header("content-type", "application/grpc+proto")
                .header(
                    "traceparent",
                    "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
                )
                .header("tracestate", "a=1")
                .header("tracestate", "b=2")
                .header("x-tenant-id", "acme")
                .header("x-request-id", "r-1")
                .header("user-agent", "test")
                .body(())
                .unwrap(),
        );
        let tenant = HeaderName::from_static("x-tenant-id");
        let wanted = Wanted::read(&request.headers, Some(&tenant));
        assert_eq!(wanted.content_type.unwrap(), "application/grpc+proto");
        assert!(wanted.traceparent.first.is_some() && !wanted.traceparent.more);
        let states: Vec<&[u8]> = wanted
            .tracestate
            .all(&request.headers, &TRACESTATE)
            .collect();
        assert_eq!(states, [b"a=1".as_slice(), b"b=2"]);
        assert_eq!(wanted.request_id.unwrap(), "r-1");
        assert_eq!(wanted.tenant.first.unwrap(), "acme");
        assert!(!wanted.tenant.more);

        let twice = parts(
            Request::get("/")
                .header("x-tenant-id", "acme")
                .header("x-tenant-id", "globex")
                .body(())
                .unwrap(),
        );
        let facts = RequestFacts::read_with(&twice, Some(&tenant), &NormalizedPath);
        assert_eq!(facts.tenant, Err(TenantProblem::Malformed));
        assert_eq!(facts.protocol, Protocol::Http);
        let none = RequestFacts::read_with(&twice, None, &NormalizedPath);
        assert_eq!(none.tenant, Err(TenantProblem::Missing));
    }

    fn reading() -> Reading<NormalizedPath> {
        Reading {
            tenant_header: HeaderName::from_static("x-tenant-id"),
            route: NormalizedPath,
        }
    }

    #[test]
    fn an_http_request_is_read_once_into_its_facts() {
        let request = Request::post("/orders/12345?x=1")
            .header("x-tenant-id", "acme")
            .body(())
            .unwrap();
        let request = parts(request);
        let facts = RequestFacts::read(&request, &reading());
        assert_eq!(facts.protocol, Protocol::Http);
        assert_eq!(facts.method, "POST");
        assert_eq!(facts.target, Target::Http(Some("/orders/{id}".into())));
        assert_eq!(facts.tenant, Ok(TenantId::parse("acme").unwrap()));
    }

    #[test]
    fn a_grpc_request_has_its_service_and_method() {
        let request = Request::post("/pkg.Svc/Do")
            .header("content-type", "application/grpc+proto")
            .body(())
            .unwrap();
        let request = parts(request);
        let facts = RequestFacts::read(&request, &reading());
        assert_eq!(facts.protocol, Protocol::Grpc);
        assert_eq!(facts.target, Target::Grpc(Some(("pkg.Svc", "Do"))));
        assert_eq!(facts.tenant, Err(TenantProblem::Missing));
    }

    #[test]
    fn the_tenant_extension_wins_and_two_headers_are_malformed() {
        let mut request = Request::get("/")
            .header("x-tenant-id", "acme")
            .body(())
            .unwrap();
        request
            .extensions_mut()
            .insert(TenantId::parse("globex").unwrap());
        let request = parts(request);
        let facts = RequestFacts::read(&request, &reading());
        assert_eq!(facts.tenant.unwrap().as_str(), "globex");
        let two = Request::get("/")
            .header("x-tenant-id", "acme")
            .header("x-tenant-id", "globex")
            .body(())
            .unwrap();
        let two = parts(two);
        let facts = RequestFacts::read(&two, &reading());
        assert_eq!(facts.tenant, Err(TenantProblem::Malformed));
        let bad = Request::get("/")
            .header("x-tenant-id", "a b")
            .body(())
            .unwrap();
        assert_eq!(
            RequestFacts::read(&parts(bad), &reading()).tenant,
            Err(TenantProblem::Malformed)
        );
    }

    #[test]
    fn a_trusted_proxys_client_is_the_first_address_it_names() {
        let headers = |pairs: &[(&str, &str)]| {
            let mut map = HeaderMap::new();
            for (name, value) in pairs {
                map.append(
                    HeaderName::from_bytes(name.as_bytes()).unwrap(),
                    HeaderValue::from_str(value).unwrap(),
                );
            }
            map
        };
        let ip = |s: &str| Some(s.parse::<IpAddr>().unwrap());
        for (pairs, client) in [
            (
                vec![("forwarded", "for=192.0.2.60;proto=http;by=203.0.113.43")],
                ip("192.0.2.60"),
            ),
            (
                vec![(
                    "forwarded",
                    "For=\"[2001:db8:cafe::17]:4711\", for=198.51.100.17",
                )],
                ip("2001:db8:cafe::17"),
            ),
            (vec![("forwarded", "for=192.0.2.43:8080")], ip("192.0.2.43")),
            (
                vec![(
                    "x-forwarded-for",
                    "203.0.113.195, 70.41.3.18, 150.172.238.178",
                )],
                ip("203.0.113.195"),
            ),
            // `Forwarded` wins over the older header.
            (
                vec![
                    ("x-forwarded-for", "10.0.0.1"),
                    ("forwarded", "for=192.0.2.1"),
                ],
                ip("192.0.2.1"),
            ),
            (vec![("forwarded", "for=_hidden")], None),
            (vec![("forwarded", "for=unknown")], None),
            (vec![("x-forwarded-for", "not an address")], None),
            (vec![("forwarded", ";;==,,")], None),
            (vec![], None),
        ] {
            assert_eq!(forwarded_client(&headers(&pairs)), client, "{pairs:?}");
        }
    }

    #[test]
    fn the_peer_is_read_from_what_the_server_put_in_the_extensions() {
        let addr: SocketAddr = "127.0.0.1:4242".parse().unwrap();
        let mut extensions = Extensions::new();
        assert_eq!(peer_of(&extensions), None);
        extensions.insert(addr);
        assert_eq!(peer_of(&extensions), Some(addr));
    }

    #[test]
    fn routes_come_from_the_hook_then_the_fallback() {
        let hook = |p: &Parts| {
            p.uri
                .path()
                .starts_with("/jobs/")
                .then(|| "/jobs/{job}".to_owned())
        };
        let both = OrElse(hook, NormalizedPath);
        let jobs = parts(Request::get("/jobs/nightly").body(()).unwrap());
        let other = parts(Request::get("/users/42").body(()).unwrap());
        assert_eq!(both.route(&jobs).as_deref(), Some("/jobs/{job}"));
        assert_eq!(both.route(&other).as_deref(), Some("/users/{id}"));
        assert_eq!(hook.route(&other), None);
        assert!(!().skip(&jobs));
        assert_eq!(
            method_label(&Method::from_bytes(b"BREW").unwrap()),
            "_OTHER"
        );
    }
}
