//! Refresh-token rotation, shared by both backends (see `sql.rs` for why a macro): the claim
//! comes first so two racing uses cannot both win; a replay revokes the family unless it falls
//! in the reuse grace window for a successor still unused.

macro_rules! impl_token_sql {
    ($store:ty) => {
        impl $store {
            /// `AccountStore::rotate_refresh_token`, in one transaction.
            async fn rotate(
                &self,
                old_hash: &[u8],
                new_hash: &[u8],
                new_expires_at: DateTime<Utc>,
                grace: std::time::Duration,
            ) -> StoreResult<RotateOutcome> {
                let now = Utc::now();
                let mut tx = self.pool.begin().await?;
                // The write comes first so that the row (PostgreSQL) or the database (SQLite)
                // is locked before anything is read: two racing uses cannot both win.
                let claimed: Option<(Uuid,)> = sqlx::query_as(
                    "UPDATE refresh_tokens SET used_at = $2 \
                     WHERE token_hash = $1 AND used_at IS NULL RETURNING family_id",
                )
                .bind(old_hash)
                .bind(now)
                .fetch_optional(&mut *tx)
                .await?;
                let row: Option<TokenRow> = sqlx::query_as(
                    "SELECT t.family_id, t.expires_at, f.user_id, f.revoked_at, t.used_at, t.replaced_by \
                     FROM refresh_tokens t JOIN refresh_families f ON f.id = t.family_id \
                     WHERE t.token_hash = $1",
                )
                .bind(old_hash)
                .fetch_optional(&mut *tx)
                .await?;
                let Some(row) = row else {
                    return Ok(RotateOutcome::Unknown);
                };
                let user_id = UserId(row.user_id);
                // A replay moments after the rotation, asking for the very successor it made,
                // while that successor is unused: two tabs refreshing at once, not a thief.
                let in_grace = claimed.is_none()
                    && row.replaced_by.as_deref() == Some(new_hash)
                    && row.used_at.is_some_and(|t| {
                        now.signed_duration_since(t).to_std().unwrap_or_default() <= grace
                    });
                let successor_unused = if in_grace {
                    let r: Option<(Option<DateTime<Utc>>,)> =
                        sqlx::query_as("SELECT used_at FROM refresh_tokens WHERE token_hash = $1")
                            .bind(new_hash)
                            .fetch_optional(&mut *tx)
                            .await?;
                    matches!(r, Some((None,)))
                } else {
                    false
                };
                let outcome = if row.revoked_at.is_some() {
                    RotateOutcome::Revoked
                } else if in_grace && successor_unused {
                    RotateOutcome::Rotated { user_id, family_id: row.family_id }
                } else if claimed.is_none() {
                    sqlx::query(
                        "UPDATE refresh_families SET revoked_at = $2, revoked_reason = 'reuse' \
                         WHERE id = $1",
                    )
                    .bind(row.family_id)
                    .bind(now)
                    .execute(&mut *tx)
                    .await?;
                    RotateOutcome::Reused { user_id }
                } else if row.expires_at <= now {
                    RotateOutcome::Expired
                } else {
                    sqlx::query(
                        "INSERT INTO refresh_tokens (token_hash, family_id, created_at, expires_at) \
                         VALUES ($1, $2, $3, $4)",
                    )
                    .bind(new_hash)
                    .bind(row.family_id)
                    .bind(now)
                    .bind(new_expires_at)
                    .execute(&mut *tx)
                    .await?;
                    sqlx::query("UPDATE refresh_tokens SET replaced_by = $2 WHERE token_hash = $1")
                        .bind(old_hash)
                        .bind(new_hash)
                        .execute(&mut *tx)
                        .await?;
                    RotateOutcome::Rotated { user_id, family_id: row.family_id }
                };
                tx.commit().await?;
                Ok(outcome)
            }
        }
    };
}

pub(super) use impl_token_sql;
