//! Usage records, written in batches (see `chat::usage`); same SQL on both backends.

use super::UsageRecord;
use crate::domain::{ApiKeyId, UserId};
use chrono::{DateTime, Utc};
use uuid::Uuid;

#[derive(sqlx::FromRow)]
pub(super) struct UsageRow {
    id: Uuid,
    api_key_id: Option<Uuid>,
    source: String,
    model: String,
    prompt_tokens: i64,
    completion_tokens: i64,
    latency_ms: i64,
    status: String,
    created_at: DateTime<Utc>,
}

impl UsageRow {
    pub fn into_record(self, user: UserId) -> UsageRecord {
        UsageRecord {
            id: self.id,
            user_id: user,
            api_key_id: self.api_key_id.map(ApiKeyId),
            source: self.source,
            model: self.model,
            prompt_tokens: self.prompt_tokens as u64,
            completion_tokens: self.completion_tokens as u64,
            latency_ms: self.latency_ms as u64,
            status: self.status,
            created_at: self.created_at,
        }
    }
}

macro_rules! impl_usage_store {
    ($store:ty) => {
        #[async_trait::async_trait]
        impl $crate::store::UsageStore for $store {
            async fn record_usage(&self, records: &[UsageRecord]) -> StoreResult<()> {
                if records.is_empty() {
                    return Ok(());
                }
                // A record whose account was deleted meanwhile (a stream that ended after it) is
                // dropped here: one orphan must not fail, and so block, the whole batch. VALUES
                // columns are `column1..` on both backends.
                let mut q = sqlx::QueryBuilder::new(
                    "INSERT INTO usage_records (id, user_id, api_key_id, source, model, prompt_tokens, \
                     completion_tokens, latency_ms, status, created_at) SELECT * FROM (",
                );
                q.push_values(records, |mut b, r| {
                    b.push_bind(r.id)
                        .push_bind(r.user_id.0)
                        .push_bind(r.api_key_id.map(|k| k.0))
                        .push_bind(r.source.clone())
                        .push_bind(r.model.clone())
                        .push_bind(r.prompt_tokens as i64)
                        .push_bind(r.completion_tokens as i64)
                        .push_bind(r.latency_ms as i64)
                        .push_bind(r.status.clone())
                        .push_bind(r.created_at);
                });
                q.push(") AS v WHERE EXISTS (SELECT 1 FROM users u WHERE u.id = v.column2)");
                q.build().execute(&self.pool).await?;
                Ok(())
            }

            async fn list_usage(
                &self,
                user: UserId,
                after: Option<Uuid>,
                limit: u32,
            ) -> StoreResult<Vec<UsageRecord>> {
                let rows: Vec<UsageRow> = sqlx::query_as(
                    "SELECT id, api_key_id, source, model, prompt_tokens, completion_tokens, latency_ms, \
                     status, created_at FROM usage_records WHERE user_id = $1 AND ($2 IS NULL OR id < $2) \
                     ORDER BY id DESC LIMIT $3",
                )
                .bind(user.0)
                .bind(after)
                .bind(limit as i64)
                .fetch_all(&self.pool)
                .await?;
                Ok(rows.into_iter().map(|r| r.into_record(user)).collect())
            }
        }
    };
}
pub(super) use impl_usage_store;
