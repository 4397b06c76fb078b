//! The axum service of `examples/axum_service.rs`: a small shop wired the way the
//! README's "Wire it in" shows, and tested end to end in `tests/axum_service.rs`.
//!
//! - `GET /users/{id}`: a user, or 404 (a `tracing::warn!` that lands on the span);
//! - `POST /orders` (`{"sku": "...", "card": "..."}`): places an order through a
//!   `#[workflow_span]` function, which asks the stock service over HTTP through the
//!   [`ClientLayer`] (a client span; `traceparent` and the tenant sent); 409 when the
//!   stock service has none, with a `tracing::error!` on the request's span;
//! - `GET /health`, `GET /metrics`: left alone by the layer (no span, no tenant, no
//!   request metric); `/metrics` is the Prometheus exposition.
//!
//! Every other request needs an `x-tenant-id` header; the route template
//! (`/users/{id}`) names the span and labels the metrics, read from axum's
//! `MatchedPath`.

use std::net::SocketAddr;

use axum::extract::{Extension, Path, State};
use axum::http::StatusCode;
use axum::response::IntoResponse;
use axum::routing::{get, post};
use axum::{Json, Router};
use bytes::Bytes;
use http_body_util::{BodyExt as _, Empty};
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;
use instrument::opentelemetry::trace::TraceContextExt as _;
use instrument::opentelemetry::{Context, KeyValue};
use instrument::pipeline::PrometheusHandle;
use instrument::tenant::TenantId;
use instrument::tower::client::{Client, ClientLayer};
use instrument::tower::stack::InstrumentLayer;
use instrument::workflow_span;
use serde_json::{json, Value};
use tower::{Layer as _, ServiceExt as _};

/// The outgoing HTTP client: hyper, through the client layer.
type Http = Client<hyper_util::client::legacy::Client<HttpConnector, Empty<Bytes>>>;

/// What the shop's handlers share.
#[derive(Clone)]
pub struct Shop {
    stock: SocketAddr,
    http: Http,
    metrics: Option<PrometheusHandle>,
}

impl Shop {
    /// A shop asking the stock service at `stock`, serving `metrics` at `/metrics`.
    /// Must be made inside a tokio runtime.
    pub fn new(stock: SocketAddr, metrics: Option<PrometheusHandle>) -> Self {
        let hyper = hyper_util::client::legacy::Client::builder(TokioExecutor::new()).build_http();
        Self {
            stock,
            http: ClientLayer::new().layer(hyper),
            metrics,
        }
    }
}

/// The shop's routes, instrumented: one layer for spans, tenants and request metrics.
pub fn shop(shop: Shop) -> Router {
    Router::new()
        .route("/users/{id}", get(user))
        .route("/orders", post(order))
        .route("/health", get(|| async { "ok" }))
        .route("/metrics", get(metrics))
        .layer(
            InstrumentLayer::builder()
                // No span, tenant check or metric for probes and scrapes.
                .filter(|parts| matches!(parts.uri.path(), "/health" | "/metrics"))
                .build(),
        )
        .with_state(shop)
}

/// The stock service the shop calls: its spans continue the shop's trace.
pub fn stock() -> Router {
    Router::new()
        .route("/stock/{sku}", get(in_stock))
        .layer(InstrumentLayer::builder().build())
}

async fn user(Path(id): Path<String>) -> impl IntoResponse {
    let Ok(id) = id.parse::<u64>() else {
        return (
            StatusCode::BAD_REQUEST,
            Json(json!({"error": "ids are numbers"})),
        );
    };
    if id == 0 {
        // An event on this request's span (and a JSON log line with its trace id).
        tracing::warn!(user.id = id, "no such user");
        return (
            StatusCode::NOT_FOUND,
            Json(json!({"error": "no such user"})),
        );
    }
    // An attribute of the handler's own on the request's span.
    Context::map_current(|cx| cx.span().set_attribute(KeyValue::new("user.id", id as i64)));
    (
        StatusCode::OK,
        Json(json!({"id": id, "email": "ada@example.com"})),
    )
}

async fn order(
    State(shop): State<Shop>,
    Extension(tenant): Extension<TenantId>,
    Json(order): Json<Value>,
) -> impl IntoResponse {
    let sku = order["sku"].as_str().unwrap_or_default().to_owned();
    // The card number is masked in this log line and in the event on the span.
    tracing::info!(
        card = order["card"].as_str().unwrap_or_default(),
        "order received"
    );
    match place(&shop, &tenant, &sku).await {
        Ok(id) => (StatusCode::CREATED, Json(json!({"order": id}))),
        Err(Refused(why)) => {
            tracing::error!(sku, "order refused: {why}");
            (StatusCode::CONFLICT, Json(json!({"error": why})))
        }
    }
}

/// Why an order was not placed.
#[derive(Debug)]
struct Refused(String);

impl std::fmt::Display for Refused {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

/// Places an order: spans `order.place` and `order.completed` / `order.failed`, the
/// `instrument_orders_*` counters, the call's run time.
#[workflow_span(kind = "order", name = "order.place", tenant = tenant.as_str(), id = sku)]
async fn place(shop: &Shop, tenant: &TenantId, sku: &str) -> Result<String, Refused> {
    let uri = format!("http://{}/stock/{sku}", shop.stock);
    let request = http::Request::get(uri)
        .body(Empty::<Bytes>::new())
        .map_err(|e| Refused(e.to_string()))?;
    let response = shop
        .http
        .clone()
        .oneshot(request)
        .await
        .map_err(|e| Refused(format!("stock service unreachable: {e}")))?;
    let status = response.status();
    let _ = response.into_body().collect().await;
    if status != StatusCode::OK {
        return Err(Refused(format!("{sku} is out of stock")));
    }
    Ok(format!("order-{sku}-{}", tenant.as_str()))
}

async fn in_stock(Path(sku): Path<String>) -> StatusCode {
    if sku == "none" {
        StatusCode::NOT_FOUND
    } else {
        StatusCode::OK
    }
}

async fn metrics(State(shop): State<Shop>) -> impl IntoResponse {
    match &shop.metrics {
        Some(handle) => (StatusCode::OK, handle.render()),
        None => (StatusCode::NOT_FOUND, String::new()),
    }
}
