//! The sync service: authorizes, stamps clocks, writes through the store and only after commit
//! broadcasts each change (versioned) on the session channel. Also serves catch-up and heals
//! version gaps an instance sees from the change log.

use super::{
    hlc::Clock,
    ops::{check_client_id, Mutation, Op},
};
use crate::{
    bus::{server_event, Bus},
    config::SyncConfig,
    domain::{MemberRole, SessionId, UserId},
    error::AppError,
    hub::{Gap, Hub},
    store::{CatchUp, Change, MutationResult, PushOutcome, Pushed, Snapshot, Store},
};
use axum::extract::ws::Utf8Bytes;
use serde::Serialize;
use std::{sync::Arc, time::Duration};
use tokio::sync::{mpsc, oneshot};
use tokio_util::sync::CancellationToken;

/// How long a gap may stay open before the change log is asked (the missing frame may just be
/// late).
const GAP_GRACE: Duration = Duration::from_millis(100);

/// Most mutations committed in one group transaction.
const MAX_GROUP: usize = 500;

type PushResultTx = oneshot::Sender<Result<(Vec<MutationResult>, u64), AppError>>;

/// One caller's push waiting for its session's group commit.
struct Pending {
    user: UserId,
    mutations: Vec<Mutation>,
    refusals: Vec<Option<String>>,
    reply: PushResultTx,
}

#[derive(Default)]
struct Queue {
    /// A leader is committing this session's queue.
    busy: bool,
    items: Vec<Pending>,
}

/// Built once in `app.rs`; shared by the socket and REST.
pub struct SyncService {
    queues: dashmap::DashMap<SessionId, Queue>,
    store: Arc<dyn Store>,
    bus: Arc<dyn Bus>,
    hub: Arc<Hub>,
    clock: Clock,
    config: SyncConfig,
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct PushReply {
    #[schema(value_type = Vec<Object>)]
    pub results: Vec<MutationResult>,
    /// The session's version after this push.
    pub version: u64,
    /// The server's clock; clients move theirs past it.
    #[schema(value_type = String)]
    pub server_hlc: super::hlc::Hlc,
}

pub fn channel_of(session: SessionId) -> String {
    format!("session:{session}")
}

/// Tells `user`'s connections that their session list changed (`reason`: created, shared,
/// revoked, updated).
pub async fn notify_list_changed(bus: &dyn Bus, user: UserId, session: SessionId, reason: &str) {
    let channel = format!("user:{user}");
    let data = serde_json::json!({"session_id": session, "reason": reason});
    bus.publish(
        &channel,
        server_event(&channel, "session.list_changed", &data),
    )
    .await;
}

/// The `sync.change` event for one committed change, encoded once.
pub fn change_frame(channel: &str, change: &Change) -> Utf8Bytes {
    server_event(channel, "sync.change", change)
}

impl SyncService {
    pub fn new(
        store: Arc<dyn Store>,
        bus: Arc<dyn Bus>,
        hub: Arc<Hub>,
        config: SyncConfig,
    ) -> Arc<Self> {
        Arc::new(Self {
            queues: dashmap::DashMap::new(),
            store,
            bus,
            hub,
            clock: Clock::new(),
            config,
        })
    }

    pub fn server_hlc(&self) -> super::hlc::Hlc {
        self.clock.now()
    }

    /// The caller's role, `NotFound` for non-members (existence is not revealed).
    pub async fn role(&self, session: SessionId, user: UserId) -> Result<MemberRole, AppError> {
        self.store
            .member_role(session, user)
            .await?
            .ok_or_else(|| AppError::NotFound("no such session".into()))
    }

    pub async fn push(
        self: &Arc<Self>,
        user: UserId,
        session: SessionId,
        mutations: &[Mutation],
    ) -> Result<PushReply, AppError> {
        if mutations.is_empty() || mutations.len() > self.config.max_batch {
            return Err(AppError::validation(
                "mutations",
                format!("a push carries 1 to {} mutations", self.config.max_batch),
            ));
        }
        for (i, m) in mutations.iter().enumerate() {
            check_client_id(&m.client_id)
                .map_err(|e| AppError::validation(format!("mutations[{i}].client_id"), e))?;
            if m.mutation_id == 0 {
                return Err(AppError::validation(
                    format!("mutations[{i}].mutation_id"),
                    "mutation ids start at 1",
                ));
            }
        }
        let creates = mutations
            .first()
            .is_some_and(|m| m.ops.first() == Some(&Op::CreateSession));
        let role = match self.store.member_role(session, user).await? {
            Some(r) => r,
            // Offline creation: the batch's first op creates the session with this id.
            None if creates => match self.store.create_session_with_id(session, user, "").await? {
                Some(_) => {
                    notify_list_changed(self.bus.as_ref(), user, session, "created").await;
                    MemberRole::Owner
                }
                None => return Err(AppError::NotFound("no such session".into())),
            },
            None => return Err(AppError::NotFound("no such session".into())),
        };
        if !role.can_write() {
            return Err(AppError::Forbidden(
                "viewers cannot change this session".into(),
            ));
        }
        let wall = self.clock.wall();
        let refusals: Vec<Option<String>> = mutations
            .iter()
            .map(|m| {
                if m.ops.iter().any(Op::is_server_only) {
                    return Some("stream_* ops are written by the server only".into());
                }
                if role != MemberRole::Owner && m.ops.contains(&Op::DeleteSession) {
                    return Some("only the owner can delete the session".into());
                }
                (m.hlc.ms > wall + self.config.max_clock_skew_ms).then(|| {
                    format!(
                        "clock too far ahead: mutation hlc {} is more than {} ms past the server clock {}",
                        m.hlc,
                        self.config.max_clock_skew_ms,
                        self.clock.now()
                    )
                })
            })
            .collect();
        let (results, version) = self
            .enqueue(session, user, mutations.to_vec(), refusals)
            .await?;
        Ok(PushReply {
            results,
            version,
            server_hlc: self.clock.now(),
        })
    }

    /// A mutation the server writes itself (chat turns): no membership check (the caller
    /// checked), no client-id rules; same group commit, same broadcast.
    pub async fn push_server(
        self: &Arc<Self>,
        user: UserId,
        session: SessionId,
        mutation: Mutation,
    ) -> Result<(MutationResult, u64), AppError> {
        let (mut results, version) = self
            .enqueue(session, user, vec![mutation], vec![None])
            .await?;
        let result = results
            .pop()
            .ok_or_else(|| AppError::internal(anyhow::anyhow!("no result")))?;
        Ok((result, version))
    }

    /// Queues mutations for the session's group commit and waits for their results.
    async fn enqueue(
        self: &Arc<Self>,
        session: SessionId,
        user: UserId,
        mutations: Vec<Mutation>,
        refusals: Vec<Option<String>>,
    ) -> Result<(Vec<MutationResult>, u64), AppError> {
        let (tx, rx) = oneshot::channel();
        let pending = Pending {
            user,
            mutations,
            refusals,
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
            let batch: Vec<Pushed<'_>> = items
                .iter()
                .flat_map(|p| {
                    p.mutations.iter().zip(&p.refusals).map(|(m, r)| Pushed {
                        mutation: m,
                        refusal: r.clone(),
                        user: p.user,
                    })
                })
                .collect();
            let outcome = self.commit(session, &batch).await;
            drop(batch);
            match outcome {
                Ok(mut o) => {
                    let mut rest = std::mem::take(&mut o.results).into_iter();
                    for p in items {
                        let mine: Vec<MutationResult> =
                            rest.by_ref().take(p.mutations.len()).collect();
                        let _ = p.reply.send(Ok((mine, o.version)));
                    }
                }
                Err(e) => {
                    let msg = e.to_string();
                    for p in items {
                        let err = match &e {
                            AppError::NotFound(m) => AppError::NotFound(m.clone()),
                            _ => AppError::internal(anyhow::anyhow!("{msg}")),
                        };
                        let _ = p.reply.send(Err(err));
                    }
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
            .push(session, batch, self.config.keep_versions)
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
                notify_list_changed(self.bus.as_ref(), member, session, "updated").await;
            }
        }
        Ok(outcome)
    }

    pub async fn catch_up(&self, session: SessionId, since: u64) -> Result<CatchUp, AppError> {
        self.store
            .catch_up(session, since, self.config.catch_up_limit)
            .await?
            .ok_or_else(|| AppError::NotFound("no such session".into()))
    }

    pub async fn snapshot(&self, session: SessionId) -> Result<Snapshot, AppError> {
        self.store
            .snapshot(session)
            .await?
            .ok_or_else(|| AppError::NotFound("no such session".into()))
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
            tokio::time::sleep(GAP_GRACE).await;
            if self
                .hub
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
                .store
                .catch_up(session, gap.from - 1, self.config.catch_up_limit)
                .await
            {
                Ok(Some(CatchUp::Changes { changes, .. })) => {
                    metrics::counter!("sync_gaps_healed_total").increment(1);
                    for c in changes.iter().filter(|c| c.version < gap.to) {
                        self.hub.deliver_versioned(
                            &gap.channel,
                            c.version,
                            change_frame(&gap.channel, c),
                        );
                    }
                }
                Ok(Some(CatchUp::Snapshot(s))) => {
                    // Compacted past the gap: tell subscribers to re-subscribe with `since`.
                    tracing::warn!(channel = %gap.channel, "gap older than the change log; asking clients to resync");
                    self.hub.caught_up(&gap.channel, s.version);
                    let data = serde_json::json!({"version": s.version});
                    self.hub.deliver(
                        &gap.channel,
                        &server_event(&gap.channel, "sync.resync", &data),
                    );
                }
                Ok(None) => {}
                Err(e) => tracing::warn!(error = %e, "could not heal a version gap"),
            }
        }
    }
}
