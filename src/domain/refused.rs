//! Credentials refused before they expire: access tokens of a revoked sign-in (logout, a
//! password change, a replayed refresh token), access tokens that claim a role the account no
//! longer has (so a demoted admin stops being one at once), and every credential of a disabled
//! or deleted account. Checked on every request from memory (three map lookups); each instance
//! learns of a revocation through the bus, and from the store at start and every few seconds.

use super::{Principal, Role, UserId};
use dashmap::{DashMap, DashSet};
use uuid::Uuid;

/// Past this many remembered sign-ins, expired ones are dropped on the next insert.
const PRUNE_AT: usize = 4096;

#[derive(Default)]
pub struct Refused {
    /// Revoked refresh families, until (unix seconds) the last access token they issued expires.
    families: DashMap<Uuid, i64>,
    users: DashSet<UserId>,
    /// The role of accounts whose role changed lately: an access token claiming another is
    /// refused (its refresh gets one with this role).
    roles: DashMap<UserId, Role>,
}

impl Refused {
    pub fn new() -> Self {
        Self::default()
    }

    pub fn revoke_families(&self, families: &[Uuid], until: i64) {
        for f in families {
            self.families.insert(*f, until);
        }
        if self.families.len() > PRUNE_AT {
            let now = chrono::Utc::now().timestamp();
            self.families.retain(|_, until| *until > now);
        }
    }

    pub fn set_user_refused(&self, user: UserId, refused: bool) {
        if refused {
            self.users.insert(user);
        } else {
            self.users.remove(&user);
        }
    }

    pub fn set_role(&self, user: UserId, role: Role) {
        self.roles.insert(user, role);
    }

    /// The accounts refused as a whole, for a reload to reconcile with the store.
    pub fn refused_users(&self) -> Vec<UserId> {
        self.users.iter().map(|u| *u).collect()
    }

    pub fn refuses(&self, p: &Principal) -> bool {
        let stale_role =
            p.api_key.is_none() && (self.roles.get(&p.user_id)).is_some_and(|r| *r != p.role);
        stale_role
            || self.users.contains(&p.user_id)
            || p.session.is_some_and(|s| self.families.contains_key(&s))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn principal(session: Option<Uuid>) -> Principal {
        Principal {
            user_id: UserId::new(),
            role: Role::User,
            api_key: None,
            expires_at: None,
            session,
        }
    }

    #[test]
    fn a_revoked_sign_in_or_a_disabled_user_is_refused() {
        let r = Refused::new();
        let s = Uuid::now_v7();
        let p = principal(Some(s));
        let other = principal(Some(Uuid::now_v7()));
        assert!(!r.refuses(&p));
        r.revoke_families(&[s], i64::MAX);
        assert!(r.refuses(&p));
        assert!(!r.refuses(&other));
        r.set_user_refused(other.user_id, true);
        assert!(r.refuses(&other));
        r.set_user_refused(other.user_id, false);
        assert!(!r.refuses(&other));
        r.set_role(other.user_id, Role::Admin);
        assert!(r.refuses(&other), "a token claiming the old role");
        r.set_role(other.user_id, Role::User);
        assert!(!r.refuses(&other));
    }
}
