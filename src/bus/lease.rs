//! Leases: one holder of a name at a time across instances, expiring unless the holder
//! refreshes it, so a crashed holder frees it. Chat turns lease their session (one turn per
//! session) and the MCP manager leases each user it runs clients for. Only instances that share
//! Redis need one (`RedisLease`); alone, an instance's own state is the whole truth.

use super::shared::{Shared, Unreachable};
use async_trait::async_trait;
use std::time::Duration;

#[async_trait]
pub trait Lease: Send + Sync + 'static {
    /// Takes `name` for `holder` for `ttl`; false when someone else holds it. `Err`: who holds
    /// it could not be decided.
    async fn claim(&self, name: &str, holder: &str, ttl: Duration) -> Result<bool, Unreachable>;
    /// Extends `holder`'s lease by `ttl`; false when it is not theirs (any more).
    async fn refresh(&self, name: &str, holder: &str, ttl: Duration) -> Result<bool, Unreachable>;
    /// Gives the lease up if `holder` still has it, deleting the state kept beside it (`with`,
    /// names) in the same step; true if it was held.
    async fn release(&self, name: &str, holder: &str, with: &[String])
        -> Result<bool, Unreachable>;
    /// Who holds `name` now.
    async fn holder(&self, name: &str) -> Result<Option<String>, Unreachable>;
}

const REFRESH: &str = r"
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('PEXPIRE', KEYS[1], ARGV[2]) end
return 0
";

/// Deletes the lease and the keys beside it, if the holder still has it.
const RELEASE: &str = r"
if redis.call('GET', KEYS[1]) == ARGV[1] then
  redis.call('DEL', unpack(KEYS))
  return 1
end
return 0
";

/// Leases every instance sees: `SET NX PX`, and compare-then-act scripts for the rest.
pub struct RedisLease {
    shared: Shared,
}

impl RedisLease {
    pub fn new(shared: Shared) -> Self {
        Self { shared }
    }
}

fn ms(ttl: Duration) -> u64 {
    ttl.as_millis().max(1) as u64
}

#[async_trait]
impl Lease for RedisLease {
    async fn claim(&self, name: &str, holder: &str, ttl: Duration) -> Result<bool, Unreachable> {
        let mut cmd = redis::cmd("SET");
        cmd.arg(self.shared.key(name))
            .arg(holder)
            .arg("NX")
            .arg("PX")
            .arg(ms(ttl));
        let won: Option<String> = self.shared.conn.run(&cmd).await?;
        Ok(won.is_some())
    }

    async fn refresh(&self, name: &str, holder: &str, ttl: Duration) -> Result<bool, Unreachable> {
        let mut cmd = redis::cmd("EVAL");
        cmd.arg(REFRESH)
            .arg(1)
            .arg(self.shared.key(name))
            .arg(holder)
            .arg(ms(ttl));
        Ok(self.shared.conn.run::<i64>(&cmd).await? == 1)
    }

    async fn release(
        &self,
        name: &str,
        holder: &str,
        with: &[String],
    ) -> Result<bool, Unreachable> {
        let mut cmd = redis::cmd("EVAL");
        cmd.arg(RELEASE)
            .arg(1 + with.len())
            .arg(self.shared.key(name));
        for w in with {
            cmd.arg(self.shared.key(w));
        }
        cmd.arg(holder);
        Ok(self.shared.conn.run::<i64>(&cmd).await? == 1)
    }

    async fn holder(&self, name: &str) -> Result<Option<String>, Unreachable> {
        let mut cmd = redis::cmd("GET");
        cmd.arg(self.shared.key(name));
        Ok(self.shared.conn.run(&cmd).await?)
    }
}
