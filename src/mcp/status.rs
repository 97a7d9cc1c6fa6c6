//! A server's live status, as `mcp.status` events carry it.

use super::client::ToolInfo;
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct ServerInfo {
    pub name: String,
    pub version: String,
}

/// `state`: `connecting`, `ready` (protocol, server, tools), `error` (reason, next retry) or
/// `stopped` (disabled or removed).
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Status {
    pub server_id: uuid::Uuid,
    pub name: String,
    pub state: String,
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub protocol_version: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub server_info: Option<ServerInfo>,
    pub tool_count: usize,
    #[serde(default)]
    pub tools: Vec<ToolInfo>,
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub error: Option<String>,
    /// Unix ms of the next connection attempt (state `error`).
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub next_retry_at: Option<u64>,
    pub updated_at: u64,
}

impl Status {
    pub fn new(server_id: uuid::Uuid, name: &str, state: &str) -> Self {
        Self {
            server_id,
            name: name.to_owned(),
            state: state.to_owned(),
            protocol_version: None,
            server_info: None,
            tool_count: 0,
            tools: Vec::new(),
            error: None,
            next_retry_at: None,
            updated_at: crate::time::now_ms(),
        }
    }
}
