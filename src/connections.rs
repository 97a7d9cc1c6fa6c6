//! Who may connect to this instance: the socket slots (`ws.max_connections`), the separate
//! pool of sockets still to authenticate (`ws.max_pending`, per address
//! `ws.max_pending_per_ip`), and the per-user count (`ws.max_connections_per_user`). Each hold
//! is a guard released on drop. The socket edge takes them; the MCP manager reads who is here.

use crate::{domain::UserId, error::AppError};
use dashmap::DashMap;
use std::{
    net::IpAddr,
    sync::{atomic::AtomicU64, Arc},
};
use tokio::sync::{OwnedSemaphorePermit, Semaphore};

/// Admission state shared by every connection of this instance; built in `app.rs`, lives as
/// long as the server.
pub struct Connections {
    pub slots: Arc<Semaphore>,
    /// Sockets still authenticating, in total and per client address.
    pending: Arc<Semaphore>,
    pending_per_ip: Arc<DashMap<IpAddr, usize>>,
    max_pending_per_ip: usize,
    per_user: Arc<DashMap<UserId, usize>>,
    max_per_user: usize,
    pub next_id: AtomicU64,
}

/// A socket's place on this instance: a real slot, or (before its `auth` frame) a pending one
/// that must become a real one after authenticating.
pub enum Admission {
    Open(OwnedSemaphorePermit),
    Pending(PendingSlot),
}

/// A pending socket's hold on the pending caps; released on drop.
pub struct PendingSlot {
    _permit: OwnedSemaphorePermit,
    ip: IpAddr,
    per_ip: Arc<DashMap<IpAddr, usize>>,
}

impl Drop for PendingSlot {
    fn drop(&mut self) {
        if let Some(mut n) = self.per_ip.get_mut(&self.ip) {
            *n = n.saturating_sub(1);
        }
        self.per_ip.remove_if(&self.ip, |_, n| *n == 0);
    }
}

impl Connections {
    pub fn new(cfg: &crate::config::WsConfig) -> Self {
        Self {
            slots: Arc::new(Semaphore::new(cfg.max_connections)),
            pending: Arc::new(Semaphore::new(cfg.max_pending)),
            pending_per_ip: Arc::new(DashMap::new()),
            max_pending_per_ip: cfg.max_pending_per_ip,
            per_user: Arc::new(DashMap::new()),
            max_per_user: cfg.max_connections_per_user,
            next_id: AtomicU64::new(1),
        }
    }

    pub fn pending_slot(&self, ip: IpAddr) -> Result<PendingSlot, AppError> {
        let permit = self.pending.clone().try_acquire_owned().map_err(|_| {
            metrics::counter!("ws_refused_total", "reason" => "pending").increment(1);
            AppError::Unavailable("too many sockets are waiting to authenticate; try again".into())
        })?;
        let mut n = self.pending_per_ip.entry(ip).or_insert(0);
        if *n >= self.max_pending_per_ip {
            metrics::counter!("ws_refused_total", "reason" => "pending_per_ip").increment(1);
            return Err(AppError::RateLimited {
                retry_after_secs: 1,
            });
        }
        *n += 1;
        Ok(PendingSlot {
            _permit: permit,
            ip,
            per_ip: self.pending_per_ip.clone(),
        })
    }

    /// A real slot, or 503 when the instance is full.
    pub fn open_slot(&self) -> Result<OwnedSemaphorePermit, AppError> {
        self.slots.clone().try_acquire_owned().map_err(|_| {
            metrics::counter!("ws_refused_total", "reason" => "capacity").increment(1);
            AppError::Unavailable("this instance is at its connection limit; try another".into())
        })
    }

    /// Counts a socket of `user`; `None` when the user has `ws.max_connections_per_user`
    /// open already. The count drops with the guard, however the socket ends.
    pub fn admit_user(&self, user: UserId) -> Option<UserSlot> {
        let mut n = self.per_user.entry(user).or_insert(0);
        if *n >= self.max_per_user {
            return None;
        }
        *n += 1;
        Some(UserSlot {
            user,
            per_user: self.per_user.clone(),
        })
    }

    /// The users with a socket on this instance.
    pub fn users(&self) -> Vec<UserId> {
        self.per_user.iter().map(|e| *e.key()).collect()
    }

    pub fn max_per_user(&self) -> usize {
        self.max_per_user
    }

    /// Sockets open on this instance.
    pub fn open(&self, max: usize) -> usize {
        max - self.slots.available_permits()
    }
}

/// One socket of a user counted against `ws.max_connections_per_user`; released on drop.
pub struct UserSlot {
    user: UserId,
    per_user: Arc<DashMap<UserId, usize>>,
}

impl Drop for UserSlot {
    fn drop(&mut self) {
        if let Some(mut n) = self.per_user.get_mut(&self.user) {
            *n = n.saturating_sub(1);
        }
        self.per_user.remove_if(&self.user, |_, n| *n == 0);
    }
}
