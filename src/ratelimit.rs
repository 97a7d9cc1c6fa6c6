//! Fixed-window rate limits keyed by client (IP). Counted in Redis when it is configured, so
//! every instance behind the load balancer shares one budget; in memory otherwise. If Redis
//! stops answering, counting falls back to memory (per instance) rather than refusing everyone
//! or letting everyone through.

use dashmap::DashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// What a check decided, with what the `x-ratelimit-*` headers report.
#[derive(Debug, Clone, Copy)]
pub struct Decision {
    pub allowed: bool,
    pub limit: u64,
    pub remaining: u64,
    /// Seconds until the window resets.
    pub reset_secs: u64,
}

/// Where a caller stands in the completions budget after a request was admitted or refused:
/// what OpenAI reports as `x-ratelimit-{limit,remaining,reset}-{requests,tokens}`.
#[derive(Debug, Clone, Copy)]
pub struct Standing {
    pub requests: Decision,
    pub tokens: Decision,
}

impl Standing {
    /// Resets in OpenAI's duration format (`12s`); the official SDKs parse it.
    pub fn write_headers(&self, h: &mut axum::http::HeaderMap) {
        use axum::http::HeaderValue;
        for (kind, d) in [("requests", &self.requests), ("tokens", &self.tokens)] {
            let name = |what: &str| {
                axum::http::HeaderName::try_from(format!("x-ratelimit-{what}-{kind}"))
                    .expect("a valid header name")
            };
            h.insert(name("limit"), HeaderValue::from(d.limit));
            h.insert(name("remaining"), HeaderValue::from(d.remaining));
            if let Ok(v) = HeaderValue::try_from(format!("{}s", d.reset_secs)) {
                h.insert(name("reset"), v);
            }
        }
    }
}

/// One named limit (e.g. `auth`); shared by every request of this instance.
pub struct RateLimiter {
    name: &'static str,
    limit: u64,
    window: Duration,
    max_tracked: usize,
    local: DashMap<String, (u64, u64)>,
    /// The window the table was last swept in.
    swept: AtomicU64,
    shared: Option<crate::bus::Shared>,
}

/// The shared budget of clients that found the table full.
const OVERFLOW: &str = "~overflow";

impl RateLimiter {
    pub fn new(
        name: &'static str,
        limit: u64,
        window: Duration,
        max_tracked: usize,
        shared: Option<crate::bus::Shared>,
    ) -> Self {
        Self {
            name,
            limit,
            window,
            max_tracked,
            local: DashMap::new(),
            swept: AtomicU64::new(u64::MAX),
            shared,
        }
    }

    /// Counts one request for `client` and says whether it may proceed.
    pub async fn check(&self, client: &str) -> Decision {
        self.consume(client, 1).await
    }

    /// Where `client` stands without counting anything (`allowed`: budget left).
    pub async fn peek(&self, client: &str) -> Decision {
        let mut d = self.consume(client, 0).await;
        d.allowed = d.remaining > 0;
        d
    }

    /// The budget for one window.
    pub fn limit(&self) -> u64 {
        self.limit
    }

    /// Counts `cost` units (tokens, say) for `client`.
    pub async fn consume(&self, client: &str, cost: u64) -> Decision {
        let now_ms = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap_or_default()
            .as_millis() as u64;
        let window_ms = self.window.as_millis().max(1) as u64;
        let index = now_ms / window_ms;
        let reset_secs = ((index + 1) * window_ms - now_ms).div_ceil(1000);
        let count = match self.count_shared(client, index, window_ms, cost).await {
            Some(n) => n,
            None => self.count_local(client, index, cost),
        };
        Decision {
            allowed: count <= self.limit,
            limit: self.limit,
            remaining: self.limit.saturating_sub(count),
            reset_secs,
        }
    }

    async fn count_shared(
        &self,
        client: &str,
        index: u64,
        window_ms: u64,
        cost: u64,
    ) -> Option<u64> {
        let shared = self.shared.as_ref()?;
        let key = format!("rl:{}:{client}:{index}", self.name);
        match shared.count(&key, cost, window_ms).await {
            Ok(n) => Some(n),
            Err(e) => {
                tracing::warn!(error = %e, limiter = self.name, "redis rate limit failed; counting locally");
                metrics::counter!("ratelimit_fallback_total", "limiter" => self.name).increment(1);
                None
            }
        }
    }

    fn count_local(&self, client: &str, index: u64, cost: u64) -> u64 {
        let mut key = client;
        if self.local.len() >= self.max_tracked && !self.local.contains_key(client) {
            // Old windows go first; then clients seen once, whose count is the least to lose.
            // At most one sweep per window: a sweep costs the whole table.
            if self.swept.swap(index, Ordering::Relaxed) != index {
                self.local.retain(|_, (i, n)| *i == index && *n > 1);
            }
            if self.local.len() >= self.max_tracked {
                // Still full within one window (someone is spraying addresses): clients not
                // tracked yet share one budget. Nobody tracked loses their count, and the
                // table never grows past its bound.
                metrics::counter!("ratelimit_overflow_total", "limiter" => self.name).increment(1);
                key = OVERFLOW;
            }
        }
        let mut entry = self.local.entry(key.to_owned()).or_insert((index, 0));
        if entry.0 != index {
            *entry = (index, 0);
        }
        entry.1 += cost;
        entry.1
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn local_window_counts_per_client() {
        let rl = RateLimiter::new("t", 2, Duration::from_secs(60), 10, None);
        assert!(rl.check("a").await.allowed);
        let second = rl.check("a").await;
        assert!(second.allowed && second.remaining == 0);
        assert!(!rl.check("a").await.allowed);
        assert!(rl.check("b").await.allowed);
    }

    #[tokio::test]
    async fn a_full_table_keeps_every_tracked_count() {
        let rl = RateLimiter::new("t", 3, Duration::from_secs(60), 3, None);
        for _ in 0..3 {
            assert!(rl.check("attacker").await.allowed);
        }
        assert!(!rl.check("attacker").await.allowed);
        // Sprayed addresses fill the table and then share one budget...
        for i in 0..50 {
            rl.check(&format!("10.0.0.{i}")).await;
        }
        assert!(rl.local.len() <= 4, "table grew past its bound");
        // ...and the address that was over its budget still is.
        assert!(!rl.check("attacker").await.allowed);
        assert!(
            !rl.check("10.9.9.9").await.allowed,
            "newcomers share the overflow budget"
        );
    }
}
