//! Usage and activity aggregates over a time range, computed by the database.

use super::StoreResult;
use async_trait::async_trait;
use chrono::{DateTime, Utc};
use serde::Serialize;
use utoipa::ToSchema;

/// Upper bounds (exclusive) of the latency histogram's buckets, in ms; one more bucket holds
/// everything above the last. Migration 0011 writes the same bounds.
pub const LATENCY_BOUNDS_MS: [i64; 19] = [
    1, 2, 5, 10, 20, 50, 100, 200, 500, 1_000, 2_000, 5_000, 10_000, 20_000, 30_000, 60_000,
    120_000, 300_000, 600_000,
];

/// Buckets in the histogram.
pub const BUCKETS: usize = LATENCY_BOUNDS_MS.len() + 1;

/// The bucket of a latency.
pub fn bucket_of(latency_ms: i64) -> usize {
    LATENCY_BOUNDS_MS
        .iter()
        .position(|b| latency_ms < *b)
        .unwrap_or(BUCKETS - 1)
}

/// The `p`th percentile (0-100) of a histogram, as the upper bound of the bucket that holds the
/// nearest-rank element (the last bucket's lower bound: it has no upper one); `None` if empty.
pub fn percentile(buckets: &[i64], p: i64) -> Option<i64> {
    let n: i64 = buckets.iter().sum();
    if n == 0 {
        return None;
    }
    let rank = (n * p + 99) / 100;
    let mut seen = 0;
    for (i, c) in buckets.iter().enumerate() {
        seen += c;
        if seen >= rank.max(1) {
            return Some(LATENCY_BOUNDS_MS[i.min(LATENCY_BOUNDS_MS.len() - 1)]);
        }
    }
    LATENCY_BOUNDS_MS.last().copied()
}

/// Requests, tokens, errors and latency of a group of usage records.
#[derive(Debug, Default, Serialize, ToSchema)]
pub struct UsageTotals {
    pub requests: i64,
    pub prompt_tokens: i64,
    pub completion_tokens: i64,
    /// Records whose status is `error`.
    pub errors: i64,
    /// Percentiles of `latency_ms` from a histogram with 1-2-5 steps (1, 2, 5, 10, 20, 50 ...
    /// ms): the upper bound of the bucket holding the nearest-rank request, so at most 2.5x
    /// the true value; absent when there were no requests.
    pub latency_ms_p50: Option<i64>,
    pub latency_ms_p95: Option<i64>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct ModelUsage {
    pub model: String,
    #[serde(flatten)]
    pub totals: UsageTotals,
}

#[derive(Debug, Serialize, ToSchema)]
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percentiles_are_bucket_upper_bounds_by_nearest_rank() {
        let mut h = [0i64; BUCKETS];
        assert_eq!(percentile(&h, 50), None);
        for ms in [0, 3, 3, 40, 900, 700_000] {
            h[bucket_of(ms)] += 1;
        }
        assert_eq!(bucket_of(0), 0);
        assert_eq!(bucket_of(1), 1);
        assert_eq!(bucket_of(700_000), BUCKETS - 1);
        assert_eq!(percentile(&h, 50), Some(5), "3rd of 6 is 3 ms, in [2, 5)");
        assert_eq!(
            percentile(&h, 95),
            Some(600_000),
            "the last bucket says its lower bound"
        );
        assert_eq!(percentile(&h, 1), Some(1));
    }
}
