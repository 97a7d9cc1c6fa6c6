//! Tool call records; same SQL on both backends (see `sql.rs` for why a macro). Arguments and
//! results are JSON text so both backends store them alike.

use super::{StoreError, ToolRecord};
use crate::domain::SessionId;
use chrono::{DateTime, Utc};
use uuid::Uuid;

#[derive(sqlx::FromRow)]
pub(super) struct ToolRow {
    id: Uuid,
    session_id: Uuid,
    turn_id: Uuid,
    message_id: String,
    call_id: String,
    name: String,
    server: Option<String>,
    tool: String,
    arguments: String,
    result: Option<String>,
    error: Option<String>,
    status: String,
    duration_ms: i64,
    created_at: DateTime<Utc>,
}

fn json(text: &str) -> Result<serde_json::Value, StoreError> {
    serde_json::from_str(text).map_err(|e| StoreError::Corrupt(e.to_string()))
}

impl ToolRow {
    pub fn into_record(self) -> Result<ToolRecord, StoreError> {
        Ok(ToolRecord {
            id: self.id,
            session_id: SessionId(self.session_id),
            turn_id: self.turn_id,
            message_id: self.message_id,
            call_id: self.call_id,
            name: self.name,
            server: self.server,
            tool: self.tool,
            arguments: json(&self.arguments)?,
            result: self.result.as_deref().map(json).transpose()?,
            error: self.error,
            status: self.status,
            duration_ms: self.duration_ms as u64,
            created_at: self.created_at,
        })
    }
}

pub(super) const TOOL_COLUMNS: &str =
    "id, session_id, turn_id, message_id, call_id, name, server, \
     tool, arguments, result, error, status, duration_ms, created_at";

macro_rules! impl_tool_store {
    ($store:ty) => {
        #[async_trait::async_trait]
        impl $crate::store::ToolStore for $store {
            async fn record_tool_call(&self, r: &ToolRecord) -> StoreResult<()> {
                sqlx::query(&format!(
                    "INSERT INTO tool_calls ({TOOL_COLUMNS}) VALUES \
                     ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14)"
                ))
                .bind(r.id)
                .bind(r.session_id.0)
                .bind(r.turn_id)
                .bind(&r.message_id)
                .bind(&r.call_id)
                .bind(&r.name)
                .bind(&r.server)
                .bind(&r.tool)
                .bind(r.arguments.to_string())
                .bind(r.result.as_ref().map(|v| v.to_string()))
                .bind(&r.error)
                .bind(&r.status)
                .bind(r.duration_ms as i64)
                .bind(r.created_at)
                .execute(&self.pool)
                .await?;
                Ok(())
            }

            async fn list_tool_calls(
                &self,
                session: SessionId,
                after: Option<Uuid>,
                limit: u32,
            ) -> StoreResult<Vec<ToolRecord>> {
                let rows: Vec<ToolRow> = sqlx::query_as(&format!(
                    "SELECT {TOOL_COLUMNS} FROM tool_calls WHERE session_id = $1 \
                     AND ($2 IS NULL OR id > $2) ORDER BY id LIMIT $3"
                ))
                .bind(session.0)
                .bind(after)
                .bind(limit as i64)
                .fetch_all(&self.pool)
                .await?;
                rows.into_iter().map(ToolRow::into_record).collect()
            }
        }
    };
}
pub(super) use impl_tool_store;
