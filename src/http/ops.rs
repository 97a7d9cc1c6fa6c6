//! `/v1/analytics` (analysts, admins) and `/v1/debug` (developers, admins).

use crate::{
    bus::Shared,
    error::{AppError, ErrorBody},
    http::authn::{RequireAnalyst, RequireDeveloper},
    state::AppState,
    store::Analytics,
};
use axum::extract::{Query, State};
use chrono::{DateTime, Duration as ChronoDuration, NaiveDate, Utc};
use serde::{Deserialize, Serialize};
use std::time::Duration;
use utoipa::{IntoParams, ToSchema};
use utoipa_axum::{router::OpenApiRouter, routes};

pub fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(analytics))
        .routes(routes!(debug))
}

#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct Range {
    /// Start, inclusive: RFC 3339 or `YYYY-MM-DD` (UTC midnight). Default: 30 days before `to`.
    from: Option<String>,
    /// End, exclusive: RFC 3339 or `YYYY-MM-DD`. Default: now.
    to: Option<String>,
}

fn instant(raw: &str, param: &str) -> Result<DateTime<Utc>, AppError> {
    if let Ok(t) = DateTime::parse_from_rfc3339(raw) {
        return Ok(t.with_timezone(&Utc));
    }
    NaiveDate::parse_from_str(raw, "%Y-%m-%d")
        .ok()
        .and_then(|d| d.and_hms_opt(0, 0, 0))
        .map(|t| t.and_utc())
        .ok_or_else(|| {
            AppError::validation(param, format!("{param} must be RFC 3339 or YYYY-MM-DD"))
        })
}

/// Usage and activity over a time range: requests, tokens, errors and latency percentiles in
/// total, by model, by day and by API key; active users, sessions created, messages, turns and
/// tool calls by status. Computed by the database.
#[utoipa::path(get, path = "/v1/analytics", tag = "admin", operation_id = "getAnalytics",
    security(("bearer" = [])), params(Range),
    responses((status = 200, body = Analytics),
              (status = 400, description = "A bad `from`/`to`, or `from` not before `to`", body = ErrorBody),
              (status = 401, body = ErrorBody),
              (status = 403, description = "Not an analyst or admin", body = ErrorBody)))]
async fn analytics(
    State(s): State<AppState>,
    _who: RequireAnalyst,
    Query(r): Query<Range>,
) -> Result<axum::Json<Analytics>, AppError> {
    let to = match &r.to {
        Some(t) => instant(t, "to")?,
        None => Utc::now(),
    };
    let from = match &r.from {
        Some(f) => instant(f, "from")?,
        None => to - ChronoDuration::days(30),
    };
    if from >= to {
        return Err(AppError::validation("from", "from must be before to"));
    }
    Ok(axum::Json(s.store.analytics(from, to).await?))
}

/// One instance's state as `/v1/debug` shows it.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct Snapshot {
    #[schema(value_type = String, format = Uuid)]
    instance: uuid::Uuid,
    version: String,
    started_at: DateTime<Utc>,
    uptime_secs: i64,
    /// When this was taken (another instance's comes from its last publication, every 5 s).
    at: DateTime<Utc>,
    /// `server.*`, `auth.*`, ... with every secret `[redacted]`.
    #[schema(value_type = Object)]
    config: serde_json::Value,
    connections: usize,
    channels: usize,
    running_turns: usize,
    /// `local`, `connected` or `disconnected`.
    bus: String,
    mcp_clients: usize,
    store_backend: String,
    pool_connections: u32,
    pool_idle: usize,
    maintenance: bool,
}

fn snapshot(s: &AppState) -> Snapshot {
    let now = Utc::now();
    let (pool_connections, pool_idle) = s.store.pool_stats();
    Snapshot {
        instance: s.instance,
        version: env!("CARGO_PKG_VERSION").into(),
        started_at: s.started_at,
        uptime_secs: (now - s.started_at).num_seconds(),
        at: now,
        config: s.config.redacted(),
        connections: s.connections.open(s.config.ws.max_connections),
        channels: s.hub.channel_count(),
        running_turns: s.chat.live.running_here(),
        bus: s.bus.state().as_str().into(),
        mcp_clients: s.mcp.running_here(),
        store_backend: s.store.backend().into(),
        pool_connections,
        pool_idle,
        maintenance: s.kill_switch.current().is_some(),
    }
}

const SNAPSHOTS: &str = "debug:snapshots";
const PUBLISH_EVERY: Duration = Duration::from_secs(5);

/// With Redis, every instance publishes its snapshot every 5 s (kept 15 s), so any instance
/// can answer `?instance=all` without asking the others and waiting.
pub async fn publish_snapshots(
    s: AppState,
    shared: Shared,
    stop: tokio_util::sync::CancellationToken,
) {
    let field = s.instance.to_string();
    loop {
        if let Ok(text) = serde_json::to_string(&snapshot(&s)) {
            let ttl = 3 * PUBLISH_EVERY.as_millis() as u64;
            let _ = shared.hash_put(SNAPSHOTS, &field, &text, ttl).await;
        }
        tokio::select! {
            _ = stop.cancelled() => break,
            _ = tokio::time::sleep(PUBLISH_EVERY) => {}
        }
    }
    let _ = shared.hash_del(SNAPSHOTS, &field).await;
}

#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct Which {
    /// `all`: every live instance's snapshot (with Redis), this one's first.
    instance: Option<String>,
}

#[derive(Serialize, ToSchema)]
pub struct DebugView {
    /// This instance first.
    instances: Vec<Snapshot>,
}

/// This instance's state (`?instance=all`: every instance's): id, version, uptime, config with
/// secrets redacted, connections, channels, running turns, bus state, MCP clients, pool.
#[utoipa::path(get, path = "/v1/debug", tag = "admin", operation_id = "getDebug",
    security(("bearer" = [])), params(Which),
    responses((status = 200, body = DebugView),
              (status = 400, description = "`instance` other than `all`", body = ErrorBody),
              (status = 401, body = ErrorBody),
              (status = 403, description = "Not a developer or admin", body = ErrorBody)))]
async fn debug(
    State(s): State<AppState>,
    _who: RequireDeveloper,
    Query(w): Query<Which>,
) -> Result<axum::Json<DebugView>, AppError> {
    let here = snapshot(&s);
    let mut instances = vec![here];
    match w.instance.as_deref() {
        None => {}
        Some("all") => {
            if let Some(shared) = &s.redis {
                let others = shared
                    .hash_values(SNAPSHOTS)
                    .await
                    .map_err(|_| AppError::Unavailable("Redis is unreachable".into()))?;
                instances.extend(
                    others
                        .iter()
                        .filter_map(|t| serde_json::from_str::<Snapshot>(t).ok())
                        .filter(|o| o.instance != s.instance),
                );
            }
        }
        Some(_) => {
            return Err(AppError::validation(
                "instance",
                "instance must be `all` or absent",
            ))
        }
    }
    Ok(axum::Json(DebugView { instances }))
}
