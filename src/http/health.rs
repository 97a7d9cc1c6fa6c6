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
        .routes(routes!(ready))
        .routes(routes!(metrics))
}

#[derive(Serialize, ToSchema)]
pub struct Live {
    status: &'static str,
}

/// The process is up. Touches nothing else, so it stays fast under any load.
#[utoipa::path(get, path = "/health", tag = "health", responses((status = 200, body = Live)))]
async fn live() -> axum::Json<Live> {
    axum::Json(Live { status: "ok" })
}

#[derive(Serialize, ToSchema)]
pub struct Ready {
    /// `ready` or `not_ready`.
    status: &'static str,
    /// `ok` or why not.
    database: String,
    /// `ok`, `not_configured`, or why not.
    redis: String,
    /// Fan-out bus: `local`, `connected` or `disconnected`.
    bus: &'static str,
}

/// Ready to serve: the database answers, and Redis when it is configured. 503 otherwise, so a
/// load balancer takes this instance out of rotation.
#[utoipa::path(get, path = "/health/ready", tag = "health",
    responses((status = 200, body = Ready), (status = 503, body = Ready)))]
async fn ready(State(s): State<AppState>) -> impl IntoResponse {
    let database = match tokio::time::timeout(PROBE_TIMEOUT, s.store.ping()).await {
        Ok(Ok(())) => "ok".to_string(),
        Ok(Err(e)) => format!("error: {}", short(&e.to_string())),
        Err(_) => "error: timed out".to_string(),
    };
    let redis = match s.redis.clone() {
        None => "not_configured".to_string(),
        Some(conn) => match conn.run::<String>(&redis::cmd("PING")).await {
            Ok(_) => "ok".to_string(),
            Err(e) => format!("error: {}", short(&e.to_string())),
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

fn short(s: &str) -> String {
    s.chars().take(200).collect()
}

/// Prometheus text exposition.
#[utoipa::path(get, path = "/metrics", tag = "health",
    responses((status = 200, description = "Prometheus text format", content_type = "text/plain")))]
async fn metrics(State(s): State<AppState>) -> impl IntoResponse {
    s.metrics.run_upkeep();
    (
        [(
            axum::http::header::CONTENT_TYPE,
            "text/plain; version=0.0.4",
        )],
        s.metrics.render(),
    )
}
