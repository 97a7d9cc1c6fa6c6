//! A chat turn's deltas in Redis, for instances other than the one running the turn: the
//! turn's content and last delta index, and the delta itself, all written with the `PUBLISH`
//! in one `MULTI` so a reader of the content misses no delta after it and sees none twice.
//! (Which turn holds a session is chat's lease, `chat::live`.)

use super::redis::{Inner, DELTA_FLAG};
use axum::extract::ws::Utf8Bytes;
use dashmap::DashMap;
use std::sync::Arc;
use tokio::{sync::mpsc, task::JoinHandle};
use uuid::Uuid;

/// Deltas of one turn waiting for Redis; past this they are dropped for other instances (their
/// subscribers see an index gap and refetch), never holding up the turn.
const DELTA_QUEUE: usize = 1024;
/// Most deltas written in one transaction.
const DELTA_BATCH: usize = 64;
/// A turn's content lives this long after its last delta or keep-alive (as its claim does).
const CONTENT_TTL_MS: u64 = 30_000;

pub(super) struct Delta {
    pub index: u64,
    pub text: String,
    pub frame: Utf8Bytes,
}

/// One writer task per running turn, so a turn never waits on Redis and its deltas still reach
/// Redis in order.
#[derive(Default)]
pub(super) struct DeltaWriters {
    writers: DashMap<Uuid, (mpsc::Sender<Delta>, JoinHandle<()>)>,
}

impl DeltaWriters {
    pub fn send(&self, inner: &Arc<Inner>, turn: Uuid, channel: &str, d: Delta) {
        let tx = self
            .writers
            .entry(turn)
            .or_insert_with(|| {
                let (tx, rx) = mpsc::channel(DELTA_QUEUE);
                let channel = channel.to_owned();
                (
                    tx,
                    tokio::spawn(write_deltas(inner.clone(), turn, channel, rx)),
                )
            })
            .0
            .clone();
        if tx.try_send(d).is_err() {
            metrics::counter!("bus_deltas_dropped_total").increment(1);
            tracing::warn!(%turn, "redis too slow: a chat delta was not sent to other instances");
        }
    }

    /// Waits until every delta of `turn` queued so far is in Redis.
    pub async fn flush(&self, turn: Uuid) {
        if let Some((_, (tx, task))) = self.writers.remove(&turn) {
            drop(tx);
            let _ = task.await;
        }
    }
}

async fn write_deltas(
    inner: Arc<Inner>,
    turn: Uuid,
    channel: String,
    mut rx: mpsc::Receiver<Delta>,
) {
    let mut batch = Vec::with_capacity(DELTA_BATCH);
    while rx.recv_many(&mut batch, DELTA_BATCH).await > 0 {
        inner.publish_deltas(turn, &channel, &batch).await;
        batch.clear();
    }
}

impl Inner {
    /// Tagged by the session's channel: written in one transaction with the channel's
    /// publish, so on a cluster they must share its slot.
    fn content_keys(&self, channel: &str, turn: Uuid) -> (String, String) {
        let id = turn.to_string();
        (
            format!("{}turn:c:{{{channel}}}:{id}", self.prefix),
            format!("{}turn:i:{{{channel}}}:{id}", self.prefix),
        )
    }

    pub(super) async fn keep_deltas(&self, channel: &str, turn: Uuid) {
        let (content, index) = self.content_keys(channel, turn);
        let mut pipe = redis::pipe();
        for key in [content, index] {
            pipe.cmd("PEXPIRE").arg(key).arg(CONTENT_TTL_MS).ignore();
        }
        if let Err(e) = self.conn.run_pipe(&pipe).await {
            tracing::warn!(error = %e, "turn content not kept alive");
        }
    }

    pub(super) async fn delta_content(&self, channel: &str, turn: Uuid) -> Option<(String, u64)> {
        let (content, index) = self.content_keys(channel, turn);
        let mut cmd = redis::cmd("MGET");
        cmd.arg(content).arg(index);
        let (content, index): (Option<String>, Option<u64>) = self.conn.run(&cmd).await.ok()?;
        Some((content.unwrap_or_default(), index.unwrap_or(0)))
    }

    pub(super) async fn drop_deltas(&self, channel: &str, turn: Uuid) {
        let (content, index) = self.content_keys(channel, turn);
        let mut cmd = redis::cmd("DEL");
        cmd.arg(content).arg(index);
        let _ = self.conn.run::<i64>(&cmd).await;
    }

    /// Content, index and each delta's `PUBLISH` in one transaction (several deltas when they
    /// queued up meanwhile).
    async fn publish_deltas(&self, turn: Uuid, channel: &str, deltas: &[Delta]) {
        let Some(last) = deltas.last() else { return };
        let (content, idx) = self.content_keys(channel, turn);
        let key = self.channel_key(channel);
        let mut pipe = redis::pipe();
        pipe.atomic();
        for d in deltas {
            let mut payload = self.header(DELTA_FLAG | d.index, 16 + d.frame.len());
            payload.extend_from_slice(turn.as_bytes());
            payload.extend_from_slice(d.frame.as_bytes());
            pipe.cmd("APPEND").arg(&content).arg(&d.text).ignore();
            pipe.cmd(self.publish).arg(&key).arg(payload).ignore();
        }
        pipe.cmd("PEXPIRE")
            .arg(&content)
            .arg(CONTENT_TTL_MS)
            .ignore();
        pipe.cmd("SET")
            .arg(&idx)
            .arg(last.index)
            .arg("PX")
            .arg(CONTENT_TTL_MS)
            .ignore();
        if let Err(e) = self.conn.run_pipe(&pipe).await {
            metrics::counter!("bus_publish_errors_total").increment(1);
            tracing::debug!(error = %e, "chat deltas not published to redis");
        }
    }
}
