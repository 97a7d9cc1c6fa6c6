//! `GET /v1/ws`: the upgrade (origin check, header auth, admission) and the per-connection
//! actor. `connection` owns the socket loop, `dispatch` answers requests, `writer` drains the
//! bounded queue into the socket.

mod calls;
mod channels;
mod connection;
mod dispatch;
mod writer;

use crate::{
    connections::Admission,
    error::{AppError, ErrorBody},
    http::authn::bearer,
    state::AppState,
};
use axum::{
    extract::{ws::WebSocketUpgrade, FromRequestParts, Query, State},
    http::{header, request::Parts},
    response::Response,
};
use serde::Deserialize;
use utoipa::IntoParams;
use utoipa_axum::{router::OpenApiRouter, routes};

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

/// A socket's read buffer, allocated for its whole life: small, since client frames are small
/// (a bigger frame grows it to its size, up to `ws.max_frame_bytes`). 4 KiB here was a fifth
/// of an idle socket's memory.
const READ_BUFFER: usize = 512;

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
#[utoipa::path(get, path = "/v1/ws", operation_id = "connectWebSocket", tag = "realtime", params(WsQuery),
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
        let allowed = origin
            .to_str()
            .is_ok_and(|o| s.config.server.origin_allowed(o) || same_origin(o, &parts));
        if !allowed {
            metrics::counter!("ws_refused_total", "reason" => "origin").increment(1);
            return Err(AppError::Forbidden("origin not allowed".into()));
        }
    }
    let principal = match bearer(&parts) {
        Some(token) => {
            let p = s.auth.authenticate_socket(token).await?;
            // An API key is checked again while the socket lives (see `connection`).
            let key = p.api_key.map(|_| Box::<str>::from(token));
            Some((p, key))
        }
        None => None,
    };
    let ws = WebSocketUpgrade::from_request_parts(&mut parts, &s)
        .await
        .map_err(|r| AppError::validation("upgrade", r.body_text()))?;
    let permit = if principal.is_some() {
        Admission::Open(s.connections.open_slot()?)
    } else {
        let ip = crate::http::extract::client_ip(&parts, s.config.server.trusted_proxies);
        Admission::Pending(
            s.connections
                .pending_slot(crate::domain::client_bucket(ip))?,
        )
    };
    let device = q.device.map(|d| d.chars().take(64).collect::<String>());
    let cfg = &s.config.ws;
    let tracker = s.tracker.clone();
    Ok(ws
        .max_message_size(cfg.max_frame_bytes)
        .max_frame_size(cfg.max_frame_bytes)
        .read_buffer_size(READ_BUFFER)
        .write_buffer_size(8 * 1024)
        .on_upgrade(move |socket| {
            tracker.track_future(connection::run(socket, s, principal, device, permit))
        }))
}
