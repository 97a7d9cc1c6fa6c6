//! Second-factor SQL shared by both backends (see `sql.rs` for why a macro).

macro_rules! impl_second_factor_store {
    ($store:ty) => {
        #[async_trait::async_trait]
        impl $crate::store::SecondFactorStore for $store {
            async fn begin_totp(&self, user: UserId, secret: &[u8]) -> StoreResult<bool> {
                let r = sqlx::query(
                    "INSERT INTO totp_factors (user_id, secret, created_at) VALUES ($1, $2, $3) \
                     ON CONFLICT (user_id) DO UPDATE SET secret = excluded.secret, \
                       created_at = excluded.created_at, last_step = 0 \
                     WHERE totp_factors.confirmed_at IS NULL",
                )
                .bind(user.0)
                .bind(secret)
                .bind(Utc::now())
                .execute(&self.pool)
                .await?;
                Ok(r.rows_affected() == 1)
            }

            async fn totp(&self, user: UserId) -> StoreResult<Option<$crate::store::TotpFactor>> {
                let row: Option<(Vec<u8>, Option<DateTime<Utc>>, i64)> = sqlx::query_as(
                    "SELECT secret, confirmed_at, last_step FROM totp_factors WHERE user_id = $1",
                )
                .bind(user.0)
                .fetch_optional(&self.pool)
                .await?;
                Ok(row.map(
                    |(secret, confirmed_at, last_step)| $crate::store::TotpFactor {
                        secret,
                        confirmed_at,
                        last_step: last_step as u64,
                    },
                ))
            }

            async fn confirm_totp(
                &self,
                user: UserId,
                step: u64,
                codes: &[Vec<u8>],
            ) -> StoreResult<bool> {
                let mut tx = self.pool.begin().await?;
                let r = sqlx::query(
                    "UPDATE totp_factors SET confirmed_at = $2, last_step = $3 \
                     WHERE user_id = $1 AND confirmed_at IS NULL AND last_step < $3",
                )
                .bind(user.0)
                .bind(Utc::now())
                .bind(step as i64)
                .execute(&mut *tx)
                .await?;
                if r.rows_affected() != 1 {
                    return Ok(false);
                }
                sqlx::query("DELETE FROM recovery_codes WHERE user_id = $1")
                    .bind(user.0)
                    .execute(&mut *tx)
                    .await?;
                for c in codes {
                    sqlx::query("INSERT INTO recovery_codes (user_id, code_hash) VALUES ($1, $2)")
                        .bind(user.0)
                        .bind(c)
                        .execute(&mut *tx)
                        .await?;
                }
                tx.commit().await?;
                Ok(true)
            }

            async fn take_totp_step(&self, user: UserId, step: u64) -> StoreResult<bool> {
                let r = sqlx::query(
                    "UPDATE totp_factors SET last_step = $2 \
                     WHERE user_id = $1 AND confirmed_at IS NOT NULL AND last_step < $2",
                )
                .bind(user.0)
                .bind(step as i64)
                .execute(&self.pool)
                .await?;
                Ok(r.rows_affected() == 1)
            }

            async fn use_recovery_code(&self, user: UserId, hash: &[u8]) -> StoreResult<bool> {
                let r = sqlx::query(
                    "UPDATE recovery_codes SET used_at = $3 \
                     WHERE user_id = $1 AND code_hash = $2 AND used_at IS NULL",
                )
                .bind(user.0)
                .bind(hash)
                .bind(Utc::now())
                .execute(&self.pool)
                .await?;
                Ok(r.rows_affected() == 1)
            }

            async fn recovery_codes_left(&self, user: UserId) -> StoreResult<u64> {
                let (n,): (i64,) = sqlx::query_as(
                    "SELECT COUNT(*) FROM recovery_codes WHERE user_id = $1 AND used_at IS NULL",
                )
                .bind(user.0)
                .fetch_one(&self.pool)
                .await?;
                Ok(n as u64)
            }

            async fn delete_totp(&self, user: UserId) -> StoreResult<bool> {
                let mut tx = self.pool.begin().await?;
                sqlx::query("DELETE FROM recovery_codes WHERE user_id = $1")
                    .bind(user.0)
                    .execute(&mut *tx)
                    .await?;
                let r = sqlx::query("DELETE FROM totp_factors WHERE user_id = $1")
                    .bind(user.0)
                    .execute(&mut *tx)
                    .await?;
                tx.commit().await?;
                Ok(r.rows_affected() == 1)
            }
        }
    };
}
pub(super) use impl_second_factor_store;
