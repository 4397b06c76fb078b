//! Hostile input through the whole stack (`InstrumentLayer` and the pipeline: tenant
//! stamp, redaction, JSON logs, the guarded Prometheus recorder), and the invariants
//! that must hold whatever a client sends:
//!
//! - every request is answered, nothing panics;
//! - a refused request never reaches the handler, and the handler only ever serves the
//!   tenant the request named, never another tenant's workflow;
//! - a span never carries another tenant's `tenant.id`;
//! - no secret a client or the handler put anywhere reaches an exported span, `/metrics`,
//!   a log line or a response header.

use std::future::{ready, Ready};
use std::io::Write as _;
use std::sync::{Arc, Mutex};

use bytes::Bytes;
use http::{HeaderName, HeaderValue, Request, Response};
use http_body_util::{BodyExt as _, Full};
use instrument::cardinality::LabelGuard;
use instrument::pipeline::{
    build, prometheus_recorder, ExporterConfig, JsonLogLayer, MemoryExporter, PipelineConfig,
};
use instrument::semconv::MetricNames;
use instrument::tenant::{current_tenant, TenantId};
use instrument::tower::source::{SourceError, StoredTrace, TraceSource};
use instrument::tower::stack::InstrumentLayer;
use opentelemetry_sdk::trace::SpanData;
use proptest::prelude::*;
use tower::{Service as _, ServiceBuilder, ServiceExt as _};
use tracing_subscriber::layer::SubscriberExt as _;

/// Workflows of two tenants.
#[derive(Clone)]
struct Store;

impl TraceSource for Store {
    type Lookup = Ready<Result<Option<StoredTrace>, SourceError>>;

    fn lookup(&self, key: &str) -> Self::Lookup {
        let tp = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";
        ready(Ok(match key {
            "wf-acme" => Some(StoredTrace::new(TenantId::parse("acme").unwrap(), Some(tp))),
            "wf-globex" => Some(StoredTrace::new(TenantId::parse("globex").unwrap(), None)),
            _ => None,
        }))
    }
}

/// The tenant a workflow belongs to.
fn owner(workflow: &str) -> Option<&'static str> {
    match workflow {
        "wf-acme" => Some("acme"),
        "wf-globex" => Some("globex"),
        _ => None,
    }
}

/// Secrets from the redaction rules' kinds; only their distinctive parts are searched
/// for in the output (a rule may keep a prefix such as `sk_live_`).
const SECRETS: &[(&str, &str)] = &[
    ("sk_live_4eC39HqLyjWDarjtT1zdp7dc", "4eC39HqLyjWDarjtT1zdp7dc"),
    ("password=hunter2", "hunter2"),
    ("4111 1111 1111 1111", "4111 1111 1111 1111"),
    (
        "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxMjM0NTY3ODkwIn0.dozjgNryP4J3jVmNHl0w5N_XgL0n3I9PlFUP0THsR8U",
        "dozjgNryP4J3jVmNHl0w5N_XgL0n3I9PlFUP0THsR8U",
    ),
    ("jane.doe@example.com", "jane.doe@example.com"),
];

/// Where a request puts its secret.
#[derive(Debug, Clone, Copy)]
enum Place {
    Path,
    Query,
    UserAgent,
    RecordedHeader,
    Authorization,
    HandlerError,
    HandlerLog,
}

/// One request a client makes.
#[derive(Debug, Clone)]
struct Hostile {
    tenant: Option<Vec<u8>>,
    workflow: Option<&'static str>,
    traceparent: Option<String>,
    secret: (usize, Place),
}

/// What the handler saw: the tenant in its context and the workflow asked for.
type Served = Arc<Mutex<Vec<(Option<String>, Option<String>)>>>;

/// Everything that left the process.
struct Output {
    spans: Vec<SpanData>,
    exposition: String,
    logs: String,
    response_headers: Vec<String>,
    /// Per request: the tenant header was admitted (the handler ran).
    served: Vec<(Option<String>, Option<String>)>,
    answered: usize,
}

#[derive(Clone, Default)]
struct Buffer(Arc<Mutex<Vec<u8>>>);

impl std::io::Write for Buffer {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl<'a> tracing_subscriber::fmt::MakeWriter<'a> for Buffer {
    type Writer = Buffer;
    fn make_writer(&'a self) -> Self::Writer {
        self.clone()
    }
}

fn request(hostile: &Hostile) -> Request<()> {
    let (secret, place) = (SECRETS[hostile.secret.0].0, hostile.secret.1);
    let encoded: String = secret
        .bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'@' | b'=' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect();
    let uri = match place {
        Place::Path => format!("/jobs/{encoded}"),
        Place::Query => format!("/jobs/7?note={encoded}"),
        _ => "/jobs/7".to_owned(),
    };
    let mut request = Request::post(uri).body(()).unwrap();
    let headers = request.headers_mut();
    if let Some(tenant) = &hostile.tenant {
        if let Ok(value) = HeaderValue::from_bytes(tenant) {
            headers.insert("x-tenant-id", value);
        }
    }
    if let Some(workflow) = hostile.workflow {
        headers.insert("x-workflow-id", HeaderValue::from_static(workflow));
    }
    if let Some(tp) = &hostile.traceparent {
        if let Ok(value) = HeaderValue::from_str(tp) {
            headers.insert("traceparent", value);
        }
    }
    let value = HeaderValue::from_str(secret).unwrap();
    match place {
        Place::UserAgent => {
            headers.insert(http::header::USER_AGENT, value);
        }
        Place::RecordedHeader => {
            headers.insert("x-note", value);
        }
        Place::Authorization => {
            headers.insert(
                http::header::AUTHORIZATION,
                HeaderValue::from_str(&format!("Bearer {secret}")).unwrap(),
            );
        }
        Place::HandlerError | Place::HandlerLog => {
            headers.insert("x-secret-index", HeaderValue::from(hostile.secret.0));
            let kind = if matches!(place, Place::HandlerError) {
                "error"
            } else {
                "log"
            };
            headers.insert("x-handler", HeaderValue::from_static(kind));
        }
        Place::Path | Place::Query => {}
    }
    request
}

/// Serves `requests` one after another through the whole stack, in a pipeline of its
/// own, and collects everything that left.
fn serve(requests: Vec<Request<()>>) -> Output {
    let spans = MemoryExporter::default();
    let telemetry =
        build(&PipelineConfig::default().with_exporter(ExporterConfig::Memory(spans.clone())))
            .unwrap();
    let logs = Buffer::default();
    let subscriber =
        tracing_subscriber::registry()
            .with(telemetry.layer())
            .with(JsonLogLayer::new(
                telemetry.redactor().clone(),
                logs.clone(),
            ));
    let _subscriber = tracing::subscriber::set_default(subscriber);
    let (recorder, handle) =
        prometheus_recorder(LabelGuard::default(), &MetricNames::default()).unwrap();
    let served: Served = Arc::default();
    let mut response_headers = Vec::new();
    let mut answered = 0;
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    metrics::with_local_recorder(&recorder, || {
        runtime.block_on(async {
            let layer = InstrumentLayer::builder()
                .tracer(telemetry.tracer().unwrap())
                .source(Store)
                .record_headers([
                    HeaderName::from_static("x-note"),
                    http::header::AUTHORIZATION,
                    http::header::USER_AGENT,
                ])
                .build();
            let seen = Arc::clone(&served);
            let mut service =
                ServiceBuilder::new()
                    .layer(layer)
                    .service_fn(move |request: Request<()>| {
                        let seen = Arc::clone(&seen);
                        async move {
                            let workflow = request
                                .headers()
                                .get("x-workflow-id")
                                .and_then(|v| v.to_str().ok())
                                .map(str::to_owned);
                            seen.lock()
                                .unwrap()
                                .push((current_tenant().map(|t| t.to_string()), workflow));
                            let secret = request
                                .headers()
                                .get("x-secret-index")
                                .and_then(|v| v.to_str().ok())
                                .and_then(|v| v.parse::<usize>().ok())
                                .map(|i| SECRETS[i].0);
                            match (request.headers().get("x-handler"), secret) {
                                (Some(kind), Some(secret)) if kind == "error" => {
                                    return Err(format!("login failed for {secret}"));
                                }
                                (Some(_), Some(secret)) => {
                                    tracing::info!(note = secret, "handling {secret}");
                                }
                                _ => {}
                            }
                            Ok::<_, String>(Response::new(Full::new(Bytes::from_static(b"ok"))))
                        }
                    });
            for (i, mut request) in requests.into_iter().enumerate() {
                request.headers_mut().insert(
                    "x-request-id",
                    HeaderValue::from_str(&format!("r{i}")).unwrap(),
                );
                let ready = service.ready().await.unwrap();
                // A service error (the handler's `Err`) is an answer too.
                if let Ok(response) = ready.call(request).await {
                    for (name, value) in response.headers() {
                        response_headers.push(format!("{name}: {value:?}"));
                    }
                    let _ = response.into_body().collect().await;
                }
                answered += 1;
            }
        });
    });
    drop(_subscriber);
    telemetry.shutdown().unwrap();
    let logs = String::from_utf8_lossy(&logs.0.lock().unwrap()).into_owned();
    let served = served.lock().unwrap().clone();
    Output {
        spans: spans.spans(),
        exposition: handle.render(),
        logs,
        response_headers,
        served,
        answered,
    }
}

/// Every text of a span that leaves: name, attribute keys and values, events, status.
fn texts(span: &SpanData) -> String {
    let mut all = format!("{} {:?}", span.name, span.status);
    for kv in &span.attributes {
        all.push_str(&format!(" {}={}", kv.key, kv.value));
    }
    for event in span.events.iter() {
        all.push_str(&format!(" {}", event.name));
        for kv in &event.attributes {
            all.push_str(&format!(" {}={}", kv.key, kv.value));
        }
    }
    all
}

fn tenant_of(span: &SpanData) -> Vec<String> {
    span.attributes
        .iter()
        .filter(|kv| kv.key.as_str() == "tenant.id")
        .map(|kv| kv.value.to_string())
        .collect()
}

/// The tenant a request claims, when its header is a valid tenant id.
fn claimed(request: &Hostile) -> Option<String> {
    let text = std::str::from_utf8(request.tenant.as_deref()?).ok()?;
    TenantId::parse(text).ok().map(|t| t.to_string())
}

/// The invariants, for `requests` and what came out of serving them.
fn check(requests: &[Hostile], out: &Output) {
    assert_eq!(out.answered, requests.len(), "every request answered");
    // The handler only ever serves a tenant the request named, and never another
    // tenant's workflow; a refused request never reaches it.
    let admitted: Vec<String> = requests
        .iter()
        .filter_map(|r| {
            let claimed = claimed(r)?;
            r.workflow
                .and_then(owner)
                .is_none_or(|o| o == claimed)
                .then_some(claimed)
        })
        .collect();
    let served: Vec<String> = out
        .served
        .iter()
        .map(|(tenant, _)| tenant.clone().expect("a served request has its tenant"))
        .collect();
    assert_eq!(
        served, admitted,
        "exactly the admitted requests reach the handler"
    );
    for (tenant, workflow) in &out.served {
        if let Some(owner) = workflow.as_deref().and_then(owner) {
            assert_eq!(
                tenant.as_deref(),
                Some(owner),
                "{workflow:?} served to {tenant:?}"
            );
        }
    }
    // A span never carries another tenant's id: at most one `tenant.id`, the one its
    // request claimed (spans are found by the request id each request carried).
    for span in &out.spans {
        let tenants = tenant_of(span);
        assert!(tenants.len() <= 1, "{tenants:?} on {}", span.name);
        let Some(tenant) = tenants.first() else {
            continue;
        };
        let id = span
            .attributes
            .iter()
            .find(|kv| kv.key.as_str() == "http.request.header.x-request-id")
            .map(|kv| kv.value.to_string())
            .expect("every server span has its request id");
        let i: usize = id
            .trim_matches(|c| c == '[' || c == ']' || c == '"')
            .trim_start_matches('r')
            .parse()
            .unwrap();
        let claimed = requests[i]
            .tenant
            .as_deref()
            .and_then(|t| std::str::from_utf8(t).ok())
            .and_then(|t| TenantId::parse(t).ok())
            .map(|t| t.to_string());
        assert_eq!(
            Some(tenant),
            claimed.as_ref(),
            "request {i}: {:?}",
            requests[i]
        );
    }
    // No secret leaves.
    for (_, needle) in SECRETS {
        for span in &out.spans {
            let all = texts(span);
            assert!(!all.contains(needle), "{needle} in a span: {all}");
        }
        assert!(!out.exposition.contains(needle), "{needle} in /metrics");
        assert!(
            !out.logs.contains(needle),
            "{needle} in the logs: {}",
            out.logs
        );
        for header in &out.response_headers {
            assert!(!header.contains(needle), "{needle} in {header}");
        }
    }
}

fn tenant_bytes() -> impl Strategy<Value = Option<Vec<u8>>> {
    prop_oneof![
        Just(None),
        Just(Some(b"acme".to_vec())),
        Just(Some(b"globex".to_vec())),
        Just(Some(b"acme ".to_vec())),
        Just(Some(b" globex".to_vec())),
        Just(Some(b"Acme".to_vec())),
        Just(Some(b"ac\tme".to_vec())),
        Just(Some(b"ac\xffme".to_vec())),
        Just(Some(vec![b'a'; 64 * 1024])),
        proptest::collection::vec(any::<u8>(), 0..40).prop_map(Some),
    ]
}

fn hostile() -> impl Strategy<Value = Hostile> {
    let traceparent = prop_oneof![
        Just(None),
        Just(Some(
            "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01".to_owned()
        )),
        Just(Some(
            "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-00".to_owned()
        )),
        "[ -~]{0,80}".prop_map(Some),
    ];
    let place = prop_oneof![
        Just(Place::Path),
        Just(Place::Query),
        Just(Place::UserAgent),
        Just(Place::RecordedHeader),
        Just(Place::Authorization),
        Just(Place::HandlerError),
        Just(Place::HandlerLog),
    ];
    (
        tenant_bytes(),
        prop_oneof![
            Just(None),
            Just(Some("wf-acme")),
            Just(Some("wf-globex")),
            Just(Some("wf-missing"))
        ],
        traceparent,
        (0..SECRETS.len(), place),
    )
        .prop_map(|(tenant, workflow, traceparent, secret)| Hostile {
            tenant,
            workflow,
            traceparent,
            secret,
        })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(48))]

    #[test]
    fn whatever_clients_send_tenants_stay_apart_and_secrets_stay_in(
        requests in proptest::collection::vec(hostile(), 1..24)
    ) {
        let out = serve(requests.iter().map(request).collect());
        check(&requests, &out);
    }
}

/// The shapes the issue names, each at least once: oversized values, thousands of
/// members and repeats, bytes a header may hold but a tenant may not, another
/// tenant's id with a space, binary metadata.
#[test]
fn oversized_repeated_and_malformed_headers_are_answered_and_bounded() {
    let base = || Request::post("/jobs/7").body(()).unwrap();
    let mut requests = Vec::new();
    let big = "a".repeat(64 * 1024);
    for name in [
        "traceparent",
        "tracestate",
        "x-tenant-id",
        "x-workflow-id",
        "user-agent",
    ] {
        let mut request = base();
        request
            .headers_mut()
            .insert("x-tenant-id", HeaderValue::from_static("acme"));
        request
            .headers_mut()
            .insert(name, HeaderValue::from_str(&big).unwrap());
        requests.push(request);
    }
    // 10,000 tracestate members; 1,000 repeated traceparents, tracestates and tenants.
    let mut request = base();
    request
        .headers_mut()
        .insert("x-tenant-id", HeaderValue::from_static("acme"));
    let members = (0..10_000)
        .map(|i| format!("k{i}=v"))
        .collect::<Vec<_>>()
        .join(",");
    request
        .headers_mut()
        .insert("tracestate", HeaderValue::from_str(&members).unwrap());
    requests.push(request);
    for name in ["traceparent", "tracestate", "x-tenant-id"] {
        let mut request = base();
        request
            .headers_mut()
            .insert("x-tenant-id", HeaderValue::from_static("acme"));
        for i in 0..1_000 {
            let value = match name {
                "traceparent" => format!("00-0af7651916cd43dd8448eb211c80319c-{i:016x}-01"),
                "tracestate" => format!("k{i}=v"),
                _ => "acme".to_owned(),
            };
            request
                .headers_mut()
                .append(name, HeaderValue::from_str(&value).unwrap());
        }
        requests.push(request);
    }
    // Another tenant's valid id with a space, for acme's workflow; binary metadata
    // that spells a tenant.
    for (tenant, workflow) in [("globex ", "wf-acme"), (" acme", "wf-globex")] {
        let mut request = base();
        request
            .headers_mut()
            .insert("x-tenant-id", HeaderValue::from_static(tenant));
        request
            .headers_mut()
            .insert("x-workflow-id", HeaderValue::from_static(workflow));
        requests.push(request);
    }
    let mut request = base();
    request
        .headers_mut()
        .insert("x-tenant-id-bin", HeaderValue::from_static("YWNtZQ=="));
    request
        .headers_mut()
        .insert("content-type", HeaderValue::from_static("application/grpc"));
    requests.push(request);
    let count = requests.len();
    let out = serve(requests);
    assert_eq!(out.answered, count);
    // Only the requests that named acme plainly were served (the 64 KiB tenant and the
    // repeated tenant header are refused, not cut to something else).
    for (tenant, workflow) in &out.served {
        assert_eq!(tenant.as_deref(), Some("acme"), "{workflow:?}");
    }
    assert!(out.served.len() <= count - 4, "{} served", out.served.len());
    // Nothing recorded grows with the input: no attribute over 64 KiB / 4.
    for span in &out.spans {
        for kv in &span.attributes {
            let len = kv.value.as_str().len();
            assert!(len <= 16 * 1024, "{} is {len} bytes", kv.key);
        }
    }
    assert!(out.exposition.len() < 64 * 1024, "{}", out.exposition.len());
    let _ = std::io::stderr().flush();
}
