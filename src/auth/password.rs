//! Password hashing (argon2id, OWASP parameters) and the password policy.
//!
//! Hashing is deliberately slow, so it runs on the blocking pool with the caller's span, and a
//! semaphore caps how many run at once: a burst of logins queues behind it instead of taking
//! every core away from the async runtime (which would stall `/health` and every socket).

use argon2::{
    password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString},
    Algorithm, Argon2, Params, Version,
};
use std::sync::Arc;
use tokio::sync::Semaphore;
use tracing::Instrument;

/// Shared by every request; lives as long as the `AuthService`.
pub struct Hasher {
    params: Params,
    permits: Arc<Semaphore>,
    /// A real hash of a random password, verified when the e-mail is unknown so that an
    /// unknown account answers in the same time as a wrong password.
    dummy: String,
}

#[derive(Debug, thiserror::Error)]
pub enum HashError {
    #[error("argon2: {0}")]
    Argon2(String),
    #[error("hashing task failed: {0}")]
    Join(#[from] tokio::task::JoinError),
    #[error("hasher closed")]
    Closed,
}

impl Hasher {
    pub fn new(memory_kib: u32, iterations: u32, concurrency: usize) -> Result<Self, HashError> {
        let params = Params::new(memory_kib, iterations, 1, None)
            .map_err(|e| HashError::Argon2(e.to_string()))?;
        let dummy = hash_now(&params, &uuid::Uuid::new_v4().to_string())?;
        Ok(Self {
            params,
            permits: Arc::new(Semaphore::new(concurrency)),
            dummy,
        })
    }

    pub async fn hash(&self, password: String) -> Result<String, HashError> {
        let params = self.params.clone();
        self.blocking(move || hash_now(&params, &password)).await?
    }

    /// `None` hash means "no such account": verifies against the dummy and returns false.
    pub async fn verify(&self, password: String, hash: Option<String>) -> Result<bool, HashError> {
        let known = hash.is_some();
        let hash = hash.unwrap_or_else(|| self.dummy.clone());
        let ok = self
            .blocking(move || {
                let parsed =
                    PasswordHash::new(&hash).map_err(|e| HashError::Argon2(e.to_string()))?;
                Ok::<_, HashError>(
                    Argon2::default()
                        .verify_password(password.as_bytes(), &parsed)
                        .is_ok(),
                )
            })
            .await??;
        Ok(ok && known)
    }

    async fn blocking<T: Send + 'static>(
        &self,
        f: impl FnOnce() -> T + Send + 'static,
    ) -> Result<T, HashError> {
        let _permit = self
            .permits
            .acquire()
            .await
            .map_err(|_| HashError::Closed)?;
        let span = tracing::Span::current();
        let out = tokio::task::spawn_blocking(move || span.in_scope(f))
            .instrument(tracing::Span::current())
            .await?;
        metrics::counter!("password_hashes_total").increment(1);
        Ok(out)
    }
}

fn hash_now(params: &Params, password: &str) -> Result<String, HashError> {
    let salt = SaltString::generate(&mut rand::rngs::OsRng);
    Argon2::new(Algorithm::Argon2id, Version::V0x13, params.clone())
        .hash_password(password.as_bytes(), &salt)
        .map(|h| h.to_string())
        .map_err(|e| HashError::Argon2(e.to_string()))
}

/// The most common passwords of public breach lists (top of the SecLists 10k list); a policy
/// that only checks length would accept `password1234`.
const COMMON: &[&str] = &[
    "password",
    "password1",
    "password12",
    "password123",
    "password1234",
    "passw0rd",
    "123456789",
    "1234567890",
    "12345678910",
    "qwertyuiop",
    "qwerty123",
    "qwerty1234",
    "1q2w3e4r5t",
    "1qaz2wsx3edc",
    "iloveyou",
    "iloveyou123",
    "admin1234",
    "administrator",
    "welcome123",
    "letmein123",
    "football123",
    "baseball123",
    "sunshine123",
    "princess123",
    "dragon1234",
    "monkey1234",
    "abc1234567",
    "abcdefghij",
    "trustno1234",
    "changeme123",
    "000000000",
    "0000000000",
    "1111111111",
    "123123123",
    "1234512345",
    "987654321",
    "9876543210",
    "asdfghjkl",
    "zxcvbnm123",
    "superman123",
    "michael123",
    "shadow1234",
    "master1234",
    "jennifer123",
    "starwars123",
    "whatever123",
    "computer123",
    "pokemon123",
    "correcthorsebatterystaple",
    "switchyard",
    "switchyard1",
    "switchyard123",
];

/// Checks the policy; the message says exactly what to change.
/// The policy in one sentence, for every refusal (README says the same).
pub fn policy(min_len: usize) -> String {
    format!(
        "a password is {min_len} to 128 characters, does not contain the e-mail's name, is not a \
         common password and is not one character repeated"
    )
}

/// Checks `password` against the policy; the refusal names the rule broken, then the policy.
pub fn check_policy(password: &str, email_local: &str, min_len: usize) -> Result<(), String> {
    check_rules(password, email_local, min_len).map_err(|m| format!("{m} ({})", policy(min_len)))
}

fn check_rules(password: &str, email_local: &str, min_len: usize) -> Result<(), String> {
    let len = password.chars().count();
    if len < min_len {
        return Err(format!("password must be at least {min_len} characters"));
    }
    if len > 128 {
        return Err("password must be at most 128 characters".into());
    }
    let lower = password.to_lowercase();
    if email_local.len() >= 3 && lower.contains(&email_local.to_lowercase()) {
        return Err("password must not contain your email address".into());
    }
    if COMMON.contains(&lower.as_str()) {
        return Err("password is too common; choose a less guessable one".into());
    }
    if password
        .chars()
        .all(|c| c == password.chars().next().unwrap_or(' '))
    {
        return Err("password must not be a single repeated character".into());
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn policy_messages() {
        assert!(check_rules("short", "bob", 10)
            .unwrap_err()
            .contains("at least 10"));
        assert!(check_rules("bobbybobbybob1", "bobbybobby", 10)
            .unwrap_err()
            .contains("email"));
        assert!(check_rules("Password1234", "x", 10)
            .unwrap_err()
            .contains("common"));
        assert!(check_rules("aaaaaaaaaaaa", "x", 10)
            .unwrap_err()
            .contains("repeated"));
        assert!(check_rules("tidy-lantern-91", "bob", 10).is_ok());
        let told = check_policy("short", "bob", 12).unwrap_err();
        assert!(told.starts_with("password must be at least 12"), "{told}");
        assert!(told.ends_with(&format!("({})", policy(12))), "{told}");
    }

    #[tokio::test]
    async fn hash_then_verify() {
        let h = Hasher::new(1024, 1, 1).expect("params");
        let hash = h.hash("tidy-lantern-91".into()).await.expect("hash");
        assert!(h
            .verify("tidy-lantern-91".into(), Some(hash.clone()))
            .await
            .expect("v"));
        assert!(!h.verify("wrong".into(), Some(hash)).await.expect("v"));
        assert!(!h.verify("anything".into(), None).await.expect("v"));
    }
}
