//! A connection's channels: subscribe (access checked every time, then catch-up and live
//! changes joined with no gap), unsubscribe, ephemeral events and presence.

use super::dispatch::Conn;
use crate::{
    domain::SessionId,
    protocol::event_frame,
    protocol::{Channel, ErrorCode, Member, Sender, ServerEvent, ServerFrame},
    store::{CatchUp, SnapshotReason},
    sync::view::SnapshotView,
    time::now_ms,
};
use serde_json::{json, value::RawValue};
use std::borrow::Cow;

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
        // Access is checked on every subscribe, never cached: membership can be revoked.
        match self
            .state
            .store
            .member_role(session, self.principal.user_id)
            .await
        {
            Ok(Some(_)) => {}
            Ok(None) => {
                return self.reply_error(
                    Some(id),
                    ErrorCode::Forbidden,
                    "not a member of this session",
                )
            }
            Err(e) => return self.reply_app_error(id, &crate::error::AppError::from(e)),
        }
        if self.channels.contains(&channel) {
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
        self.join(id, channel, session, since).await;
    }

    /// Already live: just answer where the session stands now.
    async fn resubscribe(&self, id: &str, channel: &str, session: SessionId, since: Option<u64>) {
        match self.catch_up_body(channel, session, since).await {
            Ok((_, mut body)) => {
                body["presence"] = json!(self.state.bus.presence(channel).await);
                let floor = self.live_turn(session, &mut body).await;
                self.outbox.set_floor(channel, floor);
                self.reply_ok(id, Some(body));
            }
            Err(e) => self.reply_app_error(id, &e),
        }
    }

    /// Live changes are held from the hub subscription until the catch-up reply is queued, so
    /// the two meet with no gap and no duplicate; then presence is joined and announced.
    async fn join(&mut self, id: &str, channel: String, session: SessionId, since: Option<u64>) {
        self.outbox.begin_catch_up(&channel);
        self.state.hub.subscribe(&channel, self.outbox.clone());
        self.state.bus.watch(&channel).await;
        let (version, mut body) = match self.catch_up_body(&channel, session, since).await {
            Ok(vb) => vb,
            Err(e) => {
                self.state.hub.unsubscribe(&channel, self.outbox.id());
                self.outbox.forget_channel(&channel);
                return self.reply_app_error(id, &e);
            }
        };
        self.state.hub.caught_up(&channel, version);
        let floor = self.live_turn(session, &mut body).await;
        let member = self.member();
        self.state.bus.presence_join(&channel, &member).await;
        self.state
            .bus
            .publish(
                &channel,
                event_frame(&channel, &ServerEvent::PresenceJoin(&member)),
            )
            .await;
        self.channels.insert(channel.clone());
        body["presence"] = json!(self.state.bus.presence(&channel).await);
        let reply = ServerFrame::Ok {
            id,
            result: Some(body),
        }
        .encode();
        self.outbox
            .end_catch_up(&channel, version, floor, reply.into());
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
        let members = self.state.bus.presence(&channel).await;
        self.reply_ok(id, Some(json!({ "channel": channel, "members": members })));
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
        let caught = match since {
            Some(since) => self.state.sync.catch_up(session, since).await?,
            None => CatchUp::Snapshot(
                self.state.sync.snapshot(session).await?,
                SnapshotReason::Requested,
            ),
        };
        let server_hlc = self.state.sync.server_hlc();
        Ok(match caught {
            CatchUp::Changes { version, changes } => (
                version,
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
        self.state
            .bus
            .presence_leave(channel, &self.conn_uuid)
            .await;
        self.state
            .bus
            .publish(
                channel,
                event_frame(channel, &ServerEvent::PresenceLeave(&self.member())),
            )
            .await;
    }
}
