//! The in-process bus: one instance, no Redis. Presence lives in memory.

use super::replies::{Handed, Replies, Waiter};
use super::{Bus, BusState, Control, Inbox, Present};
use crate::{hub::Hub, protocol::Member};
use async_trait::async_trait;
use axum::extract::ws::Utf8Bytes;
use dashmap::DashMap;
use std::{collections::HashMap, sync::Arc};

/// Owned by `AppState`; lives as long as the server.
pub struct LocalBus {
    hub: Arc<Hub>,
    inbox: Inbox,
    replies: Arc<Replies>,
    /// channel -> conn id -> member: a leave is O(1) however big the channel.
    presence: DashMap<String, HashMap<String, Member>>,
}

impl LocalBus {
    pub fn new(hub: Arc<Hub>, inbox: Inbox) -> Self {
        Self {
            hub,
            inbox,
            replies: Arc::default(),
            presence: DashMap::new(),
        }
    }
}

#[async_trait]
impl Bus for LocalBus {
    async fn publish(&self, channel: &str, frame: Utf8Bytes) {
        self.hub.deliver(channel, &frame);
    }

    async fn publish_except(&self, channel: &str, frame: Utf8Bytes, conn: u64) {
        self.hub.deliver_except(channel, &frame, Some(conn));
    }

    async fn publish_versioned(&self, channel: &str, version: u64, frame: Utf8Bytes) {
        self.hub.deliver_versioned(channel, version, frame);
    }

    async fn watch(&self, _channel: &str) {}

    async fn evict(&self, channel: &str, user_id: &str) {
        self.hub
            .evict(channel, user_id, &super::revoked_frame(channel));
    }

    async fn close_key(&self, user_id: &str, key: uuid::Uuid) {
        self.hub
            .close_key(user_id, key, &super::key_revoked_frame());
    }

    async fn presence_join(&self, channel: &str, member: &Member) {
        self.presence
            .entry(channel.to_owned())
            .or_default()
            .insert(member.conn_id.clone(), member.clone());
    }

    async fn presence_leave(&self, channel: &str, conn_id: &str) {
        if let Some(mut list) = self.presence.get_mut(channel) {
            list.remove(conn_id);
        }
        self.presence.remove_if(channel, |_, l| l.is_empty());
    }

    async fn presence(&self, channel: &str, limit: usize) -> Present {
        let Some(list) = self.presence.get(channel) else {
            return Present::default();
        };
        let members = match list.len() <= limit {
            true => list.values().cloned().collect(),
            false => Vec::new(),
        };
        Present {
            members,
            count: list.len(),
        }
    }

    fn state(&self) -> BusState {
        BusState::Local
    }

    async fn publish_delta(
        &self,
        channel: &str,
        turn: uuid::Uuid,
        index: u64,
        _text: &str,
        frame: Utf8Bytes,
    ) {
        self.hub.deliver_delta(channel, turn, index, &frame);
    }

    async fn flush_deltas(&self, _turn: uuid::Uuid) {}

    async fn keep_deltas(&self, _channel: &str, _turn: uuid::Uuid) {}

    /// One instance: every turn runs here, and chat keeps its content.
    async fn delta_content(&self, _channel: &str, _turn: uuid::Uuid) -> Option<(String, u64)> {
        None
    }

    async fn end_deltas(&self, _channel: &str, _turn: uuid::Uuid) {}

    async fn expect_reply(&self, key: &str, owner: &str, _ttl: std::time::Duration) -> Waiter {
        self.replies.wait(key.to_owned(), owner.to_owned())
    }

    async fn reply(&self, key: &str, owner: &str, value: serde_json::Value) -> Handed {
        self.replies.hand(key, owner, value)
    }

    async fn send(&self, msg: Control) {
        self.inbox.take(msg, &self.hub, &self.replies);
    }
}
