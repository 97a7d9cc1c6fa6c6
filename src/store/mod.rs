//! Durable state behind one trait, with a PostgreSQL and a SQLite implementation picked by the
//! URL scheme. Both run the same SQL (`$n` placeholders work on both); timestamps are compared
//! in Rust, not SQL, because SQLite stores them as text.

mod admin;
mod admin_sql;
pub mod analytics;
mod analytics_sql;
mod files;
mod files_sql;
mod mcp_sql;
mod mfa;
mod mfa_sql;
mod projects_sql;
mod records;
mod sessions_sql;
mod sql;
mod sync_records;
mod sync_rows;
mod sync_sql;
mod sync_write_sql;
mod tokens_sql;
mod tools_sql;
mod usage_sql;

pub mod postgres;
pub mod sqlite;

pub use admin::{AdminStore, Maintenance, ProfileChange, Refused};
pub use analytics::{Analytics, AnalyticsStore};
pub use files::{AddRefused, BlobChunks, Elsewhere, FileQuota, FileRecord, FileStore, FileUsage};
pub use mfa::{SecondFactorStore, TotpFactor};
pub use records::*;
pub use sync_records::*;

use crate::domain::{ApiKeyId, Email, MemberRole, SessionId, UserId};
use async_trait::async_trait;
use chrono::{DateTime, Utc};
use std::{path::Path, sync::Arc, time::Duration};
use uuid::Uuid;

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("{0}")]
    Conflict(String),
    #[error("not found")]
    NotFound,
    #[error("database unavailable: {0}")]
    Unavailable(#[source] sqlx::Error),
    #[error("database error: {0}")]
    Database(#[source] sqlx::Error),
    #[error("migration failed: {0}")]
    Migrate(#[from] sqlx::migrate::MigrateError),
    #[error("corrupt row: {0}")]
    Corrupt(String),
}

impl From<sqlx::Error> for StoreError {
    fn from(e: sqlx::Error) -> Self {
        match &e {
            sqlx::Error::RowNotFound => StoreError::NotFound,
            sqlx::Error::PoolTimedOut
            | sqlx::Error::Io(_)
            | sqlx::Error::PoolClosed
            | sqlx::Error::WorkerCrashed => StoreError::Unavailable(e),
            sqlx::Error::Database(db) if db.code().as_deref().is_some_and(unavailable_state) => {
                StoreError::Unavailable(e)
            }
            sqlx::Error::Database(db) if db.is_unique_violation() => {
                StoreError::Conflict("already exists".into())
            }
            _ => StoreError::Database(e),
        }
    }
}

/// SQLSTATEs that mean "the database is not there right now" rather than "this statement is
/// wrong": connection exceptions (class 08), a server shutting down or starting up (57P01-03,
/// what a restart or crash sends to open connections), too many connections (53300), and
/// SQLite's busy and locked (5, 6) when its wait ran out. A client may retry these.
fn unavailable_state(code: &str) -> bool {
    code.starts_with("08")
        || matches!(
            code,
            "57P01" | "57P02" | "57P03" | "53300" | "5" | "6" | "261" | "262" | "517" | "773"
        )
}

pub type StoreResult<T> = Result<T, StoreError>;

/// Everything the server stores; one implementation per backend.
pub trait Store:
    AccountStore
    + AdminStore
    + AnalyticsStore
    + SessionStore
    + SyncStore
    + ProjectStore
    + UsageStore
    + McpStore
    + ToolStore
    + FileStore
    + SecondFactorStore
{
}
impl<
        T: AccountStore
            + AdminStore
            + AnalyticsStore
            + SessionStore
            + SyncStore
            + ProjectStore
            + UsageStore
            + McpStore
            + ToolStore
            + FileStore
            + SecondFactorStore,
    > Store for T
{
}

/// Tool calls made by turns, listed per session oldest first.
#[async_trait]
pub trait ToolStore: Send + Sync + 'static {
    async fn record_tool_call(&self, r: &ToolRecord) -> StoreResult<()>;
    async fn list_tool_calls(
        &self,
        session: SessionId,
        after: Option<Uuid>,
        limit: u32,
    ) -> StoreResult<Vec<ToolRecord>>;
}

/// A user's MCP server configurations (owner-only; a name is unique per user).
#[async_trait]
pub trait McpStore: Send + Sync + 'static {
    async fn create_mcp_server(&self, s: &McpServer) -> StoreResult<McpServer>;
    async fn mcp_server(&self, user: UserId, id: Uuid) -> StoreResult<Option<McpServer>>;
    async fn list_mcp_servers(&self, user: UserId) -> StoreResult<Vec<McpServer>>;
    async fn update_mcp_server(&self, s: &McpServer) -> StoreResult<Option<McpServer>>;
    async fn delete_mcp_server(&self, user: UserId, id: Uuid) -> StoreResult<bool>;
}

/// Completion usage: written in batches, listed newest first.
#[async_trait]
pub trait UsageStore: Send + Sync + 'static {
    async fn record_usage(&self, records: &[UsageRecord]) -> StoreResult<()>;
    async fn list_usage(
        &self,
        user: UserId,
        after: Option<Uuid>,
        limit: u32,
    ) -> StoreResult<Vec<UsageRecord>>;
}

/// A user's projects (owner-only).
#[async_trait]
pub trait ProjectStore: Send + Sync + 'static {
    async fn create_project(&self, owner: UserId, p: &ProjectFields) -> StoreResult<Project>;
    async fn project(&self, owner: UserId, id: Uuid) -> StoreResult<Option<Project>>;
    async fn list_projects(&self, owner: UserId) -> StoreResult<Vec<Project>>;
    async fn update_project(
        &self,
        owner: UserId,
        id: Uuid,
        p: &ProjectPatch,
    ) -> StoreResult<Option<Project>>;
    async fn delete_project(&self, owner: UserId, id: Uuid) -> StoreResult<bool>;
}

/// Session documents: the exactly-once, versioned write path and catch-up.
#[async_trait]
pub trait SyncStore: Send + Sync + 'static {
    /// Applies a batch to one session in one transaction holding the session's row lock:
    /// each new mutation gets the next version; retries get their stored answer; refusals are
    /// stored and advance the client's last id. `None` when the session does not exist.
    /// `rules` bound the session (caps) and the change log (older rows are compacted).
    async fn push(
        &self,
        session: SessionId,
        batch: &[Pushed<'_>],
        rules: &PushRules,
    ) -> StoreResult<Option<PushOutcome>>;
    /// The changes after `since` (at most `limit`), or a snapshot (with why) when the log
    /// cannot answer; read in one consistent view.
    async fn catch_up(
        &self,
        session: SessionId,
        since: u64,
        limit: u32,
    ) -> StoreResult<Option<CatchUp>>;
    /// The session's state exactly at the version it is labelled with (one consistent view).
    async fn snapshot(&self, session: SessionId) -> StoreResult<Option<Snapshot>>;
    /// Messages still marked streaming across every live session, oldest first, at most
    /// `limit`: each is a running turn's, or one a dead instance left behind (the chat
    /// janitor's work). A deleted session's are nobody's concern.
    async fn streaming_messages(
        &self,
        limit: u32,
    ) -> StoreResult<Vec<(SessionId, crate::sync::merge::Message)>>;
    /// Live messages in transcript order after the `(position, seq)` cursor, optionally of one
    /// role.
    async fn list_messages(
        &self,
        session: SessionId,
        after: Option<(u64, u32)>,
        role: Option<crate::sync::ops::MessageRole>,
        limit: u32,
    ) -> StoreResult<Vec<crate::sync::merge::Message>>;
}

/// Sessions and their members.
#[async_trait]
pub trait SessionStore: Send + Sync + 'static {
    async fn create_session(&self, owner: UserId, title: &str) -> StoreResult<Session>;
    /// With a client-chosen id (offline creation); `None` when that id is taken.
    async fn create_session_with_id(
        &self,
        id: SessionId,
        owner: UserId,
        title: &str,
    ) -> StoreResult<Option<Session>>;
    async fn session(&self, id: SessionId) -> StoreResult<Option<Session>>;
    /// The user's role in the session, `None` when not a member (or no such session).
    async fn member_role(
        &self,
        session: SessionId,
        user: UserId,
    ) -> StoreResult<Option<MemberRole>>;
    /// The roles of those of `users` who are members (one query per few hundred users: the
    /// batched access check of a subscribe storm).
    async fn member_roles(
        &self,
        session: SessionId,
        users: &[UserId],
    ) -> StoreResult<Vec<(UserId, MemberRole)>>;
    /// Adds the member or changes their role.
    async fn set_member(
        &self,
        session: SessionId,
        user: UserId,
        role: MemberRole,
    ) -> StoreResult<()>;
    async fn remove_member(&self, session: SessionId, user: UserId) -> StoreResult<bool>;
    async fn members(&self, session: SessionId) -> StoreResult<Vec<(UserId, MemberRole)>>;
    /// The sessions `user` is a member of, keyset-paginated by id (ids are time-ordered).
    async fn list_sessions(
        &self,
        user: UserId,
        after: Option<SessionId>,
        limit: u32,
    ) -> StoreResult<Vec<(Session, MemberRole)>>;
}

/// Accounts, tokens, API keys and the audit log.
#[async_trait]
pub trait AccountStore: Send + Sync + 'static {
    /// A cheap round trip, for readiness.
    async fn ping(&self) -> StoreResult<()>;
    fn backend(&self) -> &'static str;

    async fn create_user(&self, user: &NewUser) -> StoreResult<User>;
    async fn user_by_email(&self, email: &Email) -> StoreResult<Option<User>>;
    async fn user_by_id(&self, id: UserId) -> StoreResult<Option<User>>;
    /// Oldest first, keyset-paginated by id (ids are time-ordered).
    async fn list_users(&self, after: Option<UserId>, limit: u32) -> StoreResult<Vec<User>>;
    /// Counts a failed login; at `threshold` locks the account until `lock_until` and resets
    /// the count. Returns the updated user.
    async fn record_login_failure(
        &self,
        id: UserId,
        threshold: u32,
        lock_until: DateTime<Utc>,
    ) -> StoreResult<User>;
    /// After a right password: clears the failure count, but only if the lock is still what
    /// the caller saw (`seen_locked_until`, already judged past); false when a concurrent
    /// failure changed it (then read again and decide again).
    async fn clear_login_failures(
        &self,
        id: UserId,
        seen_locked_until: Option<DateTime<Utc>>,
    ) -> StoreResult<bool>;

    /// Starts a refresh-token family (one per login) with its first token.
    async fn create_refresh_family(
        &self,
        user: UserId,
        token_hash: &[u8],
        expires_at: DateTime<Utc>,
    ) -> StoreResult<Uuid>;
    /// Marks `old_hash` used and adds `new_hash` to its family, atomically. A token already
    /// used revokes its whole family (someone replayed it), unless it was used less than
    /// `grace` ago, for this same successor, which is still unused: then the answer is the
    /// same rotation again.
    async fn rotate_refresh_token(
        &self,
        old_hash: &[u8],
        new_hash: &[u8],
        new_expires_at: DateTime<Utc>,
        grace: Duration,
    ) -> StoreResult<RotateOutcome>;
    /// Revokes the family `token_hash` belongs to; returns its user and id if the token was
    /// known and the family live.
    async fn revoke_refresh_family(
        &self,
        token_hash: &[u8],
        reason: &str,
    ) -> StoreResult<Option<(UserId, Uuid)>>;

    async fn create_api_key(&self, key: &NewApiKey) -> StoreResult<ApiKey>;
    async fn list_api_keys(&self, user: UserId) -> StoreResult<Vec<ApiKey>>;
    async fn revoke_api_key(&self, user: UserId, id: ApiKeyId) -> StoreResult<bool>;
    /// A live (unrevoked) key by hash, with its owner; touches `last_used_at` at most once per
    /// `touch_every` so a busy key does not write on every request.
    async fn use_api_key(
        &self,
        key_hash: &[u8],
        touch_every: Duration,
    ) -> StoreResult<Option<(ApiKey, User)>>;

    async fn audit(&self, event: &AuditEvent) -> StoreResult<()>;
    /// Newest first.
    async fn list_audit(&self, user: Option<UserId>, limit: u32) -> StoreResult<Vec<AuditEntry>>;
}

/// The data dir holds the database and keys: created for the server's user only (0700). An
/// existing directory keeps its mode (it may be shared); the files in it are 0600 anyway.
fn private_dir(dir: &Path) -> std::io::Result<()> {
    if dir.exists() {
        return Ok(());
    }
    std::fs::create_dir_all(dir)?;
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o700))?;
    }
    Ok(())
}

/// Opens the store the URL names (default: SQLite in `data_dir`) and applies its migrations.
pub async fn connect(
    url: Option<&str>,
    data_dir: &Path,
    max_connections: u32,
    acquire_timeout: Duration,
) -> StoreResult<Arc<dyn Store>> {
    match url {
        Some(u) if u.starts_with("postgres://") || u.starts_with("postgresql://") => Ok(Arc::new(
            postgres::PgStore::connect(u, max_connections, acquire_timeout).await?,
        )),
        Some(u) => Ok(Arc::new(
            sqlite::SqliteStore::connect(u, max_connections, acquire_timeout).await?,
        )),
        None => {
            private_dir(data_dir).map_err(|e| StoreError::Unavailable(e.into()))?;
            let url = format!("sqlite://{}", data_dir.join("switchyard.db").display());
            Ok(Arc::new(
                sqlite::SqliteStore::connect(&url, max_connections, acquire_timeout).await?,
            ))
        }
    }
}
