//! Every error code the server answers with, on the socket (`error` replies) and over HTTP
//! (`error.code` in the body): one set, one spelling each, listed in protocol/README.md.

use serde::Serialize;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ErrorCode {
    // The socket's frame layer.
    /// Not a JSON object with a string `type`, a bad `id`, too deep, or binary.
    BadFrame,
    /// A known frame type with missing or mistyped fields.
    BadRequest,
    UnknownType,
    AuthRequired,
    AuthTimeout,
    AlreadyAuthenticated,
    TokenExpired,
    BadChannel,
    NotSubscribed,
    TooManySubscriptions,
    TooManyConnections,
    /// Over `ws.frames_per_sec`.
    RateLimited,
    // Shared by HTTP and the socket.
    InvalidRequest,
    MalformedJson,
    UnsupportedMediaType,
    PayloadTooLarge,
    RequestTimeout,
    MethodNotAllowed,
    InvalidCredentials,
    MissingAuthorization,
    InvalidToken,
    InvalidApiKey,
    Forbidden,
    AccountLocked,
    /// The account has a second factor: send `totp_code` or `recovery_code` with the password.
    MfaRequired,
    /// The second factor's code is wrong or already used (counted toward the lock).
    InvalidMfaCode,
    /// An admin disabled the account.
    AccountDisabled,
    /// The kill switch is on (`Retry-After` says when to try again).
    Maintenance,
    NotFound,
    Conflict,
    TurnActive,
    /// A session's or a user's file quota (`files.max_*`) would be crossed.
    FileLimitExceeded,
    /// A download's `Range` lies outside the file.
    RangeNotSatisfiable,
    /// A per-key budget (REST limiter, completions quota).
    RateLimitExceeded,
    InsufficientQuota,
    ServiceUnavailable,
    ModelNotFound,
    UpstreamError,
    UpstreamTimeout,
    UpstreamRateLimited,
    UpstreamAuthFailed,
    InternalError,
}

impl ErrorCode {
    pub fn as_str(self) -> &'static str {
        use ErrorCode::*;
        match self {
            BadFrame => "bad_frame",
            BadRequest => "bad_request",
            UnknownType => "unknown_type",
            AuthRequired => "auth_required",
            AuthTimeout => "auth_timeout",
            AlreadyAuthenticated => "already_authenticated",
            TokenExpired => "token_expired",
            BadChannel => "bad_channel",
            NotSubscribed => "not_subscribed",
            TooManySubscriptions => "too_many_subscriptions",
            TooManyConnections => "too_many_connections",
            RateLimited => "rate_limited",
            InvalidRequest => "invalid_request",
            MalformedJson => "malformed_json",
            UnsupportedMediaType => "unsupported_media_type",
            PayloadTooLarge => "payload_too_large",
            RequestTimeout => "request_timeout",
            MethodNotAllowed => "method_not_allowed",
            InvalidCredentials => "invalid_credentials",
            MissingAuthorization => "missing_authorization",
            InvalidToken => "invalid_token",
            InvalidApiKey => "invalid_api_key",
            Forbidden => "forbidden",
            AccountLocked => "account_locked",
            MfaRequired => "mfa_required",
            InvalidMfaCode => "invalid_mfa_code",
            AccountDisabled => "account_disabled",
            Maintenance => "maintenance",
            NotFound => "not_found",
            Conflict => "conflict",
            TurnActive => "turn_active",
            FileLimitExceeded => "file_limit_exceeded",
            RangeNotSatisfiable => "range_not_satisfiable",
            RateLimitExceeded => "rate_limit_exceeded",
            InsufficientQuota => "insufficient_quota",
            ServiceUnavailable => "service_unavailable",
            ModelNotFound => "model_not_found",
            UpstreamError => "upstream_error",
            UpstreamTimeout => "upstream_timeout",
            UpstreamRateLimited => "upstream_rate_limited",
            UpstreamAuthFailed => "upstream_auth_failed",
            InternalError => "internal_error",
        }
    }
}

impl std::fmt::Display for ErrorCode {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::ErrorCode;

    #[test]
    fn the_wire_spelling_is_the_serde_spelling() {
        for c in [
            ErrorCode::BadFrame,
            ErrorCode::TooManySubscriptions,
            ErrorCode::UpstreamAuthFailed,
            ErrorCode::RateLimitExceeded,
        ] {
            assert_eq!(serde_json::to_value(c).unwrap(), c.as_str());
        }
    }
}
