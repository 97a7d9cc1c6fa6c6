//! Usage and activity aggregates over a time range, computed by the database.

use super::StoreResult;
use async_trait::async_trait;
use chrono::{DateTime, Utc};
use serde::Serialize;
use utoipa::ToSchema;

/// Requests, tokens, errors and latency of a group of usage records.
#[derive(Debug, Default, Serialize, ToSchema, sqlx::FromRow)]
pub struct UsageTotals {
    pub requests: i64,
    pub prompt_tokens: i64,
    pub completion_tokens: i64,
    /// Records whose status is `error`.
    pub errors: i64,
    /// Nearest-rank percentiles of `latency_ms`; absent when there were no requests.
    pub latency_ms_p50: Option<i64>,
    pub latency_ms_p95: Option<i64>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct ModelUsage {
    pub model: String,
    #[serde(flatten)]
    pub totals: UsageTotals,
}

#[derive(Debug, Serialize, ToSchema, sqlx::FromRow)]
pub struct DayUsage {
    /// `YYYY-MM-DD`, UTC.
    pub day: String,
    pub requests: i64,
    pub prompt_tokens: i64,
    pub completion_tokens: i64,
    pub errors: i64,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct KeyUsage {
    /// `null`: requests made with an access token (or with a key since deleted).
    pub api_key_id: Option<uuid::Uuid>,
    pub requests: i64,
    pub prompt_tokens: i64,
    pub completion_tokens: i64,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct StatusCount {
    pub status: String,
    pub count: i64,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct Analytics {
    pub from: DateTime<Utc>,
    pub to: DateTime<Utc>,
    pub usage: UsageTotals,
    pub by_model: Vec<ModelUsage>,
    pub by_day: Vec<DayUsage>,
    /// The 100 keys with the most requests.
    pub by_api_key: Vec<KeyUsage>,
    /// Users with at least one request in the range.
    pub active_users: i64,
    pub sessions_created: i64,
    pub messages: i64,
    /// Socket chat turns (usage records of source `chat`).
    pub turns: i64,
    pub tool_calls: Vec<StatusCount>,
    /// Usage of accounts deleted since (kept only as per-day totals, so not in the figures
    /// above), for the days in the range.
    pub deleted_accounts: DeletedUsage,
}

#[derive(Debug, Default, Serialize, ToSchema, sqlx::FromRow)]
pub struct DeletedUsage {
    pub requests: i64,
    pub prompt_tokens: i64,
    pub completion_tokens: i64,
}

#[async_trait]
pub trait AnalyticsStore: Send + Sync + 'static {
    /// Everything in `[from, to)`.
    async fn analytics(&self, from: DateTime<Utc>, to: DateTime<Utc>) -> StoreResult<Analytics>;
}
