//! The kill switch. Stored (so it survives a restart) and read by every instance every
//! `server.maintenance_poll_ms`, so an admin's REST call or the CLI on any machine puts the
//! whole deployment into maintenance within that. While it is on, the HTTP edge answers 503
//! (see `http::middleware::maintenance_gate`), and open sockets hear `server.maintenance` on
//! their `user:` channel, then close with 1012 after `server.maintenance_grace_secs`.

use crate::{
    error::AppError,
    hub::Hub,
    protocol::{event_frame, CloseCode, ServerEvent},
    store::{AuditEvent, Maintenance, Store},
};
use std::{
    sync::{Arc, RwLock},
    time::Duration,
};
use tokio_util::sync::CancellationToken;

/// Longest reason kept (it is shown to every client).
const MAX_REASON: usize = 500;

pub struct KillSwitch {
    store: Arc<dyn Store>,
    hub: Arc<Hub>,
    current: RwLock<Option<Arc<Maintenance>>>,
    poll: Duration,
    grace: Duration,
}

impl KillSwitch {
    pub fn new(store: Arc<dyn Store>, hub: Arc<Hub>, poll: Duration, grace: Duration) -> Self {
        Self {
            store,
            hub,
            current: RwLock::new(None),
            poll,
            grace,
        }
    }

    /// What the edge checks on every request: a read lock and an `Arc` clone.
    pub fn current(&self) -> Option<Arc<Maintenance>> {
        self.current
            .read()
            .expect("lock is never held across a panic")
            .clone()
    }

    pub async fn enable(
        &self,
        by: String,
        reason: &str,
        retry_after_secs: u64,
        ip: Option<&str>,
    ) -> Result<Arc<Maintenance>, AppError> {
        let reason = reason.trim();
        if reason.is_empty() || reason.chars().count() > MAX_REASON || reason.contains('\0') {
            return Err(AppError::validation(
                "reason",
                format!("reason must be 1 to {MAX_REASON} characters"),
            ));
        }
        if !(1..=86_400).contains(&retry_after_secs) {
            return Err(AppError::validation(
                "retry_after_secs",
                "retry_after_secs must be 1 to 86400",
            ));
        }
        let m = Maintenance {
            reason: reason.to_owned(),
            retry_after_secs,
            enabled_at: chrono::Utc::now(),
            enabled_by: by,
        };
        self.store.set_maintenance(Some(&m)).await?;
        self.audit("maintenance_enabled", &m.enabled_by, ip, Some(&m))
            .await;
        Ok(self.apply(Some(m)).expect("just set"))
    }

    pub async fn disable(&self, by: &str, ip: Option<&str>) -> Result<(), AppError> {
        self.store.set_maintenance(None).await?;
        self.audit("maintenance_disabled", by, ip, None).await;
        self.apply(None);
        Ok(())
    }

    async fn audit(
        &self,
        event: &'static str,
        by: &str,
        ip: Option<&str>,
        m: Option<&Maintenance>,
    ) {
        let e = AuditEvent {
            user_id: by.parse().ok(),
            event,
            ip: ip.map(str::to_owned),
            detail: serde_json::json!({"by": by, "reason": m.map(|m| &m.reason)}),
        };
        if let Err(err) = self.store.audit(&e).await {
            tracing::warn!(error = %err, event, "audit write failed");
        }
    }

    /// Takes `next` as the state here; on a change to "on", tells this instance's sockets and
    /// closes them after the grace period.
    fn apply(&self, next: Option<Maintenance>) -> Option<Arc<Maintenance>> {
        let mut cur = self
            .current
            .write()
            .expect("lock is never held across a panic");
        if cur.as_deref() == next.as_ref() {
            return cur.clone();
        }
        let was_on = cur.is_some();
        *cur = next.map(Arc::new);
        let now = cur.clone();
        drop(cur);
        match &now {
            Some(m) if !was_on => {
                tracing::warn!(reason = %m.reason, by = %m.enabled_by, "maintenance on");
                self.close_sockets(m);
            }
            None if was_on => tracing::warn!("maintenance off"),
            _ => {}
        }
        now
    }

    fn close_sockets(&self, m: &Maintenance) {
        let grace_ms = self.grace.as_millis() as u64;
        let outboxes = self.hub.every_connection();
        for (channel, o) in &outboxes {
            o.push(event_frame(
                channel,
                &ServerEvent::ServerMaintenance {
                    reason: &m.reason,
                    retry_after_secs: m.retry_after_secs,
                    closing_in_ms: grace_ms,
                },
            ));
        }
        let grace = self.grace;
        tokio::spawn(async move {
            tokio::time::sleep(grace).await;
            for (_, o) in outboxes {
                o.close(CloseCode::Restart);
            }
        });
    }

    /// Reads the stored state every `poll` until shutdown (`load` read it at start).
    pub async fn run(self: Arc<Self>, shutdown: CancellationToken) {
        loop {
            tokio::select! {
                _ = shutdown.cancelled() => return,
                _ = tokio::time::sleep(self.poll) => {}
            }
            match self.store.maintenance().await {
                Ok(m) => {
                    self.apply(m);
                }
                Err(e) => tracing::warn!(error = %e, "kill switch not read"),
            }
        }
    }

    /// The stored state, read once (for start-up, before the first request is served).
    pub async fn load(&self) -> Result<(), AppError> {
        let m = self.store.maintenance().await?;
        self.apply(m);
        Ok(())
    }
}
