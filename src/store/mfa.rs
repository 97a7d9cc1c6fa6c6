//! Second factors: a user's TOTP secret and recovery codes.

use super::StoreResult;
use crate::domain::UserId;
use async_trait::async_trait;
use chrono::{DateTime, Utc};

#[derive(Debug, Clone)]
pub struct TotpFactor {
    pub secret: Vec<u8>,
    /// `None` while enrollment waits for its first code.
    pub confirmed_at: Option<DateTime<Utc>>,
    pub last_step: u64,
}

#[async_trait]
pub trait SecondFactorStore: Send + Sync + 'static {
    /// Starts (or restarts) an enrollment: a new unconfirmed secret. `false` when a confirmed
    /// factor exists (disable it first).
    async fn begin_totp(&self, user: UserId, secret: &[u8]) -> StoreResult<bool>;
    async fn totp(&self, user: UserId) -> StoreResult<Option<TotpFactor>>;
    /// Confirms the enrollment at `step` and replaces the recovery codes, atomically.
    async fn confirm_totp(&self, user: UserId, step: u64, codes: &[Vec<u8>]) -> StoreResult<bool>;
    /// Takes `step` if no later or equal step was taken (a code works once).
    async fn take_totp_step(&self, user: UserId, step: u64) -> StoreResult<bool>;
    /// Uses an unused recovery code by hash.
    async fn use_recovery_code(&self, user: UserId, hash: &[u8]) -> StoreResult<bool>;
    /// Recovery codes not used yet.
    async fn recovery_codes_left(&self, user: UserId) -> StoreResult<u64>;
    /// Removes the factor and its codes; `false` when there was none.
    async fn delete_totp(&self, user: UserId) -> StoreResult<bool>;
}
