//! What a signed-in user or an admin changes about an account: its password, its role, whether
//! it is disabled; and what a service holding a token may ask about it.

use super::AuthService;
use crate::{
    domain::{Principal, Role, UserId},
    error::AppError,
    store::User,
};
use chrono::Utc;
use serde::Serialize;
use utoipa::ToSchema;

/// What `POST /v1/auth/verify-token` answers. An inactive token gets `active: false` and
/// nothing else: no reason a prober could learn from.
#[derive(Debug, Serialize, ToSchema)]
pub struct TokenInfo {
    pub active: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<String>, format = Uuid)]
    pub sub: Option<UserId>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub role: Option<Role>,
    /// Unix seconds; absent for API keys, which do not expire.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub exp: Option<i64>,
    /// `access_token` or `api_key`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub token_type: Option<&'static str>,
}

/// An admin's change to an account; `None` leaves a field as it is.
#[derive(Debug, Default)]
pub struct AccountChange {
    pub role: Option<Role>,
    pub disabled: Option<bool>,
}

impl AuthService {
    /// The caller's password, checked as a login checks it: a locked account waits, a wrong
    /// password counts toward the lock.
    pub(super) async fn confirm_password(
        &self,
        user: &User,
        password: &str,
        param: &'static str,
        ip: Option<&str>,
    ) -> Result<(), AppError> {
        let now = Utc::now();
        if let Some(until) = user.locked_until.filter(|t| *t > now) {
            return Err(AppError::AccountLocked { until });
        }
        let ok = self
            .hasher
            .verify(password.to_owned(), Some(user.password_hash.clone()))
            .await
            .map_err(AppError::internal)?;
        if ok {
            // Failures that finished while this was hashed may have locked the account.
            let fresh = (self.store.user_by_id(user.id).await?)
                .ok_or_else(|| AppError::InvalidToken("account no longer exists".into()))?;
            if let Some(until) = fresh.locked_until.filter(|t| *t > Utc::now()) {
                return Err(AppError::AccountLocked { until });
            }
            return Ok(());
        }
        match self.wrong_password(user, ip, now).await? {
            AppError::InvalidCredentials => Err(AppError::validation(
                param,
                format!("{param} is not the account's current password"),
            )),
            locked => Err(locked),
        }
    }

    /// The signed-in user behind an access token (API keys cannot change the account).
    pub(super) async fn signed_in_user(&self, p: &Principal) -> Result<User, AppError> {
        if p.api_key.is_some() {
            return Err(AppError::Forbidden(
                "an API key cannot change the account; sign in with the password".into(),
            ));
        }
        self.store
            .user_by_id(p.user_id)
            .await?
            .ok_or_else(|| AppError::InvalidToken("account no longer exists".into()))
    }

    async fn new_password_hash(&self, user: &User, password: &str) -> Result<String, AppError> {
        let local = user.email.split('@').next().unwrap_or("");
        super::super::password::check_policy(password, local, self.config.password_min_len)
            .map_err(|m| AppError::validation("new_password", m))?;
        self.hasher
            .hash(password.to_owned())
            .await
            .map_err(AppError::internal)
    }

    /// Sets a new password; every other sign-in of the account is revoked and its sockets
    /// close, the caller's own stays. Returns how many sign-ins were revoked.
    pub async fn change_password(
        &self,
        p: &Principal,
        current: &str,
        new: &str,
        ip: Option<&str>,
    ) -> Result<usize, AppError> {
        let user = self.signed_in_user(p).await?;
        self.confirm_password(&user, current, "current_password", ip)
            .await?;
        if current == new {
            return Err(AppError::validation(
                "new_password",
                "the new password must differ from the current one",
            ));
        }
        let hash = self.new_password_hash(&user, new).await?;
        self.store.set_password_hash(user.id, &hash).await?;
        let revoked = self
            .store
            .revoke_user_families(user.id, p.session, "password_changed")
            .await?;
        let n = revoked.len();
        self.refuse(user.id, revoked, None).await;
        self.audit(
            Some(user.id),
            "password_changed",
            ip,
            serde_json::json!({"revoked_sign_ins": n}),
        )
        .await;
        Ok(n)
    }

    /// An admin sets a user's password (no e-mail here): every sign-in of the account is
    /// revoked, so the user signs in again with the new one.
    pub async fn reset_password(
        &self,
        admin: &Principal,
        id: UserId,
        new: &str,
        ip: Option<&str>,
    ) -> Result<usize, AppError> {
        let user = self
            .store
            .user_by_id(id)
            .await?
            .ok_or_else(|| AppError::NotFound(format!("no user {id}")))?;
        let hash = self.new_password_hash(&user, new).await?;
        self.store.set_password_hash(user.id, &hash).await?;
        let revoked = (self.store)
            .revoke_user_families(user.id, None, "password_reset")
            .await?;
        let n = revoked.len();
        self.refuse(user.id, revoked, None).await;
        self.audit(
            Some(user.id),
            "password_reset",
            ip,
            serde_json::json!({"by": admin.user_id, "revoked_sign_ins": n}),
        )
        .await;
        Ok(n)
    }

    /// Changes an account's role or disables it. Disabling refuses every credential of it at
    /// once on every instance and closes its sockets. A new role is carried by the next access
    /// token, and tokens claiming the old one are refused at once (the client refreshes), so a
    /// demoted admin is not one for the rest of their token's life.
    pub async fn update_account(
        &self,
        admin: &Principal,
        id: UserId,
        change: AccountChange,
        ip: Option<&str>,
    ) -> Result<User, AppError> {
        if id == admin.user_id && (change.disabled == Some(true) || change.role.is_some()) {
            return Err(AppError::validation(
                "id",
                "an admin cannot disable or change the role of their own account",
            ));
        }
        let user = self
            .store
            .update_account(id, change.role, change.disabled)
            .await?
            .ok_or_else(|| AppError::NotFound(format!("no user {id}")))?;
        if change.disabled.is_some() || change.role.is_some() {
            let role = change.role.map(|_| user.role);
            self.refuse_as(id, Vec::new(), change.disabled, role).await;
        }
        self.audit(
            Some(id),
            "account_updated",
            ip,
            serde_json::json!({"by": admin.user_id, "role": change.role, "disabled": change.disabled}),
        )
        .await;
        Ok(user)
    }

    /// For a service holding a token: is it live, and whose is it.
    pub async fn verify_token(&self, token: &str) -> Result<TokenInfo, AppError> {
        match self.authenticate(token).await {
            Ok(p) => Ok(TokenInfo {
                active: true,
                sub: Some(p.user_id),
                role: Some(p.role),
                exp: p.expires_at,
                token_type: Some(if p.api_key.is_some() {
                    "api_key"
                } else {
                    "access_token"
                }),
            }),
            // Only a database that cannot answer is an error; anything else is "not active".
            Err(e @ (AppError::Unavailable(_) | AppError::Internal(_))) => Err(e),
            Err(_) => Ok(TokenInfo {
                active: false,
                sub: None,
                role: None,
                exp: None,
                token_type: None,
            }),
        }
    }
}
