//! The SQL both backends share, written once as a macro over the pool type: PostgreSQL and
//! SQLite accept the same statements here (`$n` placeholders, `RETURNING`, `ON CONFLICT`).
//! Anything backend-specific belongs in `postgres.rs` / `sqlite.rs`.

use super::{ApiKey, AuditEntry, StoreError, User};
use crate::domain::{ApiKeyId, Role, UserId};
use chrono::{DateTime, Utc};
use uuid::Uuid;

pub(super) const USER_COLUMNS: &str =
    "id, email, password_hash, COALESCE(NULLIF(access, ''), role) AS role, failed_logins, \
     locked_until, created_at, updated_at, disabled_at, display_name, username, preferences";
pub(super) const KEY_COLUMNS: &str = "id, user_id, name, prefix, created_at, last_used_at";

#[derive(sqlx::FromRow)]
pub(super) struct UserRow {
    id: Uuid,
    email: String,
    password_hash: String,
    role: String,
    failed_logins: i32,
    locked_until: Option<DateTime<Utc>>,
    created_at: DateTime<Utc>,
    updated_at: DateTime<Utc>,
    disabled_at: Option<DateTime<Utc>>,
    display_name: Option<String>,
    username: Option<String>,
    preferences: String,
}

impl TryFrom<UserRow> for User {
    type Error = StoreError;
    fn try_from(r: UserRow) -> Result<Self, StoreError> {
        Ok(User {
            id: UserId(r.id),
            email: r.email,
            password_hash: r.password_hash,
            role: Role::parse(&r.role)
                .ok_or_else(|| StoreError::Corrupt(format!("role {:?}", r.role)))?,
            failed_logins: r.failed_logins,
            locked_until: r.locked_until,
            created_at: r.created_at,
            updated_at: r.updated_at,
            disabled_at: r.disabled_at,
            display_name: r.display_name,
            username: r.username,
            preferences: serde_json::from_str(&r.preferences)
                .map_err(|e| StoreError::Corrupt(format!("preferences: {e}")))?,
        })
    }
}

#[derive(sqlx::FromRow)]
pub(super) struct KeyRow {
    id: Uuid,
    user_id: Uuid,
    name: String,
    prefix: String,
    created_at: DateTime<Utc>,
    last_used_at: Option<DateTime<Utc>>,
}

impl From<KeyRow> for ApiKey {
    fn from(r: KeyRow) -> Self {
        ApiKey {
            id: ApiKeyId(r.id),
            user_id: UserId(r.user_id),
            name: r.name,
            prefix: r.prefix,
            created_at: r.created_at,
            last_used_at: r.last_used_at,
        }
    }
}

#[derive(sqlx::FromRow)]
pub(super) struct AuditRow {
    id: i64,
    at: DateTime<Utc>,
    user_id: Option<Uuid>,
    event: String,
    ip: Option<String>,
    detail: String,
}

impl From<AuditRow> for AuditEntry {
    fn from(r: AuditRow) -> Self {
        AuditEntry {
            id: r.id,
            at: r.at,
            user_id: r.user_id.map(UserId),
            event: r.event,
            ip: r.ip,
            detail: serde_json::from_str(&r.detail).unwrap_or(serde_json::Value::Null),
        }
    }
}

#[derive(sqlx::FromRow)]
pub(super) struct TokenRow {
    pub family_id: Uuid,
    pub expires_at: DateTime<Utc>,
    pub user_id: Uuid,
    pub revoked_at: Option<DateTime<Utc>>,
    pub used_at: Option<DateTime<Utc>>,
    pub replaced_by: Option<Vec<u8>>,
}

/// Implements the account half of `Store` for `$store` (a struct with a `pool` field).
macro_rules! impl_account_store {
    ($store:ty, $backend:literal) => {
        #[async_trait::async_trait]
        impl $crate::store::AccountStore for $store {
            async fn ping(&self) -> StoreResult<()> {
                sqlx::query("SELECT 1").execute(&self.pool).await?;
                Ok(())
            }

            fn backend(&self) -> &'static str {
                $backend
            }

            async fn create_user(&self, u: &NewUser) -> StoreResult<User> {
                let now = Utc::now();
                let row: UserRow = sqlx::query_as(&format!(
                    "INSERT INTO users (id, email, password_hash, role, access, created_at, updated_at) \
                     VALUES ($1, $2, $3, $4, $5, $6, $6) RETURNING {USER_COLUMNS}"
                ))
                .bind(UserId::new().0)
                .bind(u.email.as_str())
                .bind(&u.password_hash)
                .bind(u.role.legacy())
                .bind(u.role.as_str())
                .bind(now)
                .fetch_one(&self.pool)
                .await
                .map_err(|e| match StoreError::from(e) {
                    StoreError::Conflict(_) => {
                        StoreError::Conflict("an account with this email already exists".into())
                    }
                    other => other,
                })?;
                row.try_into()
            }

            async fn user_by_email(&self, email: &Email) -> StoreResult<Option<User>> {
                let row: Option<UserRow> =
                    sqlx::query_as(&format!("SELECT {USER_COLUMNS} FROM users WHERE email = $1"))
                        .bind(email.as_str())
                        .fetch_optional(&self.pool)
                        .await?;
                row.map(TryInto::try_into).transpose()
            }

            async fn user_by_id(&self, id: UserId) -> StoreResult<Option<User>> {
                let row: Option<UserRow> =
                    sqlx::query_as(&format!("SELECT {USER_COLUMNS} FROM users WHERE id = $1"))
                        .bind(id.0)
                        .fetch_optional(&self.pool)
                        .await?;
                row.map(TryInto::try_into).transpose()
            }

            async fn list_users(&self, after: Option<UserId>, limit: u32) -> StoreResult<Vec<User>> {
                let rows: Vec<UserRow> = match after {
                    Some(a) => sqlx::query_as(&format!(
                        "SELECT {USER_COLUMNS} FROM users WHERE id > $1 ORDER BY id LIMIT $2"
                    ))
                    .bind(a.0)
                    .bind(i64::from(limit))
                    .fetch_all(&self.pool)
                    .await?,
                    None => sqlx::query_as(&format!(
                        "SELECT {USER_COLUMNS} FROM users ORDER BY id LIMIT $1"
                    ))
                    .bind(i64::from(limit))
                    .fetch_all(&self.pool)
                    .await?,
                };
                rows.into_iter().map(TryInto::try_into).collect()
            }

            async fn record_login_failure(
                &self,
                id: UserId,
                threshold: u32,
                lock_until: DateTime<Utc>,
            ) -> StoreResult<User> {
                let row: UserRow = sqlx::query_as(&format!(
                    "UPDATE users SET \
                       failed_logins = CASE WHEN failed_logins + 1 >= $2 THEN 0 ELSE failed_logins + 1 END, \
                       locked_until = CASE WHEN failed_logins + 1 >= $2 THEN $3 ELSE locked_until END, \
                       updated_at = $4 \
                     WHERE id = $1 RETURNING {USER_COLUMNS}"
                ))
                .bind(id.0)
                .bind(i32::try_from(threshold).unwrap_or(i32::MAX))
                .bind(lock_until)
                .bind(Utc::now())
                .fetch_one(&self.pool)
                .await?;
                row.try_into()
            }

            async fn clear_login_failures(
                &self,
                id: UserId,
                seen_locked_until: Option<DateTime<Utc>>,
            ) -> StoreResult<bool> {
                // Compare-and-set on the lock as it was read: a failure that locked the
                // account in between changes it, and this success then clears nothing.
                let r = sqlx::query(
                    "UPDATE users SET failed_logins = 0, locked_until = NULL, updated_at = $2 \
                     WHERE id = $1 AND locked_until IS NOT DISTINCT FROM $3",
                )
                .bind(id.0)
                .bind(Utc::now())
                .bind(seen_locked_until)
                .execute(&self.pool)
                .await?;
                Ok(r.rows_affected() == 1)
            }

            async fn create_refresh_family(
                &self,
                user: UserId,
                token_hash: &[u8],
                expires_at: DateTime<Utc>,
            ) -> StoreResult<Uuid> {
                let family = Uuid::now_v7();
                let now = Utc::now();
                let mut tx = self.pool.begin().await?;
                sqlx::query("INSERT INTO refresh_families (id, user_id, created_at) VALUES ($1, $2, $3)")
                    .bind(family)
                    .bind(user.0)
                    .bind(now)
                    .execute(&mut *tx)
                    .await?;
                Self::insert_token(&mut *tx, token_hash, family, now, expires_at).await?;
                tx.commit().await?;
                Ok(family)
            }

            async fn rotate_refresh_token(
                &self,
                old_hash: &[u8],
                new_hash: &[u8],
                new_expires_at: DateTime<Utc>,
                grace: std::time::Duration,
            ) -> StoreResult<RotateOutcome> {
                self.rotate(old_hash, new_hash, new_expires_at, grace).await
            }

            async fn revoke_refresh_family(
                &self,
                token_hash: &[u8],
                reason: &str,
            ) -> StoreResult<Option<(UserId, Uuid)>> {
                let row: Option<(Uuid, Uuid)> = sqlx::query_as(
                    "UPDATE refresh_families SET revoked_at = $2, revoked_reason = $3 \
                     WHERE id = (SELECT family_id FROM refresh_tokens WHERE token_hash = $1) \
                       AND revoked_at IS NULL RETURNING user_id, id",
                )
                .bind(token_hash)
                .bind(Utc::now())
                .bind(reason)
                .fetch_optional(&self.pool)
                .await?;
                Ok(row.map(|(u, f)| (UserId(u), f)))
            }

            async fn create_api_key(&self, k: &NewApiKey) -> StoreResult<ApiKey> {
                let row: KeyRow = sqlx::query_as(&format!(
                    "INSERT INTO api_keys (id, user_id, name, prefix, key_hash, created_at) \
                     VALUES ($1, $2, $3, $4, $5, $6) RETURNING {KEY_COLUMNS}"
                ))
                .bind(ApiKeyId::new().0)
                .bind(k.user_id.0)
                .bind(&k.name)
                .bind(&k.prefix)
                .bind(&k.key_hash)
                .bind(Utc::now())
                .fetch_one(&self.pool)
                .await?;
                Ok(row.into())
            }

            async fn list_api_keys(&self, user: UserId) -> StoreResult<Vec<ApiKey>> {
                let rows: Vec<KeyRow> = sqlx::query_as(&format!(
                    "SELECT {KEY_COLUMNS} FROM api_keys \
                     WHERE user_id = $1 AND revoked_at IS NULL ORDER BY id"
                ))
                .bind(user.0)
                .fetch_all(&self.pool)
                .await?;
                Ok(rows.into_iter().map(Into::into).collect())
            }

            async fn revoke_api_key(&self, user: UserId, id: ApiKeyId) -> StoreResult<bool> {
                let done = sqlx::query(
                    "UPDATE api_keys SET revoked_at = $3 \
                     WHERE id = $1 AND user_id = $2 AND revoked_at IS NULL",
                )
                .bind(id.0)
                .bind(user.0)
                .bind(Utc::now())
                .execute(&self.pool)
                .await?;
                Ok(done.rows_affected() == 1)
            }

            async fn use_api_key(
                &self,
                key_hash: &[u8],
                touch_every: std::time::Duration,
            ) -> StoreResult<Option<(ApiKey, User)>> {
                let row: Option<KeyRow> = sqlx::query_as(&format!(
                    "SELECT {KEY_COLUMNS} FROM api_keys WHERE key_hash = $1 AND revoked_at IS NULL"
                ))
                .bind(key_hash)
                .fetch_optional(&self.pool)
                .await?;
                let Some(key) = row.map(ApiKey::from) else { return Ok(None) };
                let Some(user) = self.user_by_id(key.user_id).await? else { return Ok(None) };
                let now = Utc::now();
                let stale = key.last_used_at.map_or(true, |t| {
                    (now - t).to_std().map_or(false, |age| age >= touch_every)
                });
                if stale {
                    sqlx::query("UPDATE api_keys SET last_used_at = $2 WHERE id = $1")
                        .bind(key.id.0)
                        .bind(now)
                        .execute(&self.pool)
                        .await?;
                }
                Ok(Some((key, user)))
            }

            async fn audit(&self, e: &AuditEvent) -> StoreResult<()> {
                sqlx::query(
                    "INSERT INTO audit_log (at, user_id, event, ip, detail) VALUES ($1, $2, $3, $4, $5)",
                )
                .bind(Utc::now())
                .bind(e.user_id.map(|u| u.0))
                .bind(e.event)
                .bind(&e.ip)
                .bind(e.detail.to_string())
                .execute(&self.pool)
                .await?;
                Ok(())
            }

            async fn list_audit(&self, user: Option<UserId>, limit: u32) -> StoreResult<Vec<AuditEntry>> {
                let cols = "id, at, user_id, event, ip, detail";
                let rows: Vec<AuditRow> = match user {
                    Some(u) => sqlx::query_as(&format!(
                        "SELECT {cols} FROM audit_log WHERE user_id = $1 ORDER BY id DESC LIMIT $2"
                    ))
                    .bind(u.0)
                    .bind(i64::from(limit))
                    .fetch_all(&self.pool)
                    .await?,
                    None => sqlx::query_as(&format!(
                        "SELECT {cols} FROM audit_log ORDER BY id DESC LIMIT $1"
                    ))
                    .bind(i64::from(limit))
                    .fetch_all(&self.pool)
                    .await?,
                };
                Ok(rows.into_iter().map(Into::into).collect())
            }
        }
    };
}

pub(super) use impl_account_store;
