//! `GET /v1/ws`: the upgrade (origin check, header auth, admission) and the per-connection
//! actor. `connection` owns the socket loop, `dispatch` answers requests, `writer` drains the
//! bounded queue into the socket.

mod calls;
mod connection;
mod dispatch;
mod writer;

use crate::{
    auth::extract::bearer,
    domain::UserId,
    error::{AppError, ErrorBody},
    state::AppState,
};
use axum::{
    extract::{ws::WebSocketUpgrade, FromRequestParts, Query, State},
    http::{header, request::Parts},
    response::Response,
};
use dashmap::DashMap;
use serde::Deserialize;
use std::{
    net::IpAddr,
    sync::{atomic::AtomicU64, Arc},
};
use tokio::sync::{OwnedSemaphorePermit, Semaphore};
use utoipa::IntoParams;
use utoipa_axum::{router::OpenApiRouter, routes};

/// Admission state shared by every connection of this instance.
pub struct WsRuntime {
    pub(crate) slots: Arc<Semaphore>,
    /// Sockets still authenticating, in total and per client address.
    pending: Arc<Semaphore>,
    pending_per_ip: Arc<DashMap<IpAddr, usize>>,
    max_pending_per_ip: usize,
    pub(crate) per_user: DashMap<UserId, usize>,
    pub(crate) next_id: AtomicU64,
}

/// A socket's place on this instance: a real slot, or (before its `auth` frame) a pending one
/// that must become a real one after authenticating.
pub(crate) enum Admission {
    Open(OwnedSemaphorePermit),
    Pending(PendingSlot),
}

/// A pending socket's hold on the pending caps; released on drop.
pub(crate) struct PendingSlot {
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

impl WsRuntime {
    pub fn new(cfg: &crate::config::WsConfig) -> Self {
        Self {
            slots: Arc::new(Semaphore::new(cfg.max_connections)),
            pending: Arc::new(Semaphore::new(cfg.max_pending)),
            pending_per_ip: Arc::new(DashMap::new()),
            max_pending_per_ip: cfg.max_pending_per_ip,
            per_user: DashMap::new(),
            next_id: AtomicU64::new(1),
        }
    }

    fn pending_slot(&self, ip: IpAddr) -> Result<PendingSlot, AppError> {
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
    pub(crate) fn open_slot(&self) -> Result<OwnedSemaphorePermit, AppError> {
        self.slots.clone().try_acquire_owned().map_err(|_| {
            metrics::counter!("ws_refused_total", "reason" => "capacity").increment(1);
            AppError::Unavailable("this instance is at its connection limit; try another".into())
        })
    }

    /// Sockets open on this instance.
    pub fn open(&self, max: usize) -> usize {
        max - self.slots.available_permits()
    }
}

/// A page served by this server (the web client) opening its socket: the browser's `Origin`
/// names the host the request is addressed to. A cross-site page cannot make those agree.
fn same_origin(origin: &str, parts: &Parts) -> bool {
    let host = parts
        .headers
        .get(header::HOST)
        .and_then(|h| h.to_str().ok())
        .unwrap_or_default();
    let authority = origin
        .strip_prefix("http://")
        .or_else(|| origin.strip_prefix("https://"))
        .unwrap_or_default();
    !host.is_empty() && authority.eq_ignore_ascii_case(host)
}

pub fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(upgrade))
}

#[derive(Deserialize, IntoParams)]
pub struct WsQuery {
    /// A label for presence ("iPhone", "Firefox on Linux"); at most 64 characters.
    device: Option<String>,
}

/// Open the multiplexed WebSocket. Authenticate with `Authorization: Bearer` here, or with an
/// `auth` frame first (browsers). See protocol/README.md for frames and close codes.
#[utoipa::path(get, path = "/v1/ws", tag = "realtime", params(WsQuery),
    responses((status = 101, description = "Switching protocols"),
              (status = 400, description = "Not a WebSocket upgrade", body = ErrorBody),
              (status = 401, description = "Bad bearer token", body = ErrorBody),
              (status = 403, description = "Origin not allowed", body = ErrorBody),
              (status = 503, description = "Connection limit reached", body = ErrorBody)))]
async fn upgrade(
    State(s): State<AppState>,
    Query(q): Query<WsQuery>,
    mut parts: Parts,
) -> Result<Response, AppError> {
    if let Some(origin) = parts.headers.get(header::ORIGIN) {
        let allowed = origin.to_str().is_ok_and(|o| {
            s.config.server.cors_origins.iter().any(|a| a == o) || same_origin(o, &parts)
        });
        if !allowed {
            metrics::counter!("ws_refused_total", "reason" => "origin").increment(1);
            return Err(AppError::Forbidden("origin not allowed".into()));
        }
    }
    let principal = match bearer(&parts) {
        Some(token) => Some(s.auth.authenticate_socket(token).await?),
        None => None,
    };
    let ws = WebSocketUpgrade::from_request_parts(&mut parts, &s)
        .await
        .map_err(|r| AppError::validation("upgrade", r.body_text()))?;
    let permit = if principal.is_some() {
        Admission::Open(s.ws.open_slot()?)
    } else {
        let ip = crate::http::extract::client_ip(&parts, s.config.server.trusted_proxies);
        Admission::Pending(s.ws.pending_slot(ip)?)
    };
    let device = q.device.map(|d| d.chars().take(64).collect::<String>());
    let cfg = &s.config.ws;
    let tracker = s.tracker.clone();
    Ok(ws
        .max_message_size(cfg.max_frame_bytes)
        .max_frame_size(cfg.max_frame_bytes)
        .read_buffer_size(4096)
        .write_buffer_size(8 * 1024)
        .on_upgrade(move |socket| {
            tracker.track_future(connection::run(socket, s, principal, device, permit))
        }))
}
