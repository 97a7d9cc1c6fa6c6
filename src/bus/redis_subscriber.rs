//! The SUBSCRIBE side of the Redis bus: one pub/sub connection per instance following the
//! hub's channel set (re-subscribing everything after a drop), and what arrives on it handed
//! to the hub or the control inbox.

use super::redis::{Inner, DELTA_FLAG, HEADER, OP_TIMEOUT};
use super::BusState;
use axum::extract::ws::Utf8Bytes;
use bytes::Bytes;
use futures::StreamExt;
use std::{
    collections::HashSet,
    sync::Arc,
    time::{Duration, SystemTime, UNIX_EPOCH},
};
use tokio::sync::{mpsc, oneshot};
use tokio_util::sync::CancellationToken;

impl Inner {
    /// A message from pub/sub: `name` is the Redis channel it came on.
    pub(super) fn on_message(&self, name: &[u8], payload: &[u8]) {
        if name == self.control.as_bytes() {
            return self.on_control(payload);
        }
        if payload.len() < HEADER || &payload[..16] == self.instance.as_bytes() {
            return;
        }
        // `<prefix>ch:{<channel>}`
        let Some(channel) = std::str::from_utf8(name)
            .ok()
            .and_then(|n| n.strip_prefix(self.channel_prefix.as_str()))
            .and_then(|n| n.strip_prefix('{')?.strip_suffix('}'))
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

/// Keeps one pub/sub connection subscribed to exactly the hub's channels; reconnects with
/// backoff and re-subscribes everything after a drop.
pub(super) async fn subscriber(
    inner: Arc<Inner>,
    mut watch_rx: mpsc::Receiver<oneshot::Sender<()>>,
    shutdown: CancellationToken,
) {
    let mut backoff = Duration::from_millis(100);
    loop {
        let connected = tokio::select! {
            _ = shutdown.cancelled() => return,
            c = tokio::time::timeout(OP_TIMEOUT, inner.conn.single().expect("one Redis").get_async_pubsub()) => c,
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
        // Whatever was published while this connection was away is in the change log.
        tokio::spawn({
            let hub = inner.hub.clone();
            async move { hub.report_tails().await }
        });
        backoff = Duration::from_millis(100);
        let mut resync = tokio::time::interval(Duration::from_secs(5));
        loop {
            tokio::select! {
                _ = shutdown.cancelled() => return,
                msg = stream.next() => match msg {
                    Some(m) => inner.on_message(m.get_channel_name().as_bytes(), m.get_payload_bytes()),
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
