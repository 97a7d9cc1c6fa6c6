//! `/v1/admin/*`: operator views, admin role only.

use super::auth::UserView;
use crate::error::page_limit;
use crate::{
    domain::UserId,
    error::{AppError, ErrorBody},
    http::authn::RequireAdmin,
    state::AppState,
    store::AuditEntry,
};
use axum::extract::{Query, State};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};
use utoipa_axum::{router::OpenApiRouter, routes};

pub fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(list_users))
        .routes(routes!(list_audit))
}

#[derive(Deserialize, IntoParams)]
pub struct Page {
    /// Return users after this id (the previous page's `next_cursor`).
    after: Option<String>,
    /// Page size, 1 to 100. Default 50.
    limit: Option<u32>,
}

#[derive(Serialize, ToSchema)]
pub struct UserPage {
    data: Vec<UserView>,
    /// Pass as `after` for the next page; absent on the last page.
    next_cursor: Option<String>,
}

/// Every account, oldest first.
#[utoipa::path(get, path = "/v1/admin/users", tag = "admin", security(("bearer" = [])), params(Page),
    responses((status = 200, body = UserPage), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody)))]
async fn list_users(
    State(s): State<AppState>,
    _admin: RequireAdmin,
    Query(p): Query<Page>,
) -> Result<axum::Json<UserPage>, AppError> {
    let limit = page_limit(p.limit)?;
    let after = crate::error::after_cursor::<UserId>(p.after.as_deref())?;
    let users = s.store.list_users(after, limit).await?;
    let next_cursor = crate::error::next_cursor(&users, limit, |u| u.id.to_string());
    Ok(axum::Json(UserPage {
        data: users.iter().map(Into::into).collect(),
        next_cursor,
    }))
}

#[derive(Deserialize, IntoParams)]
pub struct AuditQuery {
    /// Only this user's events.
    user_id: Option<String>,
    /// 1 to 100. Default 50.
    limit: Option<u32>,
}

#[derive(Serialize, ToSchema)]
pub struct AuditPage {
    data: Vec<AuditEntry>,
}

/// The audit log, newest first.
#[utoipa::path(get, path = "/v1/admin/audit", tag = "admin", security(("bearer" = [])), params(AuditQuery),
    responses((status = 200, body = AuditPage), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody)))]
async fn list_audit(
    State(s): State<AppState>,
    _admin: RequireAdmin,
    Query(q): Query<AuditQuery>,
) -> Result<axum::Json<AuditPage>, AppError> {
    let limit = page_limit(q.limit)?;
    let user = q
        .user_id
        .map(|u| u.parse::<UserId>())
        .transpose()
        .map_err(|_| AppError::validation("user_id", "user_id must be a UUID"))?;
    Ok(axum::Json(AuditPage {
        data: s.store.list_audit(user, limit).await?,
    }))
}
