//! Opaque secrets: refresh tokens and API keys. 256 random bits each, so a fast SHA-256 is the
//! right storage hash (a slow password hash buys nothing against a brute force of 2^256).

use base64::{engine::general_purpose::URL_SAFE_NO_PAD, Engine};
use rand::RngCore;
use sha2::{Digest, Sha256};

/// API keys start with this, so log scanners and users can tell what leaked.
pub const API_KEY_PREFIX: &str = "sk-sy-";
/// How many characters of an API key are kept in clear to identify it in listings.
pub const API_KEY_SHOWN: usize = 12;

fn random_b64() -> String {
    let mut bytes = [0u8; 32];
    rand::rngs::OsRng.fill_bytes(&mut bytes);
    URL_SAFE_NO_PAD.encode(bytes)
}

pub fn new_refresh_token() -> String {
    format!("syr_{}", random_b64())
}

/// The one successor of refresh token `old`: only the server can compute it (HMAC with a key
/// derived from the signing key), and every instance computes the same.
pub fn successor(key: &ring::hmac::Key, old: &str) -> String {
    format!(
        "syr_{}",
        URL_SAFE_NO_PAD.encode(ring::hmac::sign(key, old.as_bytes()))
    )
}

pub fn new_api_key() -> String {
    format!("{API_KEY_PREFIX}{}", random_b64())
}

pub fn hash(secret: &str) -> Vec<u8> {
    Sha256::digest(secret.as_bytes()).to_vec()
}

pub fn shown_prefix(key: &str) -> String {
    key.chars().take(API_KEY_SHOWN).collect()
}

pub fn looks_like_api_key(token: &str) -> bool {
    token.starts_with(API_KEY_PREFIX)
}
