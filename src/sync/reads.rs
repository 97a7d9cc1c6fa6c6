//! What a `subscribe` reads, coalesced per session (see `coalesce`): the access check and the
//! catch-up. A storm of 10k subscribes to one session costs a few queries instead of one per
//! socket; each answer is still read after its caller asked (a revoke committed before a
//! subscribe is seen by it; a state read for a caller is at least as new as its hub join).

use super::service::SyncService;
use crate::{
    coalesce::Coalesce,
    domain::{MemberRole, SessionId, UserId},
    error::AppError,
    store::{CatchUp, SnapshotReason},
};
use futures::future::BoxFuture;
use std::{
    collections::HashMap,
    sync::{Arc, Weak},
};

type Shared<T> = Result<T, Arc<AppError>>;

pub(super) struct SharedReads {
    access: Coalesce<SessionId, UserId, Shared<Option<MemberRole>>>,
    catch_ups: Coalesce<(SessionId, Option<u64>), (), Shared<Arc<CatchUp>>>,
}

fn gone<T>() -> Shared<T> {
    Err(Arc::new(AppError::Unavailable("shutting down".into())))
}

impl SharedReads {
    pub(super) fn new(service: &Weak<SyncService>) -> Self {
        let svc = service.clone();
        let access = Coalesce::new(move |session, users: Vec<UserId>| {
            let svc = svc.clone();
            Box::pin(async move {
                let Some(svc) = svc.upgrade() else {
                    return users.iter().map(|_| gone()).collect();
                };
                let mut unique = users.clone();
                unique.sort_unstable_by_key(|u| u.0);
                unique.dedup();
                match svc.store().member_roles(session, &unique).await {
                    Ok(roles) => {
                        let roles: HashMap<UserId, MemberRole> = roles.into_iter().collect();
                        users.iter().map(|u| Ok(roles.get(u).copied())).collect()
                    }
                    Err(e) => {
                        let e = Arc::new(AppError::from(e));
                        users.iter().map(|_| Err(e.clone())).collect()
                    }
                }
            }) as BoxFuture<'static, Vec<_>>
        });
        let svc = service.clone();
        let catch_ups = Coalesce::same_for_all(move |(session, since)| {
            let svc = svc.clone();
            async move {
                let Some(svc) = svc.upgrade() else {
                    return gone();
                };
                let read = match since {
                    Some(since) => svc.catch_up(session, since).await,
                    None => svc
                        .snapshot(session)
                        .await
                        .map(|s| CatchUp::Snapshot(s, SnapshotReason::Requested)),
                };
                read.map(Arc::new).map_err(Arc::new)
            }
        });
        Self { access, catch_ups }
    }
}

impl SyncService {
    /// `user`'s role in `session`, `None` for a non-member; read with every concurrent check of
    /// the session in one query.
    pub async fn access(
        &self,
        session: SessionId,
        user: UserId,
    ) -> Result<Option<MemberRole>, AppError> {
        match self.reads().access.get(session, user).await {
            Some(r) => r.map_err(AppError::from),
            None => Err(AppError::internal(anyhow::anyhow!("access check failed"))),
        }
    }

    /// The changes after `since`, or a snapshot (`since` absent, or the log cannot answer it),
    /// read once for every concurrent subscriber asking the same.
    pub async fn shared_catch_up(
        &self,
        session: SessionId,
        since: Option<u64>,
    ) -> Result<Arc<CatchUp>, AppError> {
        match self.reads().catch_ups.get((session, since), ()).await {
            Some(r) => r.map_err(AppError::from),
            None => Err(AppError::internal(anyhow::anyhow!("catch-up read failed"))),
        }
    }
}
