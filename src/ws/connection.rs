//! One connection: authenticate, register, then `select!` over the socket, the heartbeat, the
//! token's expiry, a close request (slow consumer) and shutdown. Cleans up (channels, presence,
//! per-user count) however it ends.

use super::{dispatch::Conn, writer};
use crate::protocol::ErrorCode;
use crate::{
    domain::Principal,
    hub::Outbox,
    protocol::{ClientFrame, CloseCode, Limits, ServerFrame},
    state::AppState,
    time::now_ms,
};
use axum::extract::ws::{Message, WebSocket};
use futures::StreamExt;
use std::{
    sync::{atomic::Ordering, Arc},
    time::Duration,
};
use tokio::time::Instant;
use tracing::Instrument;

pub(super) async fn run(
    socket: WebSocket,
    state: AppState,
    principal: Option<(Principal, Option<Box<str>>)>,
    device: Option<String>,
    admission: crate::connections::Admission,
) {
    let id = state.connections.next_id.fetch_add(1, Ordering::Relaxed);
    let conn_uuid = uuid::Uuid::new_v4().to_string();
    let span = tracing::info_span!("conn", conn_id = %conn_uuid, user_id = tracing::field::Empty);
    let cfg = state.config.ws.clone();
    let (sink, mut stream) = socket.split();
    let (tx, rx) = tokio::sync::mpsc::channel(cfg.send_queue);
    let outbox = Arc::new(Outbox::new(id, tx));
    let writer = tokio::spawn(writer::run(
        sink,
        rx,
        outbox.clone(),
        Duration::from_secs(cfg.heartbeat_secs),
        Duration::from_secs(cfg.write_timeout_secs),
    ));
    metrics::gauge!("ws_connections").increment(1.0);
    async {
        let principal = match principal {
            Some(p) => Some(p),
            None => Box::pin(first_frame_auth(&state, &outbox, &mut stream)).await,
        };
        let _slot = slot_for(&state, &outbox, admission, principal.is_some());
        if let Some((p, key)) = principal.filter(|_| _slot.is_some()) {
            tracing::Span::current().record("user_id", tracing::field::display(p.user_id));
            let mut conn = Conn::new(state.clone(), outbox.clone(), p, conn_uuid.clone(), device);
            conn.api_key_token = key;
            let code = if conn.admit() {
                serve(&mut conn, &mut stream).await
            } else {
                CloseCode::TooManyConnections
            };
            outbox.close(code);
            Box::pin(conn.cleanup()).await;
            tracing::debug!(code = code.code(), "connection closed");
        }
    }
    .instrument(span)
    .await;
    metrics::gauge!("ws_connections").decrement(1.0);
    let _ = writer.await;
    // The closing handshake: read (and drop) until the peer answers our close or goes away, so
    // the kernel never resets a connection that still has unread input, which would lose the
    // close frame (and its code) on the way to the client.
    let _ = tokio::time::timeout(CLOSE_LINGER, async {
        while let Some(Ok(m)) = stream.next().await {
            if matches!(m, Message::Close(_)) {
                break;
            }
        }
    })
    .await;
}

/// The socket's place among the instance's open connections. One that authenticated in band
/// now needs a real slot, and its pending one goes; none when the instance is full (the
/// client is told to try another) or nobody authenticated.
fn slot_for(
    state: &AppState,
    outbox: &Outbox,
    admission: crate::connections::Admission,
    authenticated: bool,
) -> Option<tokio::sync::OwnedSemaphorePermit> {
    match admission {
        crate::connections::Admission::Open(p) => Some(p),
        crate::connections::Admission::Pending(pending) if authenticated => {
            drop(pending);
            match state.connections.open_slot() {
                Ok(p) => Some(p),
                Err(_) => {
                    outbox.push(
                        ServerFrame::Error {
                            id: None,
                            code: ErrorCode::ServiceUnavailable,
                            message: "this instance is at its connection limit; try another",
                        }
                        .encode()
                        .into(),
                    );
                    outbox.close(CloseCode::TryAgainLater);
                    None
                }
            }
        }
        crate::connections::Admission::Pending(_) => None,
    }
}

/// Longest wait for the peer's side of the closing handshake.
const CLOSE_LINGER: Duration = Duration::from_secs(2);

type Stream = futures::stream::SplitStream<WebSocket>;

/// Browsers cannot set headers: the first frame must be `auth`, within the deadline.
async fn first_frame_auth(
    state: &AppState,
    outbox: &Outbox,
    stream: &mut Stream,
) -> Option<(Principal, Option<Box<str>>)> {
    let deadline = Duration::from_secs(state.config.ws.auth_timeout_secs);
    let refuse = |id: Option<&str>, code: ErrorCode, msg: &str, close: CloseCode| {
        outbox.push(
            ServerFrame::Error {
                id,
                code,
                message: msg,
            }
            .encode()
            .into(),
        );
        outbox.close(close);
        None
    };
    let text = match tokio::time::timeout(deadline, stream.next()).await {
        Err(_) => {
            return refuse(
                None,
                ErrorCode::AuthTimeout,
                "no auth frame in time",
                CloseCode::AuthTimeout,
            )
        }
        Ok(Some(Ok(Message::Text(t)))) => t,
        Ok(Some(Ok(_))) => {
            return refuse(
                None,
                ErrorCode::AuthRequired,
                "first frame must be auth",
                CloseCode::AuthFailed,
            )
        }
        Ok(Some(Err(_)) | None) => {
            outbox.close(CloseCode::Normal);
            return None;
        }
    };
    match ClientFrame::decode(text.as_str(), state.config.server.max_json_depth) {
        Ok(ClientFrame::Auth { id, token, .. }) => {
            match state.auth.authenticate_socket(&token).await {
                Ok(p) => {
                    if let Some(id) = &id {
                        outbox.push(ServerFrame::Ok { id, result: None }.encode().into());
                    }
                    let key = p.api_key.map(|_| Box::<str>::from(token.as_str()));
                    Some((p, key))
                }
                Err(e) => refuse(
                    id.as_deref(),
                    e.code(),
                    &e.to_string(),
                    CloseCode::AuthFailed,
                ),
            }
        }
        Ok(other) => refuse(
            other.id(),
            ErrorCode::AuthRequired,
            "first frame must be auth",
            CloseCode::AuthFailed,
        ),
        Err(e) => refuse(e.id.as_deref(), e.code, &e.message, CloseCode::AuthFailed),
    }
}

async fn serve(conn: &mut Conn, stream: &mut Stream) -> CloseCode {
    let cfg = conn.state.config.ws.clone();
    Box::pin(conn.join_user_channel()).await;
    let welcome = ServerFrame::Welcome {
        conn_id: &conn.conn_uuid,
        user_id: &conn.user_str,
        expires_at: conn.principal.expires_at,
        limits: Limits {
            max_frame_bytes: cfg.max_frame_bytes,
            frames_per_sec: cfg.frames_per_sec,
            max_subscriptions: cfg.max_subscriptions,
            heartbeat_secs: cfg.heartbeat_secs,
            max_json_depth: conn.state.config.server.max_json_depth,
            max_batch: conn.state.config.sync.max_batch,
        },
    };
    conn.outbox.push(welcome.encode().into());
    Box::pin(conn.mcp_status()).await;

    let idle = Duration::from_secs(cfg.idle_timeout_secs);
    let mut last_seen = Instant::now();
    let mut idle_check =
        tokio::time::interval(Duration::from_secs(cfg.heartbeat_secs).min(idle / 2));
    let mut bucket = TokenBucket::new(cfg.frames_per_sec);
    let frames_in = metrics::counter!("ws_frames_in_total");
    let shutdown = conn.state.shutdown.clone();
    loop {
        let expiry = conn.token_deadline();
        tokio::select! {
            biased;
            _ = shutdown.cancelled() => return CloseCode::Restart,
            _ = conn.outbox.closing() => return conn.outbox.closed_with().unwrap_or(CloseCode::Normal),
            _ = conn.outbox.evicted() => Box::pin(conn.process_evictions()).await,
            _ = sleep_until_opt(expiry) => {
                conn.reply_error(None, ErrorCode::TokenExpired, "access token expired; send auth.refresh before it does");
                return CloseCode::TokenExpired;
            }
            _ = idle_check.tick() => {
                if last_seen.elapsed() > idle {
                    return CloseCode::IdleTimeout;
                }
                if !Box::pin(conn.api_key_still_valid()).await {
                    conn.reply_error(None, ErrorCode::InvalidApiKey, "this API key was revoked");
                    return CloseCode::AuthFailed;
                }
            }
            msg = stream.next() => {
                last_seen = Instant::now();
                match msg {
                    None | Some(Ok(Message::Close(_))) => return CloseCode::Normal,
                    Some(Err(e)) => {
                        return if is_too_big(&e) { CloseCode::TooBig } else { CloseCode::Normal };
                    }
                    Some(Ok(Message::Ping(_) | Message::Pong(_))) => {}
                    Some(Ok(Message::Binary(_))) => {
                        frames_in.increment(1);
                        conn.reply_error(None, ErrorCode::BadFrame, "binary frames are not supported; send JSON text");
                    }
                    Some(Ok(Message::Text(text))) => {
                        frames_in.increment(1);
                        if !bucket.take() {
                            conn.reply_error(None, ErrorCode::RateLimited, "too many frames per second");
                            return CloseCode::RateLimited;
                        }
                        // Boxed (as every rare or deep await here): inline, the largest
                        // handler's state is held by every idle connection for its whole
                        // life (the connection future was 9.0 KB, boxed 3.4 KB).
                        Box::pin(conn.handle(text.as_str())).await;
                    }
                }
            }
        }
    }
}

fn is_too_big(e: &axum::Error) -> bool {
    let s = e.to_string();
    s.contains("too long")
        || s.contains("too big")
        || s.contains("Space limit exceeded")
        || s.contains("size")
}

async fn sleep_until_opt(at: Option<Instant>) {
    match at {
        Some(at) => tokio::time::sleep_until(at).await,
        None => std::future::pending().await,
    }
}

/// `rate` frames per second sustained, `2 * rate` burst.
struct TokenBucket {
    rate: f64,
    tokens: f64,
    last: Instant,
}

impl TokenBucket {
    fn new(rate: u32) -> Self {
        Self {
            rate: f64::from(rate),
            tokens: f64::from(rate) * 2.0,
            last: Instant::now(),
        }
    }

    fn take(&mut self) -> bool {
        let now = Instant::now();
        self.tokens = (self.tokens + now.duration_since(self.last).as_secs_f64() * self.rate)
            .min(self.rate * 2.0);
        self.last = now;
        if self.tokens >= 1.0 {
            self.tokens -= 1.0;
            true
        } else {
            false
        }
    }
}

pub(super) fn unix_to_instant(unix_secs: i64) -> Instant {
    let now_ms = now_ms() as i64;
    let delta_ms = unix_secs.saturating_mul(1000).saturating_sub(now_ms).max(0) as u64;
    Instant::now() + Duration::from_millis(delta_ms)
}
