//! Refresh-token rotation, shared by both backends (see `sql.rs` for why a macro): the claim
//! comes first so two racing uses cannot both win; a replay revokes the family unless it falls
//! in the reuse grace window for a successor still unused.

macro_rules! impl_token_sql {
    ($store:ty, $conn:ty) => {
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
                let successor_unused = in_grace && Self::unused(&mut *tx, new_hash).await?;
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
                    RotateOutcome::Reused {
                        user_id,
                        family_id: row.family_id,
                    }
                } else if row.expires_at <= now {
                    RotateOutcome::Expired
                } else {
                    Self::succeed(&mut *tx, old_hash, new_hash, row.family_id, now, new_expires_at).await?;
                    RotateOutcome::Rotated { user_id, family_id: row.family_id }
                };
                tx.commit().await?;
                Ok(outcome)
            }

            /// Whether the token `hash` exists and was never used.
            async fn unused(conn: &mut $conn, hash: &[u8]) -> StoreResult<bool> {
                let r: Option<(Option<DateTime<Utc>>,)> =
                    sqlx::query_as("SELECT used_at FROM refresh_tokens WHERE token_hash = $1")
                        .bind(hash)
                        .fetch_optional(&mut *conn)
                        .await?;
                Ok(matches!(r, Some((None,))))
            }

            /// Issues `new_hash` in the family and records it as `old_hash`'s successor.
            async fn succeed(
                conn: &mut $conn,
                old_hash: &[u8],
                new_hash: &[u8],
                family: Uuid,
                now: DateTime<Utc>,
                expires_at: DateTime<Utc>,
            ) -> StoreResult<()> {
                Self::insert_token(&mut *conn, new_hash, family, now, expires_at).await?;
                sqlx::query("UPDATE refresh_tokens SET replaced_by = $2 WHERE token_hash = $1")
                    .bind(old_hash)
                    .bind(new_hash)
                    .execute(&mut *conn)
                    .await?;
                Ok(())
            }

            /// A new, unused refresh token of `family` (a family's first, or a successor).
            pub(super) async fn insert_token(
                conn: &mut $conn,
                hash: &[u8],
                family: Uuid,
                now: DateTime<Utc>,
                expires_at: DateTime<Utc>,
            ) -> StoreResult<()> {
                sqlx::query(
                    "INSERT INTO refresh_tokens (token_hash, family_id, created_at, expires_at) \
                     VALUES ($1, $2, $3, $4)",
                )
                .bind(hash)
                .bind(family)
                .bind(now)
                .bind(expires_at)
                .execute(&mut *conn)
                .await?;
                Ok(())
            }
        }
    };
}

pub(super) use impl_token_sql;
