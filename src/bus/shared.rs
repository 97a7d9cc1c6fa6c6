//! State instances share in Redis besides fan-out: fixed-window counters (rate limits, quotas)
//! and small hashes that expire (MCP status); leases are in `lease`. With the bus's own files,
//! the only code that speaks Redis; each caller keeps its own in-process fallback for when
//! Redis is not configured or does not answer.

use super::redis_conn::RedisConn;
use std::sync::Arc;

/// Redis did not answer (or answered with an error): the caller falls back.
#[derive(Debug, thiserror::Error)]
#[error("shared state unavailable: {0}")]
pub struct Unreachable(#[from] redis::RedisError);

/// Adds `ARGV[2]` to a window's count; the first add starts the window's expiry.
const INCR: &str = r"
local n = redis.call('INCRBY', KEYS[1], ARGV[2])
if redis.call('PTTL', KEYS[1]) < 0 then redis.call('PEXPIRE', KEYS[1], ARGV[1]) end
return n
";

/// The Redis connection and the key prefix of this deployment; cheap to clone.
#[derive(Clone)]
pub struct Shared {
    pub(super) conn: Arc<RedisConn>,
    prefix: String,
}

impl Shared {
    pub fn new(conn: Arc<RedisConn>, prefix: String) -> Self {
        Self { conn, prefix }
    }

    /// `name` under this deployment's prefix.
    pub fn key(&self, name: &str) -> String {
        format!("{}{name}", self.prefix)
    }

    /// Whether Redis answers (readiness).
    pub async fn ping(&self) -> Result<(), Unreachable> {
        self.conn
            .run::<String>(&redis::cmd("PING"))
            .await
            .map(|_| ())
            .map_err(Into::into)
    }

    /// Adds `cost` to the window counter `name` (which expires `window_ms` after its first
    /// add) and returns the new count. EVAL with the script body: no script cache to lose
    /// when Redis restarts.
    pub async fn count(&self, name: &str, cost: u64, window_ms: u64) -> Result<u64, Unreachable> {
        let mut cmd = redis::cmd("EVAL");
        cmd.arg(INCR)
            .arg(1)
            .arg(self.key(name))
            .arg(window_ms)
            .arg(cost);
        Ok(self.conn.run::<u64>(&cmd).await?)
    }

    /// Sets `field` of the hash `name`, which then lives `ttl_ms` more.
    pub async fn hash_put(
        &self,
        name: &str,
        field: &str,
        value: &str,
        ttl_ms: u64,
    ) -> Result<(), Unreachable> {
        let key = self.key(name);
        let mut pipe = redis::pipe();
        pipe.cmd("HSET").arg(&key).arg(field).arg(value).ignore();
        pipe.cmd("PEXPIRE").arg(&key).arg(ttl_ms).ignore();
        Ok(self.conn.run_pipe(&pipe).await?)
    }

    pub async fn hash_values(&self, name: &str) -> Result<Vec<String>, Unreachable> {
        let mut cmd = redis::cmd("HVALS");
        cmd.arg(self.key(name));
        Ok(self.conn.run(&cmd).await?)
    }

    pub async fn hash_del(&self, name: &str, field: &str) -> Result<(), Unreachable> {
        let mut cmd = redis::cmd("HDEL");
        cmd.arg(self.key(name)).arg(field);
        Ok(self.conn.run::<i64>(&cmd).await.map(|_| ())?)
    }
}
