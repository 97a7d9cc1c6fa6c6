//! Fan-out across instances, and presence. `publish` always reaches this instance's
//! subscribers directly (so local delivery never depends on Redis), then other instances:
//! in-process there are none; with Redis, through one pub/sub connection per instance that
//! subscribes only to the channels someone here listens to.

pub mod control;
pub mod lease;
pub mod local;
pub mod redis;
pub mod redis_conn;
mod redis_control;
mod redis_liveness;
mod redis_presence;
mod redis_shards;
mod redis_subscriber;
mod redis_turns;
pub mod replies;
pub mod shared;
pub mod slot;

pub use control::{refuse, Control, Inbox, InboxRx, McpCall, Request};
pub use lease::{Lease, RedisLease};
pub use replies::{Handed, Waiter};
pub use shared::{Shared, Unreachable};

use crate::protocol::ErrorCode;
use crate::protocol::{event_frame, Member, ServerEvent};
use async_trait::async_trait;
use axum::extract::ws::Utf8Bytes;

/// A channel's members (when few enough to list) and their number.
#[derive(Debug, Default)]
pub struct Present {
    pub members: Vec<Member>,
    pub count: usize,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BusState {
    /// In-process bus: always up.
    Local,
    Connected,
    /// Redis is unreachable: local delivery continues, cross-instance delivery resumes on
    /// reconnect.
    Disconnected,
}

impl BusState {
    pub fn as_str(self) -> &'static str {
        match self {
            BusState::Local => "local",
            BusState::Connected => "connected",
            BusState::Disconnected => "disconnected",
        }
    }
}

#[async_trait]
pub trait Bus: Send + Sync + 'static {
    /// Delivers an encoded server frame to every subscriber of `channel` on every instance.
    async fn publish(&self, channel: &str, frame: Utf8Bytes);
    /// Like `publish`, except to this instance's connection `conn` (a client's own
    /// `publish` with `echo: false`).
    async fn publish_except(&self, channel: &str, frame: Utf8Bytes, conn: u64);
    /// Like `publish`, for a session change: every instance releases these in version order
    /// and heals gaps from the change log.
    async fn publish_versioned(&self, channel: &str, version: u64, frame: Utf8Bytes);
    /// Returns once frames published elsewhere on `channel` will reach this instance (or after
    /// a short bound when the bus is down). Call after the hub subscription.
    async fn watch(&self, channel: &str);
    /// Drops every connection of `user_id` from `channel` on every instance, telling each with
    /// a `session.revoked` event.
    async fn evict(&self, channel: &str, user_id: &str);
    /// Closes (4001) every socket of `user_id` opened with API key `key`, on every instance.
    async fn close_key(&self, user_id: &str, key: uuid::Uuid);
    /// Records `member` in the channel's presence (on every instance); announcing it is the
    /// presence service's job.
    async fn presence_join(&self, channel: &str, member: &Member);
    async fn presence_leave(&self, channel: &str, conn_id: &str);
    /// The channel's members when there are at most `limit` (a list is whole or absent; 0: a
    /// count only), and how many there are.
    async fn presence(&self, channel: &str, limit: usize) -> Present;
    fn state(&self) -> BusState;
    /// This instance's id on the bus (what other instances know it by); `None` in-process.
    fn instance(&self) -> Option<uuid::Uuid> {
        None
    }
    /// Whether instance `id` still heartbeats: `Some(false)` once its liveness expired (it died
    /// without cleaning up), `None` when that cannot be told (no Redis, or Redis unreachable).
    async fn instance_alive(&self, _id: uuid::Uuid) -> Option<bool> {
        None
    }

    // A chat turn's deltas: delivered here at once, and written to Redis (content, last index
    // and the delta's PUBLISH in one transaction) for the other instances.

    /// Delivers delta `index` (`text`, encoded as `frame`) of `turn` on `channel`.
    async fn publish_delta(
        &self,
        channel: &str,
        turn: uuid::Uuid,
        index: u64,
        text: &str,
        frame: Utf8Bytes,
    );
    /// Returns once every delta of `turn` published so far has reached the other instances'
    /// path (so events sent after it cannot overtake them).
    async fn flush_deltas(&self, turn: uuid::Uuid);
    /// Keeps what other instances read of `turn` on `channel` (its content) alive while it
    /// runs.
    async fn keep_deltas(&self, channel: &str, turn: uuid::Uuid);
    /// `turn`'s content and last delta index as other instances see it (for a turn that runs
    /// elsewhere).
    async fn delta_content(&self, channel: &str, turn: uuid::Uuid) -> Option<(String, u64)>;
    /// The turn ended: its deltas flushed, then what other instances read of it dropped.
    async fn end_deltas(&self, channel: &str, turn: uuid::Uuid);

    // Answers and requests between instances (client tool results, MCP tool calls).

    /// Awaits the answer `key` from `owner` for up to `ttl`: here, and registered where every
    /// instance can check an answer against it.
    async fn expect_reply(&self, key: &str, owner: &str, ttl: std::time::Duration) -> Waiter;
    /// Hands `value` to whoever awaits `key` from `owner`, on whichever instance.
    async fn reply(&self, key: &str, owner: &str, value: serde_json::Value) -> Handed;
    /// Delivers `msg` to every instance's `Inbox` (for a request, the holder of the service
    /// acts; for a cancel, the instance running the turn).
    async fn send(&self, msg: Control);
}

/// What a socket opened with a revoked API key hears before it closes (4001).
pub fn key_revoked_frame() -> Utf8Bytes {
    Utf8Bytes::from(
        crate::protocol::ServerFrame::Error {
            id: None,
            code: ErrorCode::InvalidApiKey,
            message: "this API key was revoked",
        }
        .encode(),
    )
}

/// What a socket whose credential was refused hears before it closes (4001).
pub fn refused_frame(message: &'static str) -> Utf8Bytes {
    Utf8Bytes::from(
        crate::protocol::ServerFrame::Error {
            id: None,
            code: ErrorCode::InvalidToken,
            message,
        }
        .encode(),
    )
}

/// The event an evicted connection receives on the channel it lost.
pub fn revoked_frame(channel: &str) -> Utf8Bytes {
    event_frame(channel, &ServerEvent::SessionRevoked { channel })
}
