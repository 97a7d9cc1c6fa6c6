//! `AnalyticsStore` for both backends. Whole hours of a range are read from `usage_hourly`
//! (written with each usage batch), the partial hours at its two ends from `usage_records`;
//! both are turned into one relation `u` of the same columns, which each view groups. So the
//! work grows with hours x models x keys x users, not with requests. Latency percentiles come
//! from the summed histogram buckets.

use super::analytics::{percentile, BUCKETS};
use chrono::{DateTime, Duration, DurationRound, Utc};
use std::sync::LazyLock;

/// The backend-specific pieces.
pub(super) struct AnalyticsSql {
    /// A `usage_records` row's UTC day as `YYYY-MM-DD`.
    pub day: &'static str,
    /// The nil UUID (no API key) as a literal.
    pub nil: &'static str,
}

pub(super) const POSTGRES: AnalyticsSql = AnalyticsSql {
    day: "to_char(created_at AT TIME ZONE 'UTC', 'YYYY-MM-DD')",
    nil: "CAST('00000000-0000-0000-0000-000000000000' AS UUID)",
};

pub(super) const SQLITE: AnalyticsSql = AnalyticsSql {
    day: "substr(created_at, 1, 10)",
    nil: "X'00000000000000000000000000000000'",
};

/// `b0, b1, ...`
pub(super) static BUCKET_COLUMNS: LazyLock<String> = LazyLock::new(|| {
    (0..BUCKETS)
        .map(|i| format!("b{i}"))
        .collect::<Vec<_>>()
        .join(", ")
});

/// `CAST(SUM(b0) AS BIGINT) AS b0, ...`
static BUCKET_SUMS: LazyLock<String> = LazyLock::new(|| {
    (0..BUCKETS)
        .map(|i| format!("CAST(COALESCE(SUM(b{i}), 0) AS BIGINT) AS b{i}"))
        .collect::<Vec<_>>()
        .join(", ")
});

/// One raw row's bucket indicators: `CASE WHEN latency_ms < 1 THEN 1 ELSE 0 END AS b0, ...`
static RAW_BUCKETS: LazyLock<String> = LazyLock::new(|| {
    let bounds = super::analytics::LATENCY_BOUNDS_MS;
    (0..BUCKETS)
        .map(|i| {
            let test = match i {
                0 => format!("latency_ms < {}", bounds[0]),
                i if i == BUCKETS - 1 => format!("latency_ms >= {}", bounds[i - 1]),
                i => format!(
                    "latency_ms >= {} AND latency_ms < {}",
                    bounds[i - 1],
                    bounds[i]
                ),
            };
            format!("CASE WHEN {test} THEN 1 ELSE 0 END AS b{i}")
        })
        .collect::<Vec<_>>()
        .join(", ")
});

/// `WITH u AS (...)`: the rollup's whole hours `[$5, $6)` and the raw rows of `[$1, $2)` and
/// `[$3, $4)`, in one shape.
pub(super) fn with_u(sql: &AnalyticsSql) -> String {
    format!(
        "WITH u AS (\
           SELECT substr(hour, 1, 10) AS day, model, api_key_id, user_id, source, status, \
             requests, prompt_tokens, completion_tokens, {cols} \
           FROM usage_hourly WHERE hour >= $5 AND hour < $6 \
           UNION ALL \
           SELECT {day} AS day, model, COALESCE(api_key_id, {nil}) AS api_key_id, user_id, \
             source, status, 1 AS requests, prompt_tokens, completion_tokens, {raw} \
           FROM usage_records \
           WHERE (created_at >= $1 AND created_at < $2) OR (created_at >= $3 AND created_at < $4)) ",
        cols = *BUCKET_COLUMNS,
        day = sql.day,
        nil = sql.nil,
        raw = *RAW_BUCKETS,
    )
}

/// The sums every view takes over `u`.
pub(super) fn sums() -> String {
    format!(
        "CAST(COALESCE(SUM(requests), 0) AS BIGINT) AS requests, \
         CAST(COALESCE(SUM(prompt_tokens), 0) AS BIGINT) AS prompt_tokens, \
         CAST(COALESCE(SUM(completion_tokens), 0) AS BIGINT) AS completion_tokens, \
         CAST(COALESCE(SUM(CASE WHEN status = 'error' THEN requests ELSE 0 END), 0) AS BIGINT) AS errors, \
         {}",
        *BUCKET_SUMS
    )
}

/// How a range splits: whole hours for the rollup, raw rows before and after them.
pub(super) struct Split {
    pub head: (DateTime<Utc>, DateTime<Utc>),
    pub tail: (DateTime<Utc>, DateTime<Utc>),
    pub hours: (String, String),
}

pub(super) fn hour_key(t: DateTime<Utc>) -> String {
    t.format("%Y-%m-%dT%H").to_string()
}

pub(super) fn split(from: DateTime<Utc>, to: DateTime<Utc>) -> Split {
    let hour = Duration::hours(1);
    let floor = |t: DateTime<Utc>| t.duration_trunc(hour).unwrap_or(t);
    let first = if floor(from) == from {
        from
    } else {
        floor(from) + hour
    };
    let last = floor(to);
    if first < last {
        Split {
            head: (from, first),
            tail: (last, to),
            hours: (hour_key(first), hour_key(last)),
        }
    } else {
        Split {
            head: (from, to),
            tail: (to, to),
            hours: (String::new(), String::new()),
        }
    }
}

/// `q` (a statement over `with_u`) with the range's six parameters bound.
pub(super) fn on_u<'q, DB: sqlx::Database>(
    q: sqlx::query::Query<'q, DB, <DB as sqlx::Database>::Arguments<'q>>,
    cut: &'q Split,
) -> sqlx::query::Query<'q, DB, <DB as sqlx::Database>::Arguments<'q>>
where
    DateTime<Utc>: sqlx::Encode<'q, DB> + sqlx::Type<DB>,
    &'q str: sqlx::Encode<'q, DB> + sqlx::Type<DB>,
{
    q.bind(cut.head.0)
        .bind(cut.head.1)
        .bind(cut.tail.0)
        .bind(cut.tail.1)
        .bind(cut.hours.0.as_str())
        .bind(cut.hours.1.as_str())
}

/// Sums of one group, as every view's statement returns them.
#[derive(Default)]
pub(super) struct Sums {
    pub requests: i64,
    pub prompt_tokens: i64,
    pub completion_tokens: i64,
    pub errors: i64,
    pub buckets: Vec<i64>,
}

impl Sums {
    /// Reads the sums from `row`, whose other columns the caller reads.
    pub fn read<R: sqlx::Row>(row: &R) -> Result<Self, sqlx::Error>
    where
        for<'a> &'a str: sqlx::ColumnIndex<R>,
        i64: for<'r> sqlx::Decode<'r, R::Database> + sqlx::Type<R::Database>,
    {
        let mut buckets = Vec::with_capacity(BUCKETS);
        for i in 0..BUCKETS {
            buckets.push(row.try_get::<i64, _>(format!("b{i}").as_str())?);
        }
        Ok(Self {
            requests: row.try_get("requests")?,
            prompt_tokens: row.try_get("prompt_tokens")?,
            completion_tokens: row.try_get("completion_tokens")?,
            errors: row.try_get("errors")?,
            buckets,
        })
    }

    pub fn totals(&self) -> super::analytics::UsageTotals {
        super::analytics::UsageTotals {
            requests: self.requests,
            prompt_tokens: self.prompt_tokens,
            completion_tokens: self.completion_tokens,
            errors: self.errors,
            latency_ms_p50: percentile(&self.buckets, 50),
            latency_ms_p95: percentile(&self.buckets, 95),
        }
    }
}

/// The first day not in a range ending (exclusive) at `to`: `to`'s own day when `to` is
/// midnight, else the day after. Archived usage is per day, so a partial day counts whole.
pub(super) fn day_after(to: DateTime<Utc>) -> String {
    let day = to.date_naive();
    let next = match to.time() == chrono::NaiveTime::MIN {
        true => day,
        false => day.succ_opt().unwrap_or(day),
    };
    next.format("%Y-%m-%d").to_string()
}

pub(super) const RANGE: &str = "created_at >= $1 AND created_at < $2";

macro_rules! impl_analytics_store {
    ($store:ty, $sql:expr) => {
        #[async_trait::async_trait]
        impl $crate::store::AnalyticsStore for $store {
            async fn analytics(
                &self,
                from: DateTime<Utc>,
                to: DateTime<Utc>,
            ) -> StoreResult<$crate::store::Analytics> {
                use super::analytics_sql::{on_u, split, sums, with_u, Sums, RANGE};
                use sqlx::Row;
                use $crate::store::analytics::*;
                let sql: &super::analytics_sql::AnalyticsSql = &$sql;
                let cut = split(from, to);
                let (w, s) = (with_u(sql), sums());
                let totals_sql = format!(
                    "{w}SELECT {s}, COUNT(DISTINCT user_id) AS active_users, \
                       CAST(COALESCE(SUM(CASE WHEN source = 'chat' THEN requests ELSE 0 END), 0) AS BIGINT) AS turns \
                     FROM u"
                );
                let model_sql = format!("{w}SELECT model, {s} FROM u GROUP BY model ORDER BY model");
                let day_sql = format!("{w}SELECT day, {s} FROM u GROUP BY day ORDER BY day");
                let key_sql = format!(
                    "{w}SELECT api_key_id, {s} FROM u GROUP BY api_key_id \
                     ORDER BY requests DESC LIMIT 100"
                );
                let count = |table: &str| format!("SELECT COUNT(*) FROM {table} WHERE {RANGE}");
                let (sessions_sql, messages_sql) = (count("sessions"), count("messages"));
                let tools_sql = format!(
                    "SELECT status, COUNT(*) FROM tool_calls WHERE {RANGE} \
                     GROUP BY status ORDER BY status"
                );
                let upper = super::analytics_sql::day_after(to);
                let (t, models, days, keys, (sessions_created,), (messages,), tools, deleted) =
                    tokio::try_join!(
                        on_u(sqlx::query(&totals_sql), &cut)
                            .fetch_one(&self.pool),
                        on_u(sqlx::query(&model_sql), &cut)
                            .fetch_all(&self.pool),
                        on_u(sqlx::query(&day_sql), &cut)
                            .fetch_all(&self.pool),
                        on_u(sqlx::query(&key_sql), &cut)
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
                let by_model = models
                    .iter()
                    .map(|r| {
                        Ok(ModelUsage {
                            model: r.try_get("model")?,
                            totals: Sums::read(r)?.totals(),
                        })
                    })
                    .collect::<Result<Vec<_>, sqlx::Error>>()?;
                let by_day = days
                    .iter()
                    .map(|r| {
                        let s = Sums::read(r)?;
                        Ok(DayUsage {
                            day: r.try_get("day")?,
                            requests: s.requests,
                            prompt_tokens: s.prompt_tokens,
                            completion_tokens: s.completion_tokens,
                            errors: s.errors,
                        })
                    })
                    .collect::<Result<Vec<_>, sqlx::Error>>()?;
                let by_api_key = keys
                    .iter()
                    .map(|r| {
                        let s = Sums::read(r)?;
                        let id: Uuid = r.try_get("api_key_id")?;
                        Ok(KeyUsage {
                            api_key_id: (!id.is_nil()).then_some(id),
                            requests: s.requests,
                            prompt_tokens: s.prompt_tokens,
                            completion_tokens: s.completion_tokens,
                        })
                    })
                    .collect::<Result<Vec<_>, sqlx::Error>>()?;
                Ok(Analytics {
                    from,
                    to,
                    usage: Sums::read(&t)?.totals(),
                    by_model,
                    by_day,
                    by_api_key,
                    active_users: t.try_get("active_users")?,
                    sessions_created,
                    messages,
                    turns: t.try_get("turns")?,
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
