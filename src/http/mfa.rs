//! `/v1/auth/totp`: a second factor for password sign-in (enroll, confirm, disable, status).

use super::extract::{ClientIp, Json};
use crate::{
    auth::service::{RecoveryCodes, TotpEnrollment},
    error::{AppError, ErrorBody},
    http::authn::{AuthUser, Interactive},
    state::AppState,
};
use axum::{extract::State, http::StatusCode};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use utoipa_axum::{router::OpenApiRouter, routes};

/// Each of these checks a password or a code: behind the per-IP auth limit.
pub fn rate_limited_routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(enroll_totp, disable_totp))
        .routes(routes!(confirm_totp))
}

pub fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(totp_status))
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PasswordOnly {
    password: String,
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CodeOnly {
    /// The six digits the authenticator shows now.
    code: String,
}

#[derive(Serialize, ToSchema)]
pub struct TotpStatus {
    enabled: bool,
}

/// Start enrolling a TOTP authenticator (with the password): answers the secret and its
/// `otpauth://` URI; nothing changes at sign-in until a code confirms it.
#[utoipa::path(post, path = "/v1/auth/totp", operation_id = "enrollTotp", tag = "auth", security(("bearer" = [])),
    request_body = PasswordOnly,
    responses((status = 201, body = TotpEnrollment), (status = 400, description = "Wrong password", body = ErrorBody),
              (status = 403, description = "Called with an API key", body = ErrorBody),
              (status = 409, description = "A second factor is already on", body = ErrorBody), (status = 423, body = ErrorBody)))]
async fn enroll_totp(
    State(s): State<AppState>,
    ClientIp(ip): ClientIp,
    Interactive(p): Interactive,
    Json(b): Json<PasswordOnly>,
) -> Result<(StatusCode, axum::Json<TotpEnrollment>), AppError> {
    let e = s
        .auth
        .enroll_totp(&p, &b.password, Some(&ip.to_string()))
        .await?;
    Ok((StatusCode::CREATED, axum::Json(e)))
}

/// Confirm the enrollment with the current code: sign-in needs a code from now on. Answers ten
/// single-use recovery codes, shown only here.
#[utoipa::path(post, path = "/v1/auth/totp/confirm", operation_id = "confirmTotp", tag = "auth", security(("bearer" = [])),
    request_body = CodeOnly,
    responses((status = 200, body = RecoveryCodes), (status = 400, description = "Not the current code", body = ErrorBody),
              (status = 404, description = "No enrollment waiting", body = ErrorBody)))]
async fn confirm_totp(
    State(s): State<AppState>,
    ClientIp(ip): ClientIp,
    Interactive(p): Interactive,
    Json(b): Json<CodeOnly>,
) -> Result<axum::Json<RecoveryCodes>, AppError> {
    Ok(axum::Json(
        s.auth
            .confirm_totp(&p, &b.code, Some(&ip.to_string()))
            .await?,
    ))
}

/// Turn the second factor off (with the password).
#[utoipa::path(delete, path = "/v1/auth/totp", operation_id = "disableTotp", tag = "auth", security(("bearer" = [])),
    request_body = PasswordOnly,
    responses((status = 204, description = "Off"), (status = 400, description = "Wrong password", body = ErrorBody),
              (status = 404, description = "None was on", body = ErrorBody)))]
async fn disable_totp(
    State(s): State<AppState>,
    ClientIp(ip): ClientIp,
    Interactive(p): Interactive,
    Json(b): Json<PasswordOnly>,
) -> Result<StatusCode, AppError> {
    s.auth
        .disable_totp(&p, &b.password, Some(&ip.to_string()))
        .await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Whether the account signs in with a second factor.
#[utoipa::path(get, path = "/v1/auth/totp", operation_id = "getTotpStatus", tag = "auth", security(("bearer" = [])),
    responses((status = 200, body = TotpStatus), (status = 401, body = ErrorBody)))]
async fn totp_status(
    State(s): State<AppState>,
    AuthUser(p): AuthUser,
) -> Result<axum::Json<TotpStatus>, AppError> {
    let enabled = s.auth.has_second_factor(p.user_id).await?;
    Ok(axum::Json(TotpStatus { enabled }))
}
