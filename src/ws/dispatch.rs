//! What a connection knows about itself, and the answer to each request. Every request gets
//! exactly one reply: `ok` or `error` with the request's id.

use super::connection::unix_to_instant;
use crate::{
    auth::Principal,
    bus::{now_ms, presence_frame},
    domain::SessionId,
    hub::Outbox,
    protocol::{ClientFrame, Member, Sender, ServerFrame},
    state::AppState,
};
use serde_json::json;
use std::{borrow::Cow, collections::HashSet, sync::Arc};
use tokio::time::Instant;

pub(super) struct Conn {
    pub state: AppState,
    pub outbox: Arc<Outbox>,
    pub principal: Principal,
    pub conn_uuid: String,
    pub user_str: String,
    device: Option<String>,
    connected_since: u64,
    user_channel: String,
    /// Session channels joined (not counting the implicit `user:` channel).
    channels: HashSet<String>,
    admitted: bool,
}

enum Channel {
    User,
    Session(SessionId),
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
            admitted: false,
        }
    }

    /// Counts this socket against the user's limit; false when over it.
    pub fn admit(&mut self) -> bool {
        let max = self.state.config.ws.max_connections_per_user;
        let mut n = self
            .state
            .ws
            .per_user
            .entry(self.principal.user_id)
            .or_insert(0);
        if *n >= max {
            drop(n);
            self.reply_error(
                None,
                "too_many_connections",
                &format!("at most {max} connections per user"),
            );
            return false;
        }
        *n += 1;
        self.admitted = true;
        true
    }

    pub fn token_deadline(&self) -> Option<Instant> {
        self.principal.expires_at.map(unix_to_instant)
    }

    pub async fn join_user_channel(&mut self) {
        self.state
            .hub
            .subscribe(&self.user_channel, self.outbox.clone());
        self.state.bus.watch(&self.user_channel).await;
    }

    pub fn reply_ok(&self, id: &str, result: Option<serde_json::Value>) {
        self.outbox
            .push(ServerFrame::Ok { id, result }.encode().into());
    }

    pub fn reply_error(&self, id: Option<&str>, code: &str, message: &str) {
        self.outbox
            .push(ServerFrame::Error { id, code, message }.encode().into());
    }

    pub async fn handle(&mut self, text: &str) {
        let frame = match ClientFrame::decode(text) {
            Ok(f) => f,
            Err(e) => return self.reply_error(e.id.as_deref(), e.code, &e.message),
        };
        match frame {
            ClientFrame::Auth { id, .. } => match id {
                Some(id) => self.reply_error(
                    Some(&id),
                    "already_authenticated",
                    "use auth.refresh to swap tokens",
                ),
                None => self.reply_error(
                    None,
                    "already_authenticated",
                    "use auth.refresh to swap tokens",
                ),
            },
            ClientFrame::AuthRefresh { id, token } => self.refresh(&id, &token).await,
            ClientFrame::Subscribe { id, channel } => self.subscribe(&id, channel).await,
            ClientFrame::Unsubscribe { id, channel } => {
                if self.channels.remove(&channel) {
                    self.leave(&channel).await;
                    self.reply_ok(&id, None);
                } else {
                    self.reply_error(
                        Some(&id),
                        "not_subscribed",
                        "not subscribed to that channel",
                    );
                }
            }
            ClientFrame::Publish {
                id,
                channel,
                event,
                data,
            } => {
                if !self.channels.contains(&channel) {
                    return self.reply_error(
                        Some(&id),
                        "not_subscribed",
                        "subscribe to a channel before publishing to it",
                    );
                }
                let from = Sender {
                    user_id: Cow::Borrowed(&self.user_str),
                    conn_id: Cow::Borrowed(&self.conn_uuid),
                };
                let frame = ServerFrame::Event {
                    channel: &channel,
                    event: &event,
                    data: &data,
                    from: Some(from),
                    ts: now_ms(),
                };
                self.state
                    .bus
                    .publish(&channel, frame.encode().into())
                    .await;
                self.reply_ok(&id, None);
            }
            ClientFrame::Presence { id, channel } => {
                if !self.channels.contains(&channel) {
                    return self.reply_error(
                        Some(&id),
                        "not_subscribed",
                        "subscribe to a channel to see who is there",
                    );
                }
                let members = self.state.bus.presence(&channel).await;
                self.reply_ok(&id, Some(json!({ "channel": channel, "members": members })));
            }
            ClientFrame::Ping { id } => {
                self.reply_ok(&id, Some(json!({ "server_time": now_ms() })))
            }
        }
    }

    async fn refresh(&mut self, id: &str, token: &str) {
        match self.state.auth.authenticate(token).await {
            Ok(p) if p.user_id == self.principal.user_id => {
                self.principal = p;
                self.reply_ok(id, Some(json!({ "expires_at": self.principal.expires_at })));
            }
            Ok(_) => self.reply_error(Some(id), "forbidden", "token belongs to another user"),
            Err(e) => self.reply_error(Some(id), e.code(), &e.to_string()),
        }
    }

    fn parse_channel(&self, channel: &str) -> Option<Channel> {
        if channel == self.user_channel {
            return Some(Channel::User);
        }
        channel
            .strip_prefix("session:")?
            .parse()
            .ok()
            .map(Channel::Session)
    }

    async fn subscribe(&mut self, id: &str, channel: String) {
        let session = match self.parse_channel(&channel) {
            Some(Channel::User) => return self.reply_ok(id, Some(json!({ "channel": channel }))),
            Some(Channel::Session(s)) => s,
            None => {
                return self.reply_error(
                    Some(id),
                    "bad_channel",
                    "channels are user:<your id> or session:<uuid>",
                )
            }
        };
        if self.channels.contains(&channel) {
            let members = self.state.bus.presence(&channel).await;
            return self.reply_ok(id, Some(json!({ "channel": channel, "presence": members })));
        }
        let max = self.state.config.ws.max_subscriptions;
        if self.channels.len() >= max {
            return self.reply_error(
                Some(id),
                "too_many_subscriptions",
                &format!("at most {max} subscriptions per connection"),
            );
        }
        // Access is checked on every subscribe, never cached: membership can be revoked.
        match self
            .state
            .store
            .member_role(session, self.principal.user_id)
            .await
        {
            Ok(Some(_)) => {}
            Ok(None) => {
                return self.reply_error(Some(id), "forbidden", "not a member of this session")
            }
            Err(e) => {
                let error_id = uuid::Uuid::new_v4();
                tracing::error!(%error_id, error = %e, "membership check failed");
                return self.reply_error(
                    Some(id),
                    "internal_error",
                    &format!("internal error (error id {error_id})"),
                );
            }
        }
        self.state.hub.subscribe(&channel, self.outbox.clone());
        self.state.bus.watch(&channel).await;
        let member = self.member();
        self.state.bus.presence_join(&channel, &member).await;
        self.state
            .bus
            .publish(&channel, presence_frame(&channel, "presence.join", &member))
            .await;
        self.channels.insert(channel.clone());
        let members = self.state.bus.presence(&channel).await;
        self.reply_ok(id, Some(json!({ "channel": channel, "presence": members })));
    }

    fn member(&self) -> Member {
        Member {
            user_id: self.user_str.clone(),
            conn_id: self.conn_uuid.clone(),
            device: self.device.clone(),
            connected_since: self.connected_since,
        }
    }

    async fn leave(&self, channel: &str) {
        self.state.hub.unsubscribe(channel, self.outbox.id());
        self.state
            .bus
            .presence_leave(channel, &self.conn_uuid)
            .await;
        self.state
            .bus
            .publish(
                channel,
                presence_frame(channel, "presence.leave", &self.member()),
            )
            .await;
    }

    /// Runs however the connection ended.
    pub async fn cleanup(&mut self) {
        for channel in std::mem::take(&mut self.channels) {
            self.leave(&channel).await;
        }
        self.state
            .hub
            .unsubscribe(&self.user_channel, self.outbox.id());
        if self.admitted {
            let user = self.principal.user_id;
            if let Some(mut n) = self.state.ws.per_user.get_mut(&user) {
                *n = n.saturating_sub(1);
            }
            self.state.ws.per_user.remove_if(&user, |_, n| *n == 0);
        }
    }
}
