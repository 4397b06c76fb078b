//! What a request is for, as spans and metrics name it, and which targets the server
//! recognises: a client chooses the path it sends, so only what the server answers
//! becomes a span name or a label value.
//!
//! # Recognised targets
//!
//! A gRPC method is recognised once the server answered a call to it with anything
//! but `UNIMPLEMENTED` (tonic's answer to a path no service declares), or, when the
//! layer is given the list of methods ([`InstrumentBuilder::grpc_methods`]), when it is
//! on that list. An HTTP route (from the route hook: axum's `MatchedPath`, a user
//! function) is recognised once the server answered it with anything but 404. Until
//! then, and for ever when it never is:
//! - gRPC: the span is named `grpc` (the `rpc.system`), `rpc.method` is `_OTHER` and
//!   `rpc.method_original` holds what the client sent (redacted, cut at
//!   [`MAX_ORIGINAL_LEN`](instrument_core::semconv::MAX_ORIGINAL_LEN) bytes); the
//!   metrics' `rpc_service` and `rpc_method` are `_OTHER`;
//! - HTTP: the span is named `{method}` with no `http.route`; the metrics' `route` is
//!   `_OTHER`.
//!
//! A call to a method not yet recognised starts its span under the `_OTHER` names and
//! renames it when the answer recognises the method, so the first calls of each
//! method are named right too. A method a handler answers with `UNIMPLEMENTED` on
//! purpose stays `_OTHER` unless it is listed.
//!
//! So made-up methods and paths, however many, add one label value (`_OTHER`) to the
//! metrics, and each recognised target adds one, up to [`MAX_TARGETS`] per layer (past
//! that, `_OTHER`).
//!
//! # Made once
//!
//! A recognised target's span name and attributes are made and redacted once, and its
//! span carries the redactor's [`vouch`](Redactor::vouch) (when a pipeline reads it), so
//! the pipeline's redacting processor does not scan them again. Once the target is kept,
//! its span name and attribute text are `&'static str` while the program-wide allowance
//! [`MAX_LEAKED_NAME_BYTES`] lasts (leaked once: the SDK takes a span name as
//! `Cow<'static, str>`, so a name that is not `'static` is an allocation per span, and a
//! shared attribute value is a reference count raised per span and dropped per export);
//! past it, they are shared strings. Only a kept target's text is leaked, when it is
//! kept: made-up methods and paths, however many, spend none of the allowance.
//!
//! [`InstrumentBuilder::grpc_methods`]: crate::stack::InstrumentBuilder::grpc_methods

use std::borrow::Cow;
use std::collections::{HashMap, HashSet};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, OnceLock, RwLock};

use instrument_core::redact::Redactor;
use instrument_core::semconv::{
    RpcConventions, HTTP_REQUEST_METHOD, HTTP_ROUTE, MAX_ORIGINAL_LEN, OTHER, RPC_METHOD,
    RPC_METHOD_ORIGINAL, RPC_SERVICE, RPC_SYSTEM, RPC_SYSTEM_NAME,
};
use opentelemetry::{KeyValue, StringValue, Value};

use crate::body::Outcome;
use crate::request::Target;

/// Recognised targets a layer keeps; past that, a target is `_OTHER`.
pub(crate) const MAX_TARGETS: usize = 512;

/// Bytes of span names and attribute text leaked, in the whole program, to make them
/// `'static`.
pub(crate) const MAX_LEAKED_NAME_BYTES: usize = 64 * 1024;

static LEAKED_NAME_BYTES: AtomicUsize = AtomicUsize::new(0);

/// gRPC status `UNIMPLEMENTED`.
const GRPC_UNIMPLEMENTED: u16 = 12;
/// HTTP status `Not Found`.
const HTTP_NOT_FOUND: u16 = 404;

/// A target's names, redacted by `redactor`: as recognised, and as `_OTHER`.
#[derive(Debug)]
pub(crate) struct Named {
    /// Where the target is kept once recognised.
    key: TargetKey,
    name: Cow<'static, str>,
    /// `name` leaked, once the target is kept (while the allowance lasts).
    kept_name: OnceLock<&'static str>,
    /// The span attributes of what the request is for.
    attributes: Vec<KeyValue>,
    /// `attributes` with their text leaked, once the target is kept (while the
    /// allowance lasts): a request then clones them with no reference count to raise,
    /// and its export has none to drop.
    kept_attributes: OnceLock<Vec<KeyValue>>,
    /// The metric label values: `(service, method)` or `(method, route)`.
    labels: (Arc<str>, Arc<str>),
    /// The span name and attributes while (or when) the target is not recognised.
    other_name: &'static str,
    other_attributes: Vec<KeyValue>,
    /// Set at the end of a call to a target not recognised.
    other_later: Vec<KeyValue>,
    /// The redactor they went through.
    redactor: Redactor,
    /// The RPC conventions they follow.
    pub(crate) rpc: RpcConventions,
    /// Attributes made from request values that repeat across the target's requests.
    pub(crate) seen: Seen,
}

/// Span attributes made from values a target's requests repeat, redacted once: the
/// authority they address (`server.address`, `server.port`) and the user agent. Parsing
/// and redacting them was a fifth of a sampled span's start (`full_stack_request`),
/// for the same few values request after request.
#[derive(Debug, Default)]
pub(crate) struct Seen {
    pub(crate) server: Repeated<Vec<KeyValue>>,
    pub(crate) agent: Repeated<KeyValue>,
}

/// Slots kept for values a target's requests repeat; past them, a value is made for
/// each request.
const REPEATED_SLOTS: usize = 4;

/// Longest value kept in a slot, in bytes: a client's 64 KiB header is made for its
/// request alone.
const MAX_REPEATED_KEY: usize = 256;

/// What was made from the first few distinct values of one request field (see
/// [`Seen`]), keyed by the value (`K`: its text, or an address). Filled once each,
/// read without a lock.
#[derive(Debug)]
pub(crate) struct Repeated<T, K = Box<str>> {
    slots: [OnceLock<(K, T)>; REPEATED_SLOTS],
}

impl<T, K> Default for Repeated<T, K> {
    fn default() -> Self {
        Self {
            slots: std::array::from_fn(|_| OnceLock::new()),
        }
    }
}

impl<T> Repeated<T> {
    /// What was made of `key`, else `make()` kept in a free slot; `Err` with a value
    /// made for this request alone when every slot holds another value.
    pub(crate) fn get_or_make(&self, key: &str, make: impl Fn() -> T) -> Result<&T, T> {
        if key.len() > MAX_REPEATED_KEY {
            return Err(make());
        }
        self.find(key, |key| key.into(), make)
    }
}

impl<T, K> Repeated<T, K> {
    /// The slot holding `key` (filled with `own(key)` and `make()` when the first free
    /// one is reached before it), else `Err(make())`.
    pub(crate) fn find<Q: PartialEq + ?Sized>(
        &self,
        key: &Q,
        own: impl Fn(&Q) -> K,
        make: impl Fn() -> T,
    ) -> Result<&T, T>
    where
        K: std::borrow::Borrow<Q>,
    {
        for slot in &self.slots {
            // A slot is filled once, by whichever request finds it empty first.
            let (kept_key, kept) = slot.get_or_init(|| (own(key), make()));
            if kept_key.borrow() == key {
                return Ok(kept);
            }
        }
        Err(make())
    }
}

/// How a target is kept: gRPC by path, HTTP by route and method.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
enum TargetKey {
    Grpc(Box<str>),
    Http(&'static str, Box<str>),
    /// Nothing to recognise: a gRPC path of another shape, an HTTP request without a
    /// route.
    None,
}

impl Named {
    /// Names `target` (`method` is the request's method label, `path` its path),
    /// redacted by `redactor`, gRPC by the `rpc` conventions.
    fn new(
        target: &Target<'_>,
        method: &'static str,
        path: &str,
        redactor: &Redactor,
        rpc: RpcConventions,
    ) -> Self {
        let clean = |key: &str, value: &str| -> StringValue {
            Arc::<str>::from(redactor.redact_attribute(key, value).as_ref()).into()
        };
        let other: Arc<str> = Arc::from(OTHER);
        // `rpc.system` (older conventions) and `rpc.system.name` (current).
        let mut system = Vec::with_capacity(2);
        if rpc.old() {
            system.push(KeyValue::new(RPC_SYSTEM, "grpc"));
        }
        if rpc.current() {
            system.push(KeyValue::new(RPC_SYSTEM_NAME, "grpc"));
        }
        match target {
            Target::Grpc(Some((service, rpc_method))) => {
                let name = format!("{service}/{rpc_method}");
                let mut original = redactor
                    .redact_attribute(RPC_METHOD_ORIGINAL, &name)
                    .into_owned();
                cut(&mut original, MAX_ORIGINAL_LEN);
                let mut attributes = system.clone();
                if rpc.old() {
                    attributes.push(KeyValue::new(RPC_SERVICE, clean(RPC_SERVICE, service)));
                }
                // The current form (`package.Service/Method`) wins when both are asked.
                let method_value = if rpc.current() {
                    clean(RPC_METHOD, &name)
                } else {
                    clean(RPC_METHOD, rpc_method)
                };
                attributes.push(KeyValue::new(RPC_METHOD, method_value));
                Self {
                    key: TargetKey::Grpc(path.into()),
                    name: Cow::Owned(redactor.redact_attribute("", &name).into_owned()),
                    kept_name: OnceLock::new(),
                    kept_attributes: OnceLock::new(),
                    attributes,
                    labels: (Arc::from(*service), Arc::from(*rpc_method)),
                    other_name: "grpc",
                    other_attributes: system,
                    other_later: vec![
                        KeyValue::new(RPC_METHOD, OTHER),
                        KeyValue::new(RPC_METHOD_ORIGINAL, original),
                    ],
                    redactor: redactor.clone(),
                    rpc,
                    seen: Seen::default(),
                }
            }
            Target::Grpc(None) => Self {
                key: TargetKey::None,
                name: Cow::Borrowed("grpc"),
                kept_name: OnceLock::new(),
                kept_attributes: OnceLock::new(),
                attributes: system.clone(),
                labels: (other.clone(), other),
                other_name: "grpc",
                other_attributes: system,
                other_later: vec![KeyValue::new(RPC_METHOD, OTHER)],
                redactor: redactor.clone(),
                rpc,
                seen: Seen::default(),
            },
            Target::Http(route) => {
                let method_kv =
                    KeyValue::new(HTTP_REQUEST_METHOD, clean(HTTP_REQUEST_METHOD, method));
                // The conventions' span name for a method they do not know: `HTTP`.
                let shown = if method == OTHER { "HTTP" } else { method };
                let route = route.as_ref().filter(|r| crate::request::well_formed(r));
                let (key, name, attributes, route_label) = match route {
                    Some(route) => (
                        TargetKey::Http(method, route.as_ref().into()),
                        Cow::Owned(
                            redactor
                                .redact_attribute("", &format!("{shown} {route}"))
                                .into_owned(),
                        ),
                        vec![
                            method_kv.clone(),
                            KeyValue::new(HTTP_ROUTE, clean(HTTP_ROUTE, route)),
                        ],
                        Arc::from(route.as_ref()),
                    ),
                    None => (
                        TargetKey::None,
                        Cow::Borrowed(shown),
                        vec![method_kv.clone()],
                        other,
                    ),
                };
                Self {
                    key,
                    name,
                    kept_name: OnceLock::new(),
                    kept_attributes: OnceLock::new(),
                    attributes,
                    labels: (Arc::from(method), route_label),
                    other_name: shown,
                    other_attributes: vec![method_kv],
                    other_later: Vec::new(),
                    redactor: redactor.clone(),
                    rpc,
                    seen: Seen::default(),
                }
            }
        }
    }

    /// The span name, without an allocation when it is `'static`.
    pub(crate) fn name(&self) -> Cow<'static, str> {
        if let Some(name) = self.kept_name.get() {
            return Cow::Borrowed(name);
        }
        match &self.name {
            Cow::Borrowed(name) => Cow::Borrowed(name),
            Cow::Owned(name) => Cow::Owned(name.clone()),
        }
    }

    /// The span attributes of what the request is for, their text `'static` once the
    /// target is kept.
    fn attributes(&self) -> &[KeyValue] {
        self.kept_attributes.get().unwrap_or(&self.attributes)
    }

    /// Makes the span name and attributes `'static`, the target being kept: leaked
    /// once, while the program's allowance lasts. Called under the table's write lock:
    /// never set twice.
    fn keep_text(&self) {
        if let Cow::Owned(name) = &self.name {
            if self.kept_name.get().is_none() {
                if let Some(leaked) = leak(name) {
                    let _ = self.kept_name.set(leaked);
                }
            }
        }
        if self.kept_attributes.get().is_none() {
            if let Some(kept) = leak_values(&self.attributes) {
                let _ = self.kept_attributes.set(kept);
            }
        }
    }
}

/// `attributes` with every text value a `'static` copy, while the program's allowance
/// lasts (all or none).
fn leak_values(attributes: &[KeyValue]) -> Option<Vec<KeyValue>> {
    fn text(kv: &KeyValue) -> Option<&str> {
        match &kv.value {
            Value::String(text) => Some(text.as_str()),
            _ => None,
        }
    }
    let len = attributes.iter().filter_map(text).map(str::len).sum();
    reserve(len)?;
    Some(
        attributes
            .iter()
            .map(|kv| match text(kv) {
                Some(value) => {
                    let value: &'static str = Box::leak(Box::from(value));
                    KeyValue::new(kv.key.clone(), value)
                }
                None => kv.clone(),
            })
            .collect(),
    )
}

/// `text` cut to at most `max` bytes on a char boundary.
pub(crate) fn cut(text: &mut String, max: usize) {
    if text.len() > max {
        let mut end = max;
        while !text.is_char_boundary(end) {
            end -= 1;
        }
        text.truncate(end);
    }
}

/// A `'static` copy of `name` while the program's allowance lasts.
fn leak(name: &str) -> Option<&'static str> {
    reserve(name.len())?;
    Some(Box::leak(Box::from(name)))
}

/// Takes `len` bytes of the program's allowance for leaked text; `None` when they are
/// not left.
fn reserve(len: usize) -> Option<()> {
    LEAKED_NAME_BYTES
        .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |used| {
            (used + len <= MAX_LEAKED_NAME_BYTES).then_some(used + len)
        })
        .ok()
        .map(drop)
}

/// What a request is for, as looked up when it starts.
#[derive(Debug, Clone)]
pub(crate) struct Looked {
    pub(crate) named: Arc<Named>,
    /// Recognised when the request started.
    pub(crate) recognized: bool,
    /// The request's method label.
    method: &'static str,
}

impl Looked {
    /// The span name to start with.
    pub(crate) fn span_name(&self) -> Cow<'static, str> {
        if self.recognized {
            self.named.name()
        } else {
            Cow::Borrowed(self.named.other_name)
        }
    }

    /// The request's method label (`GET`, ..., `_OTHER`).
    pub(crate) fn method(&self) -> &'static str {
        self.method
    }

    /// The span attributes to start with.
    pub(crate) fn span_attributes(&self) -> &[KeyValue] {
        if self.recognized {
            self.named.attributes()
        } else {
            &self.named.other_attributes
        }
    }
}

/// How a target comes to be recognised.
#[derive(Debug, Clone)]
enum Recognition {
    /// Once answered with anything but `UNIMPLEMENTED` / 404.
    Learned,
    /// gRPC methods only if listed (`package.Service/Method`); HTTP routes as learned.
    Listed(Arc<HashSet<Box<str>>>),
}

/// A layer's names: recognised gRPC targets by path; HTTP targets by route, then
/// method; targets with nothing to recognise by method.
#[derive(Debug, Default)]
struct Table {
    grpc: HashMap<Box<str>, Arc<Named>, foldhash::fast::RandomState>,
    http: HashMap<Box<str>, ByMethod, foldhash::fast::RandomState>,
    unnamed: ByMethod,
    len: usize,
}

/// Targets of one route (or of none), by method label.
type ByMethod = Vec<(&'static str, Arc<Named>)>;

impl Table {
    fn get(&self, target: &Target<'_>, method: &str, path: &str) -> Option<&Arc<Named>> {
        fn by_method<'t>(
            list: &'t [(&'static str, Arc<Named>)],
            method: &str,
        ) -> Option<&'t Arc<Named>> {
            list.iter()
                .find(|(m, _)| *m == method)
                .map(|(_, named)| named)
        }
        match target {
            Target::Grpc(Some(_)) => self.grpc.get(path),
            Target::Http(Some(route)) => by_method(self.http.get(route.as_ref())?, method),
            Target::Grpc(None) | Target::Http(None) => by_method(&self.unnamed, method),
        }
    }

    /// Keeps `named` (replacing one named by another redactor), unless the table is
    /// full.
    fn keep(&mut self, method: &'static str, named: &Arc<Named>) {
        let full = self.len >= MAX_TARGETS;
        let put = |list: &mut ByMethod| match list.iter_mut().find(|(m, _)| *m == method) {
            Some(slot) => {
                slot.1 = Arc::clone(named);
                false
            }
            None if !full => {
                list.push((method, Arc::clone(named)));
                true
            }
            None => false,
        };
        let added = match &named.key {
            TargetKey::Grpc(path) => match self.grpc.get_mut(path) {
                Some(slot) => {
                    *slot = Arc::clone(named);
                    false
                }
                None if !full => {
                    self.grpc.insert(path.clone(), Arc::clone(named));
                    true
                }
                None => false,
            },
            TargetKey::Http(_, route) => match self.http.get_mut(route) {
                Some(list) => put(list),
                None if !full => {
                    self.http
                        .insert(route.clone(), vec![(method, Arc::clone(named))]);
                    true
                }
                None => false,
            },
            TargetKey::None => put(&mut self.unnamed),
        };
        self.len += usize::from(added);
    }
}

/// The names of a layer's targets and which are recognised (shared by its clones).
#[derive(Debug, Clone)]
pub(crate) struct Names {
    table: Arc<RwLock<Table>>,
    recognition: Recognition,
    /// Which RPC conventions gRPC spans follow.
    rpc: RpcConventions,
}

impl Default for Names {
    fn default() -> Self {
        Self {
            table: Arc::default(),
            recognition: Recognition::Learned,
            rpc: RpcConventions::global(),
        }
    }
}

impl Names {
    /// Names that recognise only the listed gRPC methods (`package.Service/Method`,
    /// with or without the leading `/`).
    pub(crate) fn listed(methods: impl IntoIterator<Item = String>) -> Self {
        let methods = methods
            .into_iter()
            .map(|m| m.trim_start_matches('/').into())
            .collect();
        Self {
            table: Arc::default(),
            recognition: Recognition::Listed(Arc::new(methods)),
            rpc: RpcConventions::global(),
        }
    }

    /// The same recognition, gRPC named by the `rpc` conventions (a table of its own).
    pub(crate) fn with_rpc(&self, rpc: RpcConventions) -> Self {
        Self {
            table: Arc::default(),
            recognition: self.recognition.clone(),
            rpc,
        }
    }

    /// Names that recognise only the listed gRPC methods, by these names' conventions.
    pub(crate) fn relisted(&self, methods: impl IntoIterator<Item = String>) -> Self {
        Self::listed(methods).with_rpc(self.rpc)
    }

    /// What the request for `target` is (`path` is its path, `method` its method
    /// label), named with `redactor`.
    pub(crate) fn of(
        &self,
        target: &Target<'_>,
        method: &'static str,
        path: &str,
        redactor: &Redactor,
    ) -> Looked {
        let found = self
            .table
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .get(target, method, path)
            .cloned();
        if let Some(named) = found.filter(|named| named.redactor.ptr_eq(redactor)) {
            return Looked {
                named,
                recognized: true,
                method,
            };
        }
        let named = Arc::new(Named::new(target, method, path, redactor, self.rpc));
        let recognized = match (&named.key, &self.recognition) {
            // Nothing to recognise: the names are the `_OTHER` ones already.
            (TargetKey::None, _) => true,
            (TargetKey::Grpc(path), Recognition::Listed(methods)) => {
                methods.contains(path.trim_start_matches('/'))
            }
            _ => false,
        };
        if recognized {
            self.keep(method, &named);
        }
        Looked {
            named,
            recognized,
            method,
        }
    }

    /// What the request `looked` up ended as, learning its target when the answer
    /// recognises it.
    pub(crate) fn settle<'a>(&self, looked: &'a Looked, outcome: &Outcome) -> Settled<'a> {
        Settled {
            recognized: self.recognizes(looked, outcome),
            looked,
        }
    }

    /// What the request `looked` up ended as when the service never answered it (the
    /// tenant check refused it): recognised only if it was already.
    pub(crate) fn unanswered(looked: &Looked) -> Settled<'_> {
        Settled {
            recognized: looked.recognized,
            looked,
        }
    }

    /// What the gRPC call `looked` up is once its service sent a message: a method
    /// that answers with messages is implemented, and learned as a successful answer
    /// would have it learned.
    pub(crate) fn streaming<'a>(&self, looked: &'a Looked) -> Settled<'a> {
        let grpc = matches!(looked.named.key, TargetKey::Grpc(_));
        Settled {
            recognized: looked.recognized || (grpc && self.learns(looked, true)),
            looked,
        }
    }

    fn recognizes(&self, looked: &Looked, outcome: &Outcome) -> bool {
        if looked.recognized {
            return true;
        }
        let answered = match (&looked.named.key, outcome) {
            (
                TargetKey::Grpc(_),
                Outcome::Responded {
                    grpc: Some(code),
                    cancelled: false,
                    ..
                },
            ) => *code != GRPC_UNIMPLEMENTED,
            (TargetKey::Http(..), Outcome::Responded { http, .. }) => *http != HTTP_NOT_FOUND,
            _ => false,
        };
        self.learns(looked, answered)
    }

    /// Whether the target `looked` up, `answered` by the service, is now recognised:
    /// learned, unless the gRPC methods are a given list.
    fn learns(&self, looked: &Looked, answered: bool) -> bool {
        let learns = match (&looked.named.key, &self.recognition) {
            (TargetKey::Grpc(_), Recognition::Listed(_)) => false,
            _ => answered,
        };
        learns && self.keep(looked.method, &looked.named)
    }

    /// Keeps `named` as recognised; `false` when the table is full.
    fn keep(&self, method: &'static str, named: &Arc<Named>) -> bool {
        let mut table = self.table.write().unwrap_or_else(|e| e.into_inner());
        table.keep(method, named);
        match table.get_key(&named.key, method) {
            Some(kept) => {
                kept.keep_text();
                true
            }
            None => false,
        }
    }
}

impl Table {
    fn get_key(&self, key: &TargetKey, method: &str) -> Option<&Arc<Named>> {
        match key {
            TargetKey::Grpc(path) => self.grpc.get(path),
            TargetKey::Http(_, route) => self
                .http
                .get(route)?
                .iter()
                .find(|(m, _)| *m == method)
                .map(|(_, n)| n),
            TargetKey::None => self
                .unnamed
                .iter()
                .find(|(m, _)| *m == method)
                .map(|(_, n)| n),
        }
    }
}

/// What a request ended as: its target recognised or not.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Settled<'a> {
    pub(crate) looked: &'a Looked,
    pub(crate) recognized: bool,
}

impl<'a> Settled<'a> {
    /// The metric label values: the target's, or `_OTHER`.
    pub(crate) fn labels(self) -> (&'a str, &'a str) {
        let named = &self.looked.named;
        if self.recognized {
            (&named.labels.0, &named.labels.1)
        } else {
            match named.key {
                TargetKey::Grpc(_) => (OTHER, OTHER),
                _ => (&named.labels.0, OTHER),
            }
        }
    }

    /// The RPC conventions the span follows.
    pub(crate) fn rpc(&self) -> RpcConventions {
        self.looked.named.rpc
    }

    /// What the span, started under the `_OTHER` names, still needs: the target's
    /// name and attributes when the answer recognised it, else the `_OTHER` ones set
    /// at the end.
    pub(crate) fn span_update(&self) -> Option<(Cow<'static, str>, &[KeyValue])> {
        let named = &self.looked.named;
        match (self.looked.recognized, self.recognized) {
            (true, _) => None,
            (false, true) => Some((
                named.name(),
                &named.attributes()[named.other_attributes.len()..],
            )),
            (false, false) => Some((Cow::Borrowed(named.other_name), &named.other_later)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn text(value: &opentelemetry::Value) -> String {
        value.as_str().into_owned()
    }

    fn grpc() -> Target<'static> {
        Target::Grpc(Some(("pkg.Svc", "Do")))
    }

    fn answered(grpc: u16) -> Outcome {
        Outcome::Responded {
            http: 200,
            grpc: Some(grpc),
            cancelled: false,
            body_failed: false,
            failure: None,
        }
    }

    /// Whether the name `looked` starts or ends with is `'static` (leaked) rather than an
    /// allocation per span.
    fn is_static(name: Cow<'static, str>) -> bool {
        matches!(name, Cow::Borrowed(_))
    }

    #[test]
    fn only_kept_targets_spend_the_leaked_text_allowance() {
        let names = Names::default();
        let redactor = Redactor::default();
        // A flood of made-up methods, each answered `UNIMPLEMENTED`, and of HTTP routes
        // answered 404: none is kept, so none of their names is leaked.
        for i in 0..200 {
            let service = format!("made.Up{i}");
            let target = Target::Grpc(Some((&service, "Do")));
            let looked = names.of(&target, "POST", &format!("/made.Up{i}/Do"), &redactor);
            let settled = names.settle(&looked, &answered(GRPC_UNIMPLEMENTED));
            assert!(!settled.recognized);
            assert!(looked.named.kept_name.get().is_none(), "{service} leaked");
            assert!(
                looked.named.kept_attributes.get().is_none(),
                "{service} leaked"
            );
            assert!(!is_static(looked.named.name()));

            let route = format!("/made/{i}");
            let target = Target::Http(Some(Cow::Owned(route.clone())));
            let looked = names.of(&target, "GET", &route, &redactor);
            let mut outcome = answered(0);
            if let Outcome::Responded { http, grpc, .. } = &mut outcome {
                *http = HTTP_NOT_FOUND;
                *grpc = None;
            }
            assert!(!names.settle(&looked, &outcome).recognized);
            assert!(looked.named.kept_name.get().is_none(), "{route} leaked");
        }
        // A method the server answers is kept, its name leaked once and shared.
        let looked = names.of(&grpc(), "POST", "/pkg.Svc/Do", &redactor);
        let settled = names.settle(&looked, &answered(0));
        assert!(settled.recognized);
        let (renamed, _) = settled.span_update().expect("renamed at the end");
        assert_eq!(renamed, "pkg.Svc/Do");
        assert!(is_static(renamed), "a kept target's name is 'static");
        let again = names.of(&grpc(), "POST", "/pkg.Svc/Do", &redactor);
        assert!(again.recognized);
        assert!(is_static(again.span_name()));
        // Its attributes' text too (`rpc.service`, `rpc.method`): no reference counts.
        assert!(again.span_attributes().len() >= 2);
        for kv in again.span_attributes() {
            assert!(format!("{:?}", kv.value).contains("Static("), "{kv:?}");
        }
        // A listed method is kept as it is first seen.
        let listed = Names::listed(["pkg.Svc/Listed".to_owned()]);
        let target = Target::Grpc(Some(("pkg.Svc", "Listed")));
        let looked = listed.of(&target, "POST", "/pkg.Svc/Listed", &redactor);
        assert!(looked.recognized);
        assert!(is_static(looked.span_name()));
    }

    #[test]
    fn a_grpc_method_is_recognised_once_answered_and_then_shared() {
        let names = Names::default();
        let redactor = Redactor::default();
        let first = names.of(&grpc(), "POST", "/pkg.Svc/Do", &redactor);
        assert!(!first.recognized);
        assert_eq!(first.span_name(), "grpc");
        assert!(names.settle(&first, &answered(0)).recognized);
        let again = names.of(&grpc(), "POST", "/pkg.Svc/Do", &redactor);
        assert!(again.recognized);
        assert!(Arc::ptr_eq(&first.named, &again.named));
        assert_eq!(again.span_name(), "pkg.Svc/Do");
        let values: Vec<String> = again
            .span_attributes()
            .iter()
            .map(|kv| text(&kv.value))
            .collect();
        assert_eq!(values, ["grpc", "pkg.Svc", "Do"]);
    }

    #[test]
    fn unimplemented_methods_stay_other_and_are_not_kept() {
        let names = Names::default();
        let redactor = Redactor::default();
        for i in 0..(MAX_TARGETS + 100) {
            let method = format!("Probe{i}");
            let path = format!("/pkg.Svc/{method}");
            let target = Target::Grpc(Some(("pkg.Svc", &method)));
            let looked = names.of(&target, "POST", &path, &redactor);
            let settled = names.settle(&looked, &answered(12));
            assert!(!settled.recognized);
            assert_eq!(settled.labels(), (OTHER, OTHER));
            let (name, later) = settled.span_update().unwrap();
            assert_eq!(name, "grpc");
            assert_eq!(text(&later[0].value), OTHER);
            assert_eq!(text(&later[1].value), format!("pkg.Svc/{method}"));
        }
        assert_eq!(names.table.read().unwrap().len, 0);
        // A real method is still learned after the flood.
        let looked = names.of(&grpc(), "POST", "/pkg.Svc/Do", &redactor);
        assert!(names.settle(&looked, &answered(5)).recognized);
    }

    #[test]
    fn listed_methods_only_are_recognised() {
        let names = Names::listed(["/pkg.Svc/Do".to_owned()]);
        let redactor = Redactor::default();
        assert!(
            names
                .of(&grpc(), "POST", "/pkg.Svc/Do", &redactor)
                .recognized
        );
        let other = Target::Grpc(Some(("pkg.Svc", "Other")));
        let looked = names.of(&other, "POST", "/pkg.Svc/Other", &redactor);
        assert!(!looked.recognized);
        assert!(!names.settle(&looked, &answered(0)).recognized);
    }

    #[test]
    fn an_http_route_is_recognised_unless_not_found_and_names_are_redacted() {
        let names = Names::default();
        let redactor = Redactor::default();
        let target = Target::Http(Some("/users/bob@example.com".into()));
        let looked = names.of(&target, "GET", "/users/bob@example.com", &redactor);
        assert_eq!(looked.span_name(), "GET");
        let not_found = Outcome::Responded {
            http: 404,
            grpc: None,
            cancelled: false,
            body_failed: false,
            failure: None,
        };
        let settled = names.settle(&looked, &not_found);
        assert!(!settled.recognized);
        assert_eq!(settled.labels(), ("GET", OTHER));
        let ok = Outcome::Responded {
            http: 200,
            grpc: None,
            cancelled: false,
            body_failed: false,
            failure: None,
        };
        assert!(names.settle(&looked, &ok).recognized);
        let again = names.of(&target, "GET", "/users/bob@example.com", &redactor);
        assert!(again.recognized);
        assert_eq!(again.span_name(), "GET /users/[REDACTED]");
        // Another redactor names it again.
        let other = Redactor::default();
        assert!(
            !names
                .of(&target, "GET", "/users/bob@example.com", &other)
                .recognized
        );
    }

    #[test]
    fn no_route_is_named_by_method_alone() {
        let names = Names::default();
        let looked = names.of(
            &Target::Http(None),
            "POST",
            "/anything",
            &Redactor::default(),
        );
        assert!(looked.recognized);
        assert_eq!(looked.span_name(), "POST");
        let settled = Names::default().settle(&looked, &Outcome::Cancelled);
        assert_eq!(settled.labels(), ("POST", OTHER));
    }

    #[test]
    fn the_original_method_is_cut() {
        let long = "M".repeat(1000);
        let target = Target::Grpc(Some(("pkg.Svc", &long)));
        let names = Names::default();
        let looked = names.of(&target, "POST", "/x", &Redactor::default());
        let settled = names.settle(&looked, &Outcome::Cancelled);
        let (_, later) = settled.span_update().unwrap();
        assert_eq!(text(&later[1].value).len(), MAX_ORIGINAL_LEN);
    }

    #[test]
    fn recognised_targets_are_bounded() {
        let names = Names::default();
        let redactor = Redactor::default();
        for i in 0..MAX_TARGETS + 50 {
            let method = format!("M{i}");
            let target = Target::Grpc(Some(("pkg.Svc", &method)));
            let looked = names.of(&target, "POST", &format!("/pkg.Svc/{method}"), &redactor);
            let kept = names.settle(&looked, &answered(0)).recognized;
            assert_eq!(kept, i < MAX_TARGETS, "{i}");
        }
        assert_eq!(names.table.read().unwrap().len, MAX_TARGETS);
    }
}
