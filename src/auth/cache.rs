//! Bearer tokens already checked, so a busy client does not pay an Ed25519 verification (JWT)
//! or a database read (API key) on every request. A JWT stays valid until its `exp` (plus
//! leeway), exactly as verification would say. An API key entry lives
//! `auth.api_key_cache_secs`; revoking a key drops it here at once, and on other instances
//! within that time.

use crate::domain::Principal;
use dashmap::DashMap;
use std::time::{SystemTime, UNIX_EPOCH};

/// Entries kept. A full cache drops its expired entries (at most once a second: that costs
/// the whole table); if still full, a new token is checked each time rather than remembered,
/// so nobody's entry is thrown out by someone else's flood.
const MAX_ENTRIES: usize = 100_000;

/// Owned by `AuthService`; lives as long as the server. An entry ends at its token's expiry
/// (JWT), after `auth.api_key_cache_secs` or when its key is revoked here (API key).
pub struct TokenCache {
    entries: DashMap<Box<str>, (Principal, u64)>,
    /// The unix second of the last sweep of expired entries.
    swept: std::sync::atomic::AtomicU64,
}

fn now_secs() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

impl TokenCache {
    pub fn new() -> Self {
        Self {
            entries: DashMap::new(),
            swept: std::sync::atomic::AtomicU64::new(0),
        }
    }

    pub fn get(&self, token: &str) -> Option<Principal> {
        let hit = self.entries.get(token)?;
        if hit.1 <= now_secs() {
            drop(hit);
            self.entries.remove(token);
            return None;
        }
        Some(hit.0.clone())
    }

    /// Remembers `p` for `token` until unix second `until`.
    pub fn put(&self, token: &str, p: &Principal, until: u64) {
        if self.entries.len() >= MAX_ENTRIES {
            let now = now_secs();
            if self.swept.swap(now, std::sync::atomic::Ordering::Relaxed) != now {
                self.entries.retain(|_, (_, until)| *until > now);
            }
            if self.entries.len() >= MAX_ENTRIES {
                return;
            }
        }
        self.entries.insert(token.into(), (p.clone(), until));
    }

    pub fn ttl_from_now(secs: u64) -> u64 {
        now_secs() + secs
    }

    /// Forgets every entry of API key `key`.
    pub fn forget_key(&self, key: crate::domain::ApiKeyId) {
        self.entries.retain(|_, (p, _)| p.api_key != Some(key));
    }
}

impl Default for TokenCache {
    fn default() -> Self {
        Self::new()
    }
}
