//! SQLite store: the zero-configuration default (`cargo run` needs no services).
//! WAL mode so readers never wait for the writer; a busy timeout so writers queue instead of
//! failing; `synchronous=FULL` so an acknowledged write survives a power cut, not just a crash.

use super::admin_sql::impl_admin_store;
use super::analytics_sql::impl_analytics_store;
use super::files_sql::{impl_file_store, FileRow, FILE_COLUMNS};
use super::mcp_sql::{impl_mcp_store, McpRow, MCP_COLUMNS};
use super::mfa_sql::impl_second_factor_store;
use super::projects_sql::{impl_project_store, ProjectRow, PROJECT_COLUMNS};
use super::sessions_sql::{impl_session_store, SessionRow};
use super::sql::{
    impl_account_store, AuditRow, KeyRow, TokenRow, UserRow, KEY_COLUMNS, USER_COLUMNS,
};
use super::sync_rows::{
    answer_of, ChangeRow, MessageRow, RegisterRow, SessionMessageRow, SizeRow, MESSAGE_COLUMNS,
    ROWS_PER_STATEMENT,
};
use super::sync_sql::impl_sync_store;
use super::sync_write_sql::impl_sync_writes;
use super::tokens_sql::impl_token_sql;
use super::tools_sql::{impl_tool_store, ToolRow, TOOL_COLUMNS};
use super::usage_sql::{impl_usage_store, UsageRow};
use super::*;
use crate::sync::ops::MessageRole;
use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions, SqliteSynchronous};
use sqlx::SqlitePool;
use std::str::FromStr;

/// SQLite in WAL mode: a read transaction sees one snapshot from its first read on.
const SNAPSHOT_ISOLATION: Option<&str> = None;

static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("./migrations/sqlite");

/// Owns the pool; lives as long as the `AppState` holding it.
pub struct SqliteStore {
    pool: SqlitePool,
}

impl SqliteStore {
    pub async fn connect(url: &str, max: u32, acquire_timeout: Duration) -> StoreResult<Self> {
        let opts = SqliteConnectOptions::from_str(url)?;
        private_file(opts.get_filename()).map_err(|e| StoreError::Unavailable(e.into()))?;
        let opts = opts
            .create_if_missing(true)
            .journal_mode(SqliteJournalMode::Wal)
            .synchronous(SqliteSynchronous::Full)
            .foreign_keys(true)
            .busy_timeout(Duration::from_secs(10));
        let pool = SqlitePoolOptions::new()
            .max_connections(max)
            .acquire_timeout(acquire_timeout)
            .connect_with(opts)
            .await
            .map_err(StoreError::Unavailable)?;
        MIGRATOR.run(&pool).await?;
        Ok(Self { pool })
    }
}

/// The database holds password hashes and sealed secrets: readable by the server's user only.
/// Created 0600 before SQLite opens it (its WAL and shared-memory files take the same mode);
/// an existing file is narrowed to 0600.
fn private_file(path: &std::path::Path) -> std::io::Result<()> {
    if path.as_os_str().is_empty() || path.to_string_lossy().starts_with(':') {
        return Ok(()); // in memory
    }
    #[cfg(unix)]
    {
        use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
        if path.exists() {
            std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600))?;
        } else {
            std::fs::OpenOptions::new()
                .write(true)
                .create_new(true)
                .mode(0o600)
                .open(path)?;
        }
    }
    Ok(())
}

impl_session_store!(SqliteStore, sqlx::Sqlite);
impl_project_store!(SqliteStore);
impl_usage_store!(SqliteStore);
impl_mcp_store!(SqliteStore);
impl_tool_store!(SqliteStore);
impl_file_store!(SqliteStore, sqlx::Sqlite);
impl_second_factor_store!(SqliteStore);
impl_sync_store!(SqliteStore, sqlx::SqliteConnection, sqlx::Sqlite);
impl_sync_writes!(SqliteStore, sqlx::SqliteConnection, sqlx::Sqlite);
impl_token_sql!(SqliteStore, sqlx::SqliteConnection);
impl_analytics_store!(SqliteStore, super::analytics_sql::SQLITE);
impl_admin_store!(SqliteStore, "substr(created_at, 1, 10)");
impl_account_store!(SqliteStore, "sqlite");
