//! A connection's bounded send queue as the hub sees it.

use crate::protocol::CloseCode;
use axum::extract::ws::Utf8Bytes;
use std::{
    collections::HashMap,
    sync::{Mutex, OnceLock},
};
use tokio::sync::mpsc::{self, error::TrySendError};
use tokio_util::sync::CancellationToken;

/// Created by the connection actor, shared with the hub for every channel it joins; dropped
/// when the connection ends and the hub has let go of it.
pub struct Outbox {
    id: u64,
    tx: mpsc::Sender<Utf8Bytes>,
    closing: CancellationToken,
    reason: OnceLock<CloseCode>,
    /// Per session channel: versioned frames held while the subscriber catches up, then the
    /// last version it has, so catch-up and live stream meet with no gap and no duplicate.
    gates: Mutex<HashMap<String, Gate>>,
    /// The authenticated user, set once after authentication (for evictions).
    user: OnceLock<String>,
    /// The API key the connection authenticated with, if any (closed when it is revoked).
    api_key: OnceLock<uuid::Uuid>,
    /// The sign-in (refresh family) its access token came from (closed when it is revoked);
    /// `auth.refresh` may move it to another sign-in of the same user.
    session: Mutex<Option<uuid::Uuid>>,
    /// Channels the server removed this connection from (membership revoked), for the
    /// connection actor to forget.
    evicted: Mutex<Vec<String>>,
    eviction: tokio::sync::Notify,
}

/// A chat turn's delta floor: this subscriber's catch-up reply already held the turn's content
/// up to `index`, so deltas at or below it are dropped.
pub type Floor = (uuid::Uuid, u64);

enum Held {
    Versioned(u64, Utf8Bytes),
    Delta(uuid::Uuid, u64, Utf8Bytes),
    /// Sent after the reply as it is (a `sync.resync`).
    Plain(Utf8Bytes),
}

enum Gate {
    CatchingUp(Vec<Held>),
    Live { have: u64, floor: Option<Floor> },
}

impl Outbox {
    pub fn new(id: u64, tx: mpsc::Sender<Utf8Bytes>) -> Self {
        Self {
            id,
            tx,
            closing: CancellationToken::new(),
            reason: OnceLock::new(),
            gates: Mutex::new(HashMap::new()),
            user: OnceLock::new(),
            api_key: OnceLock::new(),
            session: Mutex::new(None),
            evicted: Mutex::new(Vec::new()),
            eviction: tokio::sync::Notify::new(),
        }
    }

    pub fn set_user(&self, user: String, api_key: Option<uuid::Uuid>, session: Option<uuid::Uuid>) {
        let _ = self.user.set(user);
        if let Some(k) = api_key {
            let _ = self.api_key.set(k);
        }
        self.set_session(session);
    }

    pub fn set_session(&self, session: Option<uuid::Uuid>) {
        *self
            .session
            .lock()
            .expect("lock is never held across a panic") = session;
    }

    pub fn session(&self) -> Option<uuid::Uuid> {
        *self
            .session
            .lock()
            .expect("lock is never held across a panic")
    }

    pub fn api_key(&self) -> Option<uuid::Uuid> {
        self.api_key.get().copied()
    }

    pub fn user(&self) -> Option<&str> {
        self.user.get().map(String::as_str)
    }

    /// Records that the hub dropped this connection from `channel`.
    pub fn mark_evicted(&self, channel: &str) {
        self.forget_channel(channel);
        self.evicted
            .lock()
            .expect("lock is never held across a panic")
            .push(channel.to_owned());
        self.eviction.notify_one();
    }

    pub fn take_evicted(&self) -> Vec<String> {
        std::mem::take(
            &mut *self
                .evicted
                .lock()
                .expect("lock is never held across a panic"),
        )
    }

    /// Resolves when the connection was evicted from a channel.
    pub async fn evicted(&self) {
        self.eviction.notified().await
    }

    pub fn id(&self) -> u64 {
        self.id
    }

    /// Queues a frame without waiting. A full queue closes the connection as a slow consumer:
    /// it is never allowed to grow or to hold up the publisher.
    pub fn push(&self, frame: Utf8Bytes) -> bool {
        match self.tx.try_send(frame) {
            Ok(()) => true,
            Err(TrySendError::Full(_)) => {
                if self.close(CloseCode::SlowConsumer) {
                    metrics::counter!("ws_slow_consumer_closes_total").increment(1);
                }
                false
            }
            Err(TrySendError::Closed(_)) => false,
        }
    }

    /// A versioned (sync) frame: held while this subscriber catches up on `channel`, dropped
    /// when it already has that version.
    pub fn push_versioned(&self, channel: &str, version: u64, frame: Utf8Bytes) -> bool {
        self.push_through_gate(
            channel,
            frame,
            |f| Held::Versioned(version, f),
            |gate| match gate {
                Some(Gate::Live { have, .. }) if version <= *have => false,
                Some(Gate::Live { have, .. }) => {
                    *have = version;
                    true
                }
                _ => true,
            },
        )
    }

    /// A chat delta (`index` within `turn`): held while catching up, dropped when the
    /// catch-up reply already carried it.
    pub fn push_delta(
        &self,
        channel: &str,
        turn: uuid::Uuid,
        index: u64,
        frame: Utf8Bytes,
    ) -> bool {
        self.push_through_gate(
            channel,
            frame,
            |f| Held::Delta(turn, index, f),
            |gate| {
                !matches!(gate, Some(Gate::Live { floor: Some((t, f)), .. }) if *t == turn && index <= *f)
            },
        )
    }

    /// A frame about `channel` that must follow the subscribe reply: held while catching up.
    pub fn push_gated(&self, channel: &str, frame: Utf8Bytes) -> bool {
        self.push_through_gate(channel, frame, Held::Plain, |_| true)
    }

    /// The one way a frame passes `channel`'s gate: held (as `held` makes it) while the
    /// subscriber catches up, the subscriber closed when its hold is full; otherwise queued if
    /// `deliver` says so with the gate (if any), under the gate lock so a catch-up's release
    /// cannot overtake it.
    fn push_through_gate(
        &self,
        channel: &str,
        frame: Utf8Bytes,
        held: impl FnOnce(Utf8Bytes) -> Held,
        deliver: impl FnOnce(Option<&mut Gate>) -> bool,
    ) -> bool {
        let mut gates = self
            .gates
            .lock()
            .expect("gate lock is never held across a panic");
        match gates.get_mut(channel) {
            Some(Gate::CatchingUp(hold)) => {
                if hold.len() >= self.tx.max_capacity() {
                    drop(gates);
                    self.close(CloseCode::SlowConsumer);
                    return false;
                }
                hold.push(held(frame));
                true
            }
            gate => !deliver(gate) || self.push(frame),
        }
    }

    /// Sets the delta floor of a channel that is already live (a re-subscribe mid-turn).
    pub fn set_floor(&self, channel: &str, floor: Option<Floor>) {
        if let Some(Gate::Live { floor: f, .. }) = self
            .gates
            .lock()
            .expect("gate lock is never held across a panic")
            .get_mut(channel)
        {
            *f = floor;
        }
    }

    /// Starts holding `channel`'s versioned frames (call before joining the hub channel).
    pub fn begin_catch_up(&self, channel: &str) {
        self.gates
            .lock()
            .expect("gate lock is never held across a panic")
            .insert(channel.to_owned(), Gate::CatchingUp(Vec::new()));
    }

    /// Puts `frames` (versions older than any held, in order) before what `channel` holds
    /// while catching up: versions the hub released before this subscriber joined it but
    /// after what its catch-up read. False when the channel is no longer catching up.
    pub fn prepend_held(&self, channel: &str, frames: Vec<(u64, Utf8Bytes)>) -> bool {
        let mut gates = self
            .gates
            .lock()
            .expect("gate lock is never held across a panic");
        let Some(Gate::CatchingUp(held)) = gates.get_mut(channel) else {
            return false;
        };
        let older = frames.into_iter().map(|(v, f)| Held::Versioned(v, f));
        held.splice(0..0, older);
        true
    }

    /// Queues `reply` (which carries everything up to `version`, and the live turn's content
    /// up to `floor`), then the held frames after it, then goes live. False (and nothing
    /// queued) when the channel was taken away meanwhile (evicted: membership revoked while the
    /// catch-up was read).
    pub fn end_catch_up(
        &self,
        channel: &str,
        version: u64,
        floor: Option<Floor>,
        reply: Utf8Bytes,
    ) -> bool {
        let mut gates = self
            .gates
            .lock()
            .expect("gate lock is never held across a panic");
        let held = match gates.get_mut(channel) {
            Some(Gate::CatchingUp(h)) => std::mem::take(h),
            _ => return false,
        };
        self.push(reply);
        let mut have = version;
        for h in held {
            match h {
                Held::Versioned(v, f) if v > have => {
                    have = v;
                    self.push(f);
                }
                Held::Delta(t, i, f) if floor.is_none_or(|(ft, fi)| ft != t || i > fi) => {
                    self.push(f);
                }
                Held::Plain(f) => {
                    self.push(f);
                }
                _ => {}
            }
        }
        gates.insert(channel.to_owned(), Gate::Live { have, floor });
        true
    }

    pub fn forget_channel(&self, channel: &str) {
        self.gates
            .lock()
            .expect("gate lock is never held across a panic")
            .remove(channel);
    }

    /// Asks the connection to close with `code`; the first reason wins. True if this call set it.
    pub fn close(&self, code: CloseCode) -> bool {
        let first = self.reason.set(code).is_ok();
        self.closing.cancel();
        first
    }

    pub fn closed_with(&self) -> Option<CloseCode> {
        self.reason.get().copied()
    }

    /// Resolves once `close` has been called.
    pub async fn closing(&self) {
        self.closing.cancelled().await
    }

    pub fn queued(&self) -> usize {
        self.tx.max_capacity() - self.tx.capacity()
    }
}
