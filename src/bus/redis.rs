//! The Redis bus: PUBLISH to other instances, one SUBSCRIBE connection per instance following
//! the hub's channel set, and presence in Redis hashes with per-instance liveness so entries of
//! a dead instance are reaped (with a `presence.diff` of their leaves) by the survivors.
//!
//! Wire format of a bus message: 16 bytes origin instance id, 8 bytes publish time (unix
//! microseconds), 8 bytes session version (0 for unversioned frames), all big endian, then the
//! encoded frame exactly as clients receive it.

use super::replies::{Handed, Replies, Waiter};
use super::{Bus, BusState, Control, Inbox, Present};
use crate::bus::redis_conn::RedisConn;
use crate::{hub::Hub, protocol::Member};
use async_trait::async_trait;
use axum::extract::ws::Utf8Bytes;
use std::{
    sync::{
        atomic::{AtomicU8, Ordering},
        Arc,
    },
    time::{Duration, SystemTime, UNIX_EPOCH},
};
use tokio::sync::{mpsc, oneshot};
use tokio_util::{sync::CancellationToken, task::TaskTracker};
use uuid::Uuid;

pub(super) const HEADER: usize = 32;
/// Set in the version word of a chat delta; the low bits are its index and the 16 bytes after
/// the header are the turn id.
pub(super) const DELTA_FLAG: u64 = 1 << 63;
/// How long `watch` waits for Redis before answering anyway.
const WATCH_WAIT: Duration = Duration::from_secs(2);
/// Liveness key lifetime; refreshed every third of it.
pub(super) const ALIVE_MS: u64 = 9_000;
pub(super) const OP_TIMEOUT: Duration = Duration::from_secs(2);

/// Owned by `AppState`; its background task stops with the shutdown token.
pub struct RedisBus {
    inner: Arc<Inner>,
    watch_tx: mpsc::Sender<oneshot::Sender<()>>,
    deltas: super::redis_turns::DeltaWriters,
}

pub(super) struct Inner {
    pub(super) hub: Arc<Hub>,
    pub(super) inbox: Inbox,
    /// Answers awaited by tasks here (see `replies`).
    pub(super) replies: Arc<Replies>,
    pub(super) conn: Arc<RedisConn>,
    pub(super) prefix: String,
    /// `PUBLISH`, or `SPUBLISH` on a cluster (sharded pub/sub: a message goes to its
    /// channel's shard only, never to every node).
    pub(super) publish: &'static str,
    /// `<prefix>ch:` and `<prefix>ctl`, built once: `on_message` runs for every bus message.
    pub(super) channel_prefix: String,
    pub(super) control: String,
    pub(super) instance: Uuid,
    /// `ws.presence_diff_max`, for the diff that announces a dead instance's leaves.
    pub(super) presence_diff_max: usize,
    state: AtomicU8,
}

/// What an instance's bus needs from Config.
pub struct RedisBusOptions {
    /// `redis.key_prefix`.
    pub prefix: String,
    /// `ws.presence_diff_max`.
    pub presence_diff_max: usize,
    /// `server.shutdown_grace_secs`: how long this instance still counts as alive after it
    /// starts draining, so its turns are not taken for a dead instance's.
    pub drain: Duration,
}

impl RedisBus {
    pub fn start(
        hub: Arc<Hub>,
        inbox: Inbox,
        conn: Arc<RedisConn>,
        options: RedisBusOptions,
        shutdown: CancellationToken,
        tracker: &TaskTracker,
    ) -> Self {
        let RedisBusOptions {
            prefix,
            presence_diff_max,
            drain,
        } = options;
        let inner = Arc::new(Inner {
            hub,
            inbox,
            replies: Arc::default(),
            publish: if conn.is_cluster() {
                "SPUBLISH"
            } else {
                "PUBLISH"
            },
            conn,
            channel_prefix: format!("{prefix}ch:"),
            control: format!("{prefix}ctl"),
            prefix,
            instance: Uuid::new_v4(),
            presence_diff_max,
            state: AtomicU8::new(0),
        });
        let (watch_tx, watch_rx) = mpsc::channel(1024);
        if inner.conn.is_cluster() {
            tracker.spawn(super::redis_shards::subscriber(
                inner.clone(),
                watch_rx,
                shutdown.clone(),
            ));
        } else {
            tracker.spawn(super::redis_subscriber::subscriber(
                inner.clone(),
                watch_rx,
                shutdown.clone(),
            ));
        }
        tracker.spawn(super::redis_liveness::liveness(
            inner.clone(),
            shutdown,
            drain,
        ));
        Self {
            inner,
            watch_tx,
            deltas: Default::default(),
        }
    }
}

impl Inner {
    /// Channels and keys name their hub channel as the hash tag (`{session:…}`), so on a
    /// cluster one session's pub/sub, presence and turn content share a shard.
    pub(super) fn channel_key(&self, channel: &str) -> String {
        format!("{}{{{channel}}}", self.channel_prefix)
    }
    pub(super) fn presence_key(&self, channel: &str) -> String {
        format!("{}presence:{{{channel}}}", self.prefix)
    }
    pub(super) fn owned_key(&self, instance: &str) -> String {
        format!("{}inst:{instance}:presence", self.prefix)
    }
    pub(super) fn alive_key(&self, instance: &str) -> String {
        format!("{}inst:{instance}:alive", self.prefix)
    }
    pub(super) fn set_state(&self, s: BusState) {
        let v = match s {
            BusState::Connected => 1,
            _ => 0,
        };
        if self.state.swap(v, Ordering::Relaxed) != v {
            tracing::info!(state = s.as_str(), "redis bus state changed");
        }
        metrics::gauge!("bus_connected").set(f64::from(v));
    }

    pub(super) async fn run<T: redis::FromRedisValue>(
        &self,
        cmd: &redis::Cmd,
    ) -> redis::RedisResult<T> {
        self.conn.run(cmd).await
    }

    pub(super) async fn run_pipe(&self, pipe: &redis::Pipeline) -> redis::RedisResult<()> {
        self.conn.run_pipe(pipe).await
    }

    /// A bus message's header, with room for `body` more bytes.
    pub(super) fn header(&self, version: u64, body: usize) -> Vec<u8> {
        let micros = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_micros() as u64);
        let mut payload = Vec::with_capacity(HEADER + body);
        payload.extend_from_slice(self.instance.as_bytes());
        payload.extend_from_slice(&micros.to_be_bytes());
        payload.extend_from_slice(&version.to_be_bytes());
        payload
    }

    pub(super) async fn publish_remote(&self, channel: &str, version: u64, frame: &Utf8Bytes) {
        let mut payload = self.header(version, frame.len());
        payload.extend_from_slice(frame.as_bytes());
        let mut cmd = redis::cmd(self.publish);
        cmd.arg(self.channel_key(channel)).arg(payload);
        if let Err(e) = self.run::<i64>(&cmd).await {
            metrics::counter!("bus_publish_errors_total").increment(1);
            tracing::debug!(error = %e, channel, "redis publish failed");
        }
    }
}

#[async_trait]
impl Bus for RedisBus {
    async fn publish(&self, channel: &str, frame: Utf8Bytes) {
        self.inner.hub.deliver(channel, &frame);
        self.inner.publish_remote(channel, 0, &frame).await;
    }

    async fn publish_except(&self, channel: &str, frame: Utf8Bytes, conn: u64) {
        self.inner.hub.deliver_except(channel, &frame, Some(conn));
        self.inner.publish_remote(channel, 0, &frame).await;
    }

    async fn publish_versioned(&self, channel: &str, version: u64, frame: Utf8Bytes) {
        self.inner
            .hub
            .deliver_versioned(channel, version, frame.clone());
        self.inner.publish_remote(channel, version, &frame).await;
    }

    async fn evict(&self, channel: &str, user_id: &str) {
        let i = &self.inner;
        i.hub
            .evict(channel, user_id, &super::revoked_frame(channel));
        i.publish_control(&Control::Evict {
            channel: channel.to_owned(),
            user_id: user_id.to_owned(),
        })
        .await;
    }

    async fn watch(&self, _channel: &str) {
        let (tx, rx) = oneshot::channel();
        if self.watch_tx.try_send(tx).is_ok() {
            let _ = tokio::time::timeout(WATCH_WAIT, rx).await;
        }
    }

    async fn close_key(&self, user_id: &str, key: uuid::Uuid) {
        let i = &self.inner;
        i.hub.close_key(user_id, key, &super::key_revoked_frame());
        i.publish_control(&Control::CloseKey {
            user_id: user_id.to_owned(),
            key_id: key,
        })
        .await;
    }

    async fn presence_join(&self, channel: &str, member: &Member) {
        super::redis_presence::join(&self.inner, channel, member).await;
    }

    async fn presence_leave(&self, channel: &str, conn_id: &str) {
        super::redis_presence::leave(&self.inner, channel, conn_id).await;
    }

    async fn presence(&self, channel: &str, limit: usize) -> Present {
        super::redis_presence::list(&self.inner, channel, limit).await
    }

    fn instance(&self) -> Option<Uuid> {
        Some(self.inner.instance)
    }

    async fn instance_alive(&self, id: Uuid) -> Option<bool> {
        if id == self.inner.instance {
            return Some(true);
        }
        let mut cmd = redis::cmd("EXISTS");
        cmd.arg(self.inner.alive_key(&id.to_string()));
        self.inner.run::<i64>(&cmd).await.ok().map(|n| n == 1)
    }

    fn state(&self) -> BusState {
        match self.inner.state.load(Ordering::Relaxed) {
            1 => BusState::Connected,
            _ => BusState::Disconnected,
        }
    }

    async fn publish_delta(
        &self,
        channel: &str,
        turn: uuid::Uuid,
        index: u64,
        text: &str,
        frame: Utf8Bytes,
    ) {
        self.inner.hub.deliver_delta(channel, turn, index, &frame);
        let delta = super::redis_turns::Delta {
            index,
            text: text.to_owned(),
            frame,
        };
        self.deltas.send(&self.inner, turn, channel, delta);
    }

    async fn flush_deltas(&self, turn: uuid::Uuid) {
        self.deltas.flush(turn).await;
    }

    async fn keep_deltas(&self, channel: &str, turn: uuid::Uuid) {
        self.inner.keep_deltas(channel, turn).await;
    }

    async fn delta_content(&self, channel: &str, turn: uuid::Uuid) -> Option<(String, u64)> {
        self.inner.delta_content(channel, turn).await
    }

    async fn end_deltas(&self, channel: &str, turn: uuid::Uuid) {
        self.deltas.flush(turn).await;
        self.inner.drop_deltas(channel, turn).await;
    }

    async fn expect_reply(&self, key: &str, owner: &str, ttl: Duration) -> Waiter {
        self.inner.expect_reply(key, owner, ttl).await
    }

    async fn reply(&self, key: &str, owner: &str, value: serde_json::Value) -> Handed {
        self.inner.reply(key, owner, value).await
    }

    async fn send(&self, msg: Control) {
        self.inner.publish_control(&msg).await;
    }
}
