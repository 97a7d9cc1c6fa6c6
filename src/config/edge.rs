//! The edge's configuration: the HTTP listener (`[server]`) and the WebSocket (`[ws]`).

use serde::{Deserialize, Serialize};
use std::{fmt, net::SocketAddr, path::PathBuf};

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ServerConfig {
    /// Address to listen on. Default `127.0.0.1:8080`.
    pub bind: SocketAddr,
    /// Where the SQLite database and the generated signing key live. Default `./data`.
    pub data_dir: PathBuf,
    /// Browser origins allowed by CORS and at the WebSocket upgrade, each `scheme://host[:port]`
    /// (a trailing `/` is dropped and case folded at load; a path, query or user part is a
    /// config error, since a browser never sends one and the entry would silently never match).
    /// `*` allows every origin: safe here because credentials are bearer tokens a page must
    /// hold, never cookies, so CORS is answered without `Allow-Credentials`.
    /// Default: the iOS/Capacitor shells `capacitor://localhost`, `ionic://localhost`.
    pub cors_origins: Vec<String>,
    /// Largest accepted HTTP request body in bytes. Default 1 MiB.
    pub body_limit_bytes: usize,
    /// Seconds to let in-flight work finish after SIGTERM. Default 10.
    pub shutdown_grace_secs: u64,
    /// How many proxies in front of this server append to `X-Forwarded-For` (nginx's
    /// `$proxy_add_x_forwarded_for` appends one). The client IP is the entry the outermost of
    /// them added: the `trusted_proxies`-th from the right; anything left of it was written by
    /// the client and is ignored. 0 ignores the header. Default 0.
    pub trusted_proxies: usize,
    /// Deepest nesting of arrays and objects in any client JSON (socket frames and request
    /// bodies; the frame object itself counts). Deeper is refused. Default 32.
    pub max_json_depth: usize,
    /// Open HTTP connections (a connection that upgrades to a WebSocket leaves this count and
    /// is under `ws.max_connections`); more wait in the listen backlog. Default 19000.
    pub max_http_connections: usize,
    /// Open HTTP connections per client address (an IPv6 /64), so one host cannot hold them
    /// all; more are closed at once. 0 turns it off; it is off anyway when
    /// `server.trusted_proxies` > 0 (every peer is a proxy: limit per client there). Default
    /// 1024 (a reconnect storm from many users behind one NAT stays under it).
    pub max_http_connections_per_ip: usize,
    /// Longest wait for a request's headers; it also ends a keep-alive connection idle that
    /// long. Never applies to a stream or a socket once it runs. Default 20.
    pub header_read_timeout_secs: u64,
    /// Longest a request may take, body included, except the streaming routes
    /// (`/v1/chat/completions`, bounded by the `llm.*` timeouts, and `/v1/ws`); then 408.
    /// Default 30.
    pub request_timeout_secs: u64,
    /// `/metrics` on the main listener needs `Authorization: Bearer <this>`; empty (the
    /// default) serves it there to nobody.
    pub metrics_token: Secret,
    /// A second listener that serves only `/metrics`, without a token (bind it to an internal
    /// address for Prometheus). Default none.
    pub metrics_bind: Option<SocketAddr>,
    /// The built web client (`clients/web/dist`), served at `/`; empty serves none. Relative
    /// paths are from the working directory. Default `clients/web/dist`.
    pub web_dir: PathBuf,
    /// How often each instance reads the kill switch from the database: the most it takes
    /// for one switched on elsewhere (or by the CLI) to apply here. Default 500.
    pub maintenance_poll_ms: u64,
    /// Seconds an open socket has, after `server.maintenance`, before it closes with 1012.
    /// Default 5.
    pub maintenance_grace_secs: u64,
    /// Responses smaller than this many bytes are sent uncompressed (compressing them costs
    /// more than it saves). Default 1024.
    pub compress_min_bytes: u16,
}

/// A configuration secret: read like any string, never printed by `Debug`.
#[derive(Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(transparent)]
pub struct Secret(pub String);

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(if self.0.is_empty() {
            "<unset>"
        } else {
            "<redacted>"
        })
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct WsConfig {
    /// Largest accepted WebSocket message in bytes; larger closes with 1009. Default 65536.
    pub max_frame_bytes: usize,
    /// Frames queued for one connection before it is closed as a slow consumer (4008).
    /// Default 256.
    pub send_queue: usize,
    /// Frames per second a client may send (burst: twice that); more closes with 4029.
    /// Default 50.
    pub frames_per_sec: u32,
    /// Channels one connection may subscribe to (besides its `user:` channel). Default 100.
    pub max_subscriptions: usize,
    /// Open sockets per user; one more closes with 4030. Default 20.
    pub max_connections_per_user: usize,
    /// Open sockets per instance; more are refused with 503 at the upgrade. Default 18000
    /// (under the 20k open files a process may have here).
    pub max_connections: usize,
    /// Seconds a socket without a bearer header has to send its `auth` frame (else 4002).
    /// Default 10.
    pub auth_timeout_secs: u64,
    /// Seconds between server pings. Default 25.
    pub heartbeat_secs: u64,
    /// Seconds of silence (no frame, no pong) before closing with 4031. Default 60.
    pub idle_timeout_secs: u64,
    /// Seconds a write to the socket may take before the peer is considered gone. Default 10.
    pub write_timeout_secs: u64,
    /// Sockets still to authenticate (no bearer header, `auth` frame not yet sent), per
    /// instance; counted apart from `max_connections`, so they never take a real user's slot.
    /// More are refused with 503. Default 1000.
    pub max_pending: usize,
    /// Sockets still to authenticate per client address; more are refused with 429.
    /// Default 64 (an IPv6 /64 counts as one address).
    pub max_pending_per_ip: usize,
    /// Milliseconds over which a channel's joins and leaves are gathered into one
    /// `presence.diff`, so a join storm costs each member one event per interval, not one per
    /// join. Default 100.
    pub presence_interval_ms: u64,
    /// Joins plus leaves one `presence.diff` lists; past it the diff carries only counts
    /// (`truncated`). Default 20.
    pub presence_diff_max: usize,
    /// A channel with more members than this gets its diff every `presence_interval_ms x
    /// members / presence_busy_members` (10k members: once a second), so what a join storm costs
    /// stays O(n) however long the storm lasts. Default 1000.
    pub presence_busy_members: usize,
    /// A `subscribe` reply or a `presence` answer lists the channel's members when there are at
    /// most this many; past it, only their count (a 10k-member channel costs no list per join,
    /// and no list is ever partial). Default 100.
    pub presence_list_max: usize,
}

impl ServerConfig {
    /// `cors_origins` holds `*`.
    pub fn any_origin(&self) -> bool {
        self.cors_origins.iter().any(|o| o == "*")
    }

    /// `origin` (an `Origin` header) is allowed by `cors_origins`.
    pub fn origin_allowed(&self, origin: &str) -> bool {
        self.any_origin() || self.cors_origins.iter().any(|a| a == origin)
    }
}

/// An origin as a browser serializes it (`scheme://host[:port]`, lower case), or why `raw`
/// cannot be one.
pub fn normalize_origin(raw: &str) -> Result<String, String> {
    let o = raw.trim();
    if o == "*" {
        return Ok(o.into());
    }
    let o = o.strip_suffix('/').unwrap_or(o);
    let refuse = |why: &str| Err(format!("server.cors_origins entry {raw:?}: {why}"));
    let Some((scheme, host)) = o.split_once("://") else {
        return refuse("an origin is scheme://host[:port]");
    };
    let scheme_ok = scheme.starts_with(|c: char| c.is_ascii_alphabetic())
        && scheme
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '+' | '-' | '.'));
    if !scheme_ok || host.is_empty() {
        return refuse("an origin is scheme://host[:port]");
    }
    if host
        .chars()
        .any(|c| matches!(c, '/' | '?' | '#' | '@' | '*') || c.is_whitespace() || c.is_control())
    {
        return refuse(
            "an origin has no path, query, user or wildcard part (a browser never sends one)",
        );
    }
    Ok(o.to_ascii_lowercase())
}

impl Default for ServerConfig {
    fn default() -> Self {
        Self {
            bind: SocketAddr::from(([127, 0, 0, 1], 8080)),
            data_dir: PathBuf::from("./data"),
            cors_origins: vec!["capacitor://localhost".into(), "ionic://localhost".into()],
            body_limit_bytes: 1024 * 1024,
            shutdown_grace_secs: 10,
            trusted_proxies: 0,
            max_json_depth: 32,
            max_http_connections: 19_000,
            max_http_connections_per_ip: 1024,
            header_read_timeout_secs: 20,
            request_timeout_secs: 30,
            metrics_token: Secret::default(),
            metrics_bind: None,
            web_dir: PathBuf::from("clients/web/dist"),
            maintenance_poll_ms: 500,
            maintenance_grace_secs: 5,
            compress_min_bytes: 1024,
        }
    }
}

impl Default for WsConfig {
    fn default() -> Self {
        Self {
            max_frame_bytes: 64 * 1024,
            send_queue: 256,
            presence_interval_ms: 100,
            presence_diff_max: 20,
            presence_busy_members: 1000,
            presence_list_max: 100,
            frames_per_sec: 50,
            max_subscriptions: 100,
            max_connections_per_user: 20,
            max_connections: 18_000,
            auth_timeout_secs: 10,
            heartbeat_secs: 25,
            idle_timeout_secs: 60,
            write_timeout_secs: 10,
            max_pending: 1000,
            max_pending_per_ip: 64,
        }
    }
}
