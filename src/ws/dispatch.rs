//! What a connection knows about itself, and the answer to each request. Every request gets
//! exactly one reply: `ok` or `error` with the request's id.

use super::connection::unix_to_instant;
use crate::{
    domain::{Principal, SessionId},
    hub::Outbox,
    protocol::event_frame,
    protocol::{raw, ClientFrame, ErrorCode, ServerEvent, ServerFrame},
    state::AppState,
    time::now_ms,
};
use serde_json::json;
use std::{collections::HashSet, sync::Arc};
use tokio::time::Instant;

/// One authenticated socket's state and its requests' answers. Owned by the connection's
/// task (`connection.rs`); ends with the socket, `cleanup` leaving every channel it joined.
pub(super) struct Conn {
    pub state: AppState,
    pub outbox: Arc<Outbox>,
    pub principal: Principal,
    pub conn_uuid: String,
    pub user_str: String,
    pub(super) device: Option<String>,
    pub(super) connected_since: u64,
    pub(super) user_channel: String,
    /// Session channels joined (not counting the implicit `user:` channel).
    pub(super) channels: HashSet<String>,
    /// This socket's place in the user's count, released with the connection.
    admitted: Option<crate::connections::UserSlot>,
    /// The API key this socket opened with: checked against the store again every
    /// `auth.api_key_cache_secs` (on the heartbeat), so a revocation missed on the bus (an
    /// instance reconnecting to Redis) still ends the socket.
    pub api_key_token: Option<Box<str>>,
    key_checked: Instant,
}

impl Conn {
    pub fn new(
        state: AppState,
        outbox: Arc<Outbox>,
        principal: Principal,
        conn_uuid: String,
        device: Option<String>,
    ) -> Self {
        let user_str = principal.user_id.to_string();
        Self {
            user_channel: format!("user:{user_str}"),
            state,
            outbox,
            principal,
            conn_uuid,
            user_str,
            device,
            connected_since: now_ms(),
            channels: HashSet::new(),
            admitted: None,
            api_key_token: None,
            key_checked: Instant::now(),
        }
    }

    /// Counts this socket against the user's limit (released when the connection drops);
    /// false when over it.
    pub fn admit(&mut self) -> bool {
        match self.state.connections.admit_user(self.principal.user_id) {
            Some(slot) => {
                self.admitted = Some(slot);
                true
            }
            None => {
                let max = self.state.connections.max_per_user();
                self.reply_error(
                    None,
                    ErrorCode::TooManyConnections,
                    &format!("at most {max} connections per user"),
                );
                false
            }
        }
    }

    /// False once the socket's API key no longer authenticates (checked every
    /// `auth.api_key_cache_secs`; a store error counts as still valid: the next check decides).
    pub async fn api_key_still_valid(&mut self) -> bool {
        let Some(token) = self.api_key_token.clone() else {
            return true;
        };
        let every =
            std::time::Duration::from_secs(self.state.config.auth.api_key_cache_secs.max(1));
        if self.key_checked.elapsed() < every {
            return true;
        }
        self.key_checked = Instant::now();
        !matches!(
            self.state.auth.authenticate_socket(&token).await,
            Err(crate::error::AppError::InvalidApiKey)
        )
    }

    pub fn token_deadline(&self) -> Option<Instant> {
        self.principal.expires_at.map(unix_to_instant)
    }

    /// Forgets channels the server evicted this connection from (membership revoked).
    pub async fn process_evictions(&mut self) {
        for channel in self.outbox.take_evicted() {
            if self.channels.remove(&channel) {
                self.state.presence.leave(&channel, self.member()).await;
            }
        }
    }

    pub async fn join_user_channel(&mut self) {
        if let Some(m) = self.state.kill_switch.current() {
            // Authenticated after the switch went on: told and closed like the others.
            self.outbox.push(crate::protocol::event_frame(
                &self.user_channel,
                &crate::protocol::ServerEvent::ServerMaintenance {
                    reason: &m.reason,
                    retry_after_secs: m.retry_after_secs,
                    closing_in_ms: 0,
                },
            ));
            self.outbox.close(crate::protocol::CloseCode::Restart);
        }
        self.outbox.set_user(
            self.user_str.clone(),
            self.principal.api_key.map(|k| k.0),
            self.principal.session,
        );
        self.state
            .hub
            .subscribe(&self.user_channel, self.outbox.clone());
        self.state.bus.watch(&self.user_channel).await;
    }

    /// The current status of all the user's MCP servers, at once; and their clients started
    /// if no instance runs them.
    pub async fn mcp_status(&self) {
        let servers = self.state.mcp.snapshot(self.principal.user_id).await;
        if !servers.is_empty() {
            let servers = raw(&servers);
            self.outbox.push(event_frame(
                &self.user_channel,
                &ServerEvent::McpStatus { servers: &servers },
            ));
        }
        self.state.mcp.ensure_user(self.principal.user_id).await;
    }

    pub fn reply_ok(&self, id: &str, result: Option<serde_json::Value>) {
        self.outbox
            .push(ServerFrame::Ok { id, result }.encode().into());
    }

    pub fn reply_error(&self, id: Option<&str>, code: ErrorCode, message: &str) {
        self.outbox
            .push(ServerFrame::Error { id, code, message }.encode().into());
    }

    pub(super) fn reply_app_error(&self, id: &str, e: &crate::error::AppError) {
        self.reply_error(Some(id), e.code(), &e.public_message());
    }

    /// One text frame from the client: decoded, then answered by the method for its type.
    pub async fn handle(&mut self, text: &str) {
        self.process_evictions().await;
        let frame = match ClientFrame::decode(text, self.state.config.server.max_json_depth) {
            Ok(f) => f,
            Err(e) => return self.reply_error(e.id.as_deref(), e.code, &e.message),
        };
        match frame {
            ClientFrame::Auth { id, .. } => self.reply_error(
                id.as_deref(),
                ErrorCode::AlreadyAuthenticated,
                "use auth.refresh to swap tokens",
            ),
            ClientFrame::AuthRefresh { id, token } => self.refresh(&id, &token).await,
            ClientFrame::Subscribe { id, channel, since } => {
                self.subscribe(&id, channel, since).await
            }
            ClientFrame::SessionPush {
                id,
                session_id,
                mutations,
            } => self.push(&id, &session_id, mutations.get()).await,
            ClientFrame::Unsubscribe { id, channel } => self.unsubscribe(&id, channel).await,
            ClientFrame::Publish {
                id,
                channel,
                event,
                data,
                echo,
            } => self.publish(&id, channel, &event, &data, echo).await,
            ClientFrame::Presence { id, channel } => self.presence(&id, channel).await,
            ClientFrame::Ping { id } => {
                self.reply_ok(&id, Some(json!({ "server_time": now_ms() })))
            }
            ClientFrame::Call { id, call } => {
                match super::calls::answer(&self.state, &self.principal, call).await {
                    Ok(result) => self.reply_ok(&id, Some(result)),
                    Err(e) => self.reply_app_error(&id, &e),
                }
            }
        }
    }

    /// `session.push`: the batch handed to the sync service, its reply (one result per
    /// mutation) sent back.
    async fn push(&self, id: &str, session_id: &str, mutations: &str) {
        let Ok(session) = session_id.parse::<SessionId>() else {
            return self.reply_error(Some(id), ErrorCode::BadRequest, "session_id must be a UUID");
        };
        let muts: Vec<crate::sync::ops::Incoming> = match serde_json::from_str(mutations) {
            Ok(m) => m,
            Err(e) => {
                return self.reply_error(
                    Some(id),
                    ErrorCode::BadRequest,
                    &format!("invalid mutations: {e}"),
                )
            }
        };
        match self
            .state
            .sync
            .push(self.principal.user_id, session, &muts)
            .await
        {
            Ok(reply) => self.reply_ok(id, serde_json::to_value(&reply).ok()),
            Err(e) => self.reply_app_error(id, &e),
        }
    }

    /// A new access token for the same user. Only a JWT socket refreshes, and only with a
    /// JWT: an API key has no expiry to move, and swapping one in would make the socket
    /// outlive its token's expiry (and its revocation).
    async fn refresh(&mut self, id: &str, token: &str) {
        if self.principal.api_key.is_some() {
            return self.reply_error(
                Some(id),
                ErrorCode::InvalidRequest,
                "a socket opened with an API key does not expire; there is nothing to refresh",
            );
        }
        match self.state.auth.authenticate(token).await {
            Ok(p) if p.api_key.is_some() => self.reply_error(
                Some(id),
                ErrorCode::InvalidRequest,
                "auth.refresh takes an access token, not an API key",
            ),
            Ok(p) if p.user_id == self.principal.user_id => {
                self.outbox.set_session(p.session);
                self.principal = p;
                self.reply_ok(id, Some(json!({ "expires_at": self.principal.expires_at })));
            }
            Ok(_) => self.reply_error(
                Some(id),
                ErrorCode::Forbidden,
                "token belongs to another user",
            ),
            Err(e) => self.reply_error(Some(id), e.code(), &e.to_string()),
        }
    }

    /// Runs however the connection ended.
    pub async fn cleanup(&mut self) {
        for channel in std::mem::take(&mut self.channels) {
            self.leave(&channel).await;
        }
        self.state
            .hub
            .unsubscribe(&self.user_channel, self.outbox.id());
        self.admitted = None;
    }
}
