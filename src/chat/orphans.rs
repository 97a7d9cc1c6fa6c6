//! Turns whose instance died mid-stream: their assistant message stays marked streaming and
//! their claim holds the session until it expires. A janitor ends them as failed
//! (`interrupted`), tells the session's subscribers with `chat.error`, and frees the session.
//!
//! With instances sharing Redis, one of them at a time (a lease) sweeps every `SWEEP`; a
//! message whose turn nobody claims, or whose claim names an instance that stopped
//! heartbeating, is ended once that has lasted `GRACE`. Alone (no Redis), this instance is the
//! deployment, so whatever streams in the store at start-up was left by its previous run and is
//! ended at once; nothing else can leave one behind while it runs.

use super::{
    live::{LiveTurn, Liveness},
    ChatService,
};
use crate::{
    domain::SessionId,
    protocol::{event_frame, ServerEvent},
    store::MutationResult,
    sync::{
        merge::Message,
        ops::{Mutation, Op},
    },
};
use serde_json::{json, Value};
use std::{collections::HashMap, sync::Arc, time::Duration};
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

const SWEEP: Duration = Duration::from_secs(3);
/// Longer than two of a turn's claim refreshes (every 5 s), so a claim a Redis restart lost is
/// back before its turn is called dead; and than an instance's liveness gap after one.
const GRACE: Duration = Duration::from_secs(12);
/// Streaming messages read per sweep (one per running turn).
const BATCH: u32 = 1000;

pub const INTERRUPTED: &str = "interrupted";
/// Said of the turn whether its instance died or the store refused its final save.
const INTERRUPTED_MESSAGE: &str = "the turn stopped before its answer was saved";

/// The metadata an interrupted turn's message ends with (its turn and model kept).
pub fn interrupted_metadata(streaming: &Value) -> Value {
    json!({
        "turn_id": streaming["turn_id"],
        "model": streaming["model"],
        "status": "failed",
        "error": {"code": INTERRUPTED, "message": INTERRUPTED_MESSAGE},
    })
}

impl ChatService {
    /// Sweeps until `shutdown` (with Redis). Alone, sweeps once, after `drain`: a previous
    /// process of this deployment may still be finishing its turns for its shutdown grace.
    pub async fn sweep_orphans(self: Arc<Self>, shutdown: CancellationToken, drain: Duration) {
        let me = self
            .bus
            .instance()
            .unwrap_or_else(uuid::Uuid::new_v4)
            .to_string();
        let shared = self.live.shared();
        if !shared {
            tokio::select! {
                _ = shutdown.cancelled() => return,
                _ = tokio::time::sleep(drain + SWEEP) => {}
            }
        }
        let mut suspects: HashMap<(SessionId, String), Instant> = HashMap::new();
        let mut tick = tokio::time::interval(SWEEP);
        loop {
            tokio::select! {
                _ = shutdown.cancelled() => return,
                _ = tick.tick() => {}
            }
            if !self.live.lead_janitor(&me, SWEEP * 3).await {
                suspects.clear();
                continue;
            }
            suspects = self.sweep(&suspects, shared).await;
            if !shared {
                return;
            }
        }
    }

    /// One sweep: ends what has been orphaned for its grace; returns the suspects still
    /// waiting it out.
    async fn sweep(
        &self,
        suspects: &HashMap<(SessionId, String), Instant>,
        shared: bool,
    ) -> HashMap<(SessionId, String), Instant> {
        let streaming = match self.store.streaming_messages(BATCH).await {
            Ok(s) => s,
            Err(e) => {
                tracing::debug!(error = %e, "orphan sweep could not read the store");
                return suspects.clone();
            }
        };
        let grace = if shared { GRACE } else { Duration::ZERO };
        let mut still = HashMap::new();
        for (session, m) in streaming {
            let holder = match self.live.liveness(&session.to_string(), &m.id).await {
                Liveness::Running | Liveness::Unknown => continue,
                Liveness::Unclaimed => None,
                Liveness::HolderDead { holder } => Some(holder),
            };
            let key = (session, m.id.clone());
            let since = suspects.get(&key).copied().unwrap_or_else(Instant::now);
            if since.elapsed() >= grace {
                self.end_orphan(session, &m, holder).await;
            } else {
                still.insert(key, since);
            }
        }
        still
    }

    /// Ends `m` as interrupted (if it still streams) and tells the session. The session is
    /// claimed meanwhile (after freeing a dead holder's claim), so a `chat.send` then gets
    /// `turn_active` instead of racing this ending into its own first change; one that
    /// claimed first ends the orphan itself.
    async fn end_orphan(&self, session: SessionId, m: &Message, holder: Option<String>) {
        if let Some(h) = holder {
            self.live.release_dead(&session.to_string(), &h).await;
        }
        let janitor = LiveTurn {
            turn_id: uuid::Uuid::now_v7(),
            session: session.to_string(),
            message_id: m.id.clone(),
            model: String::new(),
            instance: self.bus.instance(),
        };
        if !self.live.claim(&janitor, CancellationToken::new()).await {
            return;
        }
        self.write_interrupted(session, m).await;
        self.live.release(&janitor).await;
    }

    async fn write_interrupted(&self, session: SessionId, m: &Message) {
        let turn = m.metadata["turn_id"]
            .as_str()
            .and_then(|t| t.parse::<uuid::Uuid>().ok());
        // What other instances heard of the turn may reach past its last save.
        let heard = match turn {
            Some(t) => {
                self.bus
                    .delta_content(&format!("session:{session}"), t)
                    .await
            }
            None => None,
        };
        let (content, index) = heard
            .filter(|(c, _)| c.starts_with(&m.content))
            .unwrap_or_else(|| (m.content.clone(), 0));
        let owner = match self.store.session(session).await {
            Ok(Some(s)) => s.owner_id,
            _ => return,
        };
        let mutation = Mutation {
            client_id: format!("~reap-{}", m.id),
            mutation_id: 1,
            hlc: self.sync.server_hlc(),
            ops: vec![Op::StreamEnd {
                message_id: m.id.clone(),
                content,
                metadata: interrupted_metadata(&m.metadata),
            }],
        };
        match self.sync.push_server(owner, session, mutation).await {
            Ok((MutationResult::Applied { .. }, _)) => {
                metrics::counter!("chat_turns_interrupted_total").increment(1);
                tracing::info!(%session, message = %m.id, "ended a turn its instance left streaming");
                if let Some(turn_id) = turn {
                    let channel = format!("session:{session}");
                    let frame = event_frame(
                        &channel,
                        &ServerEvent::ChatError {
                            turn_id,
                            message_id: &m.id,
                            index,
                            code: INTERRUPTED,
                            message: INTERRUPTED_MESSAGE,
                        },
                    );
                    self.bus.publish(&channel, frame).await;
                }
            }
            Ok(_) => {} // it ended meanwhile
            Err(e) => tracing::warn!(error = %e, %session, "could not end an orphaned turn"),
        }
    }
}
