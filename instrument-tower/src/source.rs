//! Where a request's stored trace comes from: [`TraceSource`], and [`CachedSource`] in
//! front of it.
//!
//! A workflow that runs for days is one trace because its `traceparent` is stored with
//! it, typically in the same database row as the workflow. A [`TraceSource`] finds that
//! row for a request (by default through its `x-workflow-id` header or gRPC metadata key)
//! and returns the workflow's tenant and stored traceparent as a [`StoredTrace`]. The
//! trace-context layer makes the stored context the parent of the request's span; the
//! tenant layer refuses a request whose tenant differs from the workflow's.
//!
//! ```
//! use std::future::{ready, Ready};
//! use instrument_core::tenant::TenantId;
//! use instrument_tower::source::{CachedSource, SourceError, StoredTrace, TraceSource};
//!
//! /// Looks workflows up in the application's store (here: one fixed workflow).
//! struct Workflows;
//!
//! impl TraceSource for Workflows {
//!     type Lookup = Ready<Result<Option<StoredTrace>, SourceError>>;
//!
//!     fn lookup(&self, workflow_id: &str) -> Self::Lookup {
//!         let found = (workflow_id == "wf-1").then(|| {
//!             let tenant = TenantId::parse("acme").expect("valid tenant");
//!             StoredTrace::new(tenant, Some("00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"))
//!         });
//!         ready(Ok(found))
//!     }
//! }
//!
//! let source = CachedSource::new(Workflows);
//! // Completed workflows need no cache entry any more.
//! source.invalidate("wf-1");
//! ```

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{ready, Context, Poll};
use std::time::{Duration, SystemTime};

use http::request::Parts;
use instrument_core::context::{restore, Restored};
use instrument_core::semconv::WORKFLOW_HEADER;
use instrument_core::tenant::TenantId;
use opentelemetry::trace::SpanContext;
use pin_project::pin_project;

/// An error of a [`TraceSource`] lookup (a database error, say). The request goes on
/// without the stored context; the error is logged, redacted.
pub type SourceError = Box<dyn std::error::Error + Send + Sync>;

/// What is stored about a workflow: its tenant and the context its spans continue.
#[derive(Debug, Clone, PartialEq)]
pub struct StoredTrace {
    tenant: TenantId,
    parent: Restored,
    started: Option<SystemTime>,
}

impl StoredTrace {
    /// The workflow of `tenant` whose stored traceparent is `traceparent` (`None` for a
    /// `NULL` column). The traceparent is parsed once, here; a corrupt one is kept as
    /// the reason a fresh trace starts.
    pub fn new(tenant: TenantId, traceparent: Option<&str>) -> Self {
        Self {
            tenant,
            parent: restore(traceparent),
            started: None,
        }
    }

    /// The workflow started at `at`: the span proxy refuses reported spans that start
    /// before it (less the allowed clock skew).
    pub fn started_at(mut self, at: SystemTime) -> Self {
        self.started = Some(at);
        self
    }

    /// When the workflow started, if the source said.
    pub fn started(&self) -> Option<SystemTime> {
        self.started
    }

    /// The tenant the workflow belongs to.
    pub fn tenant(&self) -> &TenantId {
        &self.tenant
    }

    /// The stored context, or why there is none.
    pub fn restored(&self) -> &Restored {
        &self.parent
    }

    /// The stored span context, when a valid one was stored.
    pub fn parent(&self) -> Option<&SpanContext> {
        self.parent.span_context()
    }
}

/// Finds the stored trace of a request (see the [module docs](self)).
///
/// [`key`](TraceSource::key) picks the request's lookup key (by default the
/// `x-workflow-id` header); [`lookup`](TraceSource::lookup) fetches the record, usually
/// from the application's database. Put a [`CachedSource`] in front so most requests do
/// not reach the database; it also implements [`find`](TraceSource::find), so a
/// request whose record is cached is served without a lookup future at all.
pub trait TraceSource: Send + Sync + 'static {
    /// The future of one lookup. `Ready<...>` for synchronous sources,
    /// `Pin<Box<dyn Future<...> + Send>>` for an `async` block.
    type Lookup: Future<Output = Result<Option<StoredTrace>, SourceError>> + Send + 'static;

    /// The key of `request`'s stored trace, or `None` when the request is not about a
    /// stored workflow. Default: the `x-workflow-id` header, when valid UTF-8 and not empty.
    fn key<'r>(&self, request: &'r Parts) -> Option<&'r str> {
        const WORKFLOW: http::HeaderName = http::HeaderName::from_static(WORKFLOW_HEADER);
        request
            .headers
            .get(WORKFLOW)
            .and_then(|v| v.to_str().ok())
            .map(str::trim)
            .filter(|k| !k.is_empty())
    }

    /// Fetches the record stored under `key`; `Ok(None)` when there is none.
    fn lookup(&self, key: &str) -> Self::Lookup;

    /// The record stored under `key`: [`Found::Ready`] when it is at hand without
    /// waiting (a [`CachedSource`] hit), else [`Found::Pending`] with the
    /// [`lookup`](Self::lookup) to wait for. A request whose record is ready is served
    /// without a lookup future: no move of the request into one, no clone of the inner
    /// service. Default: always pending.
    fn find(&self, key: &str) -> Found<Self::Lookup> {
        Found::Pending(self.lookup(key))
    }
}

/// What [`TraceSource::find`] has for a key.
#[derive(Debug)]
pub enum Found<L> {
    /// The record (or its absence, or the error) is known already.
    Ready(Result<Option<StoredTrace>, SourceError>),
    /// The lookup to wait for.
    Pending(L),
}

impl<S: TraceSource> TraceSource for Arc<S> {
    type Lookup = S::Lookup;

    fn key<'r>(&self, request: &'r Parts) -> Option<&'r str> {
        (**self).key(request)
    }

    fn lookup(&self, key: &str) -> Self::Lookup {
        (**self).lookup(key)
    }

    fn find(&self, key: &str) -> Found<Self::Lookup> {
        (**self).find(key)
    }
}

/// The source of a layer without one: no request has a stored trace.
#[derive(Debug, Clone, Copy, Default)]
pub struct NoSource;

impl TraceSource for NoSource {
    type Lookup = std::future::Ready<Result<Option<StoredTrace>, SourceError>>;

    fn key<'r>(&self, _: &'r Parts) -> Option<&'r str> {
        None
    }

    fn lookup(&self, _: &str) -> Self::Lookup {
        std::future::ready(Ok(None))
    }
}

/// A [`TraceSource`] with a cache in front (`moka`: bounded, least recently used out
/// first, entries expire).
///
/// Defaults: 10,000 entries, 5 minutes to live, 1 minute idle. Found records are
/// cached; absent ones and errors are not (a workflow may be created a moment later).
/// Pre-warm with [`insert`](Self::insert) when a workflow starts or is polled, and
/// [`invalidate`](Self::invalidate) when it completes. Clones share one cache.
pub struct CachedSource<S> {
    source: Arc<S>,
    cache: Cache,
}

/// The cache of a [`CachedSource`], hashed with a per-process seed as the names table is
/// (its keys come from requests), not SipHash: ~120 instructions less a lookup.
type Cache = moka::sync::Cache<Arc<str>, StoredTrace, foldhash::fast::RandomState>;

impl<S> Clone for CachedSource<S> {
    fn clone(&self) -> Self {
        Self {
            source: Arc::clone(&self.source),
            cache: self.cache.clone(),
        }
    }
}

impl<S> std::fmt::Debug for CachedSource<S> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CachedSource")
            .field("entries", &self.cache.entry_count())
            .finish_non_exhaustive()
    }
}

/// Default capacity of a [`CachedSource`].
pub const DEFAULT_CACHE_ENTRIES: u64 = 10_000;
/// Default time an entry of a [`CachedSource`] lives.
pub const DEFAULT_CACHE_TTL: Duration = Duration::from_secs(5 * 60);
/// Default time an unused entry of a [`CachedSource`] stays.
pub const DEFAULT_CACHE_IDLE: Duration = Duration::from_secs(60);

impl<S: TraceSource> CachedSource<S> {
    /// `source` behind a cache with the default limits.
    pub fn new(source: S) -> Self {
        Self::with_limits(
            source,
            DEFAULT_CACHE_ENTRIES,
            DEFAULT_CACHE_TTL,
            DEFAULT_CACHE_IDLE,
        )
    }

    /// `source` behind a cache of at most `entries` records, each kept at most `ttl`
    /// and dropped after `idle` without use.
    pub fn with_limits(source: S, entries: u64, ttl: Duration, idle: Duration) -> Self {
        Self {
            source: Arc::new(source),
            cache: moka::sync::Cache::builder()
                .max_capacity(entries)
                .time_to_live(ttl)
                .time_to_idle(idle)
                .build_with_hasher(foldhash::fast::RandomState::default()),
        }
    }

    /// Caches `trace` under `key` (for instance when a workflow starts).
    pub fn insert(&self, key: impl Into<Arc<str>>, trace: StoredTrace) {
        self.cache.insert(key.into(), trace);
    }

    /// Forgets `key` (for instance when its workflow completes).
    pub fn invalidate(&self, key: &str) {
        self.cache.invalidate(key);
    }

    /// The cached record of `key`, without asking the source.
    pub fn cached(&self, key: &str) -> Option<StoredTrace> {
        self.cache.get(key)
    }

    /// The wrapped source.
    pub fn source(&self) -> &S {
        &self.source
    }
}

impl<S: TraceSource> TraceSource for CachedSource<S> {
    type Lookup = CachedLookup<S::Lookup>;

    fn key<'r>(&self, request: &'r Parts) -> Option<&'r str> {
        self.source.key(request)
    }

    fn lookup(&self, key: &str) -> Self::Lookup {
        match self.cache.get(key) {
            Some(hit) => CachedLookup {
                state: Lookup::Hit(Some(hit)),
            },
            None => self.miss(key),
        }
    }

    /// A cache hit is ready; a miss asks the source.
    fn find(&self, key: &str) -> Found<Self::Lookup> {
        match self.cache.get(key) {
            Some(hit) => Found::Ready(Ok(Some(hit))),
            None => Found::Pending(self.miss(key)),
        }
    }
}

impl<S: TraceSource> CachedSource<S> {
    /// The lookup of a key not in the cache: the source's, its record cached.
    fn miss(&self, key: &str) -> CachedLookup<S::Lookup> {
        CachedLookup {
            state: Lookup::Miss {
                lookup: self.source.lookup(key),
                key: Arc::from(key),
                cache: self.cache.clone(),
            },
        }
    }
}

/// The lookup future of a [`CachedSource`]: a cache hit, or the source's lookup whose
/// record is cached when found.
#[pin_project]
pub struct CachedLookup<F> {
    #[pin]
    state: Lookup<F>,
}

#[pin_project(project = LookupProj)]
enum Lookup<F> {
    Hit(Option<StoredTrace>),
    Miss {
        #[pin]
        lookup: F,
        key: Arc<str>,
        cache: Cache,
    },
}

impl<F> std::fmt::Debug for CachedLookup<F> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self.state {
            Lookup::Hit(_) => "CachedLookup(hit)",
            Lookup::Miss { .. } => "CachedLookup(miss)",
        })
    }
}

impl<F> Future for CachedLookup<F>
where
    F: Future<Output = Result<Option<StoredTrace>, SourceError>>,
{
    type Output = F::Output;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        match self.project().state.project() {
            LookupProj::Hit(hit) => Poll::Ready(Ok(hit.take())),
            LookupProj::Miss { lookup, key, cache } => {
                let found = ready!(lookup.poll(cx));
                if let Ok(Some(trace)) = &found {
                    cache.insert(Arc::clone(key), trace.clone());
                }
                Poll::Ready(found)
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicUsize, Ordering};

    use super::*;

    const TP: &str = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";

    #[derive(Default)]
    struct Counting(AtomicUsize);

    impl TraceSource for Counting {
        type Lookup = std::future::Ready<Result<Option<StoredTrace>, SourceError>>;

        fn lookup(&self, key: &str) -> Self::Lookup {
            self.0.fetch_add(1, Ordering::Relaxed);
            std::future::ready(match key {
                "broken" => Err("database is down".into()),
                "wf" => Ok(Some(StoredTrace::new(
                    TenantId::parse("acme").unwrap(),
                    Some(TP),
                ))),
                _ => Ok(None),
            })
        }
    }

    fn parts(workflow: Option<&str>) -> Parts {
        let mut b = http::Request::builder();
        if let Some(w) = workflow {
            b = b.header(WORKFLOW_HEADER, w);
        }
        b.body(()).unwrap().into_parts().0
    }

    #[test]
    fn default_key_is_the_workflow_header() {
        let p = parts(Some(" wf-9 "));
        assert_eq!(Counting::default().key(&p), Some("wf-9"));
        assert_eq!(Counting::default().key(&parts(Some(""))), None);
        assert_eq!(Counting::default().key(&parts(None)), None);
        assert_eq!(NoSource.key(&parts(Some("wf"))), None);
    }

    #[tokio::test]
    async fn found_records_are_cached_absent_ones_and_errors_are_not() {
        let source = CachedSource::new(Counting::default());
        let calls = || source.source().0.load(Ordering::Relaxed);
        let found = source.lookup("wf").await.unwrap().unwrap();
        assert_eq!(found.tenant().as_str(), "acme");
        assert!(found.parent().is_some());
        assert_eq!(source.lookup("wf").await.unwrap(), Some(found));
        assert_eq!(calls(), 1);

        assert_eq!(source.lookup("nope").await.unwrap(), None);
        assert_eq!(source.lookup("nope").await.unwrap(), None);
        assert!(source.lookup("broken").await.is_err());
        assert!(source.lookup("broken").await.is_err());
        assert_eq!(calls(), 5);
    }

    #[tokio::test]
    async fn insert_prewarms_and_invalidate_forgets() {
        let source = CachedSource::new(Counting::default());
        let trace = StoredTrace::new(TenantId::parse("beta").unwrap(), None);
        source.insert("other", trace.clone());
        assert_eq!(source.lookup("other").await.unwrap(), Some(trace));
        assert_eq!(source.source().0.load(Ordering::Relaxed), 0);
        source.invalidate("other");
        assert_eq!(source.lookup("other").await.unwrap(), None);
        assert_eq!(source.source().0.load(Ordering::Relaxed), 1);
    }

    #[tokio::test]
    async fn a_cache_hit_is_ready_and_a_miss_pending() {
        let source = CachedSource::new(Counting::default());
        let Found::Pending(lookup) = source.find("wf") else {
            panic!("not cached yet");
        };
        let found = lookup.await.unwrap();
        match source.find("wf") {
            Found::Ready(Ok(now)) => assert_eq!(now, found),
            other => panic!("cached, so ready: {other:?}"),
        }
        assert_eq!(source.source().0.load(Ordering::Relaxed), 1);
        // Absent records and errors are not cached: asked again, later.
        assert!(matches!(source.find("nope"), Found::Pending(_)));
        assert!(matches!(source.find("broken"), Found::Pending(_)));
        // Through an `Arc` too.
        assert!(matches!(
            Arc::new(source).find("wf"),
            Found::Ready(Ok(Some(_)))
        ));
    }

    #[test]
    fn corrupt_stored_traceparent_is_kept_as_a_reason() {
        let trace = StoredTrace::new(TenantId::parse("acme").unwrap(), Some("garbage"));
        assert!(trace.parent().is_none());
        assert!(trace.restored().fresh_reason().is_some());
    }
}
