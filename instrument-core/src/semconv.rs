//! Every attribute key, span name, metric name and label the toolkit emits, in one place.
//!
//! Attribute keys follow the OpenTelemetry semantic conventions where one exists
//! (`rpc.*`, `http.*`) and the toolkit's workflow vocabulary (`workflow.*`, `task.*`, `tenant.*`) otherwise.
//!
//! Metric names come in two [schemes](MetricScheme). By default, the request metrics
//! are the conventions' own, in their Prometheus form, so the standard HTTP and gRPC
//! dashboards work unchanged: `http_server_request_duration_seconds` and
//! `rpc_server_call_duration_seconds` with the conventions' label keys
//! (`http_request_method`, `http_route`, `http_response_status_code`, `rpc_method`,
//! `rpc_response_status_code`, `error_type`) and advised buckets. The prefixed scheme
//! ([`MetricNames::prefixed`]) names them `<prefix>_requests_total`,
//! `<prefix>_request_duration_seconds`, ... instead. What the conventions do not cover
//! (workflows, tasks, tenant rejections, label overflow) is named under the prefix in
//! both:
//!
//! ```
//! use instrument_core::semconv::{self, MetricNames};
//!
//! let names = MetricNames::default();
//! assert_eq!(names.http_duration(), "http_server_request_duration_seconds");
//! assert_eq!(names.workflows().started, "instrument_workflows_started_total");
//!
//! let prefixed = MetricNames::prefixed("acme")?;
//! assert_eq!(prefixed.http_duration(), "acme_request_duration_seconds");
//! assert_eq!(prefixed.tasks().duration, "acme_task_duration_seconds");
//! assert_eq!(semconv::TENANT_ID, "tenant.id");
//! # Ok::<(), semconv::InvalidMetricName>(())
//! ```

use std::fmt;

use opentelemetry_semantic_conventions::attribute as sc;
use opentelemetry_semantic_conventions::metric as scm;

// --- Attribute keys -------------------------------------------------------------

/// The tenant every span belongs to.
pub const TENANT_ID: &str = "tenant.id";
/// Set to `true` on spans that had no tenant (tenant policy `MarkMissing`).
pub const TENANT_MISSING: &str = "tenant.missing";
/// Workflow id.
pub const WORKFLOW_ID: &str = "workflow.id";
/// Workflow kind (type name).
pub const WORKFLOW_KIND: &str = "workflow.kind";
/// Task id.
pub const TASK_ID: &str = "task.id";
/// Task type.
pub const TASK_TYPE: &str = "task.type";
/// Queue a task or workflow was submitted to.
pub const TASK_QUEUE: &str = "task.queue";
/// Worker that polled the work.
pub const WORKER_ID: &str = "worker.id";
/// Timer id.
pub const TIMER_ID: &str = "timer.id";
/// Child workflow id.
pub const CHILD_ID: &str = "child.id";
/// Child workflow kind.
pub const CHILD_KIND: &str = "child.kind";
/// Promise id.
pub const PROMISE_ID: &str = "promise.id";
/// Promise name.
pub const PROMISE_NAME: &str = "promise.name";
/// Error text (redacted, at most [`MAX_ERROR_LEN`] bytes).
pub const ERROR: &str = "error";
/// Wall-clock time from creation to completion, suspensions included.
pub const TOTAL_DURATION_MS: &str = "total_duration_ms";
/// Time from creation until first picked up.
pub const PENDING_DURATION_MS: &str = "pending_duration_ms";
/// Time spent executing.
pub const EXECUTION_DURATION_MS: &str = "execution_duration_ms";
/// Time a task spent running on a worker.
pub const RUNNING_DURATION_MS: &str = "running_duration_ms";
/// How many times the work was executed (polls).
pub const EXECUTION_COUNT: &str = "execution_count";
/// Internal marker: the tenant the tenant processor stamped at span start. It becomes
/// the span's `tenant.id`, or goes, before export; never set it yourself.
pub const TENANT_STAMPED: &str = "instrument.tenant.stamped";
/// Internal marker: what [`Redactor::vouch`](crate::redact::Redactor::vouch) adds after
/// the attributes it vouches for. Removed before export; never set it yourself.
pub const REDACTED_BY: &str = "instrument.redacted.by";
/// How many values the redactor masked on a span.
pub const REDACTION_MASKED_COUNT: &str = "redaction.masked.count";

/// The request or call ended before it completed (the caller went away or the future
/// was dropped).
pub const CANCELLED: &str = "instrument.cancelled";
/// Why a request's stored trace context was not used as its parent (absent, invalid,
/// another tenant's, or the lookup failed).
pub const STORED_PARENT_UNUSED: &str = "instrument.stored_parent.unused";
/// Why the request's `traceparent` header was ignored (invalid or repeated).
pub const INCOMING_PARENT_INVALID: &str = "instrument.incoming_parent.invalid";
/// A tenant refusal recorded on a server span: `missing`, `malformed` or `other_tenant`.
pub const TENANT_REJECTED: &str = "tenant.rejected";
/// Prefix of recorded request headers (`http.request.header.<name>`, redacted).
pub const HTTP_REQUEST_HEADER_PREFIX: &str = "http.request.header.";
/// The request id (tower-http's `SetRequestIdLayer`, [`REQUEST_ID_HEADER`]) on a server
/// span, as the semantic conventions record a request header.
pub const HTTP_REQUEST_ID: &str = "http.request.header.x-request-id";

// The conventions' keys, from the `opentelemetry-semantic-conventions` crate. The RPC
// keys the conventions renamed stay until OTEL_SEMCONV_STABILITY_OPT_IN says (see
// [`RpcConventions`]).

/// RPC system (`grpc`), the older RPC conventions' key (now `rpc.system.name`).
#[allow(deprecated)]
pub const RPC_SYSTEM: &str = sc::RPC_SYSTEM;
/// RPC system (`grpc`), the current RPC conventions' key.
pub const RPC_SYSTEM_NAME: &str = sc::RPC_SYSTEM_NAME;
/// Full gRPC service name (`package.Service`), the older RPC conventions' key.
#[allow(deprecated)]
pub const RPC_SERVICE: &str = sc::RPC_SERVICE;
/// gRPC method: `Method` in the older RPC conventions, `package.Service/Method` in the
/// current ones.
pub const RPC_METHOD: &str = sc::RPC_METHOD;
/// Numeric gRPC status code, the older RPC conventions' key.
#[allow(deprecated)]
pub const RPC_GRPC_STATUS_CODE: &str = sc::RPC_GRPC_STATUS_CODE;
/// gRPC status code name (`OK`, `NOT_FOUND`), the current RPC conventions' key.
pub const RPC_RESPONSE_STATUS_CODE: &str = sc::RPC_RESPONSE_STATUS_CODE;
/// The gRPC method a client asked for when the server did not recognise it (then
/// `rpc.method` is [`OTHER`]): redacted, at most [`MAX_ORIGINAL_LEN`] bytes.
pub const RPC_METHOD_ORIGINAL: &str = sc::RPC_METHOD_ORIGINAL;
/// The value of a method or route the server did not recognise, in attributes and
/// labels alike (the OpenTelemetry conventions' placeholder): what a client sends
/// never becomes a label value of its own.
pub const OTHER: &str = "_OTHER";
/// Longest [`RPC_METHOD_ORIGINAL`] recorded, in bytes (cut on a char boundary).
pub const MAX_ORIGINAL_LEN: usize = 256;
/// HTTP request method (`_OTHER` for a method outside RFC 9110 and PATCH).
pub const HTTP_REQUEST_METHOD: &str = sc::HTTP_REQUEST_METHOD;
/// The method a client sent when `http.request.method` is `_OTHER`.
pub const HTTP_REQUEST_METHOD_ORIGINAL: &str = sc::HTTP_REQUEST_METHOD_ORIGINAL;
/// HTTP route template, only from a route the framework or the user supplies.
pub const HTTP_ROUTE: &str = sc::HTTP_ROUTE;
/// HTTP response status code.
pub const HTTP_RESPONSE_STATUS_CODE: &str = sc::HTTP_RESPONSE_STATUS_CODE;
/// The class of a failure: the HTTP status code, the gRPC code name, the error's kind
/// (see [`work::ErrorType`](crate::work::ErrorType)), or `_OTHER`.
pub const ERROR_TYPE: &str = sc::ERROR_TYPE;
/// Name of the event that records a failure's error on a span (the exception
/// conventions).
pub const EXCEPTION_EVENT: &str = "exception";
/// The error's type, on the `exception` event.
pub const EXCEPTION_TYPE: &str = sc::EXCEPTION_TYPE;
/// The error's message (redacted, cut), on the `exception` event.
pub const EXCEPTION_MESSAGE: &str = sc::EXCEPTION_MESSAGE;

/// The name of a gRPC status code (`OK`, `NOT_FOUND`, ...), as `error.type`, the
/// `rpc.response.status_code` attribute and metric labels write it.
pub fn grpc_code_name(code: u16) -> &'static str {
    match code {
        0 => "OK",
        1 => "CANCELLED",
        2 => "UNKNOWN",
        3 => "INVALID_ARGUMENT",
        4 => "DEADLINE_EXCEEDED",
        5 => "NOT_FOUND",
        6 => "ALREADY_EXISTS",
        7 => "PERMISSION_DENIED",
        8 => "RESOURCE_EXHAUSTED",
        9 => "FAILED_PRECONDITION",
        10 => "ABORTED",
        11 => "OUT_OF_RANGE",
        12 => "UNIMPLEMENTED",
        13 => "INTERNAL",
        14 => "UNAVAILABLE",
        15 => "DATA_LOSS",
        16 => "UNAUTHENTICATED",
        _ => "UNRECOGNIZED",
    }
}
/// The path of the request's URL (redacted).
pub const URL_PATH: &str = sc::URL_PATH;
/// The query of the request's URL, when it has one (redacted).
pub const URL_QUERY: &str = sc::URL_QUERY;
/// The scheme of the request's URL (`http` unless the request says otherwise).
pub const URL_SCHEME: &str = sc::URL_SCHEME;
/// The host the client addressed (the `Host` header or the URL's authority).
pub const SERVER_ADDRESS: &str = sc::SERVER_ADDRESS;
/// The port the client addressed, when it named one.
pub const SERVER_PORT: &str = sc::SERVER_PORT;
/// The address of the client that sent the request, as the server knows it: the peer,
/// or the first address a trusted proxy's `Forwarded` / `X-Forwarded-For` names.
pub const CLIENT_ADDRESS: &str = sc::CLIENT_ADDRESS;
/// The port of the client, with [`CLIENT_ADDRESS`] when it is the peer's.
pub const CLIENT_PORT: &str = sc::CLIENT_PORT;
/// The address of the connection's other end (the peer socket).
pub const NETWORK_PEER_ADDRESS: &str = sc::NETWORK_PEER_ADDRESS;
/// The port of the connection's other end.
pub const NETWORK_PEER_PORT: &str = sc::NETWORK_PEER_PORT;
/// The HTTP version (`1.1`, `2`).
pub const NETWORK_PROTOCOL_VERSION: &str = sc::NETWORK_PROTOCOL_VERSION;
/// The `User-Agent` header (redacted).
pub const USER_AGENT_ORIGINAL: &str = sc::USER_AGENT_ORIGINAL;
/// `url.full`: a client request's whole URL (redacted).
pub const URL_FULL: &str = sc::URL_FULL;

// --- Spans a worker reports through the span proxy -------------------------------

/// `sdk.language`: the reporting worker SDK's language.
pub const SDK_LANGUAGE: &str = "sdk.language";
/// `sdk.version`: the reporting worker SDK's version.
pub const SDK_VERSION: &str = "sdk.version";
/// `sdk.os`: the reporting worker's operating system.
pub const SDK_OS: &str = "sdk.os";
/// `sdk.arch`: the reporting worker's CPU architecture.
pub const SDK_ARCH: &str = "sdk.arch";
/// Span type of a worker running a workflow's code.
pub const SPAN_WORKFLOW_EXECUTE: &str = "workflow.execute";
/// Span type of a worker replaying a workflow's history.
pub const SPAN_WORKFLOW_REPLAY: &str = "workflow.replay";
/// Span type of a worker running a task.
pub const SPAN_TASK_EXECUTE: &str = "task.execute";
/// Span type of a timer a workflow waited on.
pub const SPAN_TIMER: &str = "workflow.timer";
/// Span type of a child workflow started and awaited.
pub const SPAN_CHILD_WORKFLOW: &str = "workflow.child";
/// Span type of a promise a workflow awaited.
pub const SPAN_PROMISE: &str = "workflow.promise";
/// Span type of an outgoing HTTP call a worker made (the client layer's span).
pub const SPAN_HTTP_CLIENT: &str = "http.client";
/// Span type of an outgoing gRPC call a worker made (the client layer's span).
pub const SPAN_RPC_CLIENT: &str = "rpc.client";
/// `instrument.reported.dropped_attributes`: keys of reported attributes the span
/// proxy left out (not on the allow-list, or too large).
pub const REPORTED_DROPPED_ATTRIBUTES: &str = "instrument.reported.dropped_attributes";

/// Which RPC conventions gRPC spans follow, as `OTEL_SEMCONV_STABILITY_OPT_IN` says (the
/// OpenTelemetry SDKs' switch for migrating between conventions): without `rpc` the
/// older attributes (`rpc.system`, `rpc.service`, `rpc.method` as `Method`, the integer
/// `rpc.grpc.status_code`); `rpc`, the current ones (`rpc.system.name`, `rpc.method`
/// as `package.Service/Method`, `rpc.response.status_code` as `OK`, ...); `rpc/dup`,
/// both (`rpc.method` then has the current form). Other values in the list (`http`,
/// `database`, ...) do not concern gRPC spans and are ignored, as the SDKs ignore
/// values they do not know. The request metrics follow the current conventions
/// whatever the switch says (see [`MetricScheme`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RpcConventions {
    /// The older attributes (the default).
    Old,
    /// The current attributes (`rpc`).
    Current,
    /// Both (`rpc/dup`).
    Both,
}

impl RpcConventions {
    /// The conventions a value of `OTEL_SEMCONV_STABILITY_OPT_IN` asks for.
    ///
    /// ```
    /// use instrument_core::semconv::RpcConventions;
    ///
    /// assert_eq!(RpcConventions::from_opt_in(None), RpcConventions::Old);
    /// assert_eq!(RpcConventions::from_opt_in(Some("http, rpc")), RpcConventions::Current);
    /// assert_eq!(RpcConventions::from_opt_in(Some("rpc/dup,rpc")), RpcConventions::Both);
    /// ```
    pub fn from_opt_in(value: Option<&str>) -> Self {
        let mut wanted = Self::Old;
        for item in value.unwrap_or("").split(',').map(str::trim) {
            match item {
                "rpc/dup" => return Self::Both,
                "rpc" => wanted = Self::Current,
                _ => {}
            }
        }
        wanted
    }

    /// The process's, from `OTEL_SEMCONV_STABILITY_OPT_IN` read once.
    pub fn global() -> Self {
        static GLOBAL: std::sync::OnceLock<RpcConventions> = std::sync::OnceLock::new();
        *GLOBAL.get_or_init(|| {
            let value = std::env::var("OTEL_SEMCONV_STABILITY_OPT_IN").ok();
            Self::from_opt_in(value.as_deref())
        })
    }

    /// Whether the older attributes are recorded.
    pub fn old(self) -> bool {
        matches!(self, Self::Old | Self::Both)
    }

    /// Whether the current attributes are recorded.
    pub fn current(self) -> bool {
        matches!(self, Self::Current | Self::Both)
    }
}

/// Longest error text recorded on a span, in bytes (cut on a char boundary).
pub const MAX_ERROR_LEN: usize = 1024;

// --- Metric labels --------------------------------------------------------------

/// Label: tenant.
pub const LABEL_TENANT_ID: &str = "tenant_id";
/// Label: workflow kind.
pub const LABEL_WORKFLOW_KIND: &str = "workflow_kind";
/// Label: task type.
pub const LABEL_TASK_TYPE: &str = "task_type";
/// Label: queue.
pub const LABEL_TASK_QUEUE: &str = "task_queue";
/// Label: outcome (`completed`, `failed`, `cancelled`) or status group (`2xx`).
pub const LABEL_STATUS: &str = "status";
/// Label: the metric whose labels overflowed.
pub const LABEL_METRIC: &str = "metric";
/// Label: why a request was rejected (`missing`, `malformed`, `other_tenant`).
pub const LABEL_REASON: &str = "reason";
/// Label: `grpc` or `http`.
pub const LABEL_PROTOCOL: &str = "protocol";
/// Label: the class of a failure (`error.type` in its Prometheus form).
pub const LABEL_ERROR_TYPE: &str = "error_type";
/// Label: the kind of SDK component (`otel.component.type`): `otlp_grpc_span_exporter`, ...
pub const LABEL_OTEL_COMPONENT_TYPE: &str = "otel_component_type";
/// Label: HTTP request method (`http.request.method`), conventions scheme.
pub const LABEL_HTTP_REQUEST_METHOD: &str = "http_request_method";
/// Label: HTTP route template (`http.route`), conventions scheme; `_OTHER` when no
/// route matched.
pub const LABEL_HTTP_ROUTE: &str = "http_route";
/// Label: HTTP response status code (`http.response.status_code`), conventions scheme.
pub const LABEL_HTTP_RESPONSE_STATUS_CODE: &str = "http_response_status_code";
/// Label: the RPC system (`rpc.system.name`), conventions scheme: `grpc`.
pub const LABEL_RPC_SYSTEM_NAME: &str = "rpc_system_name";
/// Label: the fully qualified RPC method (`rpc.method`, `package.Service/Method`),
/// conventions scheme; `_OTHER` for a method the server does not know.
pub const LABEL_RPC_METHOD_FULL: &str = "rpc_method";
/// Label: the gRPC status code name (`rpc.response.status_code`), conventions scheme.
pub const LABEL_RPC_RESPONSE_STATUS_CODE: &str = "rpc_response_status_code";
/// Label: the collector's host (`server.address`).
pub const LABEL_SERVER_ADDRESS: &str = "server_address";
/// Label: the collector's port (`server.port`).
pub const LABEL_SERVER_PORT: &str = "server_port";

// --- Request metrics of the conventions (Prometheus form) ----------------------------

/// Histogram: `http.server.request.duration` in its Prometheus form.
pub const HTTP_SERVER_REQUEST_DURATION: &str = "http_server_request_duration_seconds";
/// Gauge: `http.server.active_requests` in its Prometheus form.
pub const HTTP_SERVER_ACTIVE_REQUESTS: &str = "http_server_active_requests";
/// Histogram: `rpc.server.call.duration` in its Prometheus form.
pub const RPC_SERVER_CALL_DURATION: &str = "rpc_server_call_duration_seconds";
/// Histogram: `http.client.request.duration` in its Prometheus form.
pub const HTTP_CLIENT_REQUEST_DURATION: &str = "http_client_request_duration_seconds";
/// Histogram: `rpc.client.call.duration` in its Prometheus form.
pub const RPC_CLIENT_CALL_DURATION: &str = "rpc_client_call_duration_seconds";

/// The OpenTelemetry names of the conventions' metrics and label keys the toolkit
/// records in their Prometheus form: what an OTLP export sends instead, so a
/// collector sees `http.server.request.duration` with `http.request.method`, as from
/// any other OpenTelemetry SDK.
pub const OTEL_NAMES: &[(&str, &str)] = &[
    (
        HTTP_SERVER_REQUEST_DURATION,
        scm::HTTP_SERVER_REQUEST_DURATION,
    ),
    (
        HTTP_SERVER_ACTIVE_REQUESTS,
        scm::HTTP_SERVER_ACTIVE_REQUESTS,
    ),
    (RPC_SERVER_CALL_DURATION, scm::RPC_SERVER_CALL_DURATION),
    (
        HTTP_CLIENT_REQUEST_DURATION,
        scm::HTTP_CLIENT_REQUEST_DURATION,
    ),
    (RPC_CLIENT_CALL_DURATION, scm::RPC_CLIENT_CALL_DURATION),
    (SDK_SPANS_EXPORTED, "otel.sdk.exporter.span.exported"),
    (SDK_SPANS_PROCESSED, "otel.sdk.processor.span.processed"),
    (SDK_EXPORT_DURATION, "otel.sdk.exporter.operation.duration"),
    (TAIL_REQUESTS_KEPT, "instrument.tail.requests.kept"),
    (TAIL_SPANS_DROPPED, "instrument.tail.spans.dropped"),
    (LABEL_HTTP_REQUEST_METHOD, HTTP_REQUEST_METHOD),
    (LABEL_HTTP_ROUTE, HTTP_ROUTE),
    (LABEL_HTTP_RESPONSE_STATUS_CODE, HTTP_RESPONSE_STATUS_CODE),
    (LABEL_RPC_SYSTEM_NAME, RPC_SYSTEM_NAME),
    (LABEL_RPC_METHOD_FULL, RPC_METHOD),
    (LABEL_RPC_RESPONSE_STATUS_CODE, RPC_RESPONSE_STATUS_CODE),
    (LABEL_ERROR_TYPE, ERROR_TYPE),
    (LABEL_OTEL_COMPONENT_TYPE, "otel.component.type"),
    (LABEL_SERVER_ADDRESS, SERVER_ADDRESS),
    (LABEL_SERVER_PORT, SERVER_PORT),
    (LABEL_TENANT_ID, "tenant.id"),
];

/// The OpenTelemetry name of a metric or label key recorded in its Prometheus form
/// (see [`OTEL_NAMES`]); `None` for the toolkit's own names.
///
/// ```
/// use instrument_core::semconv::otel_name;
///
/// assert_eq!(otel_name("http_server_request_duration_seconds"), Some("http.server.request.duration"));
/// assert_eq!(otel_name("http_request_method"), Some("http.request.method"));
/// assert_eq!(otel_name("instrument_workflows_started_total"), None);
/// ```
pub fn otel_name(prometheus: &str) -> Option<&'static str> {
    OTEL_NAMES
        .iter()
        .find(|(name, _)| *name == prometheus)
        .map(|(_, otel)| *otel)
}

// --- Streamed messages (opt-in; the conventions mark them as in development) --------

/// Histogram: the size of each response message of a gRPC server call, in bytes (as
/// sent, compressed or not); the Prometheus form of `rpc.server.response.size`.
pub const RPC_SERVER_RESPONSE_SIZE: &str = "rpc_server_response_size_bytes";
/// Histogram: response messages per gRPC server call; the Prometheus form of
/// `rpc.server.responses_per_rpc`.
pub const RPC_SERVER_RESPONSES_PER_RPC: &str = "rpc_server_responses_per_rpc";
/// The span event of one message (`rpc.message`).
pub const EVENT_RPC_MESSAGE: &str = "rpc.message";
/// `SENT` or `RECEIVED`.
pub const RPC_MESSAGE_TYPE: &str = "rpc.message.type";
/// The message's number in its direction, from 1.
pub const RPC_MESSAGE_ID: &str = "rpc.message.id";
/// The message's size as sent, compressed.
pub const RPC_MESSAGE_COMPRESSED_SIZE: &str = "rpc.message.compressed_size";
/// The message's size, not compressed.
pub const RPC_MESSAGE_UNCOMPRESSED_SIZE: &str = "rpc.message.uncompressed_size";
/// Message events a span left out past its cap.
pub const RPC_MESSAGE_EVENTS_DROPPED: &str = "instrument.rpc.message_events.dropped";
/// Buckets of the message size histogram, in bytes: 64 B to 16 MiB, by fours.
pub const MESSAGE_SIZE_BUCKETS: &[f64] = &[
    64.0, 256.0, 1024.0, 4096.0, 16384.0, 65536.0, 262144.0, 1048576.0, 4194304.0, 16777216.0,
];
/// Buckets of the messages-per-call histogram: 1 to 65,536, by fours.
pub const MESSAGES_PER_RPC_BUCKETS: &[f64] = &[
    1.0, 4.0, 16.0, 64.0, 256.0, 1024.0, 4096.0, 16384.0, 65536.0,
];

// --- SDK self-observability ---------------------------------------------------------

/// Counter: spans an exporter was given, by outcome (`error_type` set when the export
/// failed); the Prometheus form of `otel.sdk.exporter.span.exported`.
pub const SDK_SPANS_EXPORTED: &str = "otel_sdk_exporter_span_exported_total";
/// Counter: spans the batch processor finished with (`error_type="queue_full"`: dropped
/// because its queue was full); the Prometheus form of `otel.sdk.processor.span.processed`.
pub const SDK_SPANS_PROCESSED: &str = "otel_sdk_processor_span_processed_total";
/// Counter: sampled-out requests exported by tail bias, by `reason` (`error`, `slow`).
pub const TAIL_REQUESTS_KEPT: &str = "instrument_tail_requests_kept_total";
/// Counter: spans of sampled-out requests not held for tail bias because a cap was
/// reached (per request or in the process).
pub const TAIL_SPANS_DROPPED: &str = "instrument_tail_spans_dropped_total";
/// Why a span the head sampler dropped was exported (`error` or `slow`): tail bias.
/// Such spans carry no `th` in their `tracestate` (their probability is unknown).
pub const SAMPLING_KEPT_FOR: &str = "instrument.sampling.kept_for";
/// Histogram: how long each export took, in seconds; the Prometheus form of
/// `otel.sdk.exporter.operation.duration`.
pub const SDK_EXPORT_DURATION: &str = "otel_sdk_exporter_operation_duration_seconds";

// --- Instrumentation scopes ---------------------------------------------------------

/// Instrumentation scope of the spans `#[workflow_span]` and [`Telemetry::tracer`]
/// start.
///
/// [`Telemetry::tracer`]: crate::pipeline::Telemetry::tracer
pub const SCOPE: &str = "instrument";
/// Instrumentation scope of the spans of `instrument-tower`'s layers.
pub const TOWER_SCOPE: &str = "instrument-tower";

/// The instrumentation scope `name` at the toolkit's version, as the toolkit's tracers
/// are made with (`tracer_with_scope(semconv::scope(semconv::SCOPE))`).
pub fn scope(name: &'static str) -> opentelemetry::InstrumentationScope {
    opentelemetry::InstrumentationScope::builder(name)
        .with_version(env!("CARGO_PKG_VERSION"))
        .build()
}

// --- Headers ----------------------------------------------------------------------

/// Default header (gRPC metadata key) carrying the tenant id.
pub const TENANT_HEADER: &str = "x-tenant-id";
/// Default header (gRPC metadata key) carrying the workflow id.
pub const WORKFLOW_HEADER: &str = "x-workflow-id";
/// Default response header carrying the trace id.
pub const TRACKING_HEADER: &str = "x-tracking-id";
/// The request id header of tower-http's `SetRequestIdLayer` / `PropagateRequestIdLayer`.
pub const REQUEST_ID_HEADER: &str = "x-request-id";

/// Label set that replaces one over a metric's cap (as in the OpenTelemetry metrics SDK).
pub const OVERFLOW_LABEL: &str = "otel.metric.overflow";
/// Value of a single label that exceeded its per-label cap.
pub const OVERFLOW_VALUE: &str = "__overflow__";

/// Default metric name prefix.
pub const DEFAULT_PREFIX: &str = "instrument";

/// Default buckets of workflow and task duration histograms, in seconds: from 5 ms to
/// one day, because a workflow may wait days between start and completion.
pub const WORK_DURATION_BUCKETS: &[f64] = &[
    0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 300.0, 900.0,
    3600.0, 21600.0, 86400.0,
];

/// Buckets of the conventions' request duration histograms
/// (`http.server.request.duration`, `rpc.server.call.duration`): the boundaries the
/// HTTP conventions advise, in seconds.
pub const CONVENTION_DURATION_BUCKETS: &[f64] = &[
    0.005, 0.01, 0.025, 0.05, 0.075, 0.1, 0.25, 0.5, 0.75, 1.0, 2.5, 5.0, 7.5, 10.0,
];

/// Default buckets of the prefixed scheme's request duration histograms and of handler
/// run times, in seconds (5 ms to 10 s).
pub const REQUEST_DURATION_BUCKETS: &[f64] = &[
    0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
];

/// Which histograms get which buckets, the same on the Prometheus endpoint and over
/// OTLP. A full name wins over a suffix (the Prometheus exporter's own order), so the
/// the prefixed scheme's `<prefix>_request_duration_seconds`, which ends like the work lifetimes,
/// keeps request buckets.
#[cfg(any(feature = "prometheus", feature = "otlp"))]
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum BucketRule {
    /// The histogram of this name.
    Full(String),
    /// Histograms whose names end so.
    Suffix(&'static str),
}

#[cfg(any(feature = "prometheus", feature = "otlp"))]
impl MetricNames {
    /// The bucket rules of the toolkit's histograms, full names first.
    pub(crate) fn bucket_rules(&self) -> Vec<(BucketRule, &'static [f64])> {
        let requests = match self.scheme {
            MetricScheme::Conventions => CONVENTION_DURATION_BUCKETS,
            MetricScheme::Prefixed => REQUEST_DURATION_BUCKETS,
        };
        let mut rules = vec![(BucketRule::Full(self.http_duration()), requests)];
        if self.rpc_duration() != self.http_duration() {
            rules.push((BucketRule::Full(self.rpc_duration()), requests));
        }
        rules.push((BucketRule::Full(self.http_client_duration()), requests));
        if self.rpc_client_duration() != self.http_client_duration() {
            rules.push((BucketRule::Full(self.rpc_client_duration()), requests));
        }
        rules.extend([
            (
                BucketRule::Full(RPC_SERVER_RESPONSE_SIZE.to_owned()),
                MESSAGE_SIZE_BUCKETS,
            ),
            (
                BucketRule::Full(RPC_SERVER_RESPONSES_PER_RPC.to_owned()),
                MESSAGES_PER_RPC_BUCKETS,
            ),
            (
                BucketRule::Full(SDK_EXPORT_DURATION.to_owned()),
                REQUEST_DURATION_BUCKETS,
            ),
            (
                BucketRule::Suffix("_handler_seconds"),
                REQUEST_DURATION_BUCKETS,
            ),
            (
                BucketRule::Suffix("_duration_seconds"),
                WORK_DURATION_BUCKETS,
            ),
        ]);
        rules
    }

    /// The buckets of the histogram `name` by [`bucket_rules`](Self::bucket_rules);
    /// `None`: the exporter's defaults.
    #[cfg_attr(not(feature = "otlp"), allow(dead_code))]
    pub(crate) fn buckets(&self, name: &str) -> Option<&'static [f64]> {
        let rules = self.bucket_rules();
        let full = rules
            .iter()
            .find(|(rule, _)| matches!(rule, BucketRule::Full(n) if n == name));
        full.or_else(|| {
            rules
                .iter()
                .find(|(rule, _)| matches!(rule, BucketRule::Suffix(end) if name.ends_with(end)))
        })
        .map(|(_, buckets)| *buckets)
    }
}

// --- Metric names ---------------------------------------------------------------

/// A prefix or kind that would not make a valid Prometheus metric name.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InvalidMetricName {
    what: &'static str,
}

impl fmt::Display for InvalidMetricName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "metric {} must be 1 to 64 characters of [a-z0-9_], starting with a letter",
            self.what
        )
    }
}

impl std::error::Error for InvalidMetricName {}

fn check_word(word: &str, what: &'static str) -> Result<(), InvalidMetricName> {
    let ok = (1..=64).contains(&word.len())
        && word.as_bytes()[0].is_ascii_lowercase()
        && word
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_');
    if ok {
        Ok(())
    } else {
        Err(InvalidMetricName { what })
    }
}

/// How the request metrics are named (see the [module docs](self)).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
pub enum MetricScheme {
    /// The OpenTelemetry semantic conventions' names, label keys and advised buckets in
    /// their Prometheus form: one duration histogram per protocol
    /// (`http_server_request_duration_seconds`, `rpc_server_call_duration_seconds`),
    /// whose `_count` is the request count and whose `error_type` label marks the
    /// failures, and an in-flight gauge (`http_server_active_requests`,
    /// `<prefix>_rpc_server_active_calls`, which the conventions do not define).
    #[default]
    Conventions,
    /// The prefixed names: `<prefix>_requests_total`,
    /// `<prefix>_request_duration_seconds`, `<prefix>_request_errors_total` and
    /// `<prefix>_requests_in_flight`, labelled `method` / `route` (HTTP) or
    /// `rpc_service` / `rpc_method` (gRPC), `status` (`2xx`, `OK`, ...) and `tenant_id`.
    Prefixed,
}

/// Metric names: the [scheme](MetricScheme) of the request metrics and the prefix of
/// the toolkit's own (workflows, tasks, tenant rejections, label overflow).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MetricNames {
    prefix: String,
    scheme: MetricScheme,
}

impl Default for MetricNames {
    fn default() -> Self {
        Self {
            prefix: DEFAULT_PREFIX.to_owned(),
            scheme: MetricScheme::Conventions,
        }
    }
}

/// The metric names of one kind of work (`workflow`, `task`, ...).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WorkMetricNames {
    /// `<prefix>_<kind>s_started_total` counter.
    pub started: String,
    /// `<prefix>_<kind>s_completed_total` counter.
    pub completed: String,
    /// `<prefix>_<kind>s_failed_total` counter.
    pub failed: String,
    /// `<prefix>_<kind>s_cancelled_total` counter.
    pub cancelled: String,
    /// `<prefix>_<kind>_duration_seconds` histogram: a piece of work's lifetime, from
    /// its start to its end (seconds to days).
    pub duration: String,
    /// `<prefix>_<kind>_handler_seconds` histogram: one handler call's run time
    /// (request-scale buckets).
    pub handler: String,
    /// `<prefix>_<kind>s_outstanding` gauge: work not yet ended, by kind, state and
    /// age (see [`OutstandingGauge`](crate::outstanding::OutstandingGauge)).
    pub outstanding: String,
}

static GLOBAL_NAMES: std::sync::OnceLock<MetricNames> = std::sync::OnceLock::new();

impl MetricNames {
    /// Makes `self` the process-wide names: `#[workflow_span]` names its metrics after
    /// them, and so do the layers built after this call. `pipeline::install_prometheus`
    /// sets the names it is given. The first names set stay for the life of the process
    /// (they are read on hot paths without a lock); a later call gives its names back as
    /// the error.
    ///
    /// ```
    /// use instrument_core::semconv::MetricNames;
    ///
    /// let _ = MetricNames::new("acme").unwrap().set_global();
    /// assert_eq!(MetricNames::global().prefix(), "acme");
    /// ```
    pub fn set_global(self) -> Result<(), MetricNames> {
        GLOBAL_NAMES.set(self)
    }

    /// The process-wide names (see [`MetricNames::set_global`]); the default prefix's
    /// until some are set.
    pub fn global() -> &'static MetricNames {
        GLOBAL_NAMES.get_or_init(MetricNames::default)
    }

    /// The conventions' request metrics, and the toolkit's own under `prefix`
    /// (`[a-z][a-z0-9_]*`, at most 64 characters).
    pub fn new(prefix: &str) -> Result<Self, InvalidMetricName> {
        check_word(prefix, "prefix")?;
        Ok(Self {
            prefix: prefix.to_owned(),
            scheme: MetricScheme::Conventions,
        })
    }

    /// The prefixed scheme: every metric under `prefix`, the request metrics included
    /// (see [`MetricScheme::Prefixed`]).
    pub fn prefixed(prefix: &str) -> Result<Self, InvalidMetricName> {
        Ok(Self {
            scheme: MetricScheme::Prefixed,
            ..Self::new(prefix)?
        })
    }

    /// The prefix.
    pub fn prefix(&self) -> &str {
        &self.prefix
    }

    /// The scheme of the request metrics.
    pub fn scheme(&self) -> MetricScheme {
        self.scheme
    }

    /// Names for a kind of work; `kind` follows the same rules as the prefix.
    pub fn work(&self, kind: &str) -> Result<WorkMetricNames, InvalidMetricName> {
        check_word(kind, "kind")?;
        Ok(self.names(kind))
    }

    /// Names for a kind the caller has checked already (the macro checks it at compile
    /// time).
    pub(crate) fn work_unchecked(&self, kind: &str) -> WorkMetricNames {
        self.names(kind)
    }

    /// Names for workflows.
    pub fn workflows(&self) -> WorkMetricNames {
        self.names("workflow")
    }

    /// Names for tasks.
    pub fn tasks(&self) -> WorkMetricNames {
        self.names("task")
    }

    fn names(&self, kind: &str) -> WorkMetricNames {
        let p = &self.prefix;
        WorkMetricNames {
            started: format!("{p}_{kind}s_started_total"),
            completed: format!("{p}_{kind}s_completed_total"),
            failed: format!("{p}_{kind}s_failed_total"),
            cancelled: format!("{p}_{kind}s_cancelled_total"),
            duration: format!("{p}_{kind}_duration_seconds"),
            handler: format!("{p}_{kind}_handler_seconds"),
            outstanding: format!("{p}_{kind}s_outstanding"),
        }
    }

    /// The duration histogram of HTTP requests: `http_server_request_duration_seconds`,
    /// or `<prefix>_request_duration_seconds` in the prefixed scheme.
    pub fn http_duration(&self) -> String {
        match self.scheme {
            MetricScheme::Conventions => HTTP_SERVER_REQUEST_DURATION.to_owned(),
            MetricScheme::Prefixed => format!("{}_request_duration_seconds", self.prefix),
        }
    }

    /// The duration histogram of gRPC calls: `rpc_server_call_duration_seconds`, or
    /// `<prefix>_request_duration_seconds` (shared with HTTP) in the prefixed scheme.
    pub fn rpc_duration(&self) -> String {
        match self.scheme {
            MetricScheme::Conventions => RPC_SERVER_CALL_DURATION.to_owned(),
            MetricScheme::Prefixed => self.http_duration(),
        }
    }

    /// The in-flight gauge of HTTP requests: `http_server_active_requests`, or
    /// `<prefix>_requests_in_flight` in the prefixed scheme.
    pub fn http_in_flight(&self) -> String {
        match self.scheme {
            MetricScheme::Conventions => HTTP_SERVER_ACTIVE_REQUESTS.to_owned(),
            MetricScheme::Prefixed => format!("{}_requests_in_flight", self.prefix),
        }
    }

    /// The in-flight gauge of gRPC calls: `<prefix>_rpc_server_active_calls` (the
    /// conventions define none), or `<prefix>_requests_in_flight` (shared with HTTP) in
    /// the prefixed scheme.
    pub fn rpc_in_flight(&self) -> String {
        match self.scheme {
            MetricScheme::Conventions => format!("{}_rpc_server_active_calls", self.prefix),
            MetricScheme::Prefixed => self.http_in_flight(),
        }
    }

    /// The duration histogram of outgoing HTTP requests:
    /// `http_client_request_duration_seconds`, or
    /// `<prefix>_client_request_duration_seconds` in the prefixed scheme.
    pub fn http_client_duration(&self) -> String {
        match self.scheme {
            MetricScheme::Conventions => HTTP_CLIENT_REQUEST_DURATION.to_owned(),
            MetricScheme::Prefixed => format!("{}_client_request_duration_seconds", self.prefix),
        }
    }

    /// The duration histogram of outgoing gRPC calls: `rpc_client_call_duration_seconds`,
    /// or `<prefix>_client_request_duration_seconds` (shared with HTTP) in the prefixed
    /// scheme.
    pub fn rpc_client_duration(&self) -> String {
        match self.scheme {
            MetricScheme::Conventions => RPC_CLIENT_CALL_DURATION.to_owned(),
            MetricScheme::Prefixed => self.http_client_duration(),
        }
    }

    /// `<prefix>_reported_spans_accepted_total` counter: spans a worker reported that
    /// the span proxy recorded, by `tenant_id`.
    pub fn reported_spans_accepted_total(&self) -> String {
        format!("{}_reported_spans_accepted_total", self.prefix)
    }

    /// `<prefix>_reported_spans_refused_total` counter: spans a worker reported that the
    /// span proxy refused, by `tenant_id` and `reason`.
    pub fn reported_spans_refused_total(&self) -> String {
        format!("{}_reported_spans_refused_total", self.prefix)
    }

    /// `<prefix>_execution_spans_sent_total` counter: spans a worker's span collector
    /// delivered to the span proxy.
    pub fn execution_spans_sent_total(&self) -> String {
        format!("{}_execution_spans_sent_total", self.prefix)
    }

    /// `<prefix>_execution_spans_dropped_total` counter: spans a worker's span
    /// collector could not deliver, by `reason`.
    pub fn execution_spans_dropped_total(&self) -> String {
        format!("{}_execution_spans_dropped_total", self.prefix)
    }

    /// The request counter, `<prefix>_requests_total`, in the prefixed scheme; `None` in
    /// the conventions' (the duration histogram's `_count` counts requests).
    pub fn requests_total(&self) -> Option<String> {
        (self.scheme == MetricScheme::Prefixed).then(|| format!("{}_requests_total", self.prefix))
    }

    /// The error counter, `<prefix>_request_errors_total`, in the prefixed scheme; `None`
    /// in the conventions' (failures carry an `error_type` label).
    pub fn request_errors_total(&self) -> Option<String> {
        (self.scheme == MetricScheme::Prefixed)
            .then(|| format!("{}_request_errors_total", self.prefix))
    }

    /// `<prefix>_tenant_rejections_total` counter.
    pub fn tenant_rejections_total(&self) -> String {
        format!("{}_tenant_rejections_total", self.prefix)
    }

    /// `<prefix>_metric_label_overflow_total` counter, labelled by `metric`.
    pub fn label_overflow_total(&self) -> String {
        format!("{}_metric_label_overflow_total", self.prefix)
    }
}

impl WorkMetricNames {
    /// Registers HELP text and units for these metrics with the installed `metrics`
    /// recorder (Prometheus requires HELP text; `promtool check metrics` fails without it).
    pub fn describe(&self, kind: &str) {
        metrics::describe_counter!(
            self.started.clone(),
            metrics::Unit::Count,
            format!("{kind}s started")
        );
        metrics::describe_counter!(
            self.completed.clone(),
            metrics::Unit::Count,
            format!("{kind}s completed")
        );
        metrics::describe_counter!(
            self.failed.clone(),
            metrics::Unit::Count,
            format!("{kind}s failed")
        );
        metrics::describe_counter!(
            self.cancelled.clone(),
            metrics::Unit::Count,
            format!("{kind}s cancelled before completion")
        );
        metrics::describe_histogram!(
            self.duration.clone(),
            metrics::Unit::Seconds,
            format!("{kind} duration from start to completion")
        );
        metrics::describe_histogram!(
            self.handler.clone(),
            metrics::Unit::Seconds,
            format!("run time of one {kind} handler call")
        );
        metrics::describe_gauge!(
            self.outstanding.clone(),
            metrics::Unit::Count,
            format!("{kind}s not yet ended, by kind, state and age in seconds (older_than)")
        );
    }
}

impl MetricNames {
    /// Registers HELP text and units for every metric the toolkit records (workflows,
    /// tasks, requests, tenant rejections, label overflow) with the installed `metrics`
    /// recorder.
    pub fn describe(&self) {
        self.workflows().describe("workflow");
        self.tasks().describe("task");
        let durations = [
            (self.http_duration(), "duration of HTTP server requests"),
            (self.rpc_duration(), "duration of gRPC server calls"),
        ];
        let in_flight = [
            (self.http_in_flight(), "HTTP server requests being served"),
            (self.rpc_in_flight(), "gRPC server calls being served"),
        ];
        let shared = self.scheme == MetricScheme::Prefixed;
        for (name, help) in durations.into_iter().take(if shared { 1 } else { 2 }) {
            let help = if shared { "request duration" } else { help };
            metrics::describe_histogram!(name, metrics::Unit::Seconds, help);
        }
        for (name, help) in in_flight.into_iter().take(if shared { 1 } else { 2 }) {
            let help = if shared {
                "requests being served"
            } else {
                help
            };
            metrics::describe_gauge!(name, metrics::Unit::Count, help);
        }
        let clients = [
            (
                self.http_client_duration(),
                "duration of outgoing HTTP requests",
            ),
            (
                self.rpc_client_duration(),
                "duration of outgoing gRPC calls",
            ),
        ];
        for (name, help) in clients.into_iter().take(if shared { 1 } else { 2 }) {
            let help = if shared {
                "outgoing request duration"
            } else {
                help
            };
            metrics::describe_histogram!(name, metrics::Unit::Seconds, help);
        }
        metrics::describe_histogram!(
            RPC_SERVER_RESPONSE_SIZE,
            metrics::Unit::Bytes,
            "size of each response message of gRPC server calls (with record_messages)"
        );
        metrics::describe_histogram!(
            RPC_SERVER_RESPONSES_PER_RPC,
            metrics::Unit::Count,
            "response messages per gRPC server call (with record_messages)"
        );
        metrics::describe_counter!(
            self.reported_spans_accepted_total(),
            metrics::Unit::Count,
            "spans workers reported that the span proxy recorded"
        );
        metrics::describe_counter!(
            self.reported_spans_refused_total(),
            metrics::Unit::Count,
            "spans workers reported that the span proxy refused, by reason"
        );
        metrics::describe_counter!(
            self.execution_spans_sent_total(),
            metrics::Unit::Count,
            "execution spans this worker delivered to the span proxy"
        );
        metrics::describe_counter!(
            self.execution_spans_dropped_total(),
            metrics::Unit::Count,
            "execution spans this worker could not deliver, by reason"
        );
        if let Some(name) = self.requests_total() {
            metrics::describe_counter!(name, metrics::Unit::Count, "requests received");
        }
        if let Some(name) = self.request_errors_total() {
            metrics::describe_counter!(name, metrics::Unit::Count, "requests that failed");
        }
        metrics::describe_counter!(
            self.tenant_rejections_total(),
            metrics::Unit::Count,
            "requests rejected by tenant checks"
        );
        metrics::describe_counter!(
            self.label_overflow_total(),
            metrics::Unit::Count,
            "measurements recorded under the overflow label set because a label cardinality cap was reached"
        );
        metrics::describe_counter!(
            SDK_SPANS_EXPORTED,
            metrics::Unit::Count,
            "spans given to the span exporter, by collector; error_type when the export failed"
        );
        metrics::describe_counter!(
            SDK_SPANS_PROCESSED,
            metrics::Unit::Count,
            "spans the batch span processor finished with; error_type=queue_full when dropped because its queue was full"
        );
        metrics::describe_counter!(
            TAIL_REQUESTS_KEPT,
            metrics::Unit::Count,
            "sampled-out requests exported by tail bias, by reason (error, slow)"
        );
        metrics::describe_counter!(
            TAIL_SPANS_DROPPED,
            metrics::Unit::Count,
            "spans of sampled-out requests not held for tail bias because a cap was reached"
        );
        metrics::describe_histogram!(
            SDK_EXPORT_DURATION,
            metrics::Unit::Seconds,
            "time each span export took, by collector"
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn default_names_follow_prometheus_conventions() {
        let n = MetricNames::default();
        let w = n.workflows();
        assert_eq!(w.started, "instrument_workflows_started_total");
        assert_eq!(w.completed, "instrument_workflows_completed_total");
        assert_eq!(w.failed, "instrument_workflows_failed_total");
        assert_eq!(w.duration, "instrument_workflow_duration_seconds");
        assert_eq!(n.tasks().started, "instrument_tasks_started_total");
        assert_eq!(n.work("task").unwrap(), n.tasks());
        assert_eq!(
            n.label_overflow_total(),
            "instrument_metric_label_overflow_total"
        );
    }

    #[test]
    fn invalid_prefix_or_kind_is_an_error() {
        for bad in ["", "Flovyn", "9x", "a-b", "a.b", &"a".repeat(65)] {
            assert!(MetricNames::new(bad).is_err(), "{bad:?}");
            assert!(MetricNames::default().work(bad).is_err(), "{bad:?}");
        }
        let msg = MetricNames::new("A").unwrap_err().to_string();
        assert!(msg.contains("prefix"));
    }

    #[test]
    fn buckets_are_sorted() {
        for b in [
            WORK_DURATION_BUCKETS,
            REQUEST_DURATION_BUCKETS,
            CONVENTION_DURATION_BUCKETS,
        ] {
            assert!(b.windows(2).all(|w| w[0] < w[1]));
        }
    }

    /// The Prometheus form of an OpenTelemetry name: dots as underscores, then the
    /// unit's suffix (what the Prometheus exporters of OpenTelemetry do).
    fn prometheus_form(otel: &str, suffix: &str) -> String {
        format!("{}{suffix}", otel.replace('.', "_"))
    }

    #[test]
    fn conventions_names_are_the_conventions_crates_in_prometheus_form() {
        assert_eq!(
            HTTP_SERVER_REQUEST_DURATION,
            prometheus_form(scm::HTTP_SERVER_REQUEST_DURATION, "_seconds")
        );
        assert_eq!(
            RPC_SERVER_CALL_DURATION,
            prometheus_form(scm::RPC_SERVER_CALL_DURATION, "_seconds")
        );
        assert_eq!(
            HTTP_SERVER_ACTIVE_REQUESTS,
            prometheus_form(scm::HTTP_SERVER_ACTIVE_REQUESTS, "")
        );
        assert_eq!(
            HTTP_CLIENT_REQUEST_DURATION,
            prometheus_form(scm::HTTP_CLIENT_REQUEST_DURATION, "_seconds")
        );
        assert_eq!(
            RPC_CLIENT_CALL_DURATION,
            prometheus_form(scm::RPC_CLIENT_CALL_DURATION, "_seconds")
        );
        for (label, key) in [
            (LABEL_HTTP_REQUEST_METHOD, sc::HTTP_REQUEST_METHOD),
            (LABEL_HTTP_ROUTE, sc::HTTP_ROUTE),
            (
                LABEL_HTTP_RESPONSE_STATUS_CODE,
                sc::HTTP_RESPONSE_STATUS_CODE,
            ),
            (LABEL_RPC_SYSTEM_NAME, sc::RPC_SYSTEM_NAME),
            (LABEL_RPC_METHOD_FULL, sc::RPC_METHOD),
            (LABEL_RPC_RESPONSE_STATUS_CODE, sc::RPC_RESPONSE_STATUS_CODE),
            (LABEL_ERROR_TYPE, sc::ERROR_TYPE),
            (LABEL_SERVER_ADDRESS, sc::SERVER_ADDRESS),
            (LABEL_SERVER_PORT, sc::SERVER_PORT),
            (LABEL_OTEL_COMPONENT_TYPE, sc::OTEL_COMPONENT_TYPE),
        ] {
            assert_eq!(label, prometheus_form(key, ""));
            assert_eq!(otel_name(label), Some(key));
        }
        for (name, otel) in OTEL_NAMES {
            assert!(
                name.starts_with(&otel.replace('.', "_")),
                "{name} is not the Prometheus form of {otel}"
            );
        }
    }

    #[test]
    fn the_opt_in_switch_reads_like_the_sdks() {
        use RpcConventions::*;
        for (value, wanted) in [
            (None, Old),
            (Some(""), Old),
            (Some("http"), Old),
            (Some("rpc"), Current),
            (Some(" rpc "), Current),
            (Some("http/dup,rpc"), Current),
            (Some("rpc/dup"), Both),
            (Some("rpc,rpc/dup"), Both),
            (Some("RPC"), Old),
            (Some("rpcx,rpc/"), Old),
        ] {
            assert_eq!(RpcConventions::from_opt_in(value), wanted, "{value:?}");
        }
        assert!(Both.old() && Both.current() && Old.old() && !Old.current());
    }
}
