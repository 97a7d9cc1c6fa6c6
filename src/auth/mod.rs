//! Authentication: who is calling, proven once.
//!
//! * `password`: argon2id hashing on the blocking pool, bounded by a semaphore, and the policy.
//! * `jwt`: Ed25519 signing keys (rotatable), access tokens, the JWKS document.
//! * `secrets`: opaque refresh tokens and API keys, stored only as SHA-256 hashes.
//! * `service`: register, login with lockout, refresh rotation with reuse detection, logout.

pub mod cache;
pub mod jwt;
pub mod password;
pub mod secrets;
pub mod service;
pub mod totp;

pub use service::AuthService;
