//! Healing version gaps: an instance that misses a `sync.change` on the bus (a lost pub/sub
//! message) fills it from the change log before later changes are released, or asks its
//! subscribers to resync when the log no longer reaches back.

use super::service::{change_frame, SyncService};
use crate::{
    domain::SessionId,
    hub::Gap,
    protocol::{event_frame, ServerEvent},
    store::CatchUp,
};
use futures::StreamExt;
use std::{collections::HashMap, sync::Arc, time::Duration};
use tokio::{sync::mpsc, time::Instant};
use tokio_util::sync::CancellationToken;

/// How long a gap may stay open before the change log is asked (the missing frame may just be
/// late).
const GAP_GRACE: Duration = Duration::from_millis(100);
/// Change-log reads at once while healing.
const HEAL_CONCURRENCY: usize = 4;
/// How soon a gap the store could not fill is tried again.
const RETRY: Duration = Duration::from_secs(1);

impl SyncService {
    /// Subscribers of `channel` re-subscribe with their `since` (one catch-up each) instead of
    /// getting versions up to `version` here, which this instance stops waiting for.
    fn resync(&self, channel: &str, version: u64) {
        metrics::counter!("sync_resyncs_total").increment(1);
        let resync = ServerEvent::SyncResync { version };
        self.hub()
            .deliver_after_catch_up(channel, &event_frame(channel, &resync));
        self.hub().skip_to(channel, version);
    }

    /// Fills gaps the hub reports, from the change log. Runs until `shutdown`.
    ///
    /// Frames of one session often arrive a moment out of order (a local commit's and another
    /// instance's), and each one past a hole reports it again: reports are merged per channel
    /// and each channel waits out `GAP_GRACE` on its own timer, so a burst of them costs one
    /// check after the grace, never one wait after another.
    pub async fn heal_gaps(
        self: Arc<Self>,
        mut gaps: mpsc::Receiver<Gap>,
        shutdown: CancellationToken,
    ) {
        let me: &Self = &self;
        let mut waiting: HashMap<Arc<str>, (Gap, Instant)> = HashMap::new();
        loop {
            let due = waiting.values().map(|(_, at)| *at).min();
            let timer = async {
                match due {
                    Some(at) => tokio::time::sleep_until(at).await,
                    None => std::future::pending().await,
                }
            };
            tokio::select! {
                _ = shutdown.cancelled() => return,
                g = gaps.recv() => {
                    let Some(g) = g else { return };
                    // A tail (the bus was away) has no late frame to wait for.
                    let at = Instant::now() + if g.to == u64::MAX { Duration::ZERO } else { GAP_GRACE };
                    waiting
                        .entry(g.channel.clone())
                        .and_modify(|(w, when)| {
                            w.from = w.from.min(g.from);
                            w.to = w.to.max(g.to);
                            *when = (*when).min(at);
                        })
                        .or_insert((g, at));
                }
                _ = timer => {
                    let now = Instant::now();
                    let ready: Vec<Arc<str>> = waiting
                        .iter()
                        .filter(|(_, (_, at))| *at <= now)
                        .map(|(c, _)| c.clone())
                        .collect();
                    let ready: Vec<Gap> = ready
                        .into_iter()
                        .filter_map(|c| waiting.remove(&c).map(|(g, _)| g))
                        .collect();
                    // A few reads at a time (after a Redis restart every channel asks at once);
                    // what the store could not answer is tried again a moment later.
                    let failed: Vec<Gap> = futures::stream::iter(ready)
                        .map(|gap| async move { (!me.heal(gap.clone()).await).then_some(gap) })
                        .buffer_unordered(HEAL_CONCURRENCY)
                        .filter_map(std::future::ready)
                        .collect()
                        .await;
                    for gap in failed {
                        waiting.entry(gap.channel.clone()).or_insert((gap, Instant::now() + RETRY));
                    }
                }
            }
        }
    }

    /// Reads what is still missing of `gap` from the change log and releases it in order;
    /// false when the store could not answer (try again).
    async fn heal(&self, gap: Gap) -> bool {
        // What arrived meanwhile needs no reading; nothing is there without subscribers.
        let Some(next) = self.hub().next_version(&gap.channel) else {
            return true;
        };
        let from = gap.from.max(next);
        if from >= gap.to {
            return true;
        }
        tracing::debug!(channel = %gap.channel, from, to = gap.to, "healing a version gap");
        let Some(session) = gap
            .channel
            .strip_prefix("session:")
            .and_then(|s| s.parse::<SessionId>().ok())
        else {
            return true;
        };
        match self
            .store()
            .catch_up(session, from - 1, self.catch_up_limit())
            .await
        {
            Ok(Some(CatchUp::Changes { changes, .. })) => {
                let missing: Vec<_> = changes.iter().filter(|c| c.version < gap.to).collect();
                let Some(last) = missing.last().map(|c| c.version) else {
                    return true;
                };
                metrics::counter!("sync_gaps_healed_total").increment(1);
                if missing.len() > self.config.heal_max_frames {
                    // Replayed frame by frame, this would fill subscribers' queues.
                    self.resync(&gap.channel, last);
                    return true;
                }
                for c in missing {
                    self.hub().deliver_versioned(
                        &gap.channel,
                        c.version,
                        change_frame(&gap.channel, c),
                    );
                }
            }
            Ok(Some(CatchUp::Snapshot(s, _))) => {
                tracing::warn!(channel = %gap.channel, "gap older than the change log; asking clients to resync");
                self.resync(&gap.channel, s.version);
            }
            Ok(None) => {}
            Err(e) => {
                tracing::warn!(error = %e, "could not heal a version gap; trying again");
                return false;
            }
        }
        true
    }
}
