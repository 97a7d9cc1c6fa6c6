//! `/v1/auth/*`, `/v1/api-keys` and the JWKS document.

use super::extract::{ClientIp, Json};
use crate::{
    auth::service::TokenPair,
    domain::ApiKeyId,
    error::{AppError, ErrorBody},
    http::authn::{AuthUser, Interactive},
    state::AppState,
    store::{ApiKey, User},
};
use axum::{
    extract::{Path, State},
    http::StatusCode,
    response::IntoResponse,
};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use utoipa_axum::{router::OpenApiRouter, routes};

pub fn rate_limited_routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(register))
        .routes(routes!(login))
        .routes(routes!(refresh))
        .routes(routes!(logout))
}

pub fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(me))
        .routes(routes!(jwks))
        .routes(routes!(list_keys, create_key))
        .routes(routes!(revoke_key))
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Credentials {
    email: String,
    password: String,
}

/// A password sign-in; an account with a second factor also sends one of its codes (first
/// without: the answer `mfa_required` says one is needed).
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct LoginRequest {
    email: String,
    password: String,
    /// The six digits the authenticator app shows now.
    totp_code: Option<String>,
    /// One of the recovery codes given at enrollment (each works once).
    recovery_code: Option<String>,
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RefreshRequest {
    refresh_token: String,
}

#[derive(Serialize, ToSchema)]
pub struct UserView {
    #[schema(value_type = String, format = Uuid)]
    pub id: crate::domain::UserId,
    pub email: String,
    pub role: crate::domain::Role,
    /// An admin disabled the account.
    pub disabled: bool,
    pub created_at: DateTime<Utc>,
}

impl From<&User> for UserView {
    fn from(u: &User) -> Self {
        Self {
            id: u.id,
            email: u.email.clone(),
            role: u.role,
            disabled: u.disabled_at.is_some(),
            created_at: u.created_at,
        }
    }
}

#[derive(Serialize, ToSchema)]
pub struct RegisterResponse {
    user: UserView,
    tokens: TokenPair,
}

/// Create an account and sign in.
#[utoipa::path(post, path = "/v1/auth/register", operation_id = "register", tag = "auth", request_body = Credentials,
    responses((status = 201, body = RegisterResponse),
              (status = 400, description = "Invalid email or password policy", body = ErrorBody),
              (status = 409, description = "Email taken", body = ErrorBody),
              (status = 429, description = "Rate limited", body = ErrorBody)))]
async fn register(
    State(s): State<AppState>,
    ClientIp(ip): ClientIp,
    Json(c): Json<Credentials>,
) -> Result<impl IntoResponse, AppError> {
    let (user, tokens) = s
        .auth
        .register(&c.email, &c.password, Some(&ip.to_string()))
        .await?;
    Ok((
        StatusCode::CREATED,
        axum::Json(RegisterResponse {
            user: (&user).into(),
            tokens,
        }),
    ))
}

/// Exchange email and password for an access and a refresh token.
#[utoipa::path(post, path = "/v1/auth/login", operation_id = "login", tag = "auth", request_body = LoginRequest,
    responses((status = 200, body = TokenPair),
              (status = 401, description = "Wrong email or password", body = ErrorBody),
              (status = 423, description = "Account locked; Retry-After says for how long", body = ErrorBody),
              (status = 429, description = "Rate limited", body = ErrorBody)))]
async fn login(
    State(s): State<AppState>,
    ClientIp(ip): ClientIp,
    Json(c): Json<LoginRequest>,
) -> Result<axum::Json<TokenPair>, AppError> {
    let second = crate::auth::service::SecondFactor {
        totp_code: c.totp_code,
        recovery_code: c.recovery_code,
    };
    Ok(axum::Json(
        s.auth
            .login(&c.email, &c.password, &second, Some(&ip.to_string()))
            .await?,
    ))
}

/// Rotate a refresh token: the old one stops working; reusing it revokes the whole session.
#[utoipa::path(post, path = "/v1/auth/refresh", operation_id = "refreshToken", tag = "auth", request_body = RefreshRequest,
    responses((status = 200, body = TokenPair),
              (status = 401, description = "Unknown, expired, revoked or reused token", body = ErrorBody),
              (status = 429, description = "Rate limited", body = ErrorBody)))]
async fn refresh(
    State(s): State<AppState>,
    ClientIp(ip): ClientIp,
    Json(r): Json<RefreshRequest>,
) -> Result<axum::Json<TokenPair>, AppError> {
    Ok(axum::Json(
        s.auth
            .refresh(&r.refresh_token, Some(&ip.to_string()))
            .await?,
    ))
}

/// Revoke the session (refresh-token family) this token belongs to. Idempotent.
#[utoipa::path(post, path = "/v1/auth/logout", operation_id = "logout", tag = "auth", request_body = RefreshRequest,
    responses((status = 204, description = "Signed out"),
              (status = 429, description = "Rate limited", body = ErrorBody)))]
async fn logout(
    State(s): State<AppState>,
    ClientIp(ip): ClientIp,
    Json(r): Json<RefreshRequest>,
) -> Result<StatusCode, AppError> {
    s.auth
        .logout(&r.refresh_token, Some(&ip.to_string()))
        .await?;
    Ok(StatusCode::NO_CONTENT)
}

/// The signed-in account.
#[utoipa::path(get, path = "/v1/auth/me", operation_id = "getCurrentUser", tag = "auth", security(("bearer" = [])),
    responses((status = 200, body = UserView), (status = 401, body = ErrorBody)))]
async fn me(
    State(s): State<AppState>,
    AuthUser(p): AuthUser,
) -> Result<axum::Json<UserView>, AppError> {
    let user = s
        .store
        .user_by_id(p.user_id)
        .await?
        .ok_or_else(|| AppError::InvalidToken("account no longer exists".into()))?;
    Ok(axum::Json((&user).into()))
}

/// Public keys that verify access tokens (RFC 7517).
#[utoipa::path(get, path = "/.well-known/jwks.json", operation_id = "getJwks", tag = "auth",
    responses((status = 200, description = "JWK set", body = Object)))]
async fn jwks(State(s): State<AppState>) -> impl IntoResponse {
    (
        [(axum::http::header::CACHE_CONTROL, "public, max-age=300")],
        axum::Json(s.auth.keys().jwks()),
    )
}

#[derive(Serialize, ToSchema)]
pub struct ApiKeyView {
    #[schema(value_type = String, format = Uuid)]
    id: ApiKeyId,
    name: String,
    /// The first characters of the key, to recognise it.
    prefix: String,
    created_at: DateTime<Utc>,
    last_used_at: Option<DateTime<Utc>>,
}

impl From<ApiKey> for ApiKeyView {
    fn from(k: ApiKey) -> Self {
        Self {
            id: k.id,
            name: k.name,
            prefix: k.prefix,
            created_at: k.created_at,
            last_used_at: k.last_used_at,
        }
    }
}

#[derive(Serialize, ToSchema)]
pub struct CreatedApiKey {
    #[serde(flatten)]
    key: ApiKeyView,
    /// The whole key. Shown this once; only its hash is stored.
    secret: String,
}

#[derive(Serialize, ToSchema)]
pub struct ApiKeyList {
    data: Vec<ApiKeyView>,
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewApiKeyRequest {
    name: String,
}

/// The caller's live API keys (never the secrets).
#[utoipa::path(get, path = "/v1/api-keys", operation_id = "listApiKeys", tag = "api-keys", security(("bearer" = [])),
    responses((status = 200, body = ApiKeyList), (status = 401, body = ErrorBody)))]
async fn list_keys(
    State(s): State<AppState>,
    Interactive(p): Interactive,
) -> Result<axum::Json<ApiKeyList>, AppError> {
    let keys = s.auth.list_api_keys(p.user_id).await?;
    Ok(axum::Json(ApiKeyList {
        data: keys.into_iter().map(Into::into).collect(),
    }))
}

/// Create an API key for REST-only clients; the secret is in this response only.
#[utoipa::path(post, path = "/v1/api-keys", operation_id = "createApiKey", tag = "api-keys", security(("bearer" = [])),
    request_body = NewApiKeyRequest,
    responses((status = 201, body = CreatedApiKey), (status = 400, body = ErrorBody), (status = 401, body = ErrorBody), (status = 403, description = "Called with an API key", body = ErrorBody)))]
async fn create_key(
    State(s): State<AppState>,
    Interactive(p): Interactive,
    ClientIp(ip): ClientIp,
    Json(r): Json<NewApiKeyRequest>,
) -> Result<impl IntoResponse, AppError> {
    let (key, secret) = s
        .auth
        .create_api_key(p.user_id, &r.name, Some(&ip.to_string()))
        .await?;
    Ok((
        StatusCode::CREATED,
        axum::Json(CreatedApiKey {
            key: key.into(),
            secret,
        }),
    ))
}

/// Revoke one of the caller's API keys; it stops working at once.
#[utoipa::path(delete, path = "/v1/api-keys/{id}", operation_id = "revokeApiKey", tag = "api-keys", security(("bearer" = [])),
    params(("id" = String, Path, description = "API key id")),
    responses((status = 204, description = "Revoked"), (status = 404, body = ErrorBody), (status = 401, body = ErrorBody)))]
async fn revoke_key(
    State(s): State<AppState>,
    Interactive(p): Interactive,
    ClientIp(ip): ClientIp,
    Path(id): Path<String>,
) -> Result<StatusCode, AppError> {
    let id: ApiKeyId = id
        .parse()
        .map_err(|_| AppError::validation("id", "id must be a UUID"))?;
    s.auth
        .revoke_api_key(p.user_id, id, Some(&ip.to_string()))
        .await?;
    Ok(StatusCode::NO_CONTENT)
}
