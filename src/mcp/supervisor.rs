//! One MCP server's life on the instance that runs it: connect, `ready` with its tools (again
//! after `tools/list_changed`), watch the connection, and on failure `error` with the reason
//! and a retry after a backoff (1 s doubling to 30 s).

use super::{
    client::{self, Target},
    manager::McpManager,
    status::{ServerInfo, Status},
};
use crate::{bus::now_ms, domain::UserId};
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
            let connected = tokio::select! {
                _ = stop.cancelled() => break,
                c = client::connect(&target) => c,
            };
            let reason = match connected {
                Ok(conn) => {
                    backoff = Duration::from_secs(1);
                    let reason = self.serve(user, id, &name, &conn, &stop).await;
                    let tail = conn.stderr_tail();
                    let _ = conn.service.cancel().await;
                    match reason {
                        None => break,
                        Some(r) if tail.is_empty() => r,
                        Some(r) => format!("{r}; stderr: {tail}"),
                    }
                }
                Err(e) => e,
            };
            let next = now_ms() + backoff.as_millis() as u64;
            self.set(
                user,
                Status {
                    error: Some(reason),
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
        user: UserId,
        id: Uuid,
        name: &str,
        conn: &client::Connection,
        stop: &CancellationToken,
    ) -> Option<String> {
        let mut check = tokio::time::interval(Duration::from_millis(250));
        self.peers
            .insert(id, (user, name.to_owned(), conn.service.peer().clone()));
        let ended = self.watch(user, id, name, conn, stop, &mut check).await;
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
            let tools = match conn.tools().await {
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
