//! One `Config`, read once at start-up: built-in defaults, then an optional TOML file, then
//! `SWITCHYARD_<SECTION>_<FIELD>` environment variables (e.g. `SWITCHYARD_DATABASE_URL` sets
//! `database.url`). Unknown variables are an error so a typo never silently does nothing.
//!
//! Secrets (URLs with passwords) are wrapped so `Debug` never prints them.

use serde::{Deserialize, Serialize};
use std::{fmt, path::PathBuf};

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Config {
    pub server: ServerConfig,
    pub database: DatabaseConfig,
    pub redis: RedisConfig,
    pub auth: AuthConfig,
    pub ratelimit: RateLimitConfig,
    pub log: LogConfig,
    pub ws: WsConfig,
    pub sync: SyncConfig,
    pub llm: LlmConfig,
    pub chat: ChatConfig,
    pub mcp: McpConfig,
    pub files: FilesConfig,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct SyncConfig {
    /// Mutations in one push; more is refused whole. Default 100.
    pub max_batch: usize,
    /// How far (ms) a mutation's clock may run ahead of the server's before it is refused.
    /// Default 60000.
    pub max_clock_skew_ms: u64,
    /// Change-log versions kept per session; older ones are compacted and a client further
    /// behind gets a snapshot. Default 10000.
    pub keep_versions: u64,
    /// Most changes replayed in one catch-up before a snapshot is sent instead. Default 1000.
    pub catch_up_limit: u32,
    /// Context keys per session, deleted ones included (a tombstone keeps its clock so a stale
    /// write cannot bring the key back). Over it a mutation is refused `limit_exceeded`.
    /// Default 1000.
    pub max_context_keys: u64,
    /// Bytes of JSON across a session's live context values. Default 1 MiB.
    pub max_context_bytes: u64,
    /// Tags per session, removed ones included. Default 200.
    pub max_tags: u64,
    /// Messages per session, deleted ones included. Default 10000.
    pub max_messages: u64,
    /// Bytes of message content and metadata per session (a turn's answer may finish past it;
    /// the next append is refused). Default 32 MiB.
    pub max_content_bytes: u64,
    /// Mutations of clients waiting for one session's group commit; a push past it is
    /// answered `service_unavailable` (retry). Default 5000.
    pub max_queued_mutations: usize,
    /// Whole-session reads (snapshots, catch-ups that fall back to one) at once on this
    /// instance; more wait their turn, so a flood of them cannot exhaust memory. Default 8.
    pub max_concurrent_snapshots: usize,
    /// Most changes an instance replays frame by frame when it heals a gap (changes it missed
    /// on the bus, e.g. while Redis restarted); a longer gap sends `sync.resync` instead and
    /// each client catches up with one subscribe, so a burst never fills a socket's queue
    /// (`ws.send_queue`). Default 64.
    pub heal_max_frames: usize,
}

impl Default for SyncConfig {
    fn default() -> Self {
        Self {
            max_batch: 100,
            max_clock_skew_ms: 60_000,
            keep_versions: 10_000,
            catch_up_limit: 1000,
            max_context_keys: 1000,
            max_context_bytes: 1 << 20,
            max_tags: 200,
            max_messages: 10_000,
            max_content_bytes: 32 << 20,
            max_queued_mutations: 5000,
            max_concurrent_snapshots: 8,
            heal_max_frames: 64,
        }
    }
}

#[derive(Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct DatabaseConfig {
    /// `postgres://...` or `sqlite://...`. Default: SQLite at `<data_dir>/switchyard.db`.
    pub url: Option<String>,
    /// Pool size. Default 10.
    pub max_connections: u32,
    /// Seconds to wait for a pooled connection before failing the request. Default 5.
    pub acquire_timeout_secs: u64,
}

#[derive(Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct RedisConfig {
    /// `redis://...`. Default: none (in-process bus, in-memory rate limits).
    pub url: Option<String>,
    /// Seed nodes of a Redis Cluster (`redis://host:port`, several), instead of `url`: keys and
    /// sharded pub/sub (`SSUBSCRIBE`/`SPUBLISH`, Redis 7) are hashed so one session's traffic
    /// stays on one shard. Default: none.
    pub cluster_urls: Vec<String>,
    /// Prefix for every key and channel, so several deployments can share one Redis.
    /// Default `switchyard:`.
    pub key_prefix: String,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct AuthConfig {
    /// JWT `iss`. Default `switchyard`.
    pub issuer: String,
    /// JWT `aud`. Default `switchyard`.
    pub audience: String,
    /// Access token life in seconds. Default 900 (15 min).
    pub access_ttl_secs: u64,
    /// Refresh token life in seconds. Default 604800 (7 days).
    pub refresh_ttl_secs: u64,
    /// Ed25519 PKCS#8 PEM key files; the first signs, all verify (rotation). Default: one key
    /// generated on first start at `<data_dir>/jwt-ed25519.pem`.
    pub key_files: Vec<PathBuf>,
    /// Failed logins before the account locks. Default 5.
    pub lockout_threshold: u32,
    /// Seconds an account stays locked. Default 900 (15 min).
    pub lockout_secs: u64,
    /// Minimum password length. Default 10.
    pub password_min_len: usize,
    /// A refresh token used again within this many seconds, for the successor it already got
    /// and that is still unused, gets that same successor (two tabs refreshing at once) instead
    /// of revoking its family. 0 turns it off. Default 10.
    pub refresh_reuse_grace_secs: u64,
    /// Argon2id memory in KiB (OWASP: 19456). Default 19456.
    pub argon2_memory_kib: u32,
    /// Argon2id iterations (OWASP: 2). Default 2.
    pub argon2_iterations: u32,
    /// Password hashes computed at once. Bounded so logins never take every core from the
    /// async runtime. Default: half the cores, at least 1.
    pub hash_concurrency: usize,
    /// Seconds of clock skew tolerated on `exp`/`nbf`. Default 30.
    pub leeway_secs: u64,
    /// Seconds a checked API key is remembered (0: look it up on every request). A revoked
    /// key stops at once on the instance that revoked it, within this on the others. Default 5.
    pub api_key_cache_secs: u64,
    /// Largest `preferences` object a profile holds, in bytes of JSON. Default 16384.
    pub max_preferences_bytes: usize,
    /// Roles whose routes need the account to have a second factor (`admin`, `analyst`,
    /// `developer`); without one they answer 403 saying how to enroll. Default none.
    pub second_factor_roles: Vec<String>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct RateLimitConfig {
    /// Requests per client IP per window on `/v1/auth/*`. Default 30.
    pub auth_requests: u64,
    /// Window length in seconds. Default 60.
    pub auth_window_secs: u64,
    /// Most client IPs tracked in memory before old windows are swept. Default 100000.
    pub max_tracked_clients: usize,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    Pretty,
    Json,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct LogConfig {
    /// `pretty` or `json`. Default `pretty`.
    pub format: LogFormat,
    /// `tracing` filter directive. Default `info`; `RUST_LOG` wins when set.
    pub level: String,
}

impl Default for DatabaseConfig {
    fn default() -> Self {
        Self {
            url: None,
            max_connections: 10,
            acquire_timeout_secs: 5,
        }
    }
}

impl RedisConfig {
    /// Where Redis is, if anywhere: one server or a cluster's seeds.
    pub fn target(&self) -> Option<crate::bus::redis_conn::Target> {
        match (&self.url, self.cluster_urls.is_empty()) {
            (Some(url), _) => Some(crate::bus::redis_conn::Target::Single(url.clone())),
            (None, false) => Some(crate::bus::redis_conn::Target::Cluster(
                self.cluster_urls.clone(),
            )),
            (None, true) => None,
        }
    }
}

impl Default for RedisConfig {
    fn default() -> Self {
        Self {
            url: None,
            cluster_urls: Vec::new(),
            key_prefix: "switchyard:".into(),
        }
    }
}

impl Default for AuthConfig {
    fn default() -> Self {
        Self {
            issuer: "switchyard".into(),
            audience: "switchyard".into(),
            access_ttl_secs: 900,
            refresh_ttl_secs: 7 * 24 * 3600,
            key_files: Vec::new(),
            lockout_threshold: 5,
            lockout_secs: 900,
            password_min_len: 10,
            refresh_reuse_grace_secs: 10,
            argon2_memory_kib: 19456,
            argon2_iterations: 2,
            hash_concurrency: (std::thread::available_parallelism().map_or(1, |n| n.get()) / 2)
                .max(1),
            leeway_secs: 30,
            api_key_cache_secs: 5,
            max_preferences_bytes: 16 * 1024,
            second_factor_roles: Vec::new(),
        }
    }
}

impl Default for RateLimitConfig {
    fn default() -> Self {
        Self {
            auth_requests: 30,
            auth_window_secs: 60,
            max_tracked_clients: 100_000,
        }
    }
}

impl Default for LogConfig {
    fn default() -> Self {
        Self {
            format: LogFormat::Pretty,
            level: "info".into(),
        }
    }
}

impl Config {
    /// Every secret value this configuration holds (provider keys, connection passwords,
    /// the bootstrap password), so text leaving the process can be scrubbed of them.
    /// The whole configuration as JSON with every secret replaced by `[redacted]`: fields
    /// named as secrets, values of `mcp.stdio_env`, arguments in `mcp.stdio_allowlist`, the
    /// password and query of any URL, and any text holding a known secret value.
    pub fn redacted(&self) -> serde_json::Value {
        let mut v = serde_json::to_value(self).unwrap_or_default();
        redact(&mut v, &self.secret_values(), "");
        v
    }

    pub fn secret_values(&self) -> Vec<String> {
        let password = |u: &Option<String>| {
            u.as_deref()
                .and_then(|u| url::Url::parse(u).ok())
                .and_then(|u| u.password().map(str::to_owned))
        };
        [
            Some(self.llm.openai_api_key.clone()),
            Some(self.llm.anthropic_api_key.clone()),
            password(&self.database.url),
            password(&self.redis.url),
            Some(self.server.metrics_token.0.clone()),
            std::env::var("SWITCHYARD_USER_PASSWORD").ok(),
        ]
        .into_iter()
        .flatten()
        .chain((self.redis.cluster_urls.iter()).filter_map(|u| password(&Some(u.clone()))))
        .filter(|s| s.len() >= 4)
        .collect()
    }
}

/// Replaces every occurrence of a secret in `text`.
pub fn scrub(text: &str, secrets: &[String]) -> String {
    let mut out = text.to_owned();
    for s in secrets.iter().filter(|s| !s.is_empty()) {
        if out.contains(s.as_str()) {
            out = out.replace(s.as_str(), "[redacted]");
        }
    }
    out
}

/// Hides the password of a connection URL.
pub fn redact_url(url: &str) -> String {
    match url::Url::parse(url) {
        Ok(mut u) if u.password().is_some() => {
            let _ = u.set_password(Some("***"));
            u.to_string()
        }
        Ok(u) => u.to_string(),
        Err(_) => "<unparseable url>".into(),
    }
}

impl fmt::Debug for DatabaseConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("DatabaseConfig")
            .field("url", &self.url.as_deref().map(redact_url))
            .field("max_connections", &self.max_connections)
            .field("acquire_timeout_secs", &self.acquire_timeout_secs)
            .finish()
    }
}

impl fmt::Debug for RedisConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RedisConfig")
            .field("url", &self.url.as_deref().map(redact_url))
            .field(
                "cluster_urls",
                &self
                    .cluster_urls
                    .iter()
                    .map(|u| redact_url(u))
                    .collect::<Vec<_>>(),
            )
            .field("key_prefix", &self.key_prefix)
            .finish()
    }
}

mod edge;
mod files;
mod llm;
mod load;

pub use edge::{Secret, ServerConfig, WsConfig};
pub use files::{FileBackend, FilesConfig};
pub use llm::{ChatConfig, LlmConfig, McpConfig};

pub use load::ConfigError;

const REDACTED: &str = "[redacted]";

fn redact(v: &mut serde_json::Value, secrets: &[String], name: &str) {
    match v {
        serde_json::Value::String(s) => *s = redact_text(s, secrets, name),
        serde_json::Value::Array(a) => a.iter_mut().for_each(|x| redact(x, secrets, name)),
        serde_json::Value::Object(o) => o.iter_mut().for_each(|(k, x)| redact(x, secrets, k)),
        _ => {}
    }
}

fn redact_text(s: &str, secrets: &[String], name: &str) -> String {
    if s.is_empty() {
        return String::new();
    }
    if name.ends_with("api_key") || name.ends_with("_token") || name.ends_with("password") {
        return REDACTED.into();
    }
    let mut out = match name {
        "stdio_env" => match s.split_once('=') {
            Some((var, _)) => format!("{var}={REDACTED}"),
            None => s.to_owned(),
        },
        "stdio_allowlist" => match s.split_once(char::is_whitespace) {
            Some((program, _)) => format!("{program} {REDACTED}"),
            None => s.to_owned(),
        },
        _ => s.to_owned(),
    };
    if out.contains("://") {
        if let Ok(mut url) = url::Url::parse(&out) {
            if url.password().is_some() {
                let _ = url.set_password(Some(REDACTED));
            }
            if url.query().is_some() {
                url.set_query(Some(REDACTED));
            }
            out = url.to_string();
        }
    }
    for secret in secrets {
        if out.contains(secret.as_str()) {
            out = out.replace(secret.as_str(), REDACTED);
        }
    }
    out
}
