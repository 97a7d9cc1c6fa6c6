//! Usage records, written in batches (see `chat::usage`); same SQL on both backends.

use super::analytics::{bucket_of, BUCKETS};
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

/// `usage_hourly` rows per statement: 29 parameters each, under SQLite's 32766.
pub(super) const HOURLY_ROWS_PER_STATEMENT: usize = 500;

/// One `usage_hourly` row's key: hour, model, key (nil: none), user, source, status.
type HourKey = (String, String, Uuid, Uuid, String, String);

/// A batch folded into its `usage_hourly` rows.
pub(super) fn hourly(records: &[UsageRecord]) -> Vec<(HourKey, [i64; 3], [i64; BUCKETS])> {
    let mut rows: std::collections::BTreeMap<HourKey, ([i64; 3], [i64; BUCKETS])> =
        Default::default();
    for r in records {
        let key = (
            super::analytics_sql::hour_key(r.created_at),
            r.model.clone(),
            r.api_key_id.map_or(Uuid::nil(), |k| k.0),
            r.user_id.0,
            r.source.clone(),
            r.status.clone(),
        );
        let (sums, buckets) = rows.entry(key).or_insert(([0; 3], [0; BUCKETS]));
        sums[0] += 1;
        sums[1] += r.prompt_tokens as i64;
        sums[2] += r.completion_tokens as i64;
        buckets[bucket_of(r.latency_ms as i64)] += 1;
    }
    rows.into_iter().map(|(k, (s, b))| (k, s, b)).collect()
}

/// Adds `rows` to `usage_hourly` (rows of deleted accounts skipped, as for the raw records).
pub(super) fn hourly_upsert<'a, DB: sqlx::Database>(
    rows: &'a [(HourKey, [i64; 3], [i64; BUCKETS])],
) -> sqlx::QueryBuilder<'a, DB>
where
    String: sqlx::Encode<'a, DB> + sqlx::Type<DB>,
    Uuid: sqlx::Encode<'a, DB> + sqlx::Type<DB>,
    i64: sqlx::Encode<'a, DB> + sqlx::Type<DB>,
{
    let cols = &*super::analytics_sql::BUCKET_COLUMNS;
    let mut q = sqlx::QueryBuilder::new(format!(
        "INSERT INTO usage_hourly (hour, model, api_key_id, user_id, source, status, requests, \
         prompt_tokens, completion_tokens, {cols}) SELECT * FROM ("
    ));
    q.push_values(rows, |mut b, (k, sums, buckets)| {
        b.push_bind(k.0.clone())
            .push_bind(k.1.clone())
            .push_bind(k.2)
            .push_bind(k.3)
            .push_bind(k.4.clone())
            .push_bind(k.5.clone());
        for v in sums.iter().chain(buckets.iter()) {
            b.push_bind(*v);
        }
    });
    let adds: Vec<String> = ["requests", "prompt_tokens", "completion_tokens"]
        .into_iter()
        .map(String::from)
        .chain((0..BUCKETS).map(|i| format!("b{i}")))
        .map(|c| format!("{c} = usage_hourly.{c} + excluded.{c}"))
        .collect();
    q.push(format!(
        ") AS v WHERE EXISTS (SELECT 1 FROM users u WHERE u.id = v.column4) \
         ON CONFLICT (hour, model, api_key_id, user_id, source, status) DO UPDATE SET {}",
        adds.join(", ")
    ));
    q
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
                let mut tx = self.pool.begin().await?;
                q.build().execute(&mut *tx).await?;
                let hours = super::usage_sql::hourly(records);
                for chunk in hours.chunks(super::usage_sql::HOURLY_ROWS_PER_STATEMENT) {
                    super::usage_sql::hourly_upsert(chunk)
                        .build()
                        .execute(&mut *tx)
                        .await?;
                }
                tx.commit().await?;
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
