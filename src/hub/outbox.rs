//! A connection's bounded send queue as the hub sees it.

use crate::protocol::CloseCode;
use axum::extract::ws::Utf8Bytes;
use std::sync::OnceLock;
use tokio::sync::mpsc::{self, error::TrySendError};
use tokio_util::sync::CancellationToken;

/// Created by the connection actor, shared with the hub for every channel it joins; dropped
/// when the connection ends and the hub has let go of it.
pub struct Outbox {
    id: u64,
    tx: mpsc::Sender<Utf8Bytes>,
    closing: CancellationToken,
    reason: OnceLock<CloseCode>,
}

impl Outbox {
    pub fn new(id: u64, tx: mpsc::Sender<Utf8Bytes>) -> Self {
        Self {
            id,
            tx,
            closing: CancellationToken::new(),
            reason: OnceLock::new(),
        }
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
