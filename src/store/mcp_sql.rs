//! MCP server configuration SQL shared by both backends (see `sql.rs` for why a macro).

use super::{McpServer, StoreError};
use crate::domain::UserId;
use chrono::{DateTime, Utc};
use uuid::Uuid;

#[derive(sqlx::FromRow)]
pub(super) struct McpRow {
    id: Uuid,
    user_id: Uuid,
    name: String,
    transport: String,
    command: Option<String>,
    url: Option<String>,
    headers: String,
    enabled: bool,
    created_at: DateTime<Utc>,
    updated_at: DateTime<Utc>,
}

impl McpRow {
    pub fn into_server(self) -> Result<McpServer, StoreError> {
        Ok(McpServer {
            id: self.id,
            user_id: UserId(self.user_id),
            name: self.name,
            transport: self.transport,
            command: self.command,
            url: self.url,
            headers: serde_json::from_str(&self.headers)
                .map_err(|e| StoreError::Corrupt(e.to_string()))?,
            enabled: self.enabled,
            created_at: self.created_at,
            updated_at: self.updated_at,
        })
    }
}

pub(super) const MCP_COLUMNS: &str =
    "id, user_id, name, transport, command, url, headers, enabled, created_at, updated_at";

macro_rules! impl_mcp_store {
    ($store:ty) => {
        #[async_trait::async_trait]
        impl $crate::store::McpStore for $store {
            async fn create_mcp_server(&self, s: &McpServer) -> StoreResult<McpServer> {
                let row: McpRow = sqlx::query_as(&format!(
                    "INSERT INTO mcp_servers ({MCP_COLUMNS}) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $9) \
                     RETURNING {MCP_COLUMNS}"
                ))
                .bind(s.id)
                .bind(s.user_id.0)
                .bind(&s.name)
                .bind(&s.transport)
                .bind(&s.command)
                .bind(&s.url)
                .bind(serde_json::Value::Object(s.headers.clone()).to_string())
                .bind(s.enabled)
                .bind(Utc::now())
                .fetch_one(&self.pool)
                .await?;
                row.into_server()
            }

            async fn mcp_server(&self, user: UserId, id: Uuid) -> StoreResult<Option<McpServer>> {
                let row: Option<McpRow> = sqlx::query_as(&format!(
                    "SELECT {MCP_COLUMNS} FROM mcp_servers WHERE id = $1 AND user_id = $2"
                ))
                .bind(id)
                .bind(user.0)
                .fetch_optional(&self.pool)
                .await?;
                row.map(McpRow::into_server).transpose()
            }

            async fn list_mcp_servers(&self, user: UserId) -> StoreResult<Vec<McpServer>> {
                let rows: Vec<McpRow> = sqlx::query_as(&format!(
                    "SELECT {MCP_COLUMNS} FROM mcp_servers WHERE user_id = $1 ORDER BY id"
                ))
                .bind(user.0)
                .fetch_all(&self.pool)
                .await?;
                rows.into_iter().map(McpRow::into_server).collect()
            }

            async fn update_mcp_server(&self, s: &McpServer) -> StoreResult<Option<McpServer>> {
                let row: Option<McpRow> = sqlx::query_as(&format!(
                    "UPDATE mcp_servers SET name = $3, transport = $4, command = $5, url = $6, headers = $7, \
                     enabled = $8, updated_at = $9 WHERE id = $1 AND user_id = $2 RETURNING {MCP_COLUMNS}"
                ))
                .bind(s.id)
                .bind(s.user_id.0)
                .bind(&s.name)
                .bind(&s.transport)
                .bind(&s.command)
                .bind(&s.url)
                .bind(serde_json::Value::Object(s.headers.clone()).to_string())
                .bind(s.enabled)
                .bind(Utc::now())
                .fetch_optional(&self.pool)
                .await?;
                row.map(McpRow::into_server).transpose()
            }

            async fn delete_mcp_server(&self, user: UserId, id: Uuid) -> StoreResult<bool> {
                let done = sqlx::query("DELETE FROM mcp_servers WHERE id = $1 AND user_id = $2")
                    .bind(id)
                    .bind(user.0)
                    .execute(&self.pool)
                    .await?;
                Ok(done.rows_affected() == 1)
            }
        }
    };
}
pub(super) use impl_mcp_store;
