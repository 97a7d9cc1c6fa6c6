//! `/v1/admin/*`: operator views, admin role only.

use super::auth::UserView;
use super::extract::{ClientIp, Json};
use crate::error::page_limit;
use crate::{
    auth::service::AccountChange,
    domain::{Role, UserId},
    error::{AppError, ErrorBody},
    http::authn::RequireAdmin,
    state::AppState,
    store::AuditEntry,
};
use axum::extract::{Path, Query, State};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};
use utoipa_axum::{router::OpenApiRouter, routes};

pub fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(list_users))
        .routes(routes!(update_user))
        .routes(routes!(reset_password))
        .routes(routes!(list_audit))
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct UserUpdate {
    /// `user`, `analyst` (reads `/v1/analytics`), `developer` (reads `/v1/debug`) or `admin`.
    #[serde(default, deserialize_with = "crate::protocol::calls::present")]
    role: Option<Role>,
    /// `true` refuses every credential of the account at once, on every instance, and closes
    /// its sockets; `false` lets it sign in again.
    #[serde(default, deserialize_with = "crate::protocol::calls::present")]
    disabled: Option<bool>,
}

#[derive(Serialize, ToSchema)]
pub struct UserUpdated {
    user: UserView,
    /// When the change takes effect.
    note: &'static str,
}

fn user_id(raw: &str) -> Result<UserId, AppError> {
    raw.parse()
        .map_err(|_| AppError::validation("id", "id must be a UUID"))
}

/// Set an account's role, or disable / enable it. A role applies to the user's next access
/// token: tokens that claim the old role are refused at once on every instance, so clients
/// refresh and get the new one. Disabling applies at once.
#[utoipa::path(patch, path = "/v1/admin/users/{id}", operation_id = "updateUser", tag = "admin", security(("bearer" = [])),
    params(("id" = String, Path, description = "User id")), request_body = UserUpdate,
    responses((status = 200, body = UserUpdated),
              (status = 400, description = "Unknown role, or an admin changing their own account", body = ErrorBody),
              (status = 401, body = ErrorBody), (status = 403, body = ErrorBody),
              (status = 404, body = ErrorBody)))]
async fn update_user(
    State(s): State<AppState>,
    ClientIp(ip): ClientIp,
    RequireAdmin(admin): RequireAdmin,
    Path(id): Path<String>,
    Json(u): Json<UserUpdate>,
) -> Result<axum::Json<UserUpdated>, AppError> {
    let id = user_id(&id)?;
    let change = AccountChange {
        role: u.role,
        disabled: u.disabled,
    };
    let user = s
        .auth
        .update_account(&admin, id, change, Some(&ip.to_string()))
        .await?;
    Ok(axum::Json(UserUpdated {
        user: (&user).into(),
        note: "a role change applies to the user's next access token: tokens with the old role \
               are refused from now on, and their next refresh carries the new one; disabling \
               applies at once",
    }))
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PasswordReset {
    /// Subject to the password policy.
    new_password: String,
}

#[derive(Serialize, ToSchema)]
pub struct PasswordWasReset {
    /// The user's sign-ins revoked (all of them; their sockets closed).
    revoked_sign_ins: usize,
}

/// Set a user's password (there is no e-mail here: tell them the new one yourself). Every
/// sign-in of the account is revoked; audited with the admin's id.
#[utoipa::path(post, path = "/v1/admin/users/{id}/password", operation_id = "resetUserPassword", tag = "admin", security(("bearer" = [])),
    params(("id" = String, Path, description = "User id")), request_body = PasswordReset,
    responses((status = 200, body = PasswordWasReset),
              (status = 400, description = "The password fails the policy", body = ErrorBody),
              (status = 401, body = ErrorBody), (status = 403, body = ErrorBody),
              (status = 404, body = ErrorBody)))]
async fn reset_password(
    State(s): State<AppState>,
    ClientIp(ip): ClientIp,
    RequireAdmin(admin): RequireAdmin,
    Path(id): Path<String>,
    Json(r): Json<PasswordReset>,
) -> Result<axum::Json<PasswordWasReset>, AppError> {
    let id = user_id(&id)?;
    let n = s
        .auth
        .reset_password(&admin, id, &r.new_password, Some(&ip.to_string()))
        .await?;
    Ok(axum::Json(PasswordWasReset {
        revoked_sign_ins: n,
    }))
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
#[utoipa::path(get, path = "/v1/admin/users", operation_id = "listUsers", tag = "admin", security(("bearer" = [])), params(Page),
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
#[utoipa::path(get, path = "/v1/admin/audit", operation_id = "listAuditEvents", tag = "admin", security(("bearer" = [])), params(AuditQuery),
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
