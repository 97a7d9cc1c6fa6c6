//! The chat turns running on this instance, by turn id: cancelling a turn's token stops it.
//! `chat.cancel` reaches the instance running the turn through the bus (its `Inbox`); this
//! table is where it lands. Owned by `ChatService`; a turn is in it from its start to its end.

use dashmap::DashMap;
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;
use uuid::Uuid;

/// Owned by `ChatService` (and the task serving cancels from the bus); lives as long as the
/// server.
#[derive(Default)]
pub struct LiveTurns {
    running: DashMap<Uuid, CancellationToken>,
}

impl LiveTurns {
    pub fn register(&self, turn: Uuid, cancel: CancellationToken) {
        self.running.insert(turn, cancel);
    }

    pub fn unregister(&self, turn: Uuid) {
        self.running.remove(&turn);
    }

    /// Stops `turn` if it runs here; true if it did.
    pub fn cancel(&self, turn: Uuid) -> bool {
        match self.running.get(&turn) {
            Some(t) => {
                t.cancel();
                true
            }
            None => false,
        }
    }

    /// Cancels arriving from other instances, until `shutdown`.
    pub async fn serve_cancels(
        self: std::sync::Arc<Self>,
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
