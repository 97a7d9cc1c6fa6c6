//! `AppError`: the one error type at the edge. Each variant maps once to an HTTP status and an
//! OpenAI-shaped body (`{"error":{"message","type","code","param","request_id"}}`). Server
//! faults are logged with an error id and the client sees only that id, never the cause.

use crate::{protocol::ErrorCode, store::StoreError};
use axum::{
    http::{header, HeaderValue, StatusCode},
    response::{IntoResponse, Response},
};
use chrono::{DateTime, Utc};
use serde::Serialize;
use utoipa::ToSchema;

#[derive(Debug, thiserror::Error)]
pub enum AppError {
    #[error("{message}")]
    Validation {
        param: Option<String>,
        message: String,
    },
    #[error("request body is not valid JSON: {0}")]
    MalformedJson(String),
    #[error("{0}")]
    UnsupportedMediaType(String),
    #[error("request body is larger than the {0}-byte limit")]
    PayloadTooLarge(usize),
    #[error("invalid email or password")]
    InvalidCredentials,
    #[error("missing Authorization: Bearer header")]
    MissingAuth,
    #[error("{0}")]
    InvalidToken(String),
    #[error("invalid API key")]
    InvalidApiKey,
    #[error("{0}")]
    Forbidden(String),
    /// The right password for an account with a second factor, sent without its code.
    #[error(
        "this account has a second factor: send totp_code (or a recovery_code) with the password"
    )]
    MfaRequired,
    #[error("the second factor's code is wrong or was already used")]
    InvalidMfaCode,
    #[error("account locked after too many failed logins; try again after {until}")]
    AccountLocked { until: DateTime<Utc> },
    /// An admin disabled the account; said only to whoever proved the password.
    #[error("this account is disabled")]
    AccountDisabled,
    /// The kill switch is on.
    #[error("switchyard is in maintenance: {reason}")]
    Maintenance {
        reason: String,
        retry_after_secs: u64,
    },
    #[error("{0}")]
    NotFound(String),
    #[error("{0}")]
    Conflict(String),
    /// A chat turn is already running in the session.
    #[error("{0}")]
    TurnActive(String),
    /// Storing the file would cross a session's or a user's quota.
    #[error("{0}")]
    FileLimit(String),
    /// The `Range` asked for is not in the file (`size` goes in `Content-Range`).
    #[error("the requested range is not within the file's {size} bytes")]
    RangeNotSatisfiable { size: u64 },
    #[error("too many requests; retry after {retry_after_secs} s")]
    RateLimited { retry_after_secs: u64 },
    #[error("{0}")]
    Unavailable(String),
    #[error("the model `{0}` does not exist or you do not have access to it")]
    ModelNotFound(String),
    /// A per-key budget is spent. `retry_after_secs: None` means waiting cannot help (the
    /// request alone is over the budget): sent with `x-should-retry: false`.
    #[error("{message}")]
    Quota {
        message: String,
        retry_after_secs: Option<u64>,
        /// The caller's budget, sent as `x-ratelimit-*-{requests,tokens}`.
        standing: Option<Box<crate::ratelimit::Standing>>,
    },
    /// The model provider failed; `status` is what we answer (429, 400, 502, 504).
    #[error("{message}")]
    Upstream {
        status: StatusCode,
        code: ErrorCode,
        message: String,
        retry_after_secs: Option<u64>,
    },
    #[error("internal error")]
    Internal(#[source] anyhow::Error),
}

impl AppError {
    pub fn validation(param: impl Into<String>, message: impl Into<String>) -> Self {
        Self::Validation {
            param: Some(param.into()),
            message: message.into(),
        }
    }

    /// A model name as the caller sent it, clipped to 100 characters with control characters
    /// replaced: it is echoed back, and a megabyte of it need not be.
    pub fn model_not_found(raw: &str) -> Self {
        let shown: String = raw
            .chars()
            .take(100)
            .map(|c| if c.is_control() { '\u{fffd}' } else { c })
            .collect();
        Self::ModelNotFound(shown)
    }

    pub fn internal(e: impl Into<anyhow::Error>) -> Self {
        Self::Internal(e.into())
    }

    /// The whole cause, for the server's log only (a database's own error text included).
    pub fn detail(&self) -> String {
        match self {
            AppError::Internal(cause) => format!("{cause:#}"),
            other => other.to_string(),
        }
    }

    /// What the client may see. A server fault is logged here with a fresh error id and only
    /// that id is returned, so no cause ever leaves the process (HTTP and WebSocket alike).
    pub fn public_message(&self) -> String {
        match self {
            AppError::Internal(cause) => {
                let error_id = uuid::Uuid::new_v4();
                tracing::error!(%error_id, error = ?cause, "internal error");
                format!("internal error (error id {error_id})")
            }
            other => other.to_string(),
        }
    }

    pub fn status(&self) -> StatusCode {
        use AppError::*;
        match self {
            Validation { .. } | MalformedJson(_) => StatusCode::BAD_REQUEST,
            UnsupportedMediaType(_) => StatusCode::UNSUPPORTED_MEDIA_TYPE,
            PayloadTooLarge(_) => StatusCode::PAYLOAD_TOO_LARGE,
            InvalidCredentials | MissingAuth | InvalidToken(_) | InvalidApiKey | MfaRequired
            | InvalidMfaCode => StatusCode::UNAUTHORIZED,
            Forbidden(_) => StatusCode::FORBIDDEN,
            AccountLocked { .. } => StatusCode::LOCKED,
            AccountDisabled => StatusCode::FORBIDDEN,
            Maintenance { .. } => StatusCode::SERVICE_UNAVAILABLE,
            NotFound(_) => StatusCode::NOT_FOUND,
            Conflict(_) | TurnActive(_) | FileLimit(_) => StatusCode::CONFLICT,
            RangeNotSatisfiable { .. } => StatusCode::RANGE_NOT_SATISFIABLE,
            RateLimited { .. } => StatusCode::TOO_MANY_REQUESTS,
            Unavailable(_) => StatusCode::SERVICE_UNAVAILABLE,
            ModelNotFound(_) => StatusCode::NOT_FOUND,
            Quota { .. } => StatusCode::TOO_MANY_REQUESTS,
            Upstream { status, .. } => *status,
            Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    /// Stable machine-readable code; documented in protocol/README.md and shared with the
    /// WebSocket error replies.
    pub fn code(&self) -> ErrorCode {
        use AppError::*;
        match self {
            Validation { .. } => ErrorCode::InvalidRequest,
            MalformedJson(_) => ErrorCode::MalformedJson,
            UnsupportedMediaType(_) => ErrorCode::UnsupportedMediaType,
            PayloadTooLarge(_) => ErrorCode::PayloadTooLarge,
            InvalidCredentials => ErrorCode::InvalidCredentials,
            MissingAuth => ErrorCode::MissingAuthorization,
            InvalidToken(_) => ErrorCode::InvalidToken,
            InvalidApiKey => ErrorCode::InvalidApiKey,
            Forbidden(_) => ErrorCode::Forbidden,
            AccountLocked { .. } => ErrorCode::AccountLocked,
            MfaRequired => ErrorCode::MfaRequired,
            InvalidMfaCode => ErrorCode::InvalidMfaCode,
            AccountDisabled => ErrorCode::AccountDisabled,
            Maintenance { .. } => ErrorCode::Maintenance,
            NotFound(_) => ErrorCode::NotFound,
            Conflict(_) => ErrorCode::Conflict,
            TurnActive(_) => ErrorCode::TurnActive,
            FileLimit(_) => ErrorCode::FileLimitExceeded,
            RangeNotSatisfiable { .. } => ErrorCode::RangeNotSatisfiable,
            RateLimited { .. } => ErrorCode::RateLimitExceeded,
            Unavailable(_) => ErrorCode::ServiceUnavailable,
            ModelNotFound(_) => ErrorCode::ModelNotFound,
            Quota {
                retry_after_secs: Some(_),
                ..
            } => ErrorCode::RateLimitExceeded,
            Quota { .. } => ErrorCode::InsufficientQuota,
            Upstream { code, .. } => *code,
            Internal(_) => ErrorCode::InternalError,
        }
    }
}

/// Largest page any listing returns; 50 when the client does not say.
pub const MAX_PAGE: u32 = 100;

/// A listing's `limit`, checked.
pub fn page_limit(limit: Option<u32>) -> Result<u32, AppError> {
    match limit.unwrap_or(50) {
        l @ 1..=MAX_PAGE => Ok(l),
        _ => Err(AppError::validation(
            "limit",
            format!("limit must be 1 to {MAX_PAGE}"),
        )),
    }
}

/// A page's `after`, read as the id it names; anything else was not a cursor we gave out.
pub fn after_cursor<T: std::str::FromStr>(after: Option<&str>) -> Result<Option<T>, AppError> {
    after
        .map(str::parse::<T>)
        .transpose()
        .map_err(|_| AppError::validation("after", "after must be a cursor from a previous page"))
}

/// The cursor of the page after `rows`: the last row's, when the page is full (a shorter
/// page is the last one).
pub fn next_cursor<T>(rows: &[T], limit: u32, cursor: impl Fn(&T) -> String) -> Option<String> {
    if rows.len() == limit as usize {
        rows.last().map(cursor)
    } else {
        None
    }
}

/// OpenAI's `type` for a status, so SDKs classify our errors as they classify OpenAI's.
pub fn error_type(status: StatusCode) -> &'static str {
    match status.as_u16() {
        400 | 404 | 405 | 409 | 413 | 415 | 422 => "invalid_request_error",
        401 => "authentication_error",
        403 | 423 => "permission_error",
        429 => "rate_limit_error",
        503 => "service_unavailable_error",
        _ => "server_error",
    }
}

#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct ErrorBody {
    pub error: ErrorObject,
}

#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct ErrorObject {
    pub message: String,
    #[serde(rename = "type")]
    pub kind: String,
    pub code: String,
    pub param: Option<String>,
    /// Filled in by the request-id middleware so every error names its request.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub request_id: Option<String>,
}

impl ErrorBody {
    pub fn new(
        status: StatusCode,
        code: ErrorCode,
        message: String,
        param: Option<String>,
    ) -> Self {
        Self {
            error: ErrorObject {
                message,
                kind: error_type(status).into(),
                code: code.as_str().into(),
                param,
                request_id: None,
            },
        }
    }
}

impl From<StoreError> for AppError {
    fn from(e: StoreError) -> Self {
        match e {
            StoreError::Conflict(m) => AppError::Conflict(m),
            StoreError::NotFound => AppError::NotFound("not found".into()),
            // Backpressure, not a fault: the pool is exhausted or the database is away for a
            // moment. The client retries; no error id, no backtrace captured on this path.
            StoreError::Unavailable(e) => {
                metrics::counter!("store_unavailable_total").increment(1);
                tracing::debug!(error = %e, "database unavailable");
                AppError::Unavailable(
                    "the database is busy or unreachable; try again shortly".into(),
                )
            }
            other => AppError::Internal(other.into()),
        }
    }
}

/// An error shared by every caller of one coalesced read: each gets its own copy.
impl From<std::sync::Arc<AppError>> for AppError {
    fn from(e: std::sync::Arc<AppError>) -> Self {
        std::sync::Arc::try_unwrap(e).unwrap_or_else(|e| match &*e {
            AppError::Unavailable(m) => AppError::Unavailable(m.clone()),
            AppError::NotFound(m) => AppError::NotFound(m.clone()),
            AppError::Forbidden(m) => AppError::Forbidden(m.clone()),
            other => AppError::Internal(anyhow::anyhow!(other.detail())),
        })
    }
}

impl IntoResponse for AppError {
    fn into_response(self) -> Response {
        let status = self.status();
        let message = self.public_message();
        let param = match &self {
            AppError::Validation { param, .. } => param.clone(),
            AppError::ModelNotFound(_) => Some("model".into()),
            _ => None,
        };
        let body = ErrorBody::new(status, self.code(), message, param);
        let mut resp = (status, axum::Json(body.clone())).into_response();
        match &self {
            AppError::RateLimited { retry_after_secs }
            | AppError::Maintenance {
                retry_after_secs, ..
            }
            | AppError::Quota {
                retry_after_secs: Some(retry_after_secs),
                ..
            }
            | AppError::Upstream {
                retry_after_secs: Some(retry_after_secs),
                ..
            } => {
                resp.headers_mut()
                    .insert(header::RETRY_AFTER, HeaderValue::from(*retry_after_secs));
            }
            AppError::Quota {
                retry_after_secs: None,
                ..
            } => {
                resp.headers_mut()
                    .insert("x-should-retry", HeaderValue::from_static("false"));
            }
            AppError::Unavailable(_) => {
                resp.headers_mut()
                    .insert(header::RETRY_AFTER, HeaderValue::from_static("1"));
            }
            AppError::RangeNotSatisfiable { size } => {
                if let Ok(v) = HeaderValue::from_str(&format!("bytes */{size}")) {
                    resp.headers_mut().insert(header::CONTENT_RANGE, v);
                }
            }
            AppError::AccountLocked { until } => {
                let secs = (*until - Utc::now()).num_seconds().max(1) as u64;
                resp.headers_mut()
                    .insert(header::RETRY_AFTER, HeaderValue::from(secs));
            }
            AppError::InvalidToken(_) | AppError::MissingAuth | AppError::InvalidApiKey => {
                resp.headers_mut()
                    .insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
            }
            _ => {}
        }
        if let AppError::Quota {
            standing: Some(s), ..
        } = &self
        {
            s.write_headers(resp.headers_mut());
        }
        resp.extensions_mut().insert(body);
        resp
    }
}
