//! Refusing credentials before they expire, on every instance: applied here at once, sent
//! through the bus, and re-read from the store at start and every `REFUSED_POLL` (a missed bus
//! message or a restart must not let a revoked sign-in or a disabled account back in).

use super::AuthService;
use crate::{
    domain::{Role, UserId},
    error::AppError,
};
use chrono::{Duration as ChronoDuration, Utc};
use std::{sync::Arc, time::Duration};

/// How often each instance re-reads revoked sign-ins and disabled accounts from the store.
const REFUSED_POLL: Duration = Duration::from_secs(5);

impl AuthService {
    /// Reads what was refused lately: at start (a restart must not forget a logout or a
    /// disabled account while their access tokens live), then every `REFUSED_POLL` in case a
    /// bus message was missed. An account re-enabled meanwhile is let in again here.
    pub async fn load_refused(&self) -> Result<(), AppError> {
        let ttl = self.config.access_ttl_secs + self.config.leeway_secs;
        let since = Utc::now() - ChronoDuration::seconds(ttl as i64);
        let r = self.store.refused_since(since).await?;
        let until = self.refused_until();
        let families: Vec<uuid::Uuid> = r.families.iter().map(|(f, _)| *f).collect();
        self.refused.revoke_families(&families, until);
        let refused: std::collections::HashSet<UserId> = r.disabled.iter().copied().collect();
        for u in self.refused.refused_users() {
            if !refused.contains(&u) {
                self.refused.set_user_refused(u, false);
            }
        }
        for u in refused {
            self.refused.set_user_refused(u, true);
        }
        for (u, role) in r.roles {
            self.refused.set_role(u, role);
        }
        Ok(())
    }

    /// Follows the store's refusals until shutdown (the bus tells at once; this heals misses).
    pub async fn follow_refused(self: Arc<Self>, stop: tokio_util::sync::CancellationToken) {
        loop {
            tokio::select! {
                _ = stop.cancelled() => return,
                _ = tokio::time::sleep(REFUSED_POLL) => {}
            }
            if let Err(e) = self.load_refused().await {
                tracing::warn!(error = %e, "revoked sign-ins not re-read");
            }
        }
    }

    /// Until when a sign-in revoked now may still have a live access token.
    fn refused_until(&self) -> i64 {
        let ttl = self.config.access_ttl_secs + self.config.leeway_secs;
        Utc::now().timestamp().saturating_add(ttl as i64)
    }

    /// Refuses `families` (or, with `account`, every credential of `user`) here at once and,
    /// through the bus, on every instance, closing the matching sockets.
    pub(super) async fn refuse(
        &self,
        user: UserId,
        families: Vec<uuid::Uuid>,
        account: Option<bool>,
    ) {
        self.refuse_as(user, families, account, None).await
    }

    /// `refuse`, and with `role`, refusing access tokens that claim another role.
    pub(super) async fn refuse_as(
        &self,
        user: UserId,
        families: Vec<uuid::Uuid>,
        account: Option<bool>,
        role: Option<Role>,
    ) {
        let until = self.refused_until();
        self.refused.revoke_families(&families, until);
        if let Some(a) = account {
            self.refused.set_user_refused(user, a);
        }
        if let Some(r) = role {
            self.refused.set_role(user, r);
        }
        self.bus
            .send(crate::bus::Control::Refuse {
                user_id: user,
                families,
                until,
                account,
                role,
            })
            .await;
    }
}
