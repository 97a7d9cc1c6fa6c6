//! `AdminStore` SQL shared by both backends (see `sql.rs` for why a macro). `$day` is the
//! backend's expression for a usage row's UTC day as `YYYY-MM-DD`.

use super::StoreError;

/// A unique violation on `users` names the column it hit.
pub(super) fn profile_conflict(e: sqlx::Error) -> StoreError {
    let text = e.to_string();
    match StoreError::from(e) {
        StoreError::Conflict(_) if text.contains("username") => {
            StoreError::Conflict("this username is taken".into())
        }
        StoreError::Conflict(_) => {
            StoreError::Conflict("an account with this email already exists".into())
        }
        other => other,
    }
}

macro_rules! impl_admin_store {
    ($store:ty, $day:literal) => {
        #[async_trait::async_trait]
        impl $crate::store::AdminStore for $store {
            async fn set_password_hash(&self, id: UserId, hash: &str) -> StoreResult<bool> {
                let r = sqlx::query(
                    "UPDATE users SET password_hash = $2, failed_logins = 0, locked_until = NULL, \
                     updated_at = $3 WHERE id = $1",
                )
                .bind(id.0)
                .bind(hash)
                .bind(Utc::now())
                .execute(&self.pool)
                .await?;
                Ok(r.rows_affected() == 1)
            }

            async fn revoke_user_families(
                &self,
                user: UserId,
                keep: Option<Uuid>,
                reason: &str,
            ) -> StoreResult<Vec<Uuid>> {
                let rows: Vec<(Uuid,)> = sqlx::query_as(
                    "UPDATE refresh_families SET revoked_at = $3, revoked_reason = $4 \
                     WHERE user_id = $1 AND revoked_at IS NULL AND ($2 IS NULL OR id <> $2) \
                     RETURNING id",
                )
                .bind(user.0)
                .bind(keep)
                .bind(Utc::now())
                .bind(reason)
                .fetch_all(&self.pool)
                .await?;
                Ok(rows.into_iter().map(|(id,)| id).collect())
            }

            async fn update_account(
                &self,
                id: UserId,
                role: Option<$crate::domain::Role>,
                disabled: Option<bool>,
            ) -> StoreResult<Option<User>> {
                let row: Option<UserRow> = sqlx::query_as(&format!(
                    "UPDATE users SET access = COALESCE($2, access), role = COALESCE($3, role), \
                       role_changed_at = CASE WHEN $2 IS NULL THEN role_changed_at ELSE $5 END, \
                       disabled_at = CASE WHEN $4 IS NULL THEN disabled_at \
                                          WHEN $4 THEN COALESCE(disabled_at, $5) ELSE NULL END, \
                       updated_at = $5 \
                     WHERE id = $1 RETURNING {USER_COLUMNS}"
                ))
                .bind(id.0)
                .bind(role.map($crate::domain::Role::as_str))
                .bind(role.map($crate::domain::Role::legacy))
                .bind(disabled)
                .bind(Utc::now())
                .fetch_optional(&self.pool)
                .await?;
                row.map(TryInto::try_into).transpose()
            }

            async fn update_profile(
                &self,
                id: UserId,
                c: &ProfileChange,
            ) -> StoreResult<Option<User>> {
                let row: Option<UserRow> = sqlx::query_as(&format!(
                    "UPDATE users SET display_name = COALESCE($2, display_name), \
                       username = COALESCE($3, username), preferences = COALESCE($4, preferences), \
                       email = COALESCE($5, email), updated_at = $6 \
                     WHERE id = $1 RETURNING {USER_COLUMNS}"
                ))
                .bind(id.0)
                .bind(c.display_name.as_deref())
                .bind(c.username.as_deref())
                .bind(c.preferences.as_ref().map(|p| p.to_string()))
                .bind(c.email.as_ref().map(|e| e.as_str()))
                .bind(Utc::now())
                .fetch_optional(&self.pool)
                .await
                .map_err(super::admin_sql::profile_conflict)?;
                row.map(TryInto::try_into).transpose()
            }

            async fn delete_user(&self, id: UserId) -> StoreResult<bool> {
                let mut tx = self.pool.begin().await?;
                sqlx::query(concat!(
                    "INSERT INTO usage_archive (day, model, source, status, requests, \
                       prompt_tokens, completion_tokens, latency_ms_total) \
                     SELECT ", $day, ", model, source, status, COUNT(*), SUM(prompt_tokens), \
                       SUM(completion_tokens), SUM(latency_ms) \
                     FROM usage_records WHERE user_id = $1 GROUP BY 1, 2, 3, 4 \
                     ON CONFLICT (day, model, source, status) DO UPDATE SET \
                       requests = usage_archive.requests + excluded.requests, \
                       prompt_tokens = usage_archive.prompt_tokens + excluded.prompt_tokens, \
                       completion_tokens = usage_archive.completion_tokens + excluded.completion_tokens, \
                       latency_ms_total = usage_archive.latency_ms_total + excluded.latency_ms_total"
                ))
                .bind(id.0)
                .execute(&mut *tx)
                .await?;
                let r = sqlx::query("DELETE FROM users WHERE id = $1")
                    .bind(id.0)
                    .execute(&mut *tx)
                    .await?;
                // Its access tokens outlive the row: every instance, restarted ones too, must
                // keep refusing them until they expire.
                sqlx::query("INSERT INTO deleted_users (id, deleted_at) VALUES ($1, $2)")
                    .bind(id.0)
                    .bind(Utc::now())
                    .execute(&mut *tx)
                    .await?;
                tx.commit().await?;
                Ok(r.rows_affected() == 1)
            }

            async fn refused_since(&self, since: DateTime<Utc>) -> StoreResult<Refused> {
                let families: Vec<(Uuid, Uuid)> = sqlx::query_as(
                    "SELECT id, user_id FROM refresh_families \
                     WHERE revoked_at IS NOT NULL AND revoked_at > $1",
                )
                .bind(since)
                .fetch_all(&self.pool)
                .await?;
                let disabled: Vec<(Uuid,)> = sqlx::query_as(
                    "SELECT id FROM users WHERE disabled_at IS NOT NULL \
                     UNION ALL SELECT id FROM deleted_users WHERE deleted_at > $1",
                )
                .bind(since)
                .fetch_all(&self.pool)
                .await?;
                let roles: Vec<(Uuid, String)> = sqlx::query_as(
                    "SELECT id, COALESCE(NULLIF(access, ''), role) FROM users \
                     WHERE role_changed_at IS NOT NULL AND role_changed_at > $1",
                )
                .bind(since)
                .fetch_all(&self.pool)
                .await?;
                Ok(Refused {
                    families: families.into_iter().map(|(f, u)| (f, UserId(u))).collect(),
                    disabled: disabled.into_iter().map(|(u,)| UserId(u)).collect(),
                    roles: roles
                        .into_iter()
                        .filter_map(|(u, r)| Some((UserId(u), $crate::domain::Role::parse(&r)?)))
                        .collect(),
                })
            }

            fn pool_stats(&self) -> (u32, usize) {
                (self.pool.size(), self.pool.num_idle())
            }

            async fn maintenance(&self) -> StoreResult<Option<Maintenance>> {
                let row: Option<(String, i64, DateTime<Utc>, String)> = sqlx::query_as(
                    "SELECT reason, retry_after_secs, enabled_at, enabled_by \
                     FROM maintenance WHERE id = 1",
                )
                .fetch_optional(&self.pool)
                .await?;
                Ok(row.map(|(reason, retry, enabled_at, enabled_by)| Maintenance {
                    reason,
                    retry_after_secs: retry.max(0) as u64,
                    enabled_at,
                    enabled_by,
                }))
            }

            async fn set_maintenance(&self, m: Option<&Maintenance>) -> StoreResult<()> {
                match m {
                    None => {
                        sqlx::query("DELETE FROM maintenance").execute(&self.pool).await?;
                    }
                    Some(m) => {
                        sqlx::query(
                            "INSERT INTO maintenance (id, reason, retry_after_secs, enabled_at, \
                               enabled_by) VALUES (1, $1, $2, $3, $4) \
                             ON CONFLICT (id) DO UPDATE SET reason = excluded.reason, \
                               retry_after_secs = excluded.retry_after_secs, \
                               enabled_at = excluded.enabled_at, enabled_by = excluded.enabled_by",
                        )
                        .bind(&m.reason)
                        .bind(i64::try_from(m.retry_after_secs).unwrap_or(i64::MAX))
                        .bind(m.enabled_at)
                        .bind(&m.enabled_by)
                        .execute(&self.pool)
                        .await?;
                    }
                }
                Ok(())
            }
        }
    };
}

pub(super) use impl_admin_store;
