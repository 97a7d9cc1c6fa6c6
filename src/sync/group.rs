//! Group commit: whoever finds a session's queue idle commits everything queued for it, batch
//! after batch, one transaction each; concurrent pushes to a hot session then cost one row lock
//! and one fsync together instead of one each. A failed group is committed again push by push,
//! so one bad push never fails the others it was grouped with.

use super::{
    ops::{Op, Refusal},
    service::{change_frame, channel_of, notify_list_changed, SyncService},
};
use crate::domain::{SessionId, UserId};
use crate::{
    error::AppError,
    protocol::ListChange,
    store::{MutationResult, PushOutcome, Pushed, StoreError},
    sync::ops::Mutation,
};
use std::sync::Arc;
use tokio::sync::oneshot;

/// Most mutations committed in one group transaction.
const MAX_GROUP: usize = 500;

type PushResultTx = oneshot::Sender<Result<(Vec<MutationResult>, u64), AppError>>;

/// One caller's push waiting for its session's group commit.
pub(super) struct Pending {
    user: UserId,
    mutations: Vec<Mutation>,
    refusals: Vec<Option<Refusal>>,
    /// Written by the server itself (a turn, a creation): no per-client bookkeeping.
    server: bool,
    reply: PushResultTx,
}

#[derive(Default)]
pub(super) struct Queue {
    /// A leader is committing this session's queue.
    busy: bool,
    items: Vec<Pending>,
    /// Mutations in `items`.
    queued: usize,
}

impl SyncService {
    /// Queues mutations for the session's group commit and waits for their results.
    pub(super) async fn enqueue(
        self: &Arc<Self>,
        session: SessionId,
        user: UserId,
        mutations: Vec<Mutation>,
        refusals: Vec<Option<Refusal>>,
        server: bool,
    ) -> Result<(Vec<MutationResult>, u64), AppError> {
        let (tx, rx) = oneshot::channel();
        let pending = Pending {
            user,
            mutations,
            refusals,
            server,
            reply: tx,
        };
        let lead = {
            let mut q = self.queues.entry(session).or_default();
            // A client push waits behind at most this much of its session's work; past it the
            // session is busy (a slow or stalled database must not grow memory without bound).
            // A turn's own writes always queue: they are bounded by the turns themselves.
            let n = pending.mutations.len();
            if !server && q.queued + n > self.config.max_queued_mutations {
                return Err(AppError::Unavailable(
                    "this session has too many pushes waiting; retry shortly".into(),
                ));
            }
            q.queued += n;
            q.items.push(pending);
            !std::mem::replace(&mut q.busy, true)
        };
        if lead {
            // A task of its own: if this caller goes away mid-commit, the queue still drains.
            tokio::spawn(self.clone().drain(session));
        }
        rx.await
            .map_err(|_| AppError::internal(anyhow::anyhow!("push dropped")))?
    }

    /// Group commit: whoever finds a session's queue idle commits everything queued for it,
    /// batch after batch, in one transaction each; concurrent pushes to a hot session then cost
    /// one row lock and one fsync together instead of one each.
    async fn drain(self: Arc<Self>, session: SessionId) {
        loop {
            let items = {
                let Some(mut q) = self.queues.get_mut(&session) else {
                    return;
                };
                if q.items.is_empty() {
                    q.busy = false;
                    drop(q);
                    self.queues
                        .remove_if(&session, |_, q| !q.busy && q.items.is_empty());
                    return;
                }
                let mut n = 0;
                let take = q
                    .items
                    .iter()
                    .take_while(|p| {
                        n += p.mutations.len();
                        n <= MAX_GROUP || n == p.mutations.len()
                    })
                    .count();
                let items: Vec<Pending> = q.items.drain(..take.max(1)).collect();
                q.queued -= items.iter().map(|p| p.mutations.len()).sum::<usize>();
                items
            };
            self.commit_group(session, items).await;
        }
    }

    /// Commits `items` together. If a statement of the group fails (something one push
    /// carried, not the database going away), each push is tried alone, so one bad push can
    /// never fail the others it happened to be grouped with. A failure after the commit never
    /// gets here: the group is never committed twice.
    async fn commit_group(&self, session: SessionId, items: Vec<Pending>) {
        let outcome = self.commit(session, &batch_of(&items)).await;
        match outcome {
            Ok(o) => answer(items, o),
            Err(Failed::Statement(e)) if items.len() > 1 => {
                tracing::warn!(error = %format!("{e:#}"), pushes = items.len(), "group commit failed; committing its pushes one by one");
                for p in items {
                    let alone = self
                        .commit(session, &batch_of(std::slice::from_ref(&p)))
                        .await;
                    match alone {
                        Ok(o) => answer(vec![p], o),
                        Err(e) => {
                            let _ = p.reply.send(Err(e.into_app()));
                        }
                    }
                }
            }
            Err(e) => {
                for p in items {
                    let _ = p.reply.send(Err(e.to_app()));
                }
            }
        }
    }

    /// One transaction, then (only after commit, and never failing it) the broadcast and the
    /// sidebar notifications.
    async fn commit(
        &self,
        session: SessionId,
        batch: &[Pushed<'_>],
    ) -> Result<PushOutcome, Failed> {
        let outcome = match self.store.push(session, batch, &self.rules).await {
            Ok(Some(o)) => o,
            Ok(None) => return Err(Failed::Gone),
            Err(
                e @ (StoreError::Database(_) | StoreError::Corrupt(_) | StoreError::Conflict(_)),
            ) => return Err(Failed::Statement(e)),
            Err(e) => return Err(Failed::Store(e)),
        };
        let channel = channel_of(session);
        for change in &outcome.applied {
            self.clock.observe(change.mutation.hlc);
            self.bus
                .publish_versioned(&channel, change.version, change_frame(&channel, change))
                .await;
        }
        metrics::counter!("sync_mutations_applied_total").increment(outcome.applied.len() as u64);
        metrics::histogram!("sync_group_commit_size").record(batch.len() as f64);
        let listed_fields_changed = outcome.applied.iter().any(|c| {
            c.mutation
                .ops
                .iter()
                .any(|op| matches!(op, Op::SetField { .. } | Op::DeleteSession))
        });
        if listed_fields_changed {
            match self.store.members(session).await {
                Ok(members) => {
                    for (member, _) in members {
                        notify_list_changed(
                            self.bus.as_ref(),
                            member,
                            session,
                            ListChange::Updated,
                        )
                        .await;
                    }
                }
                // Committed already: the sidebars catch up on their next listing.
                Err(e) => {
                    tracing::warn!(error = %e, %session, "session list notifications not sent")
                }
            }
        }
        Ok(outcome)
    }
}

/// The group's mutations as the store takes them, each tagged with its push.
fn batch_of(items: &[Pending]) -> Vec<Pushed<'_>> {
    items
        .iter()
        .enumerate()
        .flat_map(|(caller, p)| {
            p.mutations
                .iter()
                .zip(&p.refusals)
                .map(move |(m, r)| Pushed {
                    mutation: m,
                    refusal: r.clone(),
                    user: p.user,
                    caller,
                    server: p.server,
                })
        })
        .collect()
}

/// Hands each push its own results, in order.
fn answer(items: Vec<Pending>, mut o: PushOutcome) {
    let mut rest = std::mem::take(&mut o.results).into_iter();
    for p in items {
        let mine: Vec<MutationResult> = rest.by_ref().take(p.mutations.len()).collect();
        let _ = p.reply.send(Ok((mine, o.version)));
    }
}

/// Why a group commit failed.
enum Failed {
    /// The session does not exist (any more).
    Gone,
    /// A statement failed on something a push carried: its pushes are tried alone.
    Statement(StoreError),
    /// The database is unreachable or timed out: every push of the group fails, retryable.
    Store(StoreError),
}

impl Failed {
    fn to_app(&self) -> AppError {
        match self {
            Failed::Gone => AppError::NotFound("no such session".into()),
            Failed::Store(StoreError::Unavailable(e)) => {
                tracing::warn!(error = %e, "sync push: database unavailable");
                AppError::Unavailable("the database is unavailable; retry the push".into())
            }
            Failed::Statement(e) | Failed::Store(e) => AppError::internal(anyhow::anyhow!("{e:#}")),
        }
    }

    fn into_app(self) -> AppError {
        self.to_app()
    }
}
