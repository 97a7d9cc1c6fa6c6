//! `/v1/admin/maintenance`: the kill switch over REST (the CLI's `switchyard kill-switch` does
//! the same on the database directly).

use super::extract::{ClientIp, Json};
use crate::{
    error::{AppError, ErrorBody},
    http::authn::RequireAdmin,
    state::AppState,
    store::Maintenance,
};
use axum::{extract::State, http::StatusCode};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use utoipa_axum::{router::OpenApiRouter, routes};

pub fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(
        get_maintenance,
        enable_maintenance,
        disable_maintenance
    ))
}

#[derive(Serialize, ToSchema)]
pub struct MaintenanceStatus {
    enabled: bool,
    /// Present while it is on.
    maintenance: Option<Maintenance>,
}

fn status(m: Option<&Maintenance>) -> MaintenanceStatus {
    MaintenanceStatus {
        enabled: m.is_some(),
        maintenance: m.cloned(),
    }
}

/// Whether the kill switch is on (as this instance sees it).
#[utoipa::path(get, path = "/v1/admin/maintenance", tag = "admin", operation_id = "getMaintenance",
    security(("bearer" = [])),
    responses((status = 200, body = MaintenanceStatus), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody)))]
async fn get_maintenance(
    State(s): State<AppState>,
    _admin: RequireAdmin,
) -> axum::Json<MaintenanceStatus> {
    axum::Json(status(s.kill_switch.current().as_deref()))
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct MaintenanceRequest {
    /// Shown to every client (1 to 500 characters).
    reason: String,
    /// What `Retry-After` says, 1 to 86400. Default 60.
    #[serde(default = "default_retry")]
    retry_after_secs: u64,
}

fn default_retry() -> u64 {
    60
}

/// Turn the kill switch on, on every instance (within `server.maintenance_poll_ms`) and across
/// restarts: new requests and sockets get 503 with the reason and `Retry-After`, except health,
/// metrics, the admin routes, sign-in, JWKS and the docs; open sockets get `server.maintenance`
/// and close with 1012 after `server.maintenance_grace_secs`. Audited.
#[utoipa::path(put, path = "/v1/admin/maintenance", tag = "admin", operation_id = "enableMaintenance",
    security(("bearer" = [])), request_body = MaintenanceRequest,
    responses((status = 200, body = MaintenanceStatus), (status = 400, body = ErrorBody),
              (status = 401, body = ErrorBody), (status = 403, body = ErrorBody)))]
async fn enable_maintenance(
    State(s): State<AppState>,
    ClientIp(ip): ClientIp,
    RequireAdmin(admin): RequireAdmin,
    Json(r): Json<MaintenanceRequest>,
) -> Result<axum::Json<MaintenanceStatus>, AppError> {
    let m = s
        .kill_switch
        .enable(
            admin.user_id.to_string(),
            &r.reason,
            r.retry_after_secs,
            Some(&ip.to_string()),
        )
        .await?;
    Ok(axum::Json(status(Some(&m))))
}

/// Turn the kill switch off everywhere. Audited.
#[utoipa::path(delete, path = "/v1/admin/maintenance", tag = "admin", operation_id = "disableMaintenance",
    security(("bearer" = [])),
    responses((status = 204, description = "Off"), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody)))]
async fn disable_maintenance(
    State(s): State<AppState>,
    ClientIp(ip): ClientIp,
    RequireAdmin(admin): RequireAdmin,
) -> Result<StatusCode, AppError> {
    (s.kill_switch)
        .disable(&admin.user_id.to_string(), Some(&ip.to_string()))
        .await?;
    Ok(StatusCode::NO_CONTENT)
}
