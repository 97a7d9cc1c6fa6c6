//! A connection's channels: subscribe (access checked every time, then catch-up and live
//! changes joined with no gap), unsubscribe, ephemeral events and presence (announced by the
//! presence service).

use super::dispatch::Conn;
use crate::{
    domain::SessionId,
    protocol::{event_frame, Channel, ErrorCode, Member, Sender, ServerEvent, ServerFrame},
    store::CatchUp,
    sync::view::SnapshotView,
    time::now_ms,
};
use serde_json::{json, value::RawValue};
use std::borrow::Cow;

/// Why a subscribe is refused.
enum Refusal {
    NotMember,
    Failed(crate::error::AppError),
}

impl Refusal {
    fn send(self, conn: &Conn, id: &str) {
        match self {
            Refusal::NotMember => conn.reply_error(
                Some(id),
                ErrorCode::Forbidden,
                "not a member of this session",
            ),
            Refusal::Failed(e) => conn.reply_app_error(id, &e),
        }
    }
}

/// What a channel a client names is to this connection.
enum Target {
    OwnUser,
    Session(SessionId),
}

impl Conn {
    pub(super) async fn subscribe(&mut self, id: &str, named: Channel, since: Option<u64>) {
        let channel = named.to_string();
        let session = match self.target(named) {
            Some(Target::OwnUser) => return self.reply_ok(id, Some(json!({ "channel": channel }))),
            Some(Target::Session(s)) => s,
            None => {
                return self.reply_error(
                    Some(id),
                    ErrorCode::BadChannel,
                    "channels are user:<your id> or session:<uuid>",
                )
            }
        };
        if self.channels.contains(&channel) {
            if let Err(refusal) = self.check_access(session).await {
                // No longer a member: the live subscription goes too (its eviction may have
                // been lost on the way from another instance).
                if matches!(refusal, Refusal::NotMember) && self.channels.remove(&channel) {
                    self.leave(&channel).await;
                }
                return refusal.send(self, id);
            }
            return self.resubscribe(id, &channel, session, since).await;
        }
        let max = self.state.config.ws.max_subscriptions;
        if self.channels.len() >= max {
            return self.reply_error(
                Some(id),
                ErrorCode::TooManySubscriptions,
                &format!("at most {max} subscriptions per connection"),
            );
        }
        // A non-member never reaches the hub (nor Redis), so nothing published meanwhile can
        // reach it; `join` checks again once subscribed, for a revoke racing this one.
        if let Err(refusal) = self.check_access(session).await {
            return refusal.send(self, id);
        }
        self.join(id, channel, session, since).await;
    }

    /// Access is checked on every subscribe, never cached (membership can be revoked), in one
    /// query with every concurrent check of the session.
    async fn check_access(&self, session: SessionId) -> Result<(), Refusal> {
        match self
            .state
            .sync
            .access(session, self.principal.user_id)
            .await
        {
            Ok(Some(_)) => Ok(()),
            Ok(None) => Err(Refusal::NotMember),
            Err(e) => Err(Refusal::Failed(e)),
        }
    }

    /// Already live: just answer where the session stands now.
    async fn resubscribe(&self, id: &str, channel: &str, session: SessionId, since: Option<u64>) {
        match self.catch_up_body(channel, session, since).await {
            Ok((_, mut body)) => {
                self.add_presence(channel, &mut body).await;
                let floor = self.live_turn(session, &mut body).await;
                self.outbox.set_floor(channel, floor);
                self.reply_ok(id, Some(body));
            }
            Err(e) => self.reply_app_error(id, &e),
        }
    }

    /// Live changes are held from the hub subscription until the catch-up reply is queued, so
    /// the two meet with no gap and no duplicate; then presence is joined (announced with the
    /// channel's next `presence.diff`).
    async fn join(&mut self, id: &str, channel: String, session: SessionId, since: Option<u64>) {
        self.outbox.begin_catch_up(&channel);
        self.state.hub.subscribe(&channel, self.outbox.clone());
        self.state.bus.watch(&channel).await;
        // Checked after joining the hub: a revoke that commits after this read evicts the
        // subscription just made; one that committed before is refused here.
        let read = match self.check_access(session).await {
            Ok(()) => self
                .catch_up_body(&channel, session, since)
                .await
                .map_err(Refusal::Failed),
            Err(r) => Err(r),
        };
        let (version, mut body) = match read {
            Ok(vb) => vb,
            Err(refusal) => {
                self.state.hub.unsubscribe(&channel, self.outbox.id());
                self.outbox.forget_channel(&channel);
                return refusal.send(self, id);
            }
        };
        self.state.hub.caught_up(&channel, version);
        let complete = self.fill_missed(&channel, session, version).await;
        let floor = self.live_turn(session, &mut body).await;
        self.state.presence.join(&channel, self.member()).await;
        self.add_presence(&channel, &mut body).await;
        let reply = ServerFrame::Ok {
            id,
            result: Some(body),
        }
        .encode();
        if self
            .outbox
            .end_catch_up(&channel, version, floor, reply.into())
        {
            if !complete {
                let resync = ServerEvent::SyncResync { version };
                self.outbox.push(event_frame(&channel, &resync));
            }
            self.channels.insert(channel);
        } else {
            // Evicted while catching up: the revoke won; say so instead of "subscribed".
            self.state.presence.leave(&channel, self.member()).await;
            Refusal::NotMember.send(self, id);
        }
    }

    /// Another subscriber here may have caught up further than this one's read, the hub then
    /// releasing from there: the versions between come from the change log, ahead of what the
    /// gate holds. False when they could not be read (the client is told to resync).
    async fn fill_missed(&self, channel: &str, session: SessionId, version: u64) -> bool {
        match self
            .state
            .sync
            .missed_since(channel, session, version)
            .await
        {
            Ok(Some(frames)) if frames.is_empty() => true,
            Ok(Some(frames)) => self.outbox.prepend_held(channel, frames),
            _ => false,
        }
    }

    pub(super) async fn unsubscribe(&mut self, id: &str, channel: Channel) {
        let channel = channel.to_string();
        if self.channels.remove(&channel) {
            self.leave(&channel).await;
            self.reply_ok(id, None);
        } else {
            self.reply_error(
                Some(id),
                ErrorCode::NotSubscribed,
                "not subscribed to that channel",
            );
        }
    }

    /// A client's ephemeral event, relayed as `broadcast` to the channel's subscribers (the
    /// publisher's own connection too unless `echo` is false).
    pub(super) async fn publish(
        &self,
        id: &str,
        channel: Channel,
        event: &str,
        data: &RawValue,
        echo: bool,
    ) {
        let channel = channel.to_string();
        if !self.channels.contains(&channel) {
            return self.reply_error(
                Some(id),
                ErrorCode::NotSubscribed,
                "subscribe to a channel before publishing to it",
            );
        }
        let from = Sender {
            user_id: Cow::Borrowed(&self.user_str),
            conn_id: Cow::Borrowed(&self.conn_uuid),
        };
        let frame = ServerFrame::Broadcast {
            channel: &channel,
            event,
            data,
            from,
            ts: now_ms(),
        };
        let frame = frame.encode().into();
        let bus = &self.state.bus;
        if echo {
            bus.publish(&channel, frame).await;
        } else {
            bus.publish_except(&channel, frame, self.outbox.id()).await;
        }
        self.reply_ok(id, None);
    }

    pub(super) async fn presence(&self, id: &str, channel: Channel) {
        let channel = channel.to_string();
        if !self.channels.contains(&channel) {
            return self.reply_error(
                Some(id),
                ErrorCode::NotSubscribed,
                "subscribe to a channel to see who is there",
            );
        }
        let p = self.state.presence.list(&channel).await;
        let body = json!({ "channel": channel, "members": p.members, "count": p.count });
        self.reply_ok(id, Some(body));
    }

    /// Who is on the channel (when at most `ws.presence_list_max`) and how many, for a
    /// subscribe reply.
    async fn add_presence(&self, channel: &str, body: &mut serde_json::Value) {
        let p = self.state.presence.list(channel).await;
        body["presence"] = json!(p.members);
        body["presence_count"] = json!(p.count);
    }

    fn target(&self, channel: Channel) -> Option<Target> {
        match channel {
            Channel::User(u) if u == self.principal.user_id => Some(Target::OwnUser),
            Channel::User(_) => None,
            Channel::Session(s) => Some(Target::Session(s)),
        }
    }

    /// Adds the session's running turn (content so far, last delta index) to a subscribe
    /// reply; read after joining the channel, so every later delta reaches this connection.
    async fn live_turn(
        &self,
        session: SessionId,
        body: &mut serde_json::Value,
    ) -> Option<crate::hub::Floor> {
        let t = self.state.chat.live.view(&session.to_string()).await?;
        let floor = (t.turn_id, t.index);
        body["turn"] = json!(t);
        Some(floor)
    }

    /// The `subscribe` reply body: the changes after `since`, or a snapshot.
    async fn catch_up_body(
        &self,
        channel: &str,
        session: SessionId,
        since: Option<u64>,
    ) -> Result<(u64, serde_json::Value), crate::error::AppError> {
        let caught = self.state.sync.shared_catch_up(session, since).await?;
        let server_hlc = self.state.sync.server_hlc();
        Ok(match &*caught {
            CatchUp::Changes { version, changes } => (
                *version,
                json!({ "channel": channel, "version": version, "changes": changes, "server_hlc": server_hlc }),
            ),
            CatchUp::Snapshot(s, reason) => (
                s.version,
                json!({ "channel": channel, "version": s.version, "reason": reason, "server_hlc": server_hlc,
                        "snapshot": SnapshotView::new(s.version, &s.doc, server_hlc) }),
            ),
        })
    }

    pub(super) fn member(&self) -> Member {
        Member {
            user_id: self.user_str.clone(),
            conn_id: self.conn_uuid.clone(),
            device: self.device.clone(),
            connected_since: self.connected_since,
        }
    }

    pub(super) async fn leave(&self, channel: &str) {
        self.state.hub.unsubscribe(channel, self.outbox.id());
        self.outbox.forget_channel(channel);
        self.state.presence.leave(channel, self.member()).await;
    }
}
