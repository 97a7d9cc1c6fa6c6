//! Close codes: 4000-4999 are ours, one per reason, so a client knows whether to reconnect,
//! re-authenticate, or give up.

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CloseCode {
    /// 1000: the client asked to close.
    Normal,
    /// 1009: a frame exceeded `ws.max_frame_bytes`.
    TooBig,
    /// 1012: this instance is shutting down; reconnect (to another instance).
    Restart,
    /// 1013: the instance is full (an in-band `auth` found no free slot); retry with backoff,
    /// the load balancer may pick another instance.
    TryAgainLater,
    /// 4000: a frame that cannot be handled at all (binary where text is expected).
    ProtocolError,
    /// 4001: authentication failed (bad token in the `auth` frame, or a frame before `auth`).
    AuthFailed,
    /// 4002: no `auth` frame within `ws.auth_timeout_secs`.
    AuthTimeout,
    /// 4003: the access token expired and no `auth.refresh` replaced it.
    TokenExpired,
    /// 4008: the send queue filled up; the client reads too slowly.
    SlowConsumer,
    /// 4029: more than `ws.frames_per_sec` frames per second.
    RateLimited,
    /// 4030: the user already has `ws.max_connections_per_user` open.
    TooManyConnections,
    /// 4031: nothing heard from the peer within `ws.idle_timeout_secs`.
    IdleTimeout,
}

impl CloseCode {
    pub fn code(self) -> u16 {
        match self {
            CloseCode::Normal => 1000,
            CloseCode::TooBig => 1009,
            CloseCode::Restart => 1012,
            CloseCode::TryAgainLater => 1013,
            CloseCode::ProtocolError => 4000,
            CloseCode::AuthFailed => 4001,
            CloseCode::AuthTimeout => 4002,
            CloseCode::TokenExpired => 4003,
            CloseCode::SlowConsumer => 4008,
            CloseCode::RateLimited => 4029,
            CloseCode::TooManyConnections => 4030,
            CloseCode::IdleTimeout => 4031,
        }
    }

    pub fn reason(self) -> &'static str {
        match self {
            CloseCode::Normal => "bye",
            CloseCode::TooBig => "frame too large",
            CloseCode::Restart => "server restarting, reconnect",
            CloseCode::TryAgainLater => "instance full, try again later",
            CloseCode::ProtocolError => "protocol error",
            CloseCode::AuthFailed => "authentication failed",
            CloseCode::AuthTimeout => "authentication timeout",
            CloseCode::TokenExpired => "token expired",
            CloseCode::SlowConsumer => "slow consumer",
            CloseCode::RateLimited => "rate limited",
            CloseCode::TooManyConnections => "too many connections",
            CloseCode::IdleTimeout => "idle timeout",
        }
    }
}
