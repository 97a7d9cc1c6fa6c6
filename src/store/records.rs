//! Plain records the store reads and writes.

use crate::domain::{ApiKeyId, Email, Role, SessionId, UserId};
use chrono::{DateTime, Utc};
use serde::Serialize;
use uuid::Uuid;

#[derive(Debug, Clone)]
pub struct User {
    pub id: UserId,
    pub email: String,
    pub password_hash: String,
    pub role: Role,
    pub failed_logins: i32,
    pub locked_until: Option<DateTime<Utc>>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    /// Set by an admin: every credential of the account is refused while it is.
    pub disabled_at: Option<DateTime<Utc>>,
    pub display_name: Option<String>,
    pub username: Option<String>,
    /// The client's own settings (a JSON object), stored as given.
    pub preferences: serde_json::Value,
}

#[derive(Debug, Clone)]
pub struct NewUser {
    pub email: Email,
    pub password_hash: String,
    pub role: Role,
}

#[derive(Debug, Clone)]
pub struct ApiKey {
    pub id: ApiKeyId,
    pub user_id: UserId,
    pub name: String,
    pub prefix: String,
    pub created_at: DateTime<Utc>,
    pub last_used_at: Option<DateTime<Utc>>,
}

#[derive(Debug, Clone)]
pub struct NewApiKey {
    pub user_id: UserId,
    pub name: String,
    pub prefix: String,
    pub key_hash: Vec<u8>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RotateOutcome {
    Rotated {
        user_id: UserId,
        family_id: Uuid,
    },
    /// The token was already used: its family is now revoked.
    Reused {
        user_id: UserId,
        family_id: Uuid,
    },
    Revoked,
    Expired,
    Unknown,
}

#[derive(Debug, Clone)]
pub struct AuditEvent {
    pub user_id: Option<UserId>,
    pub event: &'static str,
    pub ip: Option<String>,
    pub detail: serde_json::Value,
}

#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct AuditEntry {
    pub id: i64,
    pub at: DateTime<Utc>,
    #[schema(value_type = Option<String>)]
    pub user_id: Option<UserId>,
    pub event: String,
    pub ip: Option<String>,
    pub detail: serde_json::Value,
}

#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct Session {
    #[schema(value_type = String, format = Uuid)]
    pub id: SessionId,
    #[schema(value_type = String, format = Uuid)]
    pub owner_id: UserId,
    pub title: String,
    /// Sync version: the number of mutations applied.
    pub version: u64,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct Project {
    pub id: Uuid,
    #[schema(value_type = String, format = Uuid)]
    pub owner_id: UserId,
    pub name: String,
    pub description: String,
    /// Free-form JSON object.
    #[schema(value_type = Object)]
    pub settings: serde_json::Value,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

pub use crate::protocol::calls::{ProjectFields, ProjectPatch};

/// One completion's usage (REST request or socket turn).
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct UsageRecord {
    pub id: Uuid,
    #[schema(value_type = String, format = Uuid)]
    pub user_id: UserId,
    /// The API key that made the request; absent for access tokens.
    #[schema(value_type = Option<String>, format = Uuid)]
    pub api_key_id: Option<ApiKeyId>,
    /// `rest` (`/v1/chat/completions`) or `chat` (a socket turn).
    pub source: String,
    pub model: String,
    pub prompt_tokens: u64,
    pub completion_tokens: u64,
    pub latency_ms: u64,
    /// `ok`, `error` or `cancelled`.
    pub status: String,
    pub created_at: DateTime<Utc>,
}

/// One MCP server a user configured. `headers` are secrets: stored, sent to the server, never
/// shown back (views list their names only).
#[derive(Debug, Clone)]
pub struct McpServer {
    pub id: Uuid,
    pub user_id: UserId,
    pub name: String,
    /// `http` (Streamable HTTP, `url`) or `stdio` (`command`: an allowlisted name).
    pub transport: String,
    pub command: Option<String>,
    pub url: Option<String>,
    pub headers: serde_json::Map<String, serde_json::Value>,
    pub enabled: bool,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

/// One tool call made during a turn: an MCP server's tool (`server` set) or a tool the client
/// declared in `chat.send` (`server` absent, answered by the client).
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct ToolRecord {
    pub id: Uuid,
    #[schema(value_type = String, format = Uuid)]
    pub session_id: SessionId,
    pub turn_id: Uuid,
    /// The assistant message the turn wrote.
    pub message_id: String,
    /// The model's id for the call.
    pub call_id: String,
    /// The function name the model saw (`<server>__<tool>` for MCP tools).
    pub name: String,
    /// The MCP server's name; absent for client-side tools.
    pub server: Option<String>,
    /// The tool's own name on its server or client.
    pub tool: String,
    #[schema(value_type = Object)]
    pub arguments: serde_json::Value,
    /// What the tool returned (an MCP `CallToolResult`, or the client's `result`).
    #[schema(value_type = Option<Object>)]
    pub result: Option<serde_json::Value>,
    pub error: Option<String>,
    /// `ok`, `error` (the tool failed or was unavailable) or `timeout`.
    pub status: String,
    pub duration_ms: u64,
    pub created_at: DateTime<Utc>,
}
