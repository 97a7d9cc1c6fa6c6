//! Per-key limits on completions: requests per minute and tokens per minute, counted per API
//! key (or per user for access tokens), shared through Redis when it is configured.

use crate::{
    config::LlmConfig,
    domain::Principal,
    error::AppError,
    ratelimit::{RateLimiter, Standing},
};
use std::time::Duration;

/// Owned by `Completions`; lives as long as the server (its counts expire with their minute).
pub struct Quota {
    requests: RateLimiter,
    tokens: RateLimiter,
}

/// Whose budget a request spends.
pub fn subject(p: &Principal) -> String {
    match p.api_key {
        Some(k) => format!("key:{}", k.0),
        None => format!("user:{}", p.user_id),
    }
}

impl Quota {
    pub fn new(cfg: &LlmConfig, redis: Option<crate::bus::Shared>) -> Self {
        let minute = Duration::from_secs(60);
        Self {
            requests: RateLimiter::new(
                "llm_requests",
                cfg.requests_per_minute,
                minute,
                100_000,
                redis.clone(),
            ),
            tokens: RateLimiter::new("llm_tokens", cfg.tokens_per_minute, minute, 100_000, redis),
        }
    }

    /// Counts one request, refusing it when the minute's requests or tokens are spent; says
    /// where the caller stands either way. `max_tokens` larger than the whole per-minute token
    /// budget can never pass: that 429 says not to retry.
    pub async fn admit(&self, who: &str, max_tokens: Option<u32>) -> Result<Standing, AppError> {
        let refuse = |message: String, retry_after_secs, standing: Option<Standing>| {
            Err(AppError::Quota {
                message,
                retry_after_secs,
                standing: standing.map(Box::new),
            })
        };
        if max_tokens.is_some_and(|m| u64::from(m) > self.tokens.limit()) {
            let message = format!(
                "max_tokens is above this key's budget of {} tokens per minute",
                self.tokens.limit()
            );
            return refuse(message, None, None);
        }
        let tokens = self.tokens.peek(who).await;
        if !tokens.allowed {
            let requests = self.requests.peek(who).await;
            let message = format!(
                "token limit reached: {} tokens per minute for this key",
                tokens.limit
            );
            let retry = Some(tokens.reset_secs.max(1));
            return refuse(message, retry, Some(Standing { requests, tokens }));
        }
        let requests = self.requests.check(who).await;
        let standing = Standing { requests, tokens };
        if !requests.allowed {
            let message = format!(
                "request limit reached: {} requests per minute for this key",
                requests.limit
            );
            return refuse(message, Some(requests.reset_secs.max(1)), Some(standing));
        }
        Ok(standing)
    }

    /// Spends the tokens a finished completion used.
    pub async fn charge(&self, who: &str, tokens: u64) {
        if tokens > 0 {
            self.tokens.consume(who, tokens).await;
        }
    }
}
