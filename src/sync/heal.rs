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
use std::{sync::Arc, time::Duration};
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

/// How long a gap may stay open before the change log is asked (the missing frame may just be
/// late).
const GAP_GRACE: Duration = Duration::from_millis(100);

impl SyncService {
    /// Subscribers of `channel` re-subscribe with their `since` (one catch-up each) instead of
    /// getting versions up to `version` here, which this instance stops waiting for.
    fn resync(&self, channel: &str, version: u64) {
        metrics::counter!("sync_resyncs_total").increment(1);
        let resync = ServerEvent::SyncResync { version };
        self.hub().deliver(channel, &event_frame(channel, &resync));
        self.hub().skip_to(channel, version);
    }

    /// Fills gaps the hub reports, from the change log. Runs until `shutdown`.
    pub async fn heal_gaps(
        self: Arc<Self>,
        mut gaps: mpsc::Receiver<Gap>,
        shutdown: CancellationToken,
    ) {
        loop {
            let gap = tokio::select! {
                _ = shutdown.cancelled() => return,
                g = gaps.recv() => match g { Some(g) => g, None => return },
            };
            let tail = gap.to == u64::MAX;
            if !tail {
                tokio::time::sleep(GAP_GRACE).await;
            }
            if !tail
                && self
                    .hub()
                    .next_version(&gap.channel)
                    .is_some_and(|n| n > gap.from)
            {
                continue; // the late frame arrived
            }
            let Some(session) = gap
                .channel
                .strip_prefix("session:")
                .and_then(|s| s.parse::<SessionId>().ok())
            else {
                continue;
            };
            match self
                .store()
                .catch_up(session, gap.from - 1, self.catch_up_limit())
                .await
            {
                Ok(Some(CatchUp::Changes { changes, .. })) => {
                    let missing: Vec<_> = changes.iter().filter(|c| c.version < gap.to).collect();
                    let Some(last) = missing.last().map(|c| c.version) else {
                        continue;
                    };
                    metrics::counter!("sync_gaps_healed_total").increment(1);
                    if missing.len() > self.config.heal_max_frames {
                        // Replayed frame by frame, this would fill subscribers' queues.
                        self.resync(&gap.channel, last);
                        continue;
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
                Err(e) => tracing::warn!(error = %e, "could not heal a version gap"),
            }
        }
    }
}
