//! Who is calling, however they proved it: the one thing every layer is told about the caller.

use super::{ApiKeyId, Role, UserId};

/// Who is calling, however they proved it.
#[derive(Debug, Clone)]
pub struct Principal {
    pub user_id: UserId,
    pub role: Role,
    /// Set when the caller used an API key rather than an access token.
    pub api_key: Option<ApiKeyId>,
    /// Access-token expiry (unix seconds); `None` for API keys, which do not expire.
    pub expires_at: Option<i64>,
    /// The sign-in (refresh family) an access token came from; `None` for API keys.
    pub session: Option<uuid::Uuid>,
}
