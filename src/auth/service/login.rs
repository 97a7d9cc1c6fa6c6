//! Password sign-in: the lockout decided before and again after hashing, and failures counted.

use super::{AuthService, TokenPair};
use crate::{domain::Email, error::AppError, store::User};
use chrono::{Duration as ChronoDuration, Utc};

impl AuthService {
    /// Password sign-in; an account with a second factor also needs its code (`second`).
    pub async fn login(
        &self,
        email: &str,
        password: &str,
        second: &super::SecondFactor,
        ip: Option<&str>,
    ) -> Result<TokenPair, AppError> {
        let user = match Email::parse(email) {
            Ok(e) => self.store.user_by_email(&e).await?,
            Err(_) => None,
        };
        let now = Utc::now();
        if let Some(u) = &user {
            if let Some(until) = u.locked_until.filter(|t| *t > now) {
                self.audit(
                    Some(u.id),
                    "login_refused_locked",
                    ip,
                    serde_json::json!({}),
                )
                .await;
                return Err(AppError::AccountLocked { until });
            }
        }
        let ok = self
            .hasher
            .verify(
                password.to_owned(),
                user.as_ref().map(|u| u.password_hash.clone()),
            )
            .await
            .map_err(AppError::internal)?;
        let Some(user) = user else {
            self.audit(
                None,
                "login_failed",
                ip,
                serde_json::json!({"reason": "unknown_email"}),
            )
            .await;
            return Err(AppError::InvalidCredentials);
        };
        if !ok {
            return Err(self.wrong_password(&user, ip, now).await?);
        }
        // Before the failures are cleared: a right password must not reset the count of wrong
        // codes, or codes could be guessed without end.
        self.check_second_factor(&user, second, ip).await?;
        self.unlock_and_start(&user, ip).await
    }

    /// Counts the failure (locking the account at `auth.lockout_threshold`); the error to
    /// answer with.
    pub(super) async fn wrong_password(
        &self,
        user: &User,
        ip: Option<&str>,
        now: chrono::DateTime<Utc>,
    ) -> Result<AppError, AppError> {
        let lock_until = now + ChronoDuration::seconds(self.config.lockout_secs as i64);
        let after = self
            .store
            .record_login_failure(user.id, self.config.lockout_threshold, lock_until)
            .await?;
        self.audit(
            Some(user.id),
            "login_failed",
            ip,
            serde_json::json!({"reason": "bad_password"}),
        )
        .await;
        if let Some(until) = after.locked_until.filter(|t| *t > now) {
            self.audit(
                Some(user.id),
                "account_locked",
                ip,
                serde_json::json!({"until": until}),
            )
            .await;
            return Ok(AppError::AccountLocked { until });
        }
        Ok(AppError::InvalidCredentials)
    }

    /// The right password: the lock is decided again after hashing, because failures that
    /// finished while this password was hashed may have locked the account, and then even
    /// the right password waits. Cleared only by a compare-and-set on the lock that was read.
    async fn unlock_and_start(&self, user: &User, ip: Option<&str>) -> Result<TokenPair, AppError> {
        let mut seen = user.locked_until;
        for _ in 0..3 {
            if let Some(until) = seen.filter(|t| *t > Utc::now()) {
                self.audit(
                    Some(user.id),
                    "login_refused_locked",
                    ip,
                    serde_json::json!({}),
                )
                .await;
                return Err(AppError::AccountLocked { until });
            }
            if self.store.clear_login_failures(user.id, seen).await? {
                if user.disabled_at.is_some() {
                    self.audit(
                        Some(user.id),
                        "login_refused_disabled",
                        ip,
                        serde_json::json!({}),
                    )
                    .await;
                    return Err(AppError::AccountDisabled);
                }
                self.audit(Some(user.id), "login", ip, serde_json::json!({}))
                    .await;
                return self.start_session(user).await;
            }
            seen = self
                .store
                .user_by_id(user.id)
                .await?
                .ok_or(AppError::InvalidCredentials)?
                .locked_until;
        }
        Err(AppError::Unavailable(
            "sign-in is contended for this account; try again".into(),
        ))
    }
}
