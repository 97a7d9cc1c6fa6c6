//! Usage records go through a bounded queue to one writer that inserts them in batches: one
//! insert per completion would cap the completion rate at the database's commit rate. After a
//! batch's first record the writer waits `llm.usage_flush_ms` for more, so a busy server
//! commits a few times a second instead of once per handful of requests.

use crate::store::{Store, UsageRecord};
use std::{sync::Arc, time::Duration};
use tokio::sync::mpsc;
use tokio_util::{sync::CancellationToken, task::TaskTracker};

/// Records waiting to be written; past this the newest are counted as dropped and logged.
const QUEUE: usize = 65_536;
const BATCH: usize = 1_000;

/// Writes usage records in batches from a bounded queue, off the request path. Owned by
/// `Completions`; its writer task drains what is queued and ends at shutdown.
pub struct UsageRecorder {
    tx: mpsc::Sender<UsageRecord>,
}

impl UsageRecorder {
    /// Starts the writer; it drains what is queued when `shutdown` fires, then stops.
    pub fn start(
        store: Arc<dyn Store>,
        flush: Duration,
        shutdown: CancellationToken,
        tracker: &TaskTracker,
    ) -> Self {
        let (tx, rx) = mpsc::channel(QUEUE);
        tracker.spawn(write(store, rx, flush, shutdown, tracker.clone()));
        Self { tx }
    }

    pub fn record(&self, rec: UsageRecord) {
        metrics::counter!("llm_tokens_total", "kind" => "prompt").increment(rec.prompt_tokens);
        metrics::counter!("llm_tokens_total", "kind" => "completion")
            .increment(rec.completion_tokens);
        if self.tx.try_send(rec).is_err() {
            metrics::counter!("usage_records_dropped_total").increment(1);
            tracing::error!("usage queue full: a usage record was dropped");
        }
    }
}

/// How often, once shutdown began, the writer looks whether the rest of the server is done.
const LINGER: Duration = Duration::from_millis(50);

/// Writes batches until shutdown, then goes on while requests and turns still finishing record
/// usage: it stops once the HTTP server has drained (the tracker is closed), it is the last
/// tracked task and nothing is queued.
async fn write(
    store: Arc<dyn Store>,
    mut rx: mpsc::Receiver<UsageRecord>,
    flush: Duration,
    shutdown: CancellationToken,
    tracker: TaskTracker,
) {
    let mut batch = Vec::with_capacity(BATCH);
    loop {
        if shutdown.is_cancelled() {
            tokio::select! {
                n = rx.recv_many(&mut batch, BATCH) => if n == 0 { return },
                _ = tokio::time::sleep(LINGER) => {
                    if rx.is_empty() && tracker.is_closed() && tracker.len() <= 1 {
                        return;
                    }
                }
            }
        } else {
            tokio::select! {
                n = rx.recv_many(&mut batch, BATCH) => {
                    if n == 0 {
                        return;
                    }
                    gather(&mut rx, &mut batch, flush, &shutdown).await;
                }
                _ = shutdown.cancelled() => {}
            }
        }
        if !batch.is_empty() {
            commit(store.as_ref(), &batch, &shutdown).await;
            batch.clear();
        }
    }
}

/// A failed batch is kept and retried: records are only lost if the queue overflows, or the
/// store still fails once shutdown began.
async fn commit(store: &dyn Store, batch: &[UsageRecord], shutdown: &CancellationToken) {
    let mut delay = Duration::from_millis(100);
    loop {
        match store.record_usage(batch).await {
            Ok(()) => return,
            Err(e) if !shutdown.is_cancelled() => {
                tracing::warn!(error = %e, n = batch.len(), "usage batch not written; retrying");
                tokio::time::sleep(delay).await;
                delay = (delay * 2).min(Duration::from_secs(5));
            }
            Err(e) => {
                tracing::error!(error = %e, n = batch.len(), "usage batch lost at shutdown");
                return;
            }
        }
    }
}

/// Adds what arrives within `flush` (or until the batch is full, or shutdown) to `batch`.
async fn gather(
    rx: &mut mpsc::Receiver<UsageRecord>,
    batch: &mut Vec<UsageRecord>,
    flush: Duration,
    shutdown: &CancellationToken,
) {
    let deadline = tokio::time::sleep(flush);
    tokio::pin!(deadline);
    while batch.len() < BATCH {
        let room = BATCH - batch.len();
        tokio::select! {
            n = rx.recv_many(batch, room) => if n == 0 { return },
            _ = &mut deadline => return,
            _ = shutdown.cancelled() => return,
        }
    }
}
