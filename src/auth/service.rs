//! Account flows: register, login (with lockout), refresh rotation (with reuse detection),
//! logout, bearer authentication and API keys. Every outcome is written to the audit log.

use super::{jwt::KeySet, jwt::TokenError, password::Hasher, secrets};
use crate::domain::Principal;
use crate::{
    config::AuthConfig,
    domain::{Email, Role, UserId},
    error::AppError,
    store::{AuditEvent, NewUser, RotateOutcome, Store, User},
};
use chrono::{Duration as ChronoDuration, Utc};
use serde::Serialize;
use std::{sync::Arc, time::Duration};
use utoipa::ToSchema;

mod account;
mod keys;
mod login;
mod profile;
mod refusal;
mod second_factor;

pub use account::{AccountChange, TokenInfo};
pub use profile::{Profile, ProfileEdit};
pub use second_factor::{RecoveryCodes, SecondFactor, TotpEnrollment};

/// How often a busy API key's `last_used_at` is written.
const API_KEY_TOUCH_EVERY: Duration = Duration::from_secs(60);

#[derive(Debug, Serialize, ToSchema)]
pub struct TokenPair {
    pub access_token: String,
    /// Always `Bearer`.
    pub token_type: &'static str,
    /// Seconds until `access_token` expires.
    pub expires_in: u64,
    pub refresh_token: String,
    /// Seconds until `refresh_token` expires (it is also single-use).
    pub refresh_expires_in: u64,
}

/// Built once in `app.rs`; shared by HTTP handlers and the WebSocket upgrade.
pub struct AuthService {
    store: Arc<dyn Store>,
    /// To close the sockets of a revoked API key on every instance.
    bus: Arc<dyn crate::bus::Bus>,
    keys: Arc<KeySet>,
    hasher: Hasher,
    config: AuthConfig,
    checked: super::cache::TokenCache,
    /// Concurrent checks of one API key share a read (a reconnect storm of one key's sockets).
    key_checks: KeyChecks,
    /// Sign-ins and accounts refused before their tokens expire (shared with the bus's inbox).
    refused: Arc<crate::domain::Refused>,
}

type KeyCheck = Result<Option<(crate::store::ApiKey, crate::store::User)>, Arc<AppError>>;
type KeyChecks = crate::coalesce::Coalesce<Vec<u8>, (), KeyCheck>;

fn key_checks(store: Arc<dyn Store>) -> KeyChecks {
    crate::coalesce::Coalesce::same_for_all(move |hash: Vec<u8>| {
        let store = store.clone();
        async move {
            let read = store.use_api_key(&hash, API_KEY_TOUCH_EVERY).await;
            read.map_err(|e| Arc::new(AppError::from(e)))
        }
    })
}

impl AuthService {
    pub fn new(
        store: Arc<dyn Store>,
        keys: Arc<KeySet>,
        bus: Arc<dyn crate::bus::Bus>,
        refused: Arc<crate::domain::Refused>,
        config: AuthConfig,
    ) -> anyhow::Result<Self> {
        let hasher = Hasher::new(
            config.argon2_memory_kib,
            config.argon2_iterations,
            config.hash_concurrency,
        )?;
        Ok(Self {
            key_checks: key_checks(store.clone()),
            store,
            bus,
            keys,
            hasher,
            config,
            checked: super::cache::TokenCache::new(),
            refused,
        })
    }

    pub fn keys(&self) -> &KeySet {
        &self.keys
    }

    async fn audit(
        &self,
        user_id: Option<UserId>,
        event: &'static str,
        ip: Option<&str>,
        detail: serde_json::Value,
    ) {
        let e = AuditEvent {
            user_id,
            event,
            ip: ip.map(str::to_owned),
            detail,
        };
        if let Err(err) = self.store.audit(&e).await {
            tracing::warn!(error = %err, event, "audit write failed");
        }
    }

    pub async fn create_user(
        &self,
        email: &str,
        password: &str,
        role: Role,
    ) -> Result<User, AppError> {
        let email =
            Email::parse(email).map_err(|e| AppError::validation("email", e.to_string()))?;
        super::password::check_policy(password, email.local_part(), self.config.password_min_len)
            .map_err(|m| AppError::validation("password", m))?;
        let password_hash = self
            .hasher
            .hash(password.to_owned())
            .await
            .map_err(AppError::internal)?;
        let user = self
            .store
            .create_user(&NewUser {
                email,
                password_hash,
                role,
            })
            .await?;
        Ok(user)
    }

    pub async fn register(
        &self,
        email: &str,
        password: &str,
        ip: Option<&str>,
    ) -> Result<(User, TokenPair), AppError> {
        let user = self.create_user(email, password, Role::User).await?;
        self.audit(Some(user.id), "register", ip, serde_json::json!({}))
            .await;
        let tokens = self.start_session(&user).await?;
        Ok((user, tokens))
    }

    async fn start_session(&self, user: &User) -> Result<TokenPair, AppError> {
        let refresh = secrets::new_refresh_token();
        let expires = Utc::now() + ChronoDuration::seconds(self.config.refresh_ttl_secs as i64);
        let family = self
            .store
            .create_refresh_family(user.id, &secrets::hash(&refresh), expires)
            .await?;
        Ok(self.pair(user.id, user.role, family, refresh))
    }

    fn pair(
        &self,
        user: UserId,
        role: Role,
        family: uuid::Uuid,
        refresh_token: String,
    ) -> TokenPair {
        let (access_token, _) =
            self.keys
                .issue(user, role, Some(family), self.config.access_ttl_secs);
        TokenPair {
            access_token,
            token_type: "Bearer",
            expires_in: self.config.access_ttl_secs,
            refresh_token,
            refresh_expires_in: self.config.refresh_ttl_secs,
        }
    }

    pub async fn refresh(&self, token: &str, ip: Option<&str>) -> Result<TokenPair, AppError> {
        // The successor is derived, not drawn: a replay inside the grace window (two tabs
        // refreshing with the same token) is answered with the same successor.
        let new = secrets::successor(self.keys.succession_key(), token);
        let expires = Utc::now() + ChronoDuration::seconds(self.config.refresh_ttl_secs as i64);
        let grace = Duration::from_secs(self.config.refresh_reuse_grace_secs);
        let outcome = self
            .store
            .rotate_refresh_token(&secrets::hash(token), &secrets::hash(&new), expires, grace)
            .await?;
        let refused = |m: &str| AppError::InvalidToken(m.to_string());
        match outcome {
            RotateOutcome::Rotated { user_id, family_id } => {
                // The role may have changed since login; read it fresh.
                let user = self
                    .store
                    .user_by_id(user_id)
                    .await?
                    .ok_or_else(|| refused("account no longer exists"))?;
                if user.disabled_at.is_some() {
                    return Err(AppError::AccountDisabled);
                }
                self.audit(Some(user_id), "refresh", ip, serde_json::json!({}))
                    .await;
                Ok(self.pair(user_id, user.role, family_id, new))
            }
            RotateOutcome::Reused { user_id, family_id } => {
                self.refuse(user_id, vec![family_id], None).await;
                self.audit(
                    Some(user_id),
                    "refresh_reuse_detected",
                    ip,
                    serde_json::json!({"action": "family_revoked"}),
                )
                .await;
                tracing::warn!(%user_id, "refresh token reused: family revoked");
                Err(refused(
                    "refresh token was already used; this session has been revoked, sign in again",
                ))
            }
            RotateOutcome::Revoked => Err(refused("refresh token has been revoked")),
            RotateOutcome::Expired => Err(refused("refresh token expired")),
            RotateOutcome::Unknown => Err(refused("unknown refresh token")),
        }
    }

    pub async fn logout(&self, token: &str, ip: Option<&str>) -> Result<(), AppError> {
        let revoked = self
            .store
            .revoke_refresh_family(&secrets::hash(token), "logout")
            .await?;
        if let Some((user, family)) = revoked {
            self.refuse(user, vec![family], None).await;
        }
        let user = revoked.map(|(u, _)| u);
        self.audit(
            user,
            "logout",
            ip,
            serde_json::json!({"revoked": user.is_some()}),
        )
        .await;
        Ok(())
    }

    /// A bearer token is either an API key (`sk-sy-...`) or an access JWT.
    pub async fn authenticate(&self, bearer: &str) -> Result<Principal, AppError> {
        let p = match self.checked.get(bearer) {
            Some(p) => p,
            None => self.verify(bearer).await?,
        };
        if self.refused.refuses(&p) {
            return Err(match p.api_key {
                Some(_) => AppError::InvalidApiKey,
                None => AppError::InvalidToken("access token has been revoked".into()),
            });
        }
        Ok(p)
    }

    /// For a socket, which may live for hours: an API key is checked against the store, not
    /// the cache, so a key revoked on another instance a moment ago cannot open one.
    pub async fn authenticate_socket(&self, bearer: &str) -> Result<Principal, AppError> {
        if secrets::looks_like_api_key(bearer) {
            let p = self.verify(bearer).await?;
            if self.refused.refuses(&p) {
                return Err(AppError::InvalidApiKey);
            }
            return Ok(p);
        }
        self.authenticate(bearer).await
    }

    async fn verify(&self, bearer: &str) -> Result<Principal, AppError> {
        if secrets::looks_like_api_key(bearer) {
            let (key, user) = self
                .key_checks
                .get(secrets::hash(bearer).to_vec(), ())
                .await
                .ok_or_else(|| AppError::internal(anyhow::anyhow!("API key check failed")))??
                .ok_or(AppError::InvalidApiKey)?;
            if user.disabled_at.is_some() {
                return Err(AppError::InvalidApiKey);
            }
            let p = Principal {
                user_id: user.id,
                role: user.role,
                api_key: Some(key.id),
                expires_at: None,
                session: None,
            };
            if self.config.api_key_cache_secs > 0 {
                let until = super::cache::TokenCache::ttl_from_now(self.config.api_key_cache_secs);
                self.checked.put(bearer, &p, until);
            }
            return Ok(p);
        }
        match self.keys.verify(bearer) {
            Ok(c) => {
                let p = Principal {
                    user_id: c.sub,
                    role: c.role,
                    api_key: None,
                    expires_at: Some(c.exp),
                    session: c.sid,
                };
                let until = (c.exp.max(0) as u64).saturating_add(self.config.leeway_secs);
                self.checked.put(bearer, &p, until);
                Ok(p)
            }
            Err(TokenError::Expired) => Err(AppError::InvalidToken("access token expired".into())),
            Err(TokenError::Invalid(why)) => Err(AppError::InvalidToken(format!(
                "access token is not valid: {why}"
            ))),
        }
    }
}
