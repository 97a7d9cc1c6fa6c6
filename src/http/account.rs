//! The caller's own account: password change, profile, deletion; and token verification for
//! services that hold a token.

use super::extract::{ClientIp, Json};
use crate::{
    auth::service::{Profile, ProfileEdit, TokenInfo},
    error::{AppError, ErrorBody},
    http::authn::{AuthUser, Interactive},
    state::AppState,
};
use axum::{extract::State, http::StatusCode};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use utoipa_axum::{router::OpenApiRouter, routes};

/// What checks a password (counted toward the account lock) or answers anyone (verify-token)
/// sits behind the per-IP auth limit; reading one's profile does not.
pub fn rate_limited_routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(change_password))
        .routes(routes!(verify_token))
        .routes(routes!(edit_profile, delete_profile))
}

pub fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(get_profile))
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PasswordChange {
    current_password: String,
    /// The password policy: at least `auth.password_min_len` (10) and at most 128 characters,
    /// not containing the e-mail's name, not a common password, not one repeated character.
    new_password: String,
}

#[derive(Serialize, ToSchema)]
pub struct SignInsRevoked {
    /// Sign-ins (refresh-token families) revoked; their sockets were closed.
    revoked_sign_ins: usize,
}

/// Change the password. Every other sign-in of the account is revoked (its refresh token and
/// access tokens stop working, its sockets close with 4001); this one stays. API keys stay.
#[utoipa::path(post, path = "/v1/auth/change-password", operation_id = "changePassword", tag = "auth", security(("bearer" = [])),
    request_body = PasswordChange,
    responses((status = 200, body = SignInsRevoked),
              (status = 400, description = "Current password wrong, or the new one fails the policy", body = ErrorBody),
              (status = 401, body = ErrorBody),
              (status = 403, description = "Called with an API key", body = ErrorBody),
              (status = 423, description = "Account locked", body = ErrorBody),
              (status = 429, body = ErrorBody)))]
async fn change_password(
    State(s): State<AppState>,
    ClientIp(ip): ClientIp,
    Interactive(p): Interactive,
    Json(c): Json<PasswordChange>,
) -> Result<axum::Json<SignInsRevoked>, AppError> {
    let n = s
        .auth
        .change_password(
            &p,
            &c.current_password,
            &c.new_password,
            Some(&ip.to_string()),
        )
        .await?;
    Ok(axum::Json(SignInsRevoked {
        revoked_sign_ins: n,
    }))
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct TokenQuery {
    /// An access token or an API key.
    token: String,
}

/// Whether a token is live, and whose: for services that are handed a switchyard token
/// (verifying access tokens offline with `/.well-known/jwks.json` works too, but does not
/// see revocations). An inactive token gets only `{"active": false}`.
#[utoipa::path(post, path = "/v1/auth/verify-token", operation_id = "verifyToken", tag = "auth", request_body = TokenQuery,
    responses((status = 200, body = TokenInfo),
              (status = 429, body = ErrorBody),
              (status = 503, body = ErrorBody)))]
async fn verify_token(
    State(s): State<AppState>,
    Json(q): Json<TokenQuery>,
) -> Result<axum::Json<TokenInfo>, AppError> {
    Ok(axum::Json(s.auth.verify_token(&q.token).await?))
}

/// The caller's profile.
#[utoipa::path(get, path = "/v1/user/profile", operation_id = "getProfile", tag = "user", security(("bearer" = [])),
    responses((status = 200, body = Profile), (status = 401, body = ErrorBody)))]
async fn get_profile(
    State(s): State<AppState>,
    AuthUser(p): AuthUser,
) -> Result<axum::Json<Profile>, AppError> {
    Ok(axum::Json(s.auth.profile(p.user_id).await?))
}

/// Change fields of the caller's profile; the ones not given keep their value.
#[utoipa::path(patch, path = "/v1/user/profile", operation_id = "updateProfile", tag = "user", security(("bearer" = [])),
    request_body = ProfileEdit,
    responses((status = 200, body = Profile),
              (status = 400, description = "A field fails its rule, or email without the right password", body = ErrorBody),
              (status = 401, body = ErrorBody),
              (status = 409, description = "Username or email taken", body = ErrorBody)))]
async fn edit_profile(
    State(s): State<AppState>,
    ClientIp(ip): ClientIp,
    AuthUser(p): AuthUser,
    Json(edit): Json<ProfileEdit>,
) -> Result<axum::Json<Profile>, AppError> {
    Ok(axum::Json(
        s.auth.edit_profile(&p, edit, Some(&ip.to_string())).await?,
    ))
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct DeleteAccount {
    password: String,
}

/// Delete the caller's account, after the password. Deleted: the sessions they own (messages,
/// tool calls, members), their memberships in others' sessions, projects, API keys, MCP
/// servers (stopped), sign-ins, sync state. Kept: messages they wrote in others' sessions,
/// usage as per-day totals with no user, audit entries with the user cleared. Their sockets
/// close on every instance; collaborators of deleted sessions get `session.revoked`.
#[utoipa::path(delete, path = "/v1/user/profile", operation_id = "deleteProfile", tag = "user", security(("bearer" = [])),
    request_body = DeleteAccount,
    responses((status = 204, description = "Deleted"),
              (status = 400, description = "Wrong password", body = ErrorBody),
              (status = 401, body = ErrorBody),
              (status = 403, description = "Called with an API key", body = ErrorBody)))]
async fn delete_profile(
    State(s): State<AppState>,
    ClientIp(ip): ClientIp,
    Interactive(p): Interactive,
    Json(d): Json<DeleteAccount>,
) -> Result<StatusCode, AppError> {
    s.auth
        .delete_account(&p, &d.password, Some(&ip.to_string()))
        .await?;
    s.mcp.reload_user(p.user_id).await;
    Ok(StatusCode::NO_CONTENT)
}
