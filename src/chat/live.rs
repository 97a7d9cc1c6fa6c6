//! The chat turns running now: one per session, claimed through a lease (`bus::Lease`: in
//! this process, and in Redis when instances share it), with each running turn's cancel token
//! and its content so far. `chat.cancel` reaches the instance running the turn through the
//! bus's inbox and lands here; a subscriber joining mid-turn reads the turn from here (this
//! instance's copy first, so a turn running here never depends on Redis) and gets every delta
//! after what it read.

use crate::bus::{Bus, Lease};
use dashmap::DashMap;
use serde::{Deserialize, Serialize};
use std::{sync::Arc, time::Duration};
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;
use uuid::Uuid;

/// What identifies a running turn; it holds its session's lease.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LiveTurn {
    pub turn_id: Uuid,
    pub session: String,
    pub message_id: String,
    pub model: String,
}

/// A running turn as a subscriber first sees it: the content up to delta `index`.
#[derive(Debug, Clone, Serialize)]
pub struct TurnView {
    pub turn_id: Uuid,
    pub message_id: String,
    pub model: String,
    pub index: u64,
    pub content: String,
}

/// A claim lives this long without its turn refreshing it (a crashed instance's turn frees
/// its session).
pub const TURN_TTL: Duration = Duration::from_secs(30);

/// A turn running on this instance.
struct Running {
    turn: LiveTurn,
    cancel: CancellationToken,
    content: String,
    index: u64,
}

/// Owned by `ChatService` (and the task serving cancels from the bus); lives as long as the
/// server. A turn is in it from its claim to its release.
pub struct LiveTurns {
    bus: Arc<dyn Bus>,
    /// Turns running here, by session (one each).
    here: DashMap<String, Running>,
    /// Sessions' claims every instance sees, when Redis is configured (alone, `here` is the
    /// whole truth).
    shared: Option<Box<dyn Lease>>,
}

fn session_lease(session: &str) -> String {
    format!("turn:s:{session}")
}

fn turn_lease(turn: Uuid) -> String {
    format!("turn:t:{turn}")
}

impl LiveTurns {
    pub fn new(bus: Arc<dyn Bus>, shared: Option<Box<dyn Lease>>) -> Self {
        Self {
            bus,
            here: DashMap::new(),
            shared,
        }
    }

    /// Turns running on this instance.
    pub fn running_here(&self) -> usize {
        self.here.len()
    }

    /// Claims `turn.session` for `turn`; false when another turn holds it. Redis being away
    /// does not stop a turn here (this instance's claim stands).
    pub async fn claim(&self, turn: &LiveTurn, cancel: CancellationToken) -> bool {
        match self.here.entry(turn.session.clone()) {
            dashmap::Entry::Occupied(_) => return false,
            dashmap::Entry::Vacant(v) => {
                v.insert(Running {
                    turn: turn.clone(),
                    cancel,
                    content: String::new(),
                    index: 0,
                });
            }
        }
        let (Some(lease), Ok(me)) = (self.shared.as_deref(), serde_json::to_string(turn)) else {
            return true;
        };
        match lease
            .claim(&session_lease(&turn.session), &me, TURN_TTL)
            .await
        {
            Ok(false) => {
                self.here.remove(&turn.session);
                return false;
            }
            Ok(true) => {}
            Err(e) => tracing::warn!(error = %e, "turn claim not recorded in redis"),
        }
        let _ = lease
            .claim(&turn_lease(turn.turn_id), &turn.session, TURN_TTL)
            .await;
        true
    }

    /// Keeps a running turn's claim alive, and its content for other instances.
    pub async fn refresh(&self, turn: &LiveTurn) {
        self.bus.keep_deltas(turn.turn_id).await;
        let (Some(lease), Ok(me)) = (self.shared.as_deref(), serde_json::to_string(turn)) else {
            return;
        };
        match lease
            .refresh(&session_lease(&turn.session), &me, TURN_TTL)
            .await
        {
            Ok(true) => {}
            Ok(false) => tracing::warn!(turn = %turn.turn_id, "turn claim lost; it expired"),
            Err(e) => return tracing::warn!(error = %e, "turn claim not refreshed"),
        }
        let _ = lease
            .refresh(&turn_lease(turn.turn_id), &turn.session, TURN_TTL)
            .await;
    }

    /// The turn ended: its deltas are out first, then the session is free, then what other
    /// instances read of its content goes (a reader finds the claim before the content, so it
    /// never sees a turn without its content).
    pub async fn release(&self, turn: &LiveTurn) {
        self.bus.flush_deltas(turn.turn_id).await;
        self.here
            .remove_if(&turn.session, |_, r| r.turn.turn_id == turn.turn_id);
        if let (Some(lease), Ok(me)) = (self.shared.as_deref(), serde_json::to_string(turn)) {
            if let Err(e) = lease.release(&session_lease(&turn.session), &me, &[]).await {
                tracing::warn!(error = %e, "turn claim not released; it expires on its own");
            }
            let _ = lease
                .release(&turn_lease(turn.turn_id), &turn.session, &[])
                .await;
        }
        self.bus.end_deltas(turn.turn_id).await;
    }

    /// Adds delta `index` to this instance's copy of the content. Called before the delta is
    /// published: whoever reads the content after subscribing gets every delta past it.
    pub fn append(&self, turn: &LiveTurn, index: u64, text: &str) {
        if let Some(mut r) = self.here.get_mut(&turn.session) {
            if r.turn.turn_id == turn.turn_id {
                r.content.push_str(text);
                r.index = index;
            }
        }
    }

    /// The running turn of `session`, with its content so far (from another instance's
    /// deltas in Redis when it runs elsewhere).
    pub async fn view(&self, session: &str) -> Option<TurnView> {
        if let Some(r) = self.here.get(session) {
            return Some(TurnView {
                turn_id: r.turn.turn_id,
                message_id: r.turn.message_id.clone(),
                model: r.turn.model.clone(),
                index: r.index,
                content: r.content.clone(),
            });
        }
        let shared = self.shared.as_deref()?;
        let raw = shared.holder(&session_lease(session)).await.ok()??;
        let t: LiveTurn = serde_json::from_str(&raw).ok()?;
        let (content, index) = self.bus.delta_content(t.turn_id).await?;
        Some(TurnView {
            turn_id: t.turn_id,
            message_id: t.message_id,
            model: t.model,
            index,
            content,
        })
    }

    /// The session of a running turn, on any instance (for `chat.cancel`).
    pub async fn session_of(&self, turn: Uuid) -> Option<String> {
        if let Some(r) = self.here.iter().find(|r| r.turn.turn_id == turn) {
            return Some(r.key().clone());
        }
        self.shared
            .as_deref()?
            .holder(&turn_lease(turn))
            .await
            .ok()?
    }

    /// Stops `turn` if it runs here; true if it did.
    pub fn cancel(&self, turn: Uuid) -> bool {
        match self.here.iter().find(|r| r.turn.turn_id == turn) {
            Some(r) => {
                r.cancel.cancel();
                true
            }
            None => false,
        }
    }

    /// Cancels arriving from other instances, until `shutdown`.
    pub async fn serve_cancels(
        self: Arc<Self>,
        mut rx: mpsc::Receiver<Uuid>,
        shutdown: CancellationToken,
    ) {
        loop {
            tokio::select! {
                _ = shutdown.cancelled() => return,
                turn = rx.recv() => match turn {
                    Some(turn) => { self.cancel(turn); }
                    None => return,
                },
            }
        }
    }
}
