//! The sync service: authorizes, stamps clocks, writes through the store and only after commit
//! broadcasts each change (versioned) on the session channel. Also serves catch-up and heals
//! version gaps an instance sees from the change log.

use super::group::Queue;
use super::{
    hlc::Clock,
    merge::Limits,
    ops::{check_client_id, Incoming, Mutation, Op, Refusal, RefusalCode},
};
use crate::{
    bus::Bus,
    config::SyncConfig,
    domain::{MemberRole, SessionId, UserId},
    error::AppError,
    hub::Hub,
    protocol::event_frame,
    protocol::{raw, ListChange, ServerEvent},
    store::{CatchUp, Change, MutationResult, PushRules, Session, Snapshot, Store},
};
use axum::extract::ws::Utf8Bytes;
use serde::Serialize;
use std::sync::Arc;

/// Built once in `app.rs`; shared by the socket, REST and chat turns for the process's life.
pub struct SyncService {
    /// Pushes waiting for their session's group commit (`group`).
    pub(super) queues: dashmap::DashMap<SessionId, Queue>,
    pub(super) store: Arc<dyn Store>,
    pub(super) bus: Arc<dyn Bus>,
    pub(super) hub: Arc<Hub>,
    pub(super) clock: Clock,
    pub(super) config: SyncConfig,
    pub(super) rules: PushRules,
    /// Turns for whole-session reads (`sync.max_concurrent_snapshots`).
    snapshots: tokio::sync::Semaphore,
    /// A subscribe's reads, coalesced per session.
    reads: super::reads::SharedReads,
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
pub async fn notify_list_changed(
    bus: &dyn Bus,
    user: UserId,
    session: SessionId,
    reason: ListChange,
) {
    let channel = format!("user:{user}");
    let event = ServerEvent::SessionListChanged {
        session_id: session,
        reason,
    };
    bus.publish(&channel, event_frame(&channel, &event)).await;
}

/// The `sync.change` event for one committed change, encoded once.
pub fn change_frame(channel: &str, change: &Change) -> Utf8Bytes {
    event_frame(channel, &ServerEvent::SyncChange(&raw(change)))
}

impl SyncService {
    pub fn new(
        store: Arc<dyn Store>,
        bus: Arc<dyn Bus>,
        hub: Arc<Hub>,
        config: SyncConfig,
    ) -> Arc<Self> {
        Arc::new_cyclic(|me| Self {
            reads: super::reads::SharedReads::new(me),
            queues: dashmap::DashMap::new(),
            store,
            bus,
            hub,
            clock: Clock::new(),
            snapshots: tokio::sync::Semaphore::new(config.max_concurrent_snapshots.max(1)),
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

    pub(super) fn reads(&self) -> &super::reads::SharedReads {
        &self.reads
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

    /// What the whole batch is refused for: its size, client ids and mutation ids.
    fn check_batch(&self, incoming: &[Incoming]) -> Result<(), AppError> {
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
        Ok(())
    }

    /// The pusher's role, which must write. A batch whose first op creates the session makes
    /// it (offline creation, with the client's id) when it does not exist yet.
    async fn writer_role(
        &self,
        session: SessionId,
        user: UserId,
        incoming: &[Incoming],
    ) -> Result<MemberRole, AppError> {
        let creates = incoming.first().is_some_and(|m| {
            m.refusal.is_none() && m.mutation.ops.first() == Some(&Op::CreateSession)
        });
        // Read with every concurrent check of the session in one query: a hot session's
        // pushes arrive together, and one query each queued them on the pool.
        let role = match self.access(session, user).await? {
            Some(r) => r,
            None if creates => match self.store.create_session_with_id(session, user, "").await? {
                Some(_) => {
                    notify_list_changed(self.bus.as_ref(), user, session, ListChange::Created)
                        .await;
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
        Ok(role)
    }

    /// Why one mutation is refused before it is planned, if it is: parsing, server-only ops,
    /// deleting someone else's session, a clock too far ahead.
    fn refusal(&self, i: &Incoming, role: MemberRole) -> Option<Refusal> {
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
        let wall = self.clock.wall();
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
    }

    pub async fn push(
        self: &Arc<Self>,
        user: UserId,
        session: SessionId,
        incoming: &[Incoming],
    ) -> Result<PushReply, AppError> {
        self.check_batch(incoming)?;
        let role = self.writer_role(session, user, incoming).await?;
        let refusals: Vec<Option<Refusal>> =
            incoming.iter().map(|i| self.refusal(i, role)).collect();
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
        notify_list_changed(self.bus.as_ref(), owner, session.id, ListChange::Created).await;
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

    /// Whole-session reads take a turn (`sync.max_concurrent_snapshots`): each holds a whole
    /// session in memory, so their number is what bounds that memory.
    async fn read_turn(&self) -> Result<tokio::sync::SemaphorePermit<'_>, AppError> {
        self.snapshots
            .acquire()
            .await
            .map_err(|_| AppError::Unavailable("shutting down".into()))
    }

    pub async fn catch_up(&self, session: SessionId, since: u64) -> Result<CatchUp, AppError> {
        let _turn = self.read_turn().await?;
        self.store
            .catch_up(session, since, self.config.catch_up_limit)
            .await?
            .ok_or_else(|| AppError::NotFound("no such session".into()))
    }

    /// What a subscriber who caught up to `version` will not get from this instance's hub:
    /// another subscriber here caught up further first, and the hub releases from there. The
    /// change frames between, from the log (none when nothing is missing); `None` when the log
    /// no longer reaches back that far.
    pub async fn missed_since(
        &self,
        channel: &str,
        session: SessionId,
        version: u64,
    ) -> Result<Option<Vec<(u64, Utf8Bytes)>>, AppError> {
        let before = match self.hub.next_version(channel) {
            Some(next) if next > version + 1 => next,
            _ => return Ok(Some(Vec::new())),
        };
        Ok(match self.catch_up(session, version).await? {
            CatchUp::Changes { changes, .. } => Some(
                changes
                    .iter()
                    .filter(|c| c.version < before)
                    .map(|c| (c.version, change_frame(channel, c)))
                    .collect(),
            ),
            CatchUp::Snapshot(..) => None,
        })
    }

    pub async fn snapshot(&self, session: SessionId) -> Result<Snapshot, AppError> {
        let _turn = self.read_turn().await?;
        self.store
            .snapshot(session)
            .await?
            .ok_or_else(|| AppError::NotFound("no such session".into()))
    }
}
