//! `AnalyticsStore` for both backends: the statements that differ (percentiles: PostgreSQL's
//! `percentile_disc`, SQLite's ranks over a window; a row's UTC day) come from `AnalyticsSql`,
//! the rest is shared. Every statement reads `[from, to)` of `created_at` by index.

/// The backend-specific statements; `$1`/`$2` are the range.
pub(super) struct AnalyticsSql {
    /// One row: requests, prompt_tokens, completion_tokens, errors, latency_ms_p50,
    /// latency_ms_p95, active_users, turns.
    pub totals: &'static str,
    /// Per model: model, then the first six columns of `totals`.
    pub by_model: &'static str,
    /// A `usage_records` row's UTC day (cheap to group by), and that day (`d`) as
    /// `YYYY-MM-DD` (worked out once per group).
    pub day: (&'static str, &'static str),
}

/// The first day not in a range ending (exclusive) at `to`: `to`'s own day when `to` is
/// midnight, else the day after. Archived usage is per day, so a partial day counts whole.
pub(super) fn day_after(to: chrono::DateTime<chrono::Utc>) -> String {
    let day = to.date_naive();
    let next = match to.time() == chrono::NaiveTime::MIN {
        true => day,
        false => day.succ_opt().unwrap_or(day),
    };
    next.format("%Y-%m-%d").to_string()
}

pub(super) const RANGE: &str = "created_at >= $1 AND created_at < $2";

#[derive(sqlx::FromRow)]
pub(super) struct TotalsRow {
    pub requests: i64,
    pub prompt_tokens: i64,
    pub completion_tokens: i64,
    pub errors: i64,
    pub latency_ms_p50: Option<i64>,
    pub latency_ms_p95: Option<i64>,
    pub active_users: i64,
    pub turns: i64,
}

#[derive(sqlx::FromRow)]
pub(super) struct ModelRow {
    pub model: String,
    pub requests: i64,
    pub prompt_tokens: i64,
    pub completion_tokens: i64,
    pub errors: i64,
    pub latency_ms_p50: Option<i64>,
    pub latency_ms_p95: Option<i64>,
}

macro_rules! impl_analytics_store {
    ($store:ty, $sql:expr) => {
        #[async_trait::async_trait]
        impl $crate::store::AnalyticsStore for $store {
            async fn analytics(
                &self,
                from: DateTime<Utc>,
                to: DateTime<Utc>,
            ) -> StoreResult<$crate::store::Analytics> {
                use super::analytics_sql::{ModelRow, TotalsRow, RANGE};
                use $crate::store::analytics::*;
                let sql: &super::analytics_sql::AnalyticsSql = &$sql;
                let day_sql = format!(
                    "SELECT {text} AS day, requests, prompt_tokens, completion_tokens, errors \
                     FROM (SELECT {key} AS d, COUNT(*) AS requests, \
                       CAST(COALESCE(SUM(prompt_tokens), 0) AS BIGINT) AS prompt_tokens, \
                       CAST(COALESCE(SUM(completion_tokens), 0) AS BIGINT) AS completion_tokens, \
                       CAST(COALESCE(SUM(CASE WHEN status = 'error' THEN 1 ELSE 0 END), 0) AS BIGINT) AS errors \
                     FROM usage_records WHERE {RANGE} GROUP BY 1) AS days ORDER BY 1",
                    key = sql.day.0,
                    text = sql.day.1,
                );
                let key_sql = format!(
                    "SELECT api_key_id, COUNT(*) AS requests, \
                       CAST(COALESCE(SUM(prompt_tokens), 0) AS BIGINT), \
                       CAST(COALESCE(SUM(completion_tokens), 0) AS BIGINT) \
                     FROM usage_records WHERE {RANGE} GROUP BY api_key_id \
                     ORDER BY requests DESC LIMIT 100"
                );
                let count = |table: &str| format!("SELECT COUNT(*) FROM {table} WHERE {RANGE}");
                let (sessions_sql, messages_sql) = (count("sessions"), count("messages"));
                let tools_sql = format!(
                    "SELECT status, COUNT(*) FROM tool_calls WHERE {RANGE} \
                     GROUP BY status ORDER BY status"
                );
                let upper = super::analytics_sql::day_after(to);
                // Each statement scans the range on its own connection, at the same time.
                let (t, by_model, by_day, keys, (sessions_created,), (messages,), tools, deleted) =
                    tokio::try_join!(
                        sqlx::query_as::<_, TotalsRow>(sql.totals)
                            .bind(from)
                            .bind(to)
                            .fetch_one(&self.pool),
                        sqlx::query_as::<_, ModelRow>(sql.by_model)
                            .bind(from)
                            .bind(to)
                            .fetch_all(&self.pool),
                        sqlx::query_as::<_, DayUsage>(&day_sql)
                            .bind(from)
                            .bind(to)
                            .fetch_all(&self.pool),
                        sqlx::query_as::<_, (Option<Uuid>, i64, i64, i64)>(&key_sql)
                            .bind(from)
                            .bind(to)
                            .fetch_all(&self.pool),
                        sqlx::query_as::<_, (i64,)>(&sessions_sql)
                            .bind(from)
                            .bind(to)
                            .fetch_one(&self.pool),
                        sqlx::query_as::<_, (i64,)>(&messages_sql)
                            .bind(from)
                            .bind(to)
                            .fetch_one(&self.pool),
                        sqlx::query_as::<_, (String, i64)>(&tools_sql)
                            .bind(from)
                            .bind(to)
                            .fetch_all(&self.pool),
                        sqlx::query_as::<_, DeletedUsage>(
                            "SELECT CAST(COALESCE(SUM(requests), 0) AS BIGINT) AS requests, \
                               CAST(COALESCE(SUM(prompt_tokens), 0) AS BIGINT) AS prompt_tokens, \
                               CAST(COALESCE(SUM(completion_tokens), 0) AS BIGINT) AS completion_tokens \
                             FROM usage_archive WHERE day >= $1 AND day < $2",
                        )
                        .bind(from.format("%Y-%m-%d").to_string())
                        .bind(upper)
                        .fetch_one(&self.pool),
                    )?;
                Ok(Analytics {
                    from,
                    to,
                    usage: UsageTotals {
                        requests: t.requests,
                        prompt_tokens: t.prompt_tokens,
                        completion_tokens: t.completion_tokens,
                        errors: t.errors,
                        latency_ms_p50: t.latency_ms_p50,
                        latency_ms_p95: t.latency_ms_p95,
                    },
                    by_model: by_model
                        .into_iter()
                        .map(|m| ModelUsage {
                            model: m.model,
                            totals: UsageTotals {
                                requests: m.requests,
                                prompt_tokens: m.prompt_tokens,
                                completion_tokens: m.completion_tokens,
                                errors: m.errors,
                                latency_ms_p50: m.latency_ms_p50,
                                latency_ms_p95: m.latency_ms_p95,
                            },
                        })
                        .collect(),
                    by_day,
                    by_api_key: keys
                        .into_iter()
                        .map(|(api_key_id, requests, prompt_tokens, completion_tokens)| {
                            KeyUsage {
                                api_key_id,
                                requests,
                                prompt_tokens,
                                completion_tokens,
                            }
                        })
                        .collect(),
                    active_users: t.active_users,
                    sessions_created,
                    messages,
                    turns: t.turns,
                    tool_calls: tools
                        .into_iter()
                        .map(|(status, count)| StatusCount { status, count })
                        .collect(),
                    deleted_accounts: deleted,
                })
            }
        }
    };
}

pub(super) use impl_analytics_store;

/// The sums every totals statement shares (over rows named `u`).
macro_rules! sums {
    () => {
        "COUNT(*) AS requests, \
         CAST(COALESCE(SUM(prompt_tokens), 0) AS BIGINT) AS prompt_tokens, \
         CAST(COALESCE(SUM(completion_tokens), 0) AS BIGINT) AS completion_tokens, \
         CAST(COALESCE(SUM(CASE WHEN status = 'error' THEN 1 ELSE 0 END), 0) AS BIGINT) AS errors"
    };
}

pub(super) const POSTGRES: AnalyticsSql = AnalyticsSql {
    totals: concat!(
        "SELECT ",
        sums!(),
        ", percentile_disc(0.5) WITHIN GROUP (ORDER BY latency_ms) AS latency_ms_p50, \
         percentile_disc(0.95) WITHIN GROUP (ORDER BY latency_ms) AS latency_ms_p95, \
         COUNT(DISTINCT user_id) AS active_users, \
         CAST(COALESCE(SUM(CASE WHEN source = 'chat' THEN 1 ELSE 0 END), 0) AS BIGINT) AS turns \
         FROM usage_records WHERE created_at >= $1 AND created_at < $2"
    ),
    by_model: concat!(
        "SELECT model, ",
        sums!(),
        ", percentile_disc(0.5) WITHIN GROUP (ORDER BY latency_ms) AS latency_ms_p50, \
         percentile_disc(0.95) WITHIN GROUP (ORDER BY latency_ms) AS latency_ms_p95 \
         FROM usage_records WHERE created_at >= $1 AND created_at < $2 \
         GROUP BY model ORDER BY model"
    ),
    day: (
        "CAST(created_at AT TIME ZONE 'UTC' AS DATE)",
        "to_char(d, 'YYYY-MM-DD')",
    ),
};

/// SQLite has no percentile aggregate: nearest rank from each row's rank over its group
/// (the smallest latency whose rank reaches p% of the count).
pub(super) const SQLITE: AnalyticsSql = AnalyticsSql {
    totals: concat!(
        "SELECT ",
        sums!(),
        ", MIN(CASE WHEN rn * 100 >= n * 50 THEN latency_ms END) AS latency_ms_p50, \
         MIN(CASE WHEN rn * 100 >= n * 95 THEN latency_ms END) AS latency_ms_p95, \
         COUNT(DISTINCT user_id) AS active_users, \
         CAST(COALESCE(SUM(CASE WHEN source = 'chat' THEN 1 ELSE 0 END), 0) AS BIGINT) AS turns \
         FROM (SELECT user_id, source, prompt_tokens, completion_tokens, status, latency_ms, \
                 ROW_NUMBER() OVER (ORDER BY latency_ms) AS rn, COUNT(*) OVER () AS n \
               FROM usage_records WHERE created_at >= $1 AND created_at < $2)"
    ),
    by_model: concat!(
        "SELECT model, ",
        sums!(),
        ", MIN(CASE WHEN rn * 100 >= n * 50 THEN latency_ms END) AS latency_ms_p50, \
         MIN(CASE WHEN rn * 100 >= n * 95 THEN latency_ms END) AS latency_ms_p95 \
         FROM (SELECT model, prompt_tokens, completion_tokens, status, latency_ms, \
                 ROW_NUMBER() OVER (PARTITION BY model ORDER BY latency_ms) AS rn, \
                 COUNT(*) OVER (PARTITION BY model) AS n \
               FROM usage_records WHERE created_at >= $1 AND created_at < $2) \
         GROUP BY model ORDER BY model"
    ),
    day: ("substr(created_at, 1, 10)", "d"),
};
