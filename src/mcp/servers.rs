//! Create, list, change and delete a user's MCP server configurations; REST and the socket
//! both call these.

use super::{seal::Sealer, ssrf};
use crate::{
    config::McpConfig,
    domain::UserId,
    error::AppError,
    store::{McpServer, Store, StoreError},
};
use chrono::{DateTime, Utc};
use serde::Serialize;
use serde_json::{Map, Value};
use std::sync::Arc;
use utoipa::ToSchema;
use uuid::Uuid;

/// Longest server name; names prefix tool names (`<server>__<tool>`), so they stay short.
pub const MAX_NAME: usize = 48;

pub use crate::protocol::calls::McpServerInput;

#[derive(Debug, Serialize, ToSchema)]
pub struct McpServerView {
    pub id: Uuid,
    pub name: String,
    pub transport: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub url: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub command: Option<String>,
    /// Names of the stored headers; their values are never returned.
    pub header_names: Vec<String>,
    pub enabled: bool,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

impl From<&McpServer> for McpServerView {
    fn from(s: &McpServer) -> Self {
        Self {
            id: s.id,
            name: s.name.clone(),
            transport: s.transport.clone(),
            url: s.url.clone(),
            command: s.command.clone(),
            header_names: s.headers.keys().cloned().collect(),
            enabled: s.enabled,
            created_at: s.created_at,
            updated_at: s.updated_at,
        }
    }
}

/// The allowlist's names (`name=command args...`).
pub fn allowlisted(cfg: &McpConfig) -> impl Iterator<Item = &str> {
    cfg.stdio_allowlist
        .iter()
        .filter_map(|e| e.split_once('=').map(|(n, _)| n.trim()))
}

fn bad(param: &str, msg: impl Into<String>) -> AppError {
    AppError::validation(param, msg)
}

/// Applies `input` onto `s` and checks the result as a whole.
async fn apply(cfg: &McpConfig, s: &mut McpServer, input: McpServerInput) -> Result<(), AppError> {
    if let Some(n) = input.name {
        s.name = n;
    }
    if let Some(t) = input.transport {
        s.transport = t;
    }
    if input.url.is_some() {
        s.url = input.url;
    }
    if input.command.is_some() {
        s.command = input.command;
    }
    if let Some(h) = input.headers {
        check_headers(cfg, &h)?;
        s.headers = h;
    }
    if let Some(e) = input.enabled {
        s.enabled = e;
    }
    if s.name.is_empty()
        || s.name.len() > MAX_NAME
        || !s
            .name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
    {
        return Err(bad(
            "name",
            format!("name must be 1 to {MAX_NAME} characters of [A-Za-z0-9_-]"),
        ));
    }
    match s.transport.as_str() {
        "http" => {
            if s.command.is_some() {
                return Err(bad("command", "command is for stdio servers"));
            }
            let url = s
                .url
                .as_deref()
                .ok_or_else(|| bad("url", "http servers need a url"))?;
            let checked = ssrf::check_url(url, cfg.allow_private_urls)
                .await
                .map_err(|e| bad("url", e.to_string()))?;
            s.url = Some(checked.url.to_string());
            if s.headers.len() > cfg.max_headers {
                return Err(bad(
                    "headers",
                    format!("at most {} headers", cfg.max_headers),
                ));
            }
        }
        "stdio" => {
            if s.url.is_some() || !s.headers.is_empty() {
                return Err(bad("url", "url and headers are for http servers"));
            }
            let name = s
                .command
                .as_deref()
                .ok_or_else(|| bad("command", "stdio servers need a command name"))?;
            if !allowlisted(cfg).any(|n| n == name) {
                let names: Vec<&str> = allowlisted(cfg).collect();
                return Err(bad(
                    "command",
                    format!(
                        "{name:?} is not an allowlisted command; this server allows: {}",
                        if names.is_empty() {
                            "none".to_string()
                        } else {
                            names.join(", ")
                        }
                    ),
                ));
            }
        }
        _ => return Err(bad("transport", "transport must be http or stdio")),
    }
    Ok(())
}

/// Header names are tokens, values strings up to `mcp.max_header_bytes` with no line breaks.
fn check_headers(cfg: &McpConfig, headers: &Map<String, Value>) -> Result<(), AppError> {
    for (k, v) in headers {
        let ok_name = !k.is_empty()
            && k.len() <= 128
            && k.bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_');
        let ok_value = v
            .as_str()
            .is_some_and(|v| v.len() <= cfg.max_header_bytes && !v.contains(['\r', '\n']));
        if !ok_name || !ok_value {
            return Err(bad(
                "headers",
                format!("headers are name: string pairs (token names, values up to {} bytes, no line breaks)", cfg.max_header_bytes),
            ));
        }
    }
    Ok(())
}

/// Seals every header value not sealed yet, bound to this server's row.
pub(super) fn seal_headers(sealer: &Sealer, s: &mut McpServer) -> Result<(), AppError> {
    for (k, v) in s.headers.iter_mut() {
        if let Some(plain) = v.as_str().filter(|v| !Sealer::is_sealed(v)) {
            let sealed = sealer
                .seal(s.user_id.0, s.id, k, plain)
                .ok_or_else(|| AppError::internal(anyhow::anyhow!("sealing a header failed")))?;
            *v = Value::String(sealed);
        }
    }
    Ok(())
}

fn conflict(e: StoreError) -> AppError {
    match e {
        StoreError::Conflict(_) => {
            AppError::Conflict("you already have an MCP server with that name".into())
        }
        other => other.into(),
    }
}

async fn list(store: &dyn Store, user: UserId) -> Result<Vec<McpServerView>, AppError> {
    Ok(store
        .list_mcp_servers(user)
        .await?
        .iter()
        .map(Into::into)
        .collect())
}

async fn create(
    store: &dyn Store,
    cfg: &McpConfig,
    sealer: &Sealer,
    user: UserId,
    input: McpServerInput,
) -> Result<McpServerView, AppError> {
    if input.name.is_none() {
        return Err(bad("name", "name is required"));
    }
    if input.transport.is_none() {
        return Err(bad("transport", "transport is required (http or stdio)"));
    }
    if store.list_mcp_servers(user).await?.len() >= cfg.max_servers_per_user {
        return Err(bad(
            "name",
            format!("at most {} MCP servers per user", cfg.max_servers_per_user),
        ));
    }
    let now = Utc::now();
    let mut s = McpServer {
        id: Uuid::now_v7(),
        user_id: user,
        name: String::new(),
        transport: String::new(),
        command: None,
        url: None,
        headers: Map::new(),
        enabled: true,
        created_at: now,
        updated_at: now,
    };
    apply(cfg, &mut s, input).await?;
    seal_headers(sealer, &mut s)?;
    let saved = store.create_mcp_server(&s).await.map_err(conflict)?;
    Ok((&saved).into())
}

async fn update(
    store: &dyn Store,
    cfg: &McpConfig,
    sealer: &Sealer,
    user: UserId,
    id: Uuid,
    input: McpServerInput,
) -> Result<McpServerView, AppError> {
    let not_found = || AppError::NotFound("no such MCP server".into());
    let mut s = store.mcp_server(user, id).await?.ok_or_else(not_found)?;
    // Switching transport drops the other transport's fields unless given again.
    if input.transport.as_deref().is_some_and(|t| t != s.transport) {
        s.url = None;
        s.command = None;
        s.headers = Map::new();
    }
    apply(cfg, &mut s, input).await?;
    seal_headers(sealer, &mut s)?;
    let saved = store
        .update_mcp_server(&s)
        .await
        .map_err(conflict)?
        .ok_or_else(not_found)?;
    Ok((&saved).into())
}

async fn delete(store: &dyn Store, user: UserId, id: Uuid) -> Result<(), AppError> {
    if store.delete_mcp_server(user, id).await? {
        Ok(())
    } else {
        Err(AppError::NotFound("no such MCP server".into()))
    }
}

pub fn parse_id(s: &str) -> Result<Uuid, AppError> {
    s.parse()
        .map_err(|_| AppError::NotFound("no such MCP server".into()))
}

/// A user's MCP server configuration, shared by REST and the socket: every change reloads the
/// user's running clients (on this instance when it runs them; the holder re-reads on its
/// next tick otherwise).
impl super::manager::McpManager {
    pub async fn list_servers(&self, user: UserId) -> Result<Vec<McpServerView>, AppError> {
        list(self.store.as_ref(), user).await
    }

    pub async fn create_server(
        self: &Arc<Self>,
        user: UserId,
        input: McpServerInput,
    ) -> Result<McpServerView, AppError> {
        let v = create(self.store.as_ref(), &self.cfg, &self.sealer, user, input).await?;
        self.reload_user(user).await;
        Ok(v)
    }

    pub async fn update_server(
        self: &Arc<Self>,
        user: UserId,
        id: Uuid,
        input: McpServerInput,
    ) -> Result<McpServerView, AppError> {
        let v = update(
            self.store.as_ref(),
            &self.cfg,
            &self.sealer,
            user,
            id,
            input,
        )
        .await?;
        self.reload_user(user).await;
        Ok(v)
    }

    pub async fn delete_server(self: &Arc<Self>, user: UserId, id: Uuid) -> Result<(), AppError> {
        delete(self.store.as_ref(), user, id).await?;
        self.reload_user(user).await;
        Ok(())
    }
}
