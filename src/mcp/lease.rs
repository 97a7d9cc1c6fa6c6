//! Which instance runs a user's MCP clients, and where their status lives: the Redis lease
//! (`SET NX`, refreshed by its holder, released when the user has been gone for
//! `mcp.idle_grace_secs`), the status kept beside it for connections on other instances, and
//! the loop that claims, refreshes and releases.

use super::{manager::McpManager, status::Status};
use crate::{
    bus::event_frame,
    domain::UserId,
    protocol::{raw, ServerEvent},
    redis_conn::RedisConn,
};
use std::{sync::Arc, time::Duration};
use tokio_util::sync::CancellationToken;

const LEASE_MS: u64 = 30_000;
const TICK: Duration = Duration::from_secs(5);

const REFRESH: &str = r"
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('PEXPIRE', KEYS[1], ARGV[2]) end
return 0
";

/// Drops the lease and the stored status, if this instance still holds the lease.
const RELEASE: &str = r"
if redis.call('GET', KEYS[1]) == ARGV[1] then
  redis.call('DEL', KEYS[1], KEYS[2])
  return 1
end
return 0
";

impl McpManager {
    pub(super) fn lease_key(&self, user: UserId) -> Option<(Arc<RedisConn>, String)> {
        self.redis
            .as_ref()
            .map(|(c, p)| (c.clone(), format!("{p}mcp:owner:{user}")))
    }

    pub(super) fn status_key(&self, user: UserId) -> Option<(Arc<RedisConn>, String)> {
        self.redis
            .as_ref()
            .map(|(c, p)| (c.clone(), format!("{p}mcp:status:{user}")))
    }

    /// Takes (or keeps) the user's lease; true when this instance runs the user's clients.
    pub(super) async fn lease(&self, user: UserId) -> bool {
        let Some((conn, key)) = self.lease_key(user) else {
            self.owned.insert(user, ());
            return true;
        };
        let held = self.owned.contains_key(&user);
        let ok = if held {
            let mut cmd = redis::cmd("EVAL");
            cmd.arg(REFRESH)
                .arg(1)
                .arg(&key)
                .arg(&self.instance)
                .arg(LEASE_MS);
            conn.run::<i64>(&cmd).await.map(|n| n == 1)
        } else {
            let mut cmd = redis::cmd("SET");
            cmd.arg(&key)
                .arg(&self.instance)
                .arg("NX")
                .arg("PX")
                .arg(LEASE_MS);
            conn.run::<Option<String>>(&cmd).await.map(|r| r.is_some())
        };
        match ok {
            Ok(true) => {
                self.owned.insert(user, ());
                true
            }
            Ok(false) => {
                if held {
                    tracing::warn!(%user, "lost the MCP lease to another instance");
                    self.owned.remove(&user);
                    self.stop_user(user).await;
                }
                false
            }
            // Redis unreachable: keep what we run, start nothing new.
            Err(_) => held,
        }
    }

    /// The user left (no socket here, no turn) for `mcp.idle_grace_secs`: stop their clients
    /// and give up their lease and stored status, so nothing runs for nobody.
    async fn release_user(&self, user: UserId) {
        tracing::debug!(%user, "MCP clients of an idle user stopped");
        self.owned.remove(&user);
        self.last_seen.remove(&user);
        self.stop_user(user).await;
        if let (Some((conn, lease)), Some((_, status))) =
            (self.lease_key(user), self.status_key(user))
        {
            let mut cmd = redis::cmd("EVAL");
            cmd.arg(RELEASE)
                .arg(2)
                .arg(lease)
                .arg(status)
                .arg(&self.instance);
            if let Err(e) = conn.run::<i64>(&cmd).await {
                tracing::warn!(error = %e, "MCP lease not released; it expires by itself");
            }
        }
    }

    /// The current status of all of `user`'s servers (from Redis when another instance runs
    /// them).
    pub async fn snapshot(&self, user: UserId) -> Vec<Status> {
        if self.owned.contains_key(&user) || self.redis.is_none() {
            return self
                .statuses
                .get(&user)
                .map(|m| m.values().cloned().collect())
                .unwrap_or_default();
        }
        let Some((conn, key)) = self.status_key(user) else {
            return Vec::new();
        };
        let mut cmd = redis::cmd("HVALS");
        cmd.arg(key);
        let raw: Vec<String> = conn.run(&cmd).await.unwrap_or_default();
        let mut v: Vec<Status> = raw
            .iter()
            .filter_map(|s| serde_json::from_str(s).ok())
            .collect();
        v.sort_by_key(|s| s.server_id);
        v
    }

    pub(super) async fn publish(&self, user: UserId, status: &Status) {
        let channel = format!("user:{user}");
        let servers = raw(&[status]);
        self.bus
            .publish(
                &channel,
                event_frame(&channel, &ServerEvent::McpStatus { servers: &servers }),
            )
            .await;
    }

    pub(super) async fn set(&self, user: UserId, status: Status) {
        self.statuses
            .entry(user)
            .or_default()
            .insert(status.server_id, status.clone());
        if let Some((conn, key)) = self.status_key(user) {
            if let Ok(json) = serde_json::to_string(&status) {
                let mut pipe = redis::pipe();
                pipe.cmd("HSET")
                    .arg(&key)
                    .arg(status.server_id.to_string())
                    .arg(json)
                    .ignore();
                pipe.cmd("PEXPIRE").arg(&key).arg(LEASE_MS * 4).ignore();
                let _ = conn.run_pipe(&pipe).await;
            }
        }
        self.publish(user, &status).await;
    }

    /// Claims free leases for users connected here, refreshes held ones and re-reads their
    /// configuration. Runs until `shutdown`.
    pub async fn run(
        self: Arc<Self>,
        connected: Arc<crate::connections::Connections>,
        shutdown: CancellationToken,
    ) {
        let grace = Duration::from_secs(self.cfg.idle_grace_secs);
        let mut tick = tokio::time::interval(TICK.min(grace.max(Duration::from_millis(100))));
        loop {
            tokio::select! {
                _ = shutdown.cancelled() => break,
                _ = tick.tick() => {}
            }
            let now = std::time::Instant::now();
            let mut users: Vec<UserId> = connected.users();
            users.extend(self.holds.iter().map(|e| *e.key()));
            for u in &users {
                self.last_seen.insert(*u, now);
            }
            let idle: Vec<UserId> = self
                .owned
                .iter()
                .map(|e| *e.key())
                .filter(|u| {
                    self.last_seen
                        .get(u)
                        .is_none_or(|t| now.duration_since(*t) >= grace)
                })
                .collect();
            for user in idle {
                self.release_user(user).await;
            }
            users.extend(self.owned.iter().map(|e| *e.key()));
            users.sort();
            users.dedup();
            for user in users {
                self.ensure_user(user).await;
            }
        }
        for r in self.running.iter() {
            r.stop.cancel();
        }
    }
}
