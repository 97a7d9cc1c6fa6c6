//! Who is calling, at the HTTP edge: `AuthUser` for any signed-in caller (JWT or API key),
//! `RequireAdmin` for admins, `Interactive` for a signed-in session (not an API key), and the
//! bearer token of a request (also read by the socket's upgrade).

use crate::{
    domain::{Principal, Role},
    error::AppError,
    state::AppState,
};
use axum::{
    extract::FromRequestParts,
    http::{header, request::Parts},
};

pub struct AuthUser(pub Principal);
pub struct RequireAdmin(pub Principal);
/// `analyst` or `admin`: usage analytics.
pub struct RequireAnalyst(pub Principal);
/// `developer` or `admin`: the instance's debug state.
pub struct RequireDeveloper(pub Principal);
/// A caller signed in with an access token (an interactive session), not an API key: managing
/// API keys needs one, so a leaked key cannot mint its own successors.
pub struct Interactive(pub Principal);

/// The token of an `Authorization: Bearer <token>` header, if there is one.
pub fn bearer(parts: &Parts) -> Option<&str> {
    let value = parts.headers.get(header::AUTHORIZATION)?.to_str().ok()?;
    let (scheme, token) = value.split_once(' ')?;
    scheme
        .eq_ignore_ascii_case("bearer")
        .then(|| token.trim())
        .filter(|t| !t.is_empty())
}

impl FromRequestParts<AppState> for AuthUser {
    type Rejection = AppError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, AppError> {
        let token = bearer(parts).ok_or(AppError::MissingAuth)?;
        let principal = state.auth.authenticate(token).await?;
        tracing::Span::current().record("user_id", tracing::field::display(principal.user_id));
        Ok(AuthUser(principal))
    }
}

/// The caller, if their role passes `allowed`; else 403 naming the roles that would.
async fn with_role(
    parts: &mut Parts,
    state: &AppState,
    allowed: fn(Role) -> bool,
    roles: &str,
) -> Result<Principal, AppError> {
    let AuthUser(p) = AuthUser::from_request_parts(parts, state).await?;
    if !allowed(p.role) {
        return Err(AppError::Forbidden(format!(
            "this route requires the {roles} role"
        )));
    }
    let needs = &state.config.auth.second_factor_roles;
    if needs.iter().any(|r| r == p.role.as_str())
        && !state.auth.has_second_factor(p.user_id).await?
    {
        return Err(AppError::Forbidden(format!(
            "the {} role needs a second factor on the account: enroll with POST /v1/auth/totp",
            p.role.as_str()
        )));
    }
    Ok(p)
}

impl FromRequestParts<AppState> for RequireAdmin {
    type Rejection = AppError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, AppError> {
        with_role(parts, state, Role::is_admin, "admin")
            .await
            .map(RequireAdmin)
    }
}

impl FromRequestParts<AppState> for RequireAnalyst {
    type Rejection = AppError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, AppError> {
        with_role(parts, state, Role::reads_analytics, "analyst or admin")
            .await
            .map(RequireAnalyst)
    }
}

impl FromRequestParts<AppState> for RequireDeveloper {
    type Rejection = AppError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, AppError> {
        with_role(parts, state, Role::reads_debug, "developer or admin")
            .await
            .map(RequireDeveloper)
    }
}

impl FromRequestParts<AppState> for Interactive {
    type Rejection = AppError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, AppError> {
        let AuthUser(p) = AuthUser::from_request_parts(parts, state).await?;
        if p.api_key.is_some() {
            return Err(AppError::Forbidden(
                "API keys cannot manage API keys; sign in and use an access token".into(),
            ));
        }
        Ok(Interactive(p))
    }
}
