//! PostgreSQL store: the production backend.

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
use sqlx::postgres::{PgConnectOptions, PgPoolOptions};
use sqlx::PgPool;
use std::str::FromStr;

/// Under READ COMMITTED each statement sees its own moment; a snapshot's version and content
/// must come from one.
const SNAPSHOT_ISOLATION: Option<&str> =
    Some("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ, READ ONLY");

static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("./migrations/postgres");

/// Owns the pool; lives as long as the `AppState` holding it.
pub struct PgStore {
    pool: PgPool,
}

impl PgStore {
    pub async fn connect(url: &str, max: u32, acquire_timeout: Duration) -> StoreResult<Self> {
        let opts = PgConnectOptions::from_str(url)?.application_name("switchyard");
        let pool = PgPoolOptions::new()
            .max_connections(max)
            .acquire_timeout(acquire_timeout)
            .connect_with(opts)
            .await
            .map_err(StoreError::Unavailable)?;
        MIGRATOR.run(&pool).await?;
        Ok(Self { pool })
    }
}

impl_session_store!(PgStore, sqlx::Postgres);
impl_project_store!(PgStore);
impl_usage_store!(PgStore);
impl_mcp_store!(PgStore);
impl_tool_store!(PgStore);
impl_file_store!(PgStore, sqlx::Postgres);
impl_second_factor_store!(PgStore);
impl_sync_store!(PgStore, sqlx::PgConnection, sqlx::Postgres);
impl_sync_writes!(PgStore, sqlx::PgConnection, sqlx::Postgres);
impl_token_sql!(PgStore, sqlx::PgConnection);
impl_analytics_store!(PgStore, super::analytics_sql::POSTGRES);
impl_admin_store!(
    PgStore,
    "to_char(created_at AT TIME ZONE 'UTC', 'YYYY-MM-DD')"
);
impl_account_store!(PgStore, "postgres");
