//! One MCP server's life on the instance that runs it: connect, `ready` with its tools (again
//! after `tools/list_changed`), watch the connection, and on failure `error` with the reason
//! and a retry after a backoff (1 s doubling to 30 s).

use super::{
    client::{self, Target},
    manager::McpManager,
    status::{ServerInfo, Status},
};
use crate::{domain::UserId, time::now_ms};
use std::{sync::Arc, time::Duration};
use tokio_util::sync::CancellationToken;
use uuid::Uuid;

const BACKOFF_MAX: Duration = Duration::from_secs(30);

impl McpManager {
    /// One server's life: connect, ready, watch, and on failure retry with backoff.
    pub(super) async fn supervise(
        self: Arc<Self>,
        user: UserId,
        id: Uuid,
        name: String,
        target: Target,
        stop: CancellationToken,
    ) {
        let mut backoff = Duration::from_secs(1);
        loop {
            self.set(user, Status::new(id, &name, "connecting")).await;
            let waits = Arc::new(super::elicit::UserWait::default());
            let elicitor = super::elicit::Elicitor {
                manager: self.clone(),
                user,
                server_id: id,
                server: name.clone(),
                waits: waits.clone(),
            };
            let connected = tokio::select! {
                _ = stop.cancelled() => break,
                c = client::connect(&target, Some(elicitor)) => c,
            };
            let failure = match connected {
                Ok(conn) => {
                    backoff = Duration::from_secs(1);
                    let ready = super::manager::Ready {
                        user,
                        name: name.clone(),
                        peer: conn.service.peer().clone(),
                        waits,
                    };
                    let reason = self.serve(ready, id, &conn, &stop).await;
                    let stderr = conn.stderr_tail();
                    let _ = conn.service.cancel().await;
                    match reason {
                        None => break,
                        Some(reason) => client::Failure {
                            reason,
                            stderr,
                            detail: String::new(),
                        },
                    }
                }
                Err(f) => f,
            };
            // The whole story goes to the server log; the user gets one scrubbed line (a
            // server's stderr may hold anything, secrets included).
            let secrets = self.secrets_for(&target);
            tracing::warn!(
                %user, server = %id, name = %name,
                reason = %crate::config::scrub(&failure.reason, &secrets),
                stderr = %crate::config::scrub(&failure.stderr, &secrets),
                detail = %crate::config::scrub(&failure.detail, &secrets),
                "MCP server failed"
            );
            let next = now_ms() + backoff.as_millis() as u64;
            self.set(
                user,
                Status {
                    error: Some(public_reason(&failure, &secrets)),
                    next_retry_at: Some(next),
                    ..Status::new(id, &name, "error")
                },
            )
            .await;
            tokio::select! {
                _ = stop.cancelled() => break,
                _ = tokio::time::sleep(backoff) => {}
            }
            backoff = (backoff * 2).min(BACKOFF_MAX);
        }
        // Stopped by a reload: the reload publishes what replaces it.
    }

    /// While connected: ready, refetching tools on `list_changed`. Returns why it ended
    /// (`None`: asked to stop).
    async fn serve(
        &self,
        ready: super::manager::Ready,
        id: Uuid,
        conn: &client::Connection,
        stop: &CancellationToken,
    ) -> Option<String> {
        let mut check = tokio::time::interval(Duration::from_millis(250));
        let (user, name) = (ready.user, ready.name.clone());
        self.peers.insert(id, ready);
        let ended = self.watch(user, id, &name, conn, stop, &mut check).await;
        self.peers.remove(&id);
        ended
    }

    async fn watch(
        &self,
        user: UserId,
        id: Uuid,
        name: &str,
        conn: &client::Connection,
        stop: &CancellationToken,
        check: &mut tokio::time::Interval,
    ) -> Option<String> {
        loop {
            let tools = match conn.tools(self.tool_limits()).await {
                Ok(t) => t,
                Err(e) => return Some(e),
            };
            self.set(
                user,
                Status {
                    protocol_version: Some(conn.protocol_version.clone()),
                    server_info: Some(ServerInfo {
                        name: conn.server_name.clone(),
                        version: conn.server_version.clone(),
                    }),
                    tool_count: tools.len(),
                    tools,
                    ..Status::new(id, name, "ready")
                },
            )
            .await;
            loop {
                tokio::select! {
                    _ = stop.cancelled() => return None,
                    _ = conn.tools_changed.notified() => break,
                    _ = check.tick() => {
                        if conn.service.peer().is_transport_closed() {
                            return Some("the server closed the connection".into());
                        }
                    }
                }
            }
        }
    }
}

/// What a user sees of a failure: the first line of the reason and of the server's stderr,
/// scrubbed of every configured secret, short. The rest is in the server log only.
pub(super) fn public_reason(f: &client::Failure, secrets: &[String]) -> String {
    let first = |t: &str| {
        t.lines()
            .find(|l| !l.trim().is_empty())
            .unwrap_or_default()
            .to_owned()
    };
    let mut line = first(&f.reason);
    if line.is_empty() {
        line = "the server failed".into();
    }
    let stderr = first(&f.stderr);
    if !stderr.is_empty() {
        line = format!("{line}; stderr: {stderr}");
    }
    let mut line = crate::config::scrub(&line, secrets);
    if line.chars().count() > 300 {
        line = line.chars().take(300).collect::<String>() + "...";
    }
    line
}
