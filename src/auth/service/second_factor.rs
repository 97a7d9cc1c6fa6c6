//! TOTP as a second factor for password sign-in: enroll (a secret and its `otpauth://` URI),
//! confirm with a first code (which returns ten single-use recovery codes, stored as SHA-256),
//! disable with the password. At sign-in a wrong code counts toward the account lock like a
//! wrong password, and a code is taken once (its time step is remembered).

use super::AuthService;
use crate::{auth::totp, domain::Principal, error::AppError, store::User};
use chrono::Utc;
use rand::RngCore;
use serde::Serialize;
use sha2::{Digest, Sha256};
use utoipa::ToSchema;

/// Recovery codes made at confirmation.
const RECOVERY_CODES: usize = 10;

#[derive(Serialize, ToSchema)]
pub struct TotpEnrollment {
    /// Base32, for typing into an authenticator app.
    pub secret: String,
    /// `otpauth://totp/...`: what a QR code shows.
    pub otpauth_uri: String,
}

#[derive(Serialize, ToSchema)]
pub struct RecoveryCodes {
    /// Each signs in once in place of a code; shown only here.
    pub recovery_codes: Vec<String>,
}

/// What a password sign-in brings besides the password.
#[derive(Debug, Default, Clone)]
pub struct SecondFactor {
    pub totp_code: Option<String>,
    pub recovery_code: Option<String>,
}

fn hash(code: &str) -> Vec<u8> {
    let normal: String = code
        .chars()
        .filter(|c| c.is_ascii_alphanumeric())
        .map(|c| c.to_ascii_lowercase())
        .collect();
    Sha256::digest(normal.as_bytes()).to_vec()
}

fn recovery_code() -> String {
    let mut b = [0u8; 10];
    rand::thread_rng().fill_bytes(&mut b);
    let s = totp::base32(&b).to_ascii_lowercase();
    format!("{}-{}", &s[..8], &s[8..16])
}

fn now_secs() -> u64 {
    Utc::now().timestamp().max(0) as u64
}

impl AuthService {
    /// Starts an enrollment (after the password, which counts toward the lock when wrong).
    pub async fn enroll_totp(
        &self,
        p: &Principal,
        password: &str,
        ip: Option<&str>,
    ) -> Result<TotpEnrollment, AppError> {
        let user = self.signed_in_user(p).await?;
        self.confirm_password(&user, password, "password", ip)
            .await?;
        let mut secret = vec![0u8; totp::SECRET_BYTES];
        rand::thread_rng().fill_bytes(&mut secret);
        if !self.store.begin_totp(user.id, &secret).await? {
            return Err(AppError::Conflict(
                "a second factor is already on; disable it first".into(),
            ));
        }
        Ok(TotpEnrollment {
            secret: totp::base32(&secret),
            otpauth_uri: totp::uri(&self.config.issuer, &user.email, &secret),
        })
    }

    /// Turns the enrolled factor on with a first code; answers the recovery codes.
    pub async fn confirm_totp(
        &self,
        p: &Principal,
        code: &str,
        ip: Option<&str>,
    ) -> Result<RecoveryCodes, AppError> {
        let user = self.signed_in_user(p).await?;
        let factor = (self.store.totp(user.id).await?)
            .filter(|f| f.confirmed_at.is_none())
            .ok_or_else(|| AppError::NotFound("no enrollment waits for a code".into()))?;
        let step = totp::matching_step(&factor.secret, code, now_secs())
            .ok_or_else(|| AppError::validation("code", "that code is not the current one"))?;
        let codes: Vec<String> = (0..RECOVERY_CODES).map(|_| recovery_code()).collect();
        let hashes: Vec<Vec<u8>> = codes.iter().map(|c| hash(c)).collect();
        if !self.store.confirm_totp(user.id, step, &hashes).await? {
            return Err(AppError::Conflict(
                "the enrollment changed; start again".into(),
            ));
        }
        self.audit(Some(user.id), "totp_enabled", ip, serde_json::json!({}))
            .await;
        Ok(RecoveryCodes {
            recovery_codes: codes,
        })
    }

    /// Turns the factor off (with the password).
    pub async fn disable_totp(
        &self,
        p: &Principal,
        password: &str,
        ip: Option<&str>,
    ) -> Result<(), AppError> {
        let user = self.signed_in_user(p).await?;
        self.confirm_password(&user, password, "password", ip)
            .await?;
        if !self.store.delete_totp(user.id).await? {
            return Err(AppError::NotFound("no second factor is on".into()));
        }
        self.audit(Some(user.id), "totp_disabled", ip, serde_json::json!({}))
            .await;
        Ok(())
    }

    /// Whether the account has a confirmed second factor.
    pub async fn has_second_factor(&self, user: crate::domain::UserId) -> Result<bool, AppError> {
        Ok((self.store.totp(user).await?).is_some_and(|f| f.confirmed_at.is_some()))
    }

    /// After the right password: the second factor, when the account has one. A missing one
    /// is `mfa_required` (try again with it); a wrong or reused one counts toward the lock.
    pub(super) async fn check_second_factor(
        &self,
        user: &User,
        given: &SecondFactor,
        ip: Option<&str>,
    ) -> Result<(), AppError> {
        let Some(factor) = (self.store.totp(user.id).await?).filter(|f| f.confirmed_at.is_some())
        else {
            return Ok(());
        };
        let ok = match (&given.totp_code, &given.recovery_code) {
            (None, None) => return Err(AppError::MfaRequired),
            (Some(code), _) => match totp::matching_step(&factor.secret, code, now_secs()) {
                Some(step) => self.store.take_totp_step(user.id, step).await?,
                None => false,
            },
            (None, Some(code)) => {
                let used = self.store.use_recovery_code(user.id, &hash(code)).await?;
                if used {
                    let left = self.store.recovery_codes_left(user.id).await?;
                    let detail = serde_json::json!({ "left": left });
                    self.audit(Some(user.id), "recovery_code_used", ip, detail)
                        .await;
                }
                used
            }
        };
        if ok {
            return Ok(());
        }
        match self.wrong_password(user, ip, Utc::now()).await? {
            AppError::InvalidCredentials => Err(AppError::InvalidMfaCode),
            locked => Err(locked),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn recovery_codes_are_typed_loosely_and_differ() {
        let c = recovery_code();
        assert_eq!(c.len(), 17);
        assert_eq!(hash(&c), hash(&c.to_ascii_uppercase().replace('-', " ")));
        assert_ne!(recovery_code(), recovery_code());
    }
}
