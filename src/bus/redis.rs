//! The Redis bus: PUBLISH to other instances, one SUBSCRIBE connection per instance following
//! the hub's channel set, and presence in Redis hashes with per-instance liveness so entries of
//! a dead instance are reaped (with `presence.leave` events) by the survivors.
//!
//! Wire format of a bus message: 16 bytes origin instance id, 8 bytes publish time (unix
//! microseconds), 8 bytes session version (0 for unversioned frames), all big endian, then the
//! encoded frame exactly as clients receive it.

use super::{turns::LocalTurns, Bus, BusState, LiveTurn, TurnView};
use crate::hub::replies::{Handed, Waiter};
use crate::redis_conn::RedisConn;
use crate::{hub::Hub, protocol::Member};
use async_trait::async_trait;
use axum::extract::ws::Utf8Bytes;
use bytes::Bytes;
use futures::StreamExt;
use std::{
    collections::HashSet,
    sync::{
        atomic::{AtomicU8, Ordering},
        Arc,
    },
    time::{Duration, SystemTime, UNIX_EPOCH},
};
use tokio::sync::{mpsc, oneshot};
use tokio_util::{sync::CancellationToken, task::TaskTracker};
use uuid::Uuid;

const HEADER: usize = 32;
/// Set in the version word of a chat delta; the low bits are its index and the 16 bytes after
/// the header are the turn id.
pub(super) const DELTA_FLAG: u64 = 1 << 63;
/// How long `watch` waits for Redis before answering anyway.
const WATCH_WAIT: Duration = Duration::from_secs(2);
/// Liveness key lifetime; refreshed every third of it.
pub(super) const ALIVE_MS: u64 = 9_000;
const OP_TIMEOUT: Duration = Duration::from_secs(2);

/// Owned by `AppState`; its background task stops with the shutdown token.
pub struct RedisBus {
    inner: Arc<Inner>,
    watch_tx: mpsc::Sender<oneshot::Sender<()>>,
    turns: LocalTurns,
    deltas: super::redis_turns::DeltaWriters,
}

pub(super) struct Inner {
    pub(super) hub: Arc<Hub>,
    pub(super) conn: Arc<RedisConn>,
    client: redis::Client,
    pub(super) prefix: String,
    /// `<prefix>ch:` and `<prefix>ctl`, built once: `on_message` runs for every bus message.
    channel_prefix: String,
    pub(super) control: String,
    pub(super) instance: Uuid,
    state: AtomicU8,
}

impl RedisBus {
    pub fn start(
        hub: Arc<Hub>,
        client: redis::Client,
        conn: Arc<RedisConn>,
        prefix: String,
        shutdown: CancellationToken,
        tracker: &TaskTracker,
    ) -> Self {
        let inner = Arc::new(Inner {
            hub,
            conn,
            client,
            channel_prefix: format!("{prefix}ch:"),
            control: format!("{prefix}ctl"),
            prefix,
            instance: Uuid::new_v4(),
            state: AtomicU8::new(0),
        });
        let (watch_tx, watch_rx) = mpsc::channel(1024);
        tracker.spawn(subscriber(inner.clone(), watch_rx, shutdown.clone()));
        tracker.spawn(super::redis_liveness::liveness(inner.clone(), shutdown));
        Self {
            inner,
            watch_tx,
            turns: LocalTurns::default(),
            deltas: Default::default(),
        }
    }
}

impl Inner {
    pub(super) fn channel_key(&self, channel: &str) -> String {
        format!("{}{channel}", self.channel_prefix)
    }
    pub(super) fn presence_key(&self, channel: &str) -> String {
        format!("{}presence:{channel}", self.prefix)
    }
    pub(super) fn owned_key(&self, instance: &str) -> String {
        format!("{}inst:{instance}:presence", self.prefix)
    }
    pub(super) fn alive_key(&self, instance: &str) -> String {
        format!("{}inst:{instance}:alive", self.prefix)
    }
    fn set_state(&self, s: BusState) {
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
        let mut cmd = redis::cmd("PUBLISH");
        cmd.arg(self.channel_key(channel)).arg(payload);
        if let Err(e) = self.run::<i64>(&cmd).await {
            metrics::counter!("bus_publish_errors_total").increment(1);
            tracing::debug!(error = %e, channel, "redis publish failed");
        }
    }

    fn on_message(&self, msg: &redis::Msg) {
        let payload = msg.get_payload_bytes();
        if msg.get_channel_name() == self.control {
            return self.on_control(payload);
        }
        if payload.len() < HEADER || &payload[..16] == self.instance.as_bytes() {
            return;
        }
        let Some(channel) = msg
            .get_channel_name()
            .strip_prefix(self.channel_prefix.as_str())
        else {
            return;
        };
        let mut word = [0u8; 8];
        word.copy_from_slice(&payload[16..24]);
        let sent = u64::from_be_bytes(word);
        word.copy_from_slice(&payload[24..HEADER]);
        let version = u64::from_be_bytes(word);
        let now = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_micros() as u64);
        metrics::histogram!("bus_publish_to_deliver_seconds")
            .record(now.saturating_sub(sent) as f64 / 1e6);
        if version & DELTA_FLAG != 0 {
            let (Some(turn), Some(body)) = (
                payload
                    .get(HEADER..HEADER + 16)
                    .and_then(|b| uuid::Uuid::from_slice(b).ok()),
                payload.get(HEADER + 16..),
            ) else {
                return metrics::counter!("bus_bad_messages_total").increment(1);
            };
            match Utf8Bytes::try_from(Bytes::copy_from_slice(body)) {
                Ok(frame) => {
                    self.hub
                        .deliver_delta(channel, turn, version & !DELTA_FLAG, &frame);
                }
                Err(_) => metrics::counter!("bus_bad_messages_total").increment(1),
            }
            return;
        }
        match Utf8Bytes::try_from(Bytes::copy_from_slice(&payload[HEADER..])) {
            Ok(frame) if version > 0 => self.hub.deliver_versioned(channel, version, frame),
            Ok(frame) => {
                self.hub.deliver(channel, &frame);
            }
            Err(_) => metrics::counter!("bus_bad_messages_total").increment(1),
        }
    }
}

#[async_trait]
impl Bus for RedisBus {
    async fn publish(&self, channel: &str, frame: Utf8Bytes) {
        self.inner.hub.deliver(channel, &frame);
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
        i.publish_control(serde_json::json!({"evict": {"channel": channel, "user_id": user_id}}))
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
        i.publish_control(serde_json::json!({"close_key": {"user_id": user_id, "key_id": key}}))
            .await;
    }

    async fn presence_join(&self, channel: &str, member: &Member) {
        let i = &self.inner;
        let value =
            serde_json::json!({"member": member, "instance": i.instance.to_string()}).to_string();
        let mut pipe = redis::pipe();
        pipe.cmd("HSET")
            .arg(i.presence_key(channel))
            .arg(&member.conn_id)
            .arg(value)
            .ignore();
        pipe.cmd("SADD")
            .arg(i.owned_key(&i.instance.to_string()))
            .arg(format!("{channel}\t{}", member.conn_id))
            .ignore();
        if let Err(e) = i.run_pipe(&pipe).await {
            tracing::warn!(error = %e, "presence join not recorded in redis");
        }
    }

    async fn presence_leave(&self, channel: &str, conn_id: &str) {
        let i = &self.inner;
        let mut pipe = redis::pipe();
        pipe.cmd("HDEL")
            .arg(i.presence_key(channel))
            .arg(conn_id)
            .ignore();
        pipe.cmd("SREM")
            .arg(i.owned_key(&i.instance.to_string()))
            .arg(format!("{channel}\t{conn_id}"))
            .ignore();
        if let Err(e) = i.run_pipe(&pipe).await {
            tracing::warn!(error = %e, "presence leave not recorded in redis");
        }
    }

    async fn presence(&self, channel: &str) -> Vec<Member> {
        let i = &self.inner;
        let mut cmd = redis::cmd("HVALS");
        cmd.arg(i.presence_key(channel));
        let raw: Vec<String> = i.run(&cmd).await.unwrap_or_default();
        let entries: Vec<(Member, String)> = raw
            .iter()
            .filter_map(|s| serde_json::from_str::<serde_json::Value>(s).ok())
            .filter_map(|v| {
                let inst = v["instance"].as_str()?.to_owned();
                Some((serde_json::from_value(v["member"].clone()).ok()?, inst))
            })
            .collect();
        // Entries of instances that stopped heartbeating are ghosts awaiting the reaper.
        let instances: Vec<String> = entries
            .iter()
            .map(|(_, i)| i.clone())
            .collect::<HashSet<_>>()
            .into_iter()
            .collect();
        let mut alive = HashSet::new();
        for inst in instances {
            let mut c = redis::cmd("EXISTS");
            c.arg(i.alive_key(&inst));
            if i.run::<i64>(&c).await.unwrap_or(1) == 1 {
                alive.insert(inst);
            }
        }
        entries
            .into_iter()
            .filter(|(_, inst)| alive.contains(inst))
            .map(|(m, _)| m)
            .collect()
    }

    fn state(&self) -> BusState {
        match self.inner.state.load(Ordering::Relaxed) {
            1 => BusState::Connected,
            _ => BusState::Disconnected,
        }
    }

    async fn turn_claim(&self, turn: &LiveTurn) -> bool {
        if !self.turns.claim(turn) {
            return false;
        }
        match self.inner.turn_claim(turn).await {
            Some(false) => {
                self.turns.release(turn);
                false
            }
            // Redis unreachable: the local claim stands (this instance can still serve).
            Some(true) | None => true,
        }
    }

    async fn turn_refresh(&self, turn: &LiveTurn) {
        self.inner.turn_refresh(turn).await;
    }

    async fn turn_flush(&self, turn: &LiveTurn) {
        self.deltas.flush(turn.turn_id).await;
    }

    async fn turn_release(&self, turn: &LiveTurn) {
        self.deltas.flush(turn.turn_id).await;
        self.turns.release(turn);
        self.inner.turn_release(turn).await;
    }

    async fn turn_active(&self, session: &str) -> Option<TurnView> {
        match self.turns.view(session) {
            Some(v) => Some(v),
            None => self.inner.turn_active(session).await,
        }
    }

    async fn turn_session(&self, turn: uuid::Uuid) -> Option<String> {
        match self.turns.session_of(turn) {
            Some(s) => Some(s),
            None => self.inner.turn_session(turn).await,
        }
    }

    async fn publish_delta(
        &self,
        channel: &str,
        turn: &LiveTurn,
        index: u64,
        text: &str,
        frame: Utf8Bytes,
    ) {
        self.turns.append(turn, index, text);
        self.inner
            .hub
            .deliver_delta(channel, turn.turn_id, index, &frame);
        let delta = super::redis_turns::Delta {
            index,
            text: text.to_owned(),
            frame,
        };
        self.deltas.send(&self.inner, turn, delta);
    }

    async fn cancel_turn(&self, turn: uuid::Uuid) {
        if !self.inner.hub.cancel_turn(turn) {
            self.inner
                .publish_control(serde_json::json!({ "cancel_turn": turn }))
                .await;
        }
    }

    async fn expect_reply(&self, key: &str, owner: &str, ttl: Duration) -> Waiter {
        self.inner.expect_reply(key, owner, ttl).await
    }

    async fn reply(&self, key: &str, owner: &str, value: serde_json::Value) -> Handed {
        self.inner.reply(key, owner, value).await
    }

    async fn request(&self, msg: serde_json::Value) {
        self.inner
            .publish_control(serde_json::json!({ "request": msg }))
            .await;
    }
}

/// Keeps one pub/sub connection subscribed to exactly the hub's channels; reconnects with
/// backoff and re-subscribes everything after a drop.
async fn subscriber(
    inner: Arc<Inner>,
    mut watch_rx: mpsc::Receiver<oneshot::Sender<()>>,
    shutdown: CancellationToken,
) {
    let mut backoff = Duration::from_millis(100);
    loop {
        let connected = tokio::select! {
            _ = shutdown.cancelled() => return,
            c = tokio::time::timeout(OP_TIMEOUT, inner.client.get_async_pubsub()) => c,
        };
        let pubsub = match connected {
            Ok(Ok(p)) => p,
            other => {
                let why = match other {
                    Ok(Err(e)) => e.to_string(),
                    _ => "connect timed out".into(),
                };
                inner.set_state(BusState::Disconnected);
                tracing::warn!(error = %why, retry_in = ?backoff, "redis pub/sub unavailable");
                // Waiters must not hang while Redis is away.
                while let Ok(w) = watch_rx.try_recv() {
                    let _ = w.send(());
                }
                tokio::select! {
                    _ = shutdown.cancelled() => return,
                    _ = tokio::time::sleep(backoff) => {}
                }
                backoff = (backoff * 2).min(Duration::from_secs(5));
                continue;
            }
        };
        let (mut sink, mut stream) = pubsub.split();
        let mut subscribed: HashSet<String> = HashSet::new();
        if sync(&inner, &mut sink, &mut subscribed).await.is_err() {
            continue;
        }
        inner.set_state(BusState::Connected);
        metrics::counter!("bus_connects_total").increment(1);
        backoff = Duration::from_millis(100);
        let mut resync = tokio::time::interval(Duration::from_secs(5));
        loop {
            tokio::select! {
                _ = shutdown.cancelled() => return,
                msg = stream.next() => match msg {
                    Some(m) => inner.on_message(&m),
                    None => break,
                },
                _ = inner.hub.changed() => {
                    if sync(&inner, &mut sink, &mut subscribed).await.is_err() { break }
                }
                w = watch_rx.recv() => {
                    let ok = sync(&inner, &mut sink, &mut subscribed).await.is_ok();
                    if let Some(w) = w { let _ = w.send(()); }
                    if !ok { break }
                }
                _ = resync.tick() => {
                    if sync(&inner, &mut sink, &mut subscribed).await.is_err() { break }
                }
            }
        }
        inner.set_state(BusState::Disconnected);
        tracing::warn!("redis pub/sub connection lost; reconnecting");
    }
}

async fn sync(
    inner: &Inner,
    sink: &mut redis::aio::PubSubSink,
    subscribed: &mut HashSet<String>,
) -> redis::RedisResult<()> {
    let mut want: HashSet<String> = inner
        .hub
        .channel_names()
        .iter()
        .map(|c| inner.channel_key(c))
        .collect();
    want.insert(inner.control.clone());
    let add: Vec<&String> = want.difference(subscribed).collect();
    let drop: Vec<&String> = subscribed.difference(&want).collect();
    let timeout = |e| redis::RedisError::from((redis::ErrorKind::IoError, e));
    if !add.is_empty() {
        tokio::time::timeout(OP_TIMEOUT, sink.subscribe(&add))
            .await
            .map_err(|_| timeout("subscribe timed out"))??;
    }
    if !drop.is_empty() {
        tokio::time::timeout(OP_TIMEOUT, sink.unsubscribe(&drop))
            .await
            .map_err(|_| timeout("unsubscribe timed out"))??;
    }
    *subscribed = want;
    Ok(())
}
