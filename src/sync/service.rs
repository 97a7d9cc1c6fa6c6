//! The sync service: authorizes, stamps clocks, writes through the store and only after commit
//! broadcasts each change (versioned) on the session channel. Also serves catch-up and heals
//! version gaps an instance sees from the change log.

use super::{
    hlc::Clock,
    merge::Limits,
    ops::{check_client_id, Incoming, Mutation, Op, Refusal, RefusalCode},
};
use crate::{
    bus::{server_event, Bus},
    config::SyncConfig,
    domain::{MemberRole, SessionId, UserId},
    error::AppError,
    hub::Hub,
    store::{
        CatchUp, Change, MutationResult, PushOutcome, PushRules, Pushed, Session, Snapshot, Store,
    },
};
use axum::extract::ws::Utf8Bytes;
use serde::Serialize;
use std::sync::Arc;
use tokio::sync::oneshot;

/// Most mutations committed in one group transaction.
const MAX_GROUP: usize = 500;

type PushResultTx = oneshot::Sender<Result<(Vec<MutationResult>, u64), AppError>>;

/// One caller's push waiting for its session's group commit.
struct Pending {
    user: UserId,
    mutations: Vec<Mutation>,
    refusals: Vec<Option<Refusal>>,
    /// Written by the server itself (a turn, a creation): no per-client bookkeeping.
    server: bool,
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
    rules: PushRules,
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
            rules: PushRules {
                limits: Limits {
                    context_keys: config.max_context_keys,
                    context_bytes: config.max_context_bytes,
                    tags: config.max_tags,
                    messages: config.max_messages,
                    content_bytes: config.max_content_bytes,
                },
                keep_versions: config.keep_versions,
            },
            config,
        })
    }

    pub(super) fn store(&self) -> &dyn Store {
        self.store.as_ref()
    }

    pub(super) fn hub(&self) -> &Hub {
        &self.hub
    }

    pub(super) fn catch_up_limit(&self) -> u32 {
        self.config.catch_up_limit
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
        incoming: &[Incoming],
    ) -> Result<PushReply, AppError> {
        if incoming.is_empty() || incoming.len() > self.config.max_batch {
            return Err(AppError::validation(
                "mutations",
                format!("a push carries 1 to {} mutations", self.config.max_batch),
            ));
        }
        for (i, m) in incoming.iter().map(|i| &i.mutation).enumerate() {
            check_client_id(&m.client_id)
                .map_err(|e| AppError::validation(format!("mutations[{i}].client_id"), e))?;
            if m.mutation_id == 0 || m.mutation_id > i64::MAX as u64 {
                return Err(AppError::validation(
                    format!("mutations[{i}].mutation_id"),
                    "mutation ids start at 1",
                ));
            }
        }
        let creates = incoming.first().is_some_and(|m| {
            m.refusal.is_none() && m.mutation.ops.first() == Some(&Op::CreateSession)
        });
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
        let refusals: Vec<Option<Refusal>> = incoming
            .iter()
            .map(|i| {
                let m = &i.mutation;
                if let Some(r) = &i.refusal {
                    return Some(r.clone());
                }
                if m.ops.iter().any(Op::is_server_only) {
                    return Some(Refusal::new(
                        RefusalCode::NotAllowed,
                        "stream_* ops are written by the server only",
                    ));
                }
                if role != MemberRole::Owner && m.ops.contains(&Op::DeleteSession) {
                    return Some(Refusal::new(
                        RefusalCode::NotAllowed,
                        "only the owner can delete the session",
                    ));
                }
                (m.hlc.ms > wall.saturating_add(self.config.max_clock_skew_ms)).then(|| {
                    Refusal::new(
                        RefusalCode::ClockAhead,
                        format!(
                            "clock too far ahead: mutation hlc {} is more than {} ms past the server clock {}",
                            m.hlc,
                            self.config.max_clock_skew_ms,
                            self.clock.now()
                        ),
                    )
                })
            })
            .collect();
        let mutations = incoming.iter().map(|i| i.mutation.clone()).collect();
        let (results, version) = self
            .enqueue(session, user, mutations, refusals, false)
            .await?;
        Ok(PushReply {
            results,
            version,
            server_hlc: self.clock.now(),
        })
    }

    /// Creates a session; a title given at creation is its first synced change (version 1,
    /// client `~create`), so the list, the snapshot and every replica agree on it.
    pub async fn create_session(
        self: &Arc<Self>,
        owner: UserId,
        title: &str,
    ) -> Result<Session, AppError> {
        let mut session = self.store.create_session(owner, "").await?;
        if !title.is_empty() {
            let m = Mutation {
                client_id: "~create".into(),
                mutation_id: 1,
                hlc: self.clock.now(),
                ops: vec![
                    Op::CreateSession,
                    Op::SetField {
                        field: super::ops::Field::Title,
                        value: serde_json::Value::String(title.to_owned()),
                    },
                ],
            };
            let (result, version) = self.push_server(owner, session.id, m).await?;
            if let MutationResult::Refused { error, .. } = result {
                return Err(AppError::validation("title", error));
            }
            session.title = title.to_owned();
            session.version = version;
        }
        notify_list_changed(self.bus.as_ref(), owner, session.id, "created").await;
        Ok(session)
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
            .enqueue(session, user, vec![mutation], vec![None], true)
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
