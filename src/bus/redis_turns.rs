//! Chat-turn state in Redis, for instances other than the one running the turn: the session's
//! claim (`SET NX`, expiring so a crashed owner frees it), the turn's content and last delta
//! index, and the delta itself, all written with the `PUBLISH` in one `MULTI` so a reader of the
//! content misses no delta after it and sees none twice.

use super::{
    redis::{Inner, DELTA_FLAG},
    LiveTurn, TurnView,
};
use axum::extract::ws::Utf8Bytes;

/// A claim and its content live this long without the owner refreshing them.
pub const TURN_TTL_MS: u64 = 30_000;

const RELEASE: &str = r"
if redis.call('GET', KEYS[1]) == ARGV[1] then redis.call('DEL', KEYS[1]) end
redis.call('DEL', KEYS[2], KEYS[3], KEYS[4])
return 1
";

impl Inner {
    fn turn_key(&self, kind: &str, id: &str) -> String {
        format!("{}turn:{kind}:{id}", self.prefix)
    }

    /// `None` when Redis could not answer (the caller decides what that means).
    pub(super) async fn turn_claim(&self, t: &LiveTurn) -> Option<bool> {
        let id = t.turn_id.to_string();
        let mut cmd = redis::cmd("SET");
        cmd.arg(self.turn_key("s", &t.session))
            .arg(serde_json::to_string(t).ok()?)
            .arg("NX")
            .arg("PX")
            .arg(TURN_TTL_MS);
        let won: Option<String> = match self.conn.run(&cmd).await {
            Ok(v) => v,
            Err(e) => {
                tracing::warn!(error = %e, "turn claim not recorded in redis");
                return None;
            }
        };
        if won.is_none() {
            return Some(false);
        }
        let mut pipe = redis::pipe();
        pipe.cmd("SET")
            .arg(self.turn_key("t", &id))
            .arg(&t.session)
            .arg("PX")
            .arg(TURN_TTL_MS)
            .ignore();
        let _ = self.conn.run_pipe(&pipe).await;
        Some(true)
    }

    pub(super) async fn turn_refresh(&self, t: &LiveTurn) {
        let id = t.turn_id.to_string();
        let mut pipe = redis::pipe();
        for key in [
            self.turn_key("s", &t.session),
            self.turn_key("t", &id),
            self.turn_key("c", &id),
            self.turn_key("i", &id),
        ] {
            pipe.cmd("PEXPIRE").arg(key).arg(TURN_TTL_MS).ignore();
        }
        if let Err(e) = self.conn.run_pipe(&pipe).await {
            tracing::warn!(error = %e, "turn claim not refreshed");
        }
    }

    pub(super) async fn turn_release(&self, t: &LiveTurn) {
        let id = t.turn_id.to_string();
        let Ok(me) = serde_json::to_string(t) else {
            return;
        };
        let mut cmd = redis::cmd("EVAL");
        cmd.arg(RELEASE)
            .arg(4)
            .arg(self.turn_key("s", &t.session))
            .arg(self.turn_key("t", &id))
            .arg(self.turn_key("c", &id))
            .arg(self.turn_key("i", &id))
            .arg(me);
        if let Err(e) = self.conn.run::<i64>(&cmd).await {
            tracing::warn!(error = %e, "turn claim not released; it expires on its own");
        }
    }

    pub(super) async fn turn_active(&self, session: &str) -> Option<TurnView> {
        let mut cmd = redis::cmd("GET");
        cmd.arg(self.turn_key("s", session));
        let raw: Option<String> = self.conn.run(&cmd).await.ok()?;
        let t: LiveTurn = serde_json::from_str(&raw?).ok()?;
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

    /// Content, index and the delta's `PUBLISH` in one transaction.
    pub(super) async fn publish_delta(
        &self,
        t: &LiveTurn,
        index: u64,
        text: &str,
        frame: &Utf8Bytes,
    ) {
        let id = t.turn_id.to_string();
        let (content, idx) = (self.turn_key("c", &id), self.turn_key("i", &id));
        let channel = format!("session:{}", t.session);
        let mut payload = self.header(DELTA_FLAG | index, 16 + frame.len());
        payload.extend_from_slice(t.turn_id.as_bytes());
        payload.extend_from_slice(frame.as_bytes());
        let mut pipe = redis::pipe();
        pipe.atomic();
        pipe.cmd("APPEND").arg(&content).arg(text).ignore();
        pipe.cmd("PEXPIRE").arg(&content).arg(TURN_TTL_MS).ignore();
        pipe.cmd("SET")
            .arg(&idx)
            .arg(index)
            .arg("PX")
            .arg(TURN_TTL_MS)
            .ignore();
        pipe.cmd("PUBLISH")
            .arg(self.channel_key(&channel))
            .arg(payload)
            .ignore();
        if let Err(e) = self.conn.run_pipe(&pipe).await {
            metrics::counter!("bus_publish_errors_total").increment(1);
            tracing::debug!(error = %e, "chat delta not published to redis");
        }
    }

    pub(super) async fn cancel_turn(&self, turn: uuid::Uuid) {
        let mut cmd = redis::cmd("PUBLISH");
        cmd.arg(&self.control)
            .arg(serde_json::json!({ "cancel_turn": turn }).to_string());
        if let Err(e) = self.conn.run::<i64>(&cmd).await {
            tracing::warn!(error = %e, "turn cancel not published to other instances");
        }
    }
}
