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
    /// The instance running it (its bus id), so others can tell when it died with the turn.
    #[serde(default)]
    pub instance: Option<Uuid>,
}

/// Whether a streaming message's turn still runs, as far as this instance can tell.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Liveness {
    /// Its turn runs here, or on an instance that still heartbeats.
    Running,
    /// No claim names it (expired, or another turn holds the session).
    Unclaimed,
    /// Claimed by an instance that stopped heartbeating; `holder` is the claim as stored.
    HolderDead { holder: String },
    /// Redis could not be asked: decide nothing.
    Unknown,
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

/// The hub channel of a session (turns name their session by its id).
fn channel_of(session: &str) -> String {
    format!("session:{session}")
}

/// The lease of the instance sweeping for orphaned turns.
const JANITOR: &str = "turn:janitor";

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
        self.bus
            .keep_deltas(&channel_of(&turn.session), turn.turn_id)
            .await;
        let (Some(lease), Ok(me)) = (self.shared.as_deref(), serde_json::to_string(turn)) else {
            return;
        };
        let name = session_lease(&turn.session);
        match lease.refresh(&name, &me, TURN_TTL).await {
            Ok(true) => {}
            // Gone (a Redis restart keeps nothing): claimed again, so no other instance takes
            // this running turn for a dead one. Taken meanwhile by another turn: it stays lost.
            Ok(false) => match lease.claim(&name, &me, TURN_TTL).await {
                Ok(true) => {
                    tracing::info!(turn = %turn.turn_id, "turn claim was gone; claimed again")
                }
                _ => tracing::warn!(turn = %turn.turn_id, "turn claim lost to another turn"),
            },
            Err(e) => return tracing::warn!(error = %e, "turn claim not refreshed"),
        }
        let turn_name = turn_lease(turn.turn_id);
        if let Ok(false) = lease.refresh(&turn_name, &turn.session, TURN_TTL).await {
            let _ = lease.claim(&turn_name, &turn.session, TURN_TTL).await;
        }
    }

    /// Whether the turn streaming `message_id` in `session` still runs somewhere.
    pub async fn liveness(&self, session: &str, message_id: &str) -> Liveness {
        if self
            .here
            .get(session)
            .is_some_and(|r| r.turn.message_id == message_id)
        {
            return Liveness::Running;
        }
        let Some(lease) = self.shared.as_deref() else {
            return Liveness::Unclaimed; // alone, this instance is the whole truth
        };
        let raw = match lease.holder(&session_lease(session)).await {
            Ok(Some(raw)) => raw,
            Ok(None) => return Liveness::Unclaimed,
            Err(_) => return Liveness::Unknown,
        };
        let Ok(holder) = serde_json::from_str::<LiveTurn>(&raw) else {
            return Liveness::Unknown;
        };
        if holder.message_id != message_id {
            return Liveness::Unclaimed;
        }
        match holder.instance {
            Some(i) => match self.bus.instance_alive(i).await {
                Some(false) => Liveness::HolderDead { holder: raw },
                Some(true) => Liveness::Running,
                None => Liveness::Unknown,
            },
            None => Liveness::Running,
        }
    }

    /// Frees a session whose claim is `holder`'s (a dead instance's turn), so the next
    /// `chat.send` need not wait for the claim to expire.
    pub async fn release_dead(&self, session: &str, holder: &str) {
        let Some(lease) = self.shared.as_deref() else {
            return;
        };
        if let Ok(t) = serde_json::from_str::<LiveTurn>(holder) {
            let _ = lease.release(&turn_lease(t.turn_id), &t.session, &[]).await;
        }
        let _ = lease.release(&session_lease(session), holder, &[]).await;
    }

    /// Whether this instance is the one sweeping for orphaned turns now (one at a time across
    /// instances sharing Redis; alone, always).
    pub async fn lead_janitor(&self, me: &str, ttl: Duration) -> bool {
        let Some(lease) = self.shared.as_deref() else {
            return true;
        };
        match lease.refresh(JANITOR, me, ttl).await {
            Ok(true) => true,
            Ok(false) => lease.claim(JANITOR, me, ttl).await.unwrap_or(false),
            Err(_) => false,
        }
    }

    /// Whether instances share claims (Redis): a claim can then be missing for a while without
    /// its turn being dead (a Redis restart, until the turn's next refresh).
    pub fn shared(&self) -> bool {
        self.shared.is_some()
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
        self.bus
            .end_deltas(&channel_of(&turn.session), turn.turn_id)
            .await;
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
        let (content, index) = self
            .bus
            .delta_content(&channel_of(session), t.turn_id)
            .await?;
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
