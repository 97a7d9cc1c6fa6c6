//! Chat-turn state in Redis, for instances other than the one running the turn: the session's
//! claim (`SET NX`, expiring so a crashed owner frees it), the turn's content and last delta
//! index, and the delta itself, all written with the `PUBLISH` in one `MULTI` so a reader of the
//! content misses no delta after it and sees none twice.

use super::{
    redis::{Inner, DELTA_FLAG},
    Lease as _, LiveTurn, TurnView,
};
use axum::extract::ws::Utf8Bytes;
use dashmap::DashMap;
use std::sync::Arc;
use tokio::{sync::mpsc, task::JoinHandle};

/// Deltas of one turn waiting for Redis; past this they are dropped for other instances (their
/// subscribers see an index gap and refetch), never holding up the turn.
const DELTA_QUEUE: usize = 1024;
/// Most deltas written in one transaction.
const DELTA_BATCH: usize = 64;

pub(super) struct Delta {
    pub index: u64,
    pub text: String,
    pub frame: Utf8Bytes,
}

/// One writer task per running turn, so a turn never waits on Redis and its deltas still reach
/// Redis in order.
#[derive(Default)]
pub(super) struct DeltaWriters {
    writers: DashMap<uuid::Uuid, (mpsc::Sender<Delta>, JoinHandle<()>)>,
}

impl DeltaWriters {
    pub fn send(&self, inner: &Arc<Inner>, t: &LiveTurn, d: Delta) {
        let tx = self
            .writers
            .entry(t.turn_id)
            .or_insert_with(|| {
                let (tx, rx) = mpsc::channel(DELTA_QUEUE);
                (tx, tokio::spawn(write_deltas(inner.clone(), t.clone(), rx)))
            })
            .0
            .clone();
        if tx.try_send(d).is_err() {
            metrics::counter!("bus_deltas_dropped_total").increment(1);
            tracing::warn!(turn = %t.turn_id, "redis too slow: a chat delta was not sent to other instances");
        }
    }

    /// Waits until every delta of `turn` queued so far is in Redis.
    pub async fn flush(&self, turn: uuid::Uuid) {
        if let Some((_, (tx, task))) = self.writers.remove(&turn) {
            drop(tx);
            let _ = task.await;
        }
    }
}

async fn write_deltas(inner: Arc<Inner>, t: LiveTurn, mut rx: mpsc::Receiver<Delta>) {
    let mut batch = Vec::with_capacity(DELTA_BATCH);
    while rx.recv_many(&mut batch, DELTA_BATCH).await > 0 {
        inner.publish_deltas(&t, &batch).await;
        batch.clear();
    }
}

/// A claim and its content live this long without the owner refreshing them.
pub const TURN_TTL_MS: u64 = 30_000;
const TURN_TTL: std::time::Duration = std::time::Duration::from_millis(TURN_TTL_MS);

impl Inner {
    fn turn_key(&self, kind: &str, id: &str) -> String {
        format!("{}turn:{kind}:{id}", self.prefix)
    }

    /// The session's lease: its holder is the running turn (as JSON, so another instance
    /// reads what it needs to show the turn).
    fn claim_name(session: &str) -> String {
        format!("turn:s:{session}")
    }

    /// `None` when Redis could not answer (the caller decides what that means).
    pub(super) async fn turn_claim(&self, t: &LiveTurn) -> Option<bool> {
        let me = serde_json::to_string(t).ok()?;
        match self
            .lease
            .claim(&Self::claim_name(&t.session), &me, TURN_TTL)
            .await
        {
            Ok(true) => {}
            Ok(false) => return Some(false),
            Err(e) => {
                tracing::warn!(error = %e, "turn claim not recorded in redis");
                return None;
            }
        }
        let mut pipe = redis::pipe();
        pipe.cmd("SET")
            .arg(self.turn_key("t", &t.turn_id.to_string()))
            .arg(&t.session)
            .arg("PX")
            .arg(TURN_TTL_MS)
            .ignore();
        let _ = self.conn.run_pipe(&pipe).await;
        Some(true)
    }

    pub(super) async fn turn_refresh(&self, t: &LiveTurn) {
        let Ok(me) = serde_json::to_string(t) else {
            return;
        };
        match self
            .lease
            .refresh(&Self::claim_name(&t.session), &me, TURN_TTL)
            .await
        {
            Ok(true) => {}
            Ok(false) => tracing::warn!(turn = %t.turn_id, "turn claim lost; its content expires"),
            Err(e) => return tracing::warn!(error = %e, "turn claim not refreshed"),
        }
        let id = t.turn_id.to_string();
        let mut pipe = redis::pipe();
        for key in [
            self.turn_key("t", &id),
            self.turn_key("c", &id),
            self.turn_key("i", &id),
        ] {
            pipe.cmd("PEXPIRE").arg(key).arg(TURN_TTL_MS).ignore();
        }
        if let Err(e) = self.conn.run_pipe(&pipe).await {
            tracing::warn!(error = %e, "turn content not refreshed");
        }
    }

    pub(super) async fn turn_release(&self, t: &LiveTurn) {
        let Ok(me) = serde_json::to_string(t) else {
            return;
        };
        if let Err(e) = self
            .lease
            .release(&Self::claim_name(&t.session), &me, &[])
            .await
        {
            tracing::warn!(error = %e, "turn claim not released; it expires on its own");
        }
        let id = t.turn_id.to_string();
        let mut cmd = redis::cmd("DEL");
        cmd.arg(self.turn_key("t", &id))
            .arg(self.turn_key("c", &id))
            .arg(self.turn_key("i", &id));
        let _ = self.conn.run::<i64>(&cmd).await;
    }

    pub(super) async fn turn_active(&self, session: &str) -> Option<TurnView> {
        let raw = self.lease.holder(&Self::claim_name(session)).await.ok()??;
        let t: LiveTurn = serde_json::from_str(&raw).ok()?;
        let id = t.turn_id.to_string();
        let mut cmd = redis::cmd("MGET");
        cmd.arg(self.turn_key("c", &id))
            .arg(self.turn_key("i", &id));
        let (content, index): (Option<String>, Option<u64>) = self.conn.run(&cmd).await.ok()?;
        Some(TurnView {
            turn_id: t.turn_id,
            message_id: t.message_id,
            model: t.model,
            index: index.unwrap_or(0),
            content: content.unwrap_or_default(),
        })
    }

    pub(super) async fn turn_session(&self, turn: uuid::Uuid) -> Option<String> {
        let mut cmd = redis::cmd("GET");
        cmd.arg(self.turn_key("t", &turn.to_string()));
        self.conn.run(&cmd).await.ok()?
    }

    /// Content, index and each delta's `PUBLISH` in one transaction (several deltas when they
    /// queued up meanwhile).
    async fn publish_deltas(&self, t: &LiveTurn, deltas: &[Delta]) {
        let Some(last) = deltas.last() else { return };
        let id = t.turn_id.to_string();
        let (content, idx) = (self.turn_key("c", &id), self.turn_key("i", &id));
        let channel = self.channel_key(&format!("session:{}", t.session));
        let mut pipe = redis::pipe();
        pipe.atomic();
        for d in deltas {
            let mut payload = self.header(DELTA_FLAG | d.index, 16 + d.frame.len());
            payload.extend_from_slice(t.turn_id.as_bytes());
            payload.extend_from_slice(d.frame.as_bytes());
            pipe.cmd("APPEND").arg(&content).arg(&d.text).ignore();
            pipe.cmd("PUBLISH").arg(&channel).arg(payload).ignore();
        }
        pipe.cmd("PEXPIRE").arg(&content).arg(TURN_TTL_MS).ignore();
        pipe.cmd("SET")
            .arg(&idx)
            .arg(last.index)
            .arg("PX")
            .arg(TURN_TTL_MS)
            .ignore();
        if let Err(e) = self.conn.run_pipe(&pipe).await {
            metrics::counter!("bus_publish_errors_total").increment(1);
            tracing::debug!(error = %e, "chat deltas not published to redis");
        }
    }
}
