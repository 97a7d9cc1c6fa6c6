//! Liveness, readiness and Prometheus metrics.

use crate::state::AppState;
use axum::{extract::State, http::StatusCode, response::IntoResponse};
use serde::Serialize;
use std::time::Duration;
use utoipa::ToSchema;
use utoipa_axum::{router::OpenApiRouter, routes};

/// How long a dependency may take to answer a readiness probe.
const PROBE_TIMEOUT: Duration = Duration::from_secs(2);

pub fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(live))
        .routes(routes!(live_k8s))
        .routes(routes!(ready))
        .routes(routes!(metrics))
}

#[derive(Serialize, ToSchema)]
pub struct Live {
    status: &'static str,
}

/// The process is up. Touches nothing else, so it stays fast under any load.
#[utoipa::path(get, path = "/health", operation_id = "getHealth", tag = "health", responses((status = 200, body = Live)))]
async fn live() -> axum::Json<Live> {
    axum::Json(Live { status: "ok" })
}

/// `/health` under the name Kubernetes probes use.
#[utoipa::path(get, path = "/health/live", operation_id = "getLiveness", tag = "health", responses((status = 200, body = Live)))]
async fn live_k8s() -> axum::Json<Live> {
    live().await
}

#[derive(Serialize, ToSchema)]
pub struct Ready {
    /// `ready` or `not_ready`.
    status: &'static str,
    /// `ok` or `down` (why: in the server log).
    database: String,
    /// `ok`, `not_configured` or `down`.
    redis: String,
    /// Fan-out bus: `local`, `connected` or `disconnected`.
    bus: &'static str,
}

/// Ready to serve: the database answers, and Redis when it is configured. 503 otherwise, so a
/// load balancer takes this instance out of rotation.
#[utoipa::path(get, path = "/health/ready", operation_id = "getReadiness", tag = "health",
    responses((status = 200, body = Ready), (status = 503, body = Ready)))]
async fn ready(State(s): State<AppState>) -> impl IntoResponse {
    // Why a dependency is down goes to the log; the unauthenticated answer only says that it
    // is (error text names hosts, users and databases).
    let down = |what: &str, why: String| {
        tracing::warn!(dependency = what, error = %why, "readiness probe failed");
        "down".to_string()
    };
    let database = match tokio::time::timeout(PROBE_TIMEOUT, s.store.ping()).await {
        Ok(Ok(())) => "ok".to_string(),
        Ok(Err(e)) => down("database", e.to_string()),
        Err(_) => down("database", "timed out".into()),
    };
    let redis = match &s.redis {
        None => "not_configured".to_string(),
        Some(shared) => match shared.ping().await {
            Ok(_) => "ok".to_string(),
            Err(e) => down("redis", e.to_string()),
        },
    };
    let bus = s.bus.state();
    let ok = database == "ok"
        && (redis == "ok" || redis == "not_configured")
        && bus != crate::bus::BusState::Disconnected;
    let status = if ok {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    };
    metrics::gauge!("ready").set(if ok { 1.0 } else { 0.0 });
    let mut resp = (
        status,
        axum::Json(Ready {
            status: if ok { "ready" } else { "not_ready" },
            database,
            redis,
            bus: bus.as_str(),
        }),
    )
        .into_response();
    if !ok {
        // Keep the readiness body (it says what is down) instead of the generic error shape.
        resp.extensions_mut().insert(KeepBody);
    }
    resp
}

/// Marks a non-2xx response whose body must pass through the error middleware unchanged.
#[derive(Clone, Copy)]
pub struct KeepBody;

/// Prometheus text exposition, for `Authorization: Bearer <server.metrics_token>` (or on
/// `server.metrics_bind`, without one).
#[utoipa::path(get, path = "/metrics", operation_id = "getMetrics", tag = "health", security(("bearer" = [])),
    responses((status = 200, description = "Prometheus text format", content_type = "text/plain"),
              (status = 401, body = crate::error::ErrorBody), (status = 404, body = crate::error::ErrorBody)))]
async fn metrics(
    State(s): State<AppState>,
    headers: axum::http::HeaderMap,
) -> Result<axum::response::Response, crate::error::AppError> {
    let want = &s.config.server.metrics_token.0;
    if want.is_empty() {
        return Err(crate::error::AppError::NotFound(
            "metrics are served with server.metrics_token or on server.metrics_bind".into(),
        ));
    }
    let given = headers
        .get(axum::http::header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .unwrap_or_default();
    let digest = |t: &str| ring::digest::digest(&ring::digest::SHA256, t.as_bytes());
    if digest(given).as_ref() != digest(want).as_ref() {
        return Err(crate::error::AppError::InvalidToken(
            "a valid metrics token is required".into(),
        ));
    }
    Ok(render(&s).into_response())
}

/// The exposition itself (also served on `server.metrics_bind`).
pub fn render(s: &AppState) -> impl IntoResponse {
    sample_gauges(s);
    s.metrics.run_upkeep();
    (
        [(
            axum::http::header::CONTENT_TYPE,
            "text/plain; version=0.0.4",
        )],
        s.metrics.render(),
    )
}

/// Prometheus text exposition on `server.metrics_bind`, with no token: bind it to an address
/// only the scraper reaches.
#[utoipa::path(get, path = "/metrics", operation_id = "getListenerMetrics", tag = "health",
    responses((status = 200, description = "Prometheus text format", content_type = "text/plain")))]
async fn open_metrics(State(s): State<AppState>) -> impl IntoResponse {
    render(&s)
}

/// The router of the `server.metrics_bind` listener: `/metrics` and nothing else.
/// Gauges read at scrape time rather than kept on every change: the runtime's live tasks and
/// the frames waiting in sockets' send queues (the total and the fullest), what a soak watches
/// for growth.
fn sample_gauges(s: &AppState) {
    if let Ok(rt) = tokio::runtime::Handle::try_current() {
        metrics::gauge!("tokio_alive_tasks").set(rt.metrics().num_alive_tasks() as f64);
    }
    let (mut total, mut fullest) = (0usize, 0usize);
    for (_, outbox) in s.hub.every_connection() {
        let q = outbox.queued();
        total += q;
        fullest = fullest.max(q);
    }
    metrics::gauge!("ws_send_queue_frames").set(total as f64);
    metrics::gauge!("ws_send_queue_fullest").set(fullest as f64);
    // The allocator's own count (the binary's is jemalloc): live bytes against what stays
    // resident tells a leak from memory the allocator keeps.
    #[cfg(feature = "jemalloc")]
    if tikv_jemalloc_ctl::epoch::advance().is_ok() {
        if let Ok(b) = tikv_jemalloc_ctl::stats::allocated::read() {
            metrics::gauge!("heap_allocated_bytes").set(b as f64);
        }
        if let Ok(b) = tikv_jemalloc_ctl::stats::resident::read() {
            metrics::gauge!("heap_resident_bytes").set(b as f64);
        }
    }
}

pub fn metrics_listener(state: AppState) -> axum::Router {
    let (router, _) = OpenApiRouter::new()
        .routes(routes!(open_metrics))
        .split_for_parts();
    router.with_state(state)
}
