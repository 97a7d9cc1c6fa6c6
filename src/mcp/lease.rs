//! Which instance runs a user's MCP clients, and where their status lives: the lease
//! (`bus::Lease`, refreshed by its holder, released when the user has been gone for
//! `mcp.idle_grace_secs`), the status kept beside it for connections on other instances, and
//! the loop that claims, refreshes and releases.

use super::{manager::McpManager, status::Status};
use crate::{
    domain::UserId,
    protocol::event_frame,
    protocol::{raw, ServerEvent},
};
use std::{sync::Arc, time::Duration};
use tokio_util::sync::CancellationToken;

const LEASE: Duration = Duration::from_secs(30);
const TICK: Duration = Duration::from_secs(5);

/// Tagged by the user, so the lease and the status it releases share a cluster slot.
fn lease_key(user: UserId) -> String {
    format!("mcp:owner:{{{user}}}")
}

/// Where the holder keeps the status of `user`'s servers for the other instances.
pub(super) fn status_key(user: UserId) -> String {
    format!("mcp:status:{{{user}}}")
}

impl McpManager {
    /// Takes (or keeps) the user's lease; true when this instance runs the user's clients.
    pub(super) async fn lease(&self, user: UserId) -> bool {
        let Some(lease) = self.lease.as_deref() else {
            // One instance: it runs everyone's clients, whatever its loop's pace.
            self.owned.insert(user, ());
            return true;
        };
        let held = self.owned.contains_key(&user);
        let (key, me) = (lease_key(user), self.instance.as_str());
        let ok = if held {
            lease.refresh(&key, me, LEASE).await
        } else {
            lease.claim(&key, me, LEASE).await
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
        let Some(lease) = self.lease.as_deref() else {
            return;
        };
        let status = [status_key(user)];
        if let Err(e) = lease
            .release(&lease_key(user), &self.instance, &status)
            .await
        {
            tracing::warn!(error = %e, "MCP lease not released; it expires by itself");
        }
    }

    /// The current status of all of `user`'s servers (from Redis when another instance runs
    /// them).
    pub async fn snapshot(&self, user: UserId) -> Vec<Status> {
        let shared = match &self.shared {
            Some(s) if !self.owned.contains_key(&user) => s,
            _ => {
                return self
                    .statuses
                    .get(&user)
                    .map(|m| m.values().cloned().collect())
                    .unwrap_or_default()
            }
        };
        let raw = shared
            .hash_values(&status_key(user))
            .await
            .unwrap_or_default();
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
        if let (Some(shared), Ok(json)) = (&self.shared, serde_json::to_string(&status)) {
            let ttl = LEASE.as_millis() as u64 * 4;
            let field = status.server_id.to_string();
            let _ = shared.hash_put(&status_key(user), &field, &json, ttl).await;
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
