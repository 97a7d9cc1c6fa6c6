//! Tool calls through a user's MCP clients. They run on the instance holding the user's lease
//! (see `manager`); a turn on another instance asks it over the bus (`request` with a reply
//! key) and waits for the answer with the same deadline, plus a little for the hop.

use super::{
    elicit::{CallOrigin, UserWait},
    manager::{McpManager, Ready},
};
use crate::{
    bus::{McpCall, Request},
    domain::UserId,
};
use serde_json::{json, Map, Value};
use std::{
    sync::{
        atomic::{AtomicU64, Ordering},
        Arc,
    },
    time::Duration,
};
use tokio::time::Instant;
use tokio_util::{sync::CancellationToken, task::TaskTracker};
use uuid::Uuid;

/// Why a tool call did not produce a result.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum ToolError {
    #[error("no ready MCP server named {0:?}")]
    Unavailable(String),
    #[error("the tool did not answer within {0} ms")]
    Timeout(u64),
    #[error("{0}")]
    Failed(String),
}

impl ToolError {
    /// The code clients see in `tool.error`.
    pub fn code(&self) -> &'static str {
        match self {
            ToolError::Unavailable(_) => "tool_unavailable",
            ToolError::Timeout(_) => "tool_timeout",
            ToolError::Failed(_) => "tool_failed",
        }
    }

    fn to_wire(&self) -> Value {
        let (kind, message) = match self {
            ToolError::Unavailable(s) => ("unavailable", s.clone()),
            ToolError::Timeout(ms) => ("timeout", ms.to_string()),
            ToolError::Failed(m) => ("failed", m.clone()),
        };
        json!({"error": {"kind": kind, "message": message}})
    }

    fn from_wire(v: &Value, server: &str, timeout_ms: u64) -> Self {
        let message = v["message"].as_str().unwrap_or_default().to_owned();
        match v["kind"].as_str() {
            Some("unavailable") => ToolError::Unavailable(server.to_owned()),
            Some("timeout") => ToolError::Timeout(timeout_ms),
            _ => ToolError::Failed(message),
        }
    }
}

/// Allowance for the bus hop on top of the tool's own deadline.
const HOP: Duration = Duration::from_millis(500);

impl McpManager {
    fn peer(&self, user: UserId, server: &str) -> Option<(Uuid, Ready)> {
        self.peers
            .iter()
            .find(|e| e.user == user && e.name == server)
            .map(|e| (*e.key(), e.value().clone()))
    }

    /// The turns whose tool calls are running on server `id` here.
    pub(super) fn calls_on(&self, id: Uuid) -> Vec<CallOrigin> {
        self.inflight
            .get(&id)
            .map(|v| v.iter().map(|(_, o)| o.clone()).collect())
            .unwrap_or_default()
    }

    /// Calls `tool` on `user`'s server `server` (by name) wherever that user's MCP clients run.
    /// `origin` is the turn's call, shown as waiting if the server asks the user something.
    pub async fn call(
        &self,
        user: UserId,
        server: &str,
        tool: &str,
        arguments: Map<String, Value>,
        timeout: Duration,
        origin: Option<CallOrigin>,
    ) -> Result<Value, ToolError> {
        // Here when this instance runs the user's clients (a server not ready is answered at
        // once), or when no other instance could.
        if self.peer(user, server).is_some() || !self.shared() || self.owned.contains_key(&user) {
            return self
                .call_tool(user, server, tool, arguments, timeout, origin)
                .await;
        }
        let key = format!("mcp:{}", uuid::Uuid::new_v4().simple());
        let owner = user.to_string();
        let ms = timeout.as_millis() as u64;
        // The holder enforces the deadline (stretched by time spent waiting on the user) and
        // always answers; this wait only covers the holder dying.
        let patience = self.cfg.tool_call_limit(timeout) + HOP;
        let mut waiter = self.bus.expect_reply(&key, &owner, patience).await;
        let call = McpCall {
            key,
            user,
            server: server.to_owned(),
            tool: tool.to_owned(),
            arguments,
            timeout_ms: ms,
            origin,
        };
        self.bus
            .send(crate::bus::Control::Request(Request::McpCall(call)))
            .await;
        match tokio::time::timeout(patience, waiter.answer()).await {
            Ok(Some(v)) if v.get("ok").is_some() => Ok(v["ok"].clone()),
            Ok(Some(v)) => Err(ToolError::from_wire(&v["error"], server, ms)),
            Ok(None) | Err(_) => Err(ToolError::Timeout(ms)),
        }
    }

    /// Calls `tool` through this instance's ready connection, with a deadline. The result is
    /// the MCP `CallToolResult` as JSON; a result flagged `isError` is a `Failed` with its text.
    pub async fn call_tool(
        &self,
        user: UserId,
        server: &str,
        tool: &str,
        arguments: Map<String, Value>,
        timeout: Duration,
        origin: Option<CallOrigin>,
    ) -> Result<Value, ToolError> {
        let (id, ready) = self
            .peer(user, server)
            .ok_or_else(|| ToolError::Unavailable(server.to_owned()))?;
        let _running = origin.map(|o| Inflight::enter(self, id, o));
        let params =
            rmcp::model::CallToolRequestParams::new(tool.to_owned()).with_arguments(arguments);
        let limit = self.cfg.tool_call_limit(timeout);
        let result = within((timeout, limit), &ready.waits, ready.peer.call_tool(params))
            .await
            .ok_or(ToolError::Timeout(timeout.as_millis() as u64))?
            .map_err(|e| {
                tracing::debug!(error = %e, "MCP tool call failed");
                ToolError::Failed(super::reason::of_service(&e))
            })?;
        let json = serde_json::to_value(&result).map_err(|e| ToolError::Failed(e.to_string()))?;
        if result.is_error == Some(true) {
            let text: Vec<&str> = json["content"]
                .as_array()
                .into_iter()
                .flatten()
                .filter_map(|c| c["text"].as_str())
                .collect();
            return Err(ToolError::Failed(text.join("\n")));
        }
        Ok(json)
    }

    /// Serves other instances' calls for users whose clients run here, from the bus's inbox.
    pub fn serve_requests(
        self: &Arc<Self>,
        mut rx: tokio::sync::mpsc::Receiver<Request>,
        tracker: &TaskTracker,
        shutdown: CancellationToken,
    ) {
        let me = self.clone();
        let calls = tracker.clone();
        tracker.spawn(async move {
            loop {
                let Request::McpCall(c) = tokio::select! {
                    _ = shutdown.cancelled() => return,
                    m = rx.recv() => match m { Some(m) => m, None => return },
                };
                if me.peer(c.user, &c.server).is_none() {
                    continue; // Not ours: the holder answers.
                }
                let me = me.clone();
                calls.spawn(async move {
                    let timeout = Duration::from_millis(c.timeout_ms);
                    let out = match me
                        .call_tool(c.user, &c.server, &c.tool, c.arguments, timeout, c.origin)
                        .await
                    {
                        Ok(v) => json!({ "ok": v }),
                        Err(e) => e.to_wire(),
                    };
                    me.bus.reply(&c.key, &c.user.to_string(), out).await;
                });
            }
        });
    }
}

/// `fut`'s output, or `None` after `timeout` not counting time the server spent waiting on the
/// user's answer to its question, and never after `limit`.
async fn within<F: std::future::Future>(
    (timeout, limit): (Duration, Duration),
    waits: &UserWait,
    fut: F,
) -> Option<F::Output> {
    let start = Instant::now();
    let (waited_before, end) = (waits.waited_ms(), start + limit);
    tokio::pin!(fut);
    let mut wake = start + timeout;
    loop {
        tokio::select! {
            out = &mut fut => return Some(out),
            _ = tokio::time::sleep_until(wake.min(end)) => {
                let now = Instant::now();
                let due = start
                    + timeout
                    + Duration::from_millis(waits.waited_ms().saturating_sub(waited_before));
                if now >= end {
                    return None;
                } else if waits.pending() {
                    wake = now + Duration::from_millis(100);
                } else if now < due {
                    wake = due;
                } else {
                    return None;
                }
            }
        }
    }
}

/// A tool call running on server `id`, listed while it lives.
struct Inflight<'a> {
    manager: &'a McpManager,
    id: Uuid,
    seq: u64,
}

static SEQ: AtomicU64 = AtomicU64::new(0);

impl<'a> Inflight<'a> {
    fn enter(manager: &'a McpManager, id: Uuid, origin: CallOrigin) -> Self {
        let seq = SEQ.fetch_add(1, Ordering::Relaxed);
        manager.inflight.entry(id).or_default().push((seq, origin));
        Self { manager, id, seq }
    }
}

impl Drop for Inflight<'_> {
    fn drop(&mut self) {
        if let Some(mut v) = self.manager.inflight.get_mut(&self.id) {
            v.retain(|(s, _)| *s != self.seq);
        }
        self.manager
            .inflight
            .remove_if(&self.id, |_, v| v.is_empty());
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MS: fn(u64) -> Duration = Duration::from_millis;

    #[tokio::test]
    async fn a_question_left_open_does_not_hold_a_call_past_its_limit() {
        let waits = UserWait::default();
        waits.open();
        let out = within((MS(50), MS(200)), &waits, std::future::pending::<()>()).await;
        assert_eq!(out, None);
    }

    #[tokio::test]
    async fn time_a_question_was_open_is_added_to_the_deadline() {
        let waits = Arc::new(UserWait::default());
        let w = waits.clone();
        tokio::spawn(async move {
            w.open();
            tokio::time::sleep(MS(300)).await;
            w.close();
        });
        // Done at 330 ms: past the 50 ms deadline, within it plus the 300 ms the user took.
        let work = tokio::time::sleep(MS(330));
        let out = within((MS(50), MS(5_000)), &waits, work).await;
        assert_eq!(out, Some(()));
        // Without a question, the same work misses its deadline.
        let out = within(
            (MS(50), MS(5_000)),
            &UserWait::default(),
            tokio::time::sleep(MS(330)),
        )
        .await;
        assert_eq!(out, None);
    }
}
