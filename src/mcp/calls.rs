//! Tool calls through a user's MCP clients. They run on the instance holding the user's lease
//! (see `manager`); a turn on another instance asks it over the bus (`request` with a reply
//! key) and waits for the answer with the same deadline, plus a little for the hop.

use super::manager::McpManager;
use crate::{
    bus::{McpCall, Request},
    domain::UserId,
};
use serde_json::{json, Map, Value};
use std::{sync::Arc, time::Duration};
use tokio_util::{sync::CancellationToken, task::TaskTracker};

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
    fn peer(
        &self,
        user: UserId,
        server: &str,
    ) -> Option<rmcp::service::Peer<rmcp::service::RoleClient>> {
        self.peers
            .iter()
            .find(|e| e.0 == user && e.1 == server)
            .map(|e| e.2.clone())
    }

    /// Calls `tool` on `user`'s server `server` (by name) wherever that user's MCP clients run.
    pub async fn call(
        &self,
        user: UserId,
        server: &str,
        tool: &str,
        arguments: Map<String, Value>,
        timeout: Duration,
    ) -> Result<Value, ToolError> {
        // Here when this instance runs the user's clients (a server not ready is answered at
        // once), or when no other instance could.
        if self.peer(user, server).is_some() || !self.shared() || self.owned.contains_key(&user) {
            return self.call_tool(user, server, tool, arguments, timeout).await;
        }
        let key = format!("mcp:{}", uuid::Uuid::new_v4().simple());
        let owner = user.to_string();
        let ms = timeout.as_millis() as u64;
        let mut waiter = self.bus.expect_reply(&key, &owner, timeout + HOP).await;
        let call = McpCall {
            key,
            user,
            server: server.to_owned(),
            tool: tool.to_owned(),
            arguments,
            timeout_ms: ms,
        };
        self.bus
            .send(crate::bus::Control::Request(Request::McpCall(call)))
            .await;
        match tokio::time::timeout(timeout + HOP, waiter.answer()).await {
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
    ) -> Result<Value, ToolError> {
        let peer = self
            .peer(user, server)
            .ok_or_else(|| ToolError::Unavailable(server.to_owned()))?;
        let params =
            rmcp::model::CallToolRequestParams::new(tool.to_owned()).with_arguments(arguments);
        let result = tokio::time::timeout(timeout, peer.call_tool(params))
            .await
            .map_err(|_| ToolError::Timeout(timeout.as_millis() as u64))?
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
                        .call_tool(c.user, &c.server, &c.tool, c.arguments, timeout)
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
