//! What a request is for, as its server span names it: the span name and the `rpc.*`
//! or `http.*` attributes of its target, made and redacted once per target instead of
//! on every request.
//!
//! A server answers a few dozen gRPC methods or HTTP routes, so the same names are
//! built again and again: three allocations and a redaction of each value per request
//! (which the span's export redacts a second time). The table keeps, per target, the
//! attribute values as shared strings, already redacted with the layer's redactor;
//! a request clones them (a reference count each) and the span carries the
//! redactor's [`vouch`](Redactor::vouch) (when a pipeline reads it), so the pipeline's
//! redacting processor does not scan them again.
//!
//! Targets come from requests, so the table is bounded: past [`MAX_TARGETS`] a new
//! target is named the long way on each request (its own allocations and redaction),
//! and nothing is evicted. Span names are `&'static str` when they fit the program-wide
//! allowance [`MAX_LEAKED_NAME_BYTES`] (names of the first targets, leaked once: the
//! SDK takes a span name as `Cow<'static, str>`, so a name that is not `'static` is
//! an allocation per span); a name past it is copied per request.

use std::borrow::Cow;
use std::collections::HashMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, RwLock};

use instrument_core::redact::Redactor;
use instrument_core::semconv::{
    HTTP_REQUEST_METHOD, HTTP_ROUTE, RPC_METHOD, RPC_SERVICE, RPC_SYSTEM,
};
use opentelemetry::{KeyValue, StringValue};

use crate::request::Target;

/// Targets a layer keeps names for.
pub(crate) const MAX_TARGETS: usize = 512;

/// Bytes of span names leaked, in the whole program, to make them `'static`.
pub(crate) const MAX_LEAKED_NAME_BYTES: usize = 64 * 1024;

static LEAKED_NAME_BYTES: AtomicUsize = AtomicUsize::new(0);

/// A target's span name and attributes, redacted by `redactor`.
#[derive(Debug)]
pub(crate) struct Named {
    pub(crate) name: Cow<'static, str>,
    pub(crate) attributes: Vec<KeyValue>,
    /// The redactor they went through.
    redactor: Redactor,
}

impl Named {
    /// Names `target` (`method` is the request's method label), redacted by `redactor`.
    fn new(target: &Target<'_>, method: &'static str, redactor: &Redactor) -> Self {
        let clean = |key: &str, value: &str| -> StringValue {
            Arc::<str>::from(redactor.redact_attribute(key, value).as_ref()).into()
        };
        let (name, attributes) = match target {
            Target::Grpc(Some((service, method))) => (
                format!("{service}/{method}"),
                vec![
                    KeyValue::new(RPC_SYSTEM, clean(RPC_SYSTEM, "grpc")),
                    KeyValue::new(RPC_SERVICE, clean(RPC_SERVICE, service)),
                    KeyValue::new(RPC_METHOD, clean(RPC_METHOD, method)),
                ],
            ),
            Target::Grpc(None) => (
                "grpc".to_owned(),
                vec![KeyValue::new(RPC_SYSTEM, clean(RPC_SYSTEM, "grpc"))],
            ),
            Target::Http(route) => {
                let mut attributes = vec![KeyValue::new(
                    HTTP_REQUEST_METHOD,
                    clean(HTTP_REQUEST_METHOD, method),
                )];
                let name = match route {
                    Some(route) => {
                        attributes.push(KeyValue::new(HTTP_ROUTE, clean(HTTP_ROUTE, route)));
                        format!("{method} {route}")
                    }
                    None => method.to_owned(),
                };
                (name, attributes)
            }
        };
        let name = redactor.redact_attribute("", &name).into_owned();
        Self {
            name: leak(name),
            attributes,
            redactor: redactor.clone(),
        }
    }

    /// The span name, without an allocation when it is `'static`.
    pub(crate) fn name(&self) -> Cow<'static, str> {
        match &self.name {
            Cow::Borrowed(name) => Cow::Borrowed(name),
            Cow::Owned(name) => Cow::Owned(name.clone()),
        }
    }
}

/// `name` as `'static` while the program's allowance lasts.
fn leak(name: String) -> Cow<'static, str> {
    let len = name.len();
    let fits = LEAKED_NAME_BYTES
        .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |used| {
            (used + len <= MAX_LEAKED_NAME_BYTES).then_some(used + len)
        })
        .is_ok();
    if fits {
        Cow::Borrowed(Box::leak(name.into_boxed_str()))
    } else {
        Cow::Owned(name)
    }
}

/// Targets of one route (or of none), by method label.
type ByMethod = Vec<(&'static str, Arc<Named>)>;

/// A layer's names: gRPC targets by path; HTTP targets by route, then method.
#[derive(Debug, Default)]
struct Table {
    grpc: HashMap<Box<str>, Arc<Named>, foldhash::fast::RandomState>,
    http: HashMap<Box<str>, ByMethod, foldhash::fast::RandomState>,
    /// HTTP targets without a route, by method.
    unrouted: ByMethod,
    len: usize,
}

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
            Target::Grpc(_) => self.grpc.get(path),
            Target::Http(Some(route)) => by_method(self.http.get(route.as_ref())?, method),
            Target::Http(None) => by_method(&self.unrouted, method),
        }
    }

    /// Keeps `named` for `target`, replacing what was kept (named by another redactor),
    /// unless the table is full.
    fn keep(&mut self, target: &Target<'_>, method: &'static str, path: &str, named: Arc<Named>) {
        let replace =
            |list: &mut ByMethod, full: bool| match list.iter_mut().find(|(m, _)| *m == method) {
                Some(slot) => {
                    slot.1 = named.clone();
                    false
                }
                None if !full => {
                    list.push((method, named.clone()));
                    true
                }
                None => false,
            };
        let full = self.len >= MAX_TARGETS;
        let added = match target {
            Target::Grpc(_) => match self.grpc.get_mut(path) {
                Some(slot) => {
                    *slot = named.clone();
                    false
                }
                None if !full => {
                    self.grpc.insert(path.into(), named.clone());
                    true
                }
                None => false,
            },
            Target::Http(Some(route)) => match self.http.get_mut(route.as_ref()) {
                Some(list) => replace(list, full),
                None if !full => {
                    self.http
                        .insert(route.as_ref().into(), vec![(method, named.clone())]);
                    true
                }
                None => false,
            },
            Target::Http(None) => replace(&mut self.unrouted, full),
        };
        self.len += usize::from(added);
    }
}

/// The names of a layer's targets (shared by its clones).
#[derive(Debug, Default, Clone)]
pub(crate) struct Names {
    table: Arc<RwLock<Table>>,
}

impl Names {
    /// The names of `target` (`path` is the request's path, `method` its method
    /// label), redacted by `redactor`.
    pub(crate) fn of(
        &self,
        target: &Target<'_>,
        method: &'static str,
        path: &str,
        redactor: &Redactor,
    ) -> Arc<Named> {
        let found = self
            .table
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .get(target, method, path)
            .cloned();
        if let Some(named) = found.filter(|named| named.redactor.ptr_eq(redactor)) {
            return named;
        }
        let named = Arc::new(Named::new(target, method, redactor));
        self.table.write().unwrap_or_else(|e| e.into_inner()).keep(
            target,
            method,
            path,
            named.clone(),
        );
        named
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

    #[test]
    fn a_target_is_named_once_and_shared() {
        let names = Names::default();
        let redactor = Redactor::default();
        let first = names.of(&grpc(), "POST", "/pkg.Svc/Do", &redactor);
        let again = names.of(&grpc(), "POST", "/pkg.Svc/Do", &redactor);
        assert!(Arc::ptr_eq(&first, &again));
        assert_eq!(first.name(), "pkg.Svc/Do");
        let values: Vec<String> = first.attributes.iter().map(|kv| text(&kv.value)).collect();
        assert_eq!(values, ["grpc", "pkg.Svc", "Do"]);
        assert!(first.redactor.ptr_eq(&redactor));
    }

    #[test]
    fn names_are_redacted_and_another_redactor_names_again() {
        let names = Names::default();
        let target = Target::Http(Some("/users/bob@example.com".into()));
        let first = names.of(
            &target,
            "GET",
            "/users/bob@example.com",
            &Redactor::default(),
        );
        assert_eq!(first.name(), "GET /users/[REDACTED]");
        assert_eq!(text(&first.attributes[1].value), "/users/[REDACTED]");
        let other = Redactor::default();
        let again = names.of(&target, "GET", "/users/bob@example.com", &other);
        assert!(!Arc::ptr_eq(&first, &again));
        assert!(again.redactor.ptr_eq(&other));
    }

    #[test]
    fn the_table_is_bounded() {
        let names = Names::default();
        let redactor = Redactor::default();
        for i in 0..MAX_TARGETS + 50 {
            let path = format!("/pkg.Svc/M{i}");
            let target = Target::Grpc(Some(("pkg.Svc", &path[9..])));
            let named = names.of(&target, "POST", &path, &redactor);
            assert_eq!(named.name(), format!("pkg.Svc/M{i}"));
        }
        assert_eq!(names.table.read().unwrap().len, MAX_TARGETS);
        assert_eq!(names.table.read().unwrap().grpc.len(), MAX_TARGETS);
    }
}
