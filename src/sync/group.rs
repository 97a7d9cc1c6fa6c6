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
    store::{MutationResult, PushOutcome, Pushed},
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
                q.items.drain(..take.max(1)).collect::<Vec<_>>()
            };
            self.commit_group(session, items).await;
        }
    }

    /// Commits `items` together; if the group fails, each push is tried alone, so one bad
    /// push can never fail the others it happened to be grouped with.
    async fn commit_group(&self, session: SessionId, items: Vec<Pending>) {
        let outcome = self.commit(session, &batch_of(&items)).await;
        match outcome {
            Ok(o) => answer(items, o),
            Err(e) if items.len() > 1 && !matches!(e, AppError::NotFound(_)) => {
                tracing::warn!(error = %e.detail(), pushes = items.len(), "group commit failed; committing its pushes one by one");
                for p in items {
                    let alone = self
                        .commit(session, &batch_of(std::slice::from_ref(&p)))
                        .await;
                    match alone {
                        Ok(o) => answer(vec![p], o),
                        Err(e) => {
                            let _ = p.reply.send(Err(e));
                        }
                    }
                }
            }
            Err(e) => {
                let detail = e.detail();
                for p in items {
                    let err = match &e {
                        AppError::NotFound(m) => AppError::NotFound(m.clone()),
                        _ => AppError::internal(anyhow::anyhow!("{detail}")),
                    };
                    let _ = p.reply.send(Err(err));
                }
            }
        }
    }

    /// One transaction, then (only after commit) the broadcast and sidebar notifications.
    async fn commit(
        &self,
        session: SessionId,
        batch: &[Pushed<'_>],
    ) -> Result<PushOutcome, AppError> {
        let outcome = self
            .store
            .push(session, batch, &self.rules)
            .await?
            .ok_or_else(|| AppError::NotFound("no such session".into()))?;
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
            for (member, _) in self.store.members(session).await? {
                notify_list_changed(self.bus.as_ref(), member, session, ListChange::Updated).await;
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
