//! What accounts, admins and operators change beyond sign-in: profiles, passwords, roles,
//! disabling, deletion, and the kill switch.

use super::{StoreResult, User};
use crate::domain::{Email, Role, UserId};
use async_trait::async_trait;
use chrono::{DateTime, Utc};
use uuid::Uuid;

/// A profile edit: only the fields given change.
#[derive(Debug, Clone, Default)]
pub struct ProfileChange {
    pub display_name: Option<String>,
    pub username: Option<String>,
    pub preferences: Option<serde_json::Value>,
    pub email: Option<Email>,
}

/// Credentials refused lately, loaded at start so an instance that restarts refuses them too.
#[derive(Debug, Default)]
pub struct Refused {
    /// Refresh families revoked since the time asked for, with their user.
    pub families: Vec<(Uuid, UserId)>,
    /// Disabled accounts, and accounts deleted since the time asked for.
    pub disabled: Vec<UserId>,
    /// Accounts whose role changed since the time asked for, with the role they have now.
    pub roles: Vec<(UserId, Role)>,
}

/// The kill switch while it is on.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize, utoipa::ToSchema)]
pub struct Maintenance {
    pub reason: String,
    /// What `Retry-After` says.
    pub retry_after_secs: u64,
    pub enabled_at: DateTime<Utc>,
    /// Who turned it on: a user id, or `cli`.
    pub enabled_by: String,
}

#[async_trait]
pub trait AdminStore: Send + Sync + 'static {
    async fn set_password_hash(&self, id: UserId, hash: &str) -> StoreResult<bool>;
    /// Revokes every live refresh family of `user` except `keep`; the ones it revoked.
    async fn revoke_user_families(
        &self,
        user: UserId,
        keep: Option<Uuid>,
        reason: &str,
    ) -> StoreResult<Vec<Uuid>>;
    /// An admin's change: `None` leaves a field as it is.
    async fn update_account(
        &self,
        id: UserId,
        role: Option<Role>,
        disabled: Option<bool>,
    ) -> StoreResult<Option<User>>;
    async fn update_profile(&self, id: UserId, change: &ProfileChange)
        -> StoreResult<Option<User>>;
    /// Deletes the account and everything it owns (the schema cascades), folding its usage
    /// into `usage_archive` first, in one transaction.
    async fn delete_user(&self, id: UserId) -> StoreResult<bool>;
    async fn refused_since(&self, since: DateTime<Utc>) -> StoreResult<Refused>;

    /// The connection pool: open connections and how many of them are idle.
    fn pool_stats(&self) -> (u32, usize);

    async fn maintenance(&self) -> StoreResult<Option<Maintenance>>;
    /// `None` turns the kill switch off.
    async fn set_maintenance(&self, m: Option<&Maintenance>) -> StoreResult<()>;
}
