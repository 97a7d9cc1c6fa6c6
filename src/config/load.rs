//! Reading the config: defaults -> TOML file -> `SWITCHYARD_*` environment, then validation.

use super::Config;
use std::path::PathBuf;

#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("reading config file {path}: {source}")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("config file {path}: {source}")]
    Parse {
        path: PathBuf,
        source: toml::de::Error,
    },
    #[error("unknown environment variable {0} (see the config table in README.md)")]
    UnknownEnv(String),
    #[error("invalid configuration: {0}")]
    Invalid(String),
}

impl Config {
    /// Defaults, then `file` (if given), then `SWITCHYARD_*` from `env`.
    pub fn load(
        file: Option<&std::path::Path>,
        env: impl IntoIterator<Item = (String, String)>,
    ) -> Result<Self, ConfigError> {
        let mut tree = toml::Value::try_from(Config::default())
            .map_err(|e| ConfigError::Invalid(e.to_string()))?;
        if let Some(path) = file {
            let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
                path: path.into(),
                source,
            })?;
            let over: toml::Value = toml::from_str(&text).map_err(|source| ConfigError::Parse {
                path: path.into(),
                source,
            })?;
            merge(&mut tree, over);
        }
        for (key, value) in env {
            let Some(rest) = key.strip_prefix("SWITCHYARD_") else {
                continue;
            };
            if matches!(rest, "CONFIG" | "USER_PASSWORD") {
                continue;
            }
            apply_env(&mut tree, &key, &rest.to_lowercase(), &value)?;
        }
        let mut config: Config = tree
            .try_into()
            .map_err(|e: toml::de::Error| ConfigError::Invalid(e.message().to_string()))?;
        config.server.cors_origins = config
            .server
            .cors_origins
            .iter()
            .filter(|o| !o.trim().is_empty())
            .map(|o| super::edge::normalize_origin(o))
            .collect::<Result<_, _>>()
            .map_err(ConfigError::Invalid)?;
        config.validate()?;
        Ok(config)
    }

    fn validate(&self) -> Result<(), ConfigError> {
        let bad = |m: &str| Err(ConfigError::Invalid(m.into()));
        if self.auth.access_ttl_secs == 0 || self.auth.refresh_ttl_secs == 0 {
            return bad("auth token lifetimes must be positive");
        }
        if self.auth.lockout_threshold == 0 {
            return bad("auth.lockout_threshold must be at least 1");
        }
        if let Some(e) = (self.files.allowed_extensions.iter())
            .find(|e| crate::files::kind::of_extension(e).is_none())
        {
            return Err(ConfigError::Invalid(format!(
                "files.allowed_extensions: the server does not know what a .{e} file is \
                 (known: text and source files, png, jpg, jpeg, gif, webp, pdf)"
            )));
        }
        if let Some(r) = (self.auth.second_factor_roles.iter())
            .find(|r| !matches!(r.as_str(), "admin" | "analyst" | "developer"))
        {
            return Err(ConfigError::Invalid(format!(
                "auth.second_factor_roles: {r:?} is not admin, analyst or developer"
            )));
        }
        if self.files.max_file_bytes == 0 {
            return bad("files.max_file_bytes must be positive");
        }
        if self.auth.hash_concurrency == 0 {
            return bad("auth.hash_concurrency must be at least 1");
        }
        if self.redis.url.is_some() && !self.redis.cluster_urls.is_empty() {
            return bad("set redis.url (one Redis) or redis.cluster_urls (a cluster), not both");
        }
        if self.redis.key_prefix.contains(['{', '}']) {
            return bad("redis.key_prefix may not contain { or } (they mark the cluster hash tag)");
        }
        let ws = &self.ws;
        if self.sync.heal_max_frames >= ws.send_queue {
            return bad(
                "sync.heal_max_frames must be below ws.send_queue (a healed gap is \
                        replayed into every subscriber's queue at once)",
            );
        }
        if ws.presence_interval_ms == 0 || ws.presence_busy_members == 0 {
            return bad("ws.presence_interval_ms and ws.presence_busy_members must be positive");
        }
        if ws.send_queue == 0 || ws.frames_per_sec == 0 || ws.max_connections == 0 {
            return bad("ws.send_queue, ws.frames_per_sec and ws.max_connections must be positive");
        }
        if ws.heartbeat_secs == 0 || ws.idle_timeout_secs <= ws.heartbeat_secs {
            return bad("ws.idle_timeout_secs must be longer than ws.heartbeat_secs (> 0)");
        }
        let mcp = &self.mcp;
        if mcp.elicitation_timeout_ms == 0
            || mcp.elicitation_timeout_ms > 3_600_000
            || mcp.max_pending_elicitations == 0
            || mcp.max_elicitation_bytes == 0
            || mcp.tool_timeout_ms > 3_600_000
        {
            return bad(
                "mcp.elicitation_timeout_ms and mcp.tool_timeout_ms are 1 ms to 1 hour; \
                 mcp.max_pending_elicitations and mcp.max_elicitation_bytes are positive",
            );
        }
        if self.mcp.stdio_allowlist.iter().any(|e| {
            e.split_once('=')
                .is_none_or(|(n, c)| n.trim().is_empty() || c.trim().is_empty())
        }) {
            return bad("mcp.stdio_allowlist entries are name=command [args...]");
        }
        let env_name = |k: &str| {
            let k = k.trim();
            !k.is_empty()
                && !k.to_ascii_uppercase().starts_with("SWITCHYARD_")
                && k.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
        };
        if !self.mcp.stdio_pass_env.iter().all(|k| env_name(k)) {
            return bad("mcp.stdio_pass_env holds variable names, never SWITCHYARD_* ones");
        }
        if !self.mcp.stdio_env.iter().all(|e| {
            e.split_once(':').is_some_and(|(n, spec)| {
                !n.trim().is_empty() && env_name(spec.split_once('=').map_or(spec, |(k, _)| k))
            })
        }) {
            return bad(
                "mcp.stdio_env entries are name:VAR or name:VAR=value, never SWITCHYARD_* ones",
            );
        }
        let llm = &self.llm;
        if llm.answer_timeout_ms == 0 || llm.max_answer_bytes == 0 {
            return bad("llm.answer_timeout_ms and llm.max_answer_bytes must be positive");
        }
        if self.ratelimit.auth_window_secs == 0 {
            return bad("ratelimit.auth_window_secs must be positive");
        }
        if self.server.maintenance_poll_ms == 0 {
            return bad("server.maintenance_poll_ms must be positive");
        }
        if let Some(url) = &self.database.url {
            if !(url.starts_with("postgres://")
                || url.starts_with("postgresql://")
                || url.starts_with("sqlite:"))
            {
                return bad("database.url must start with postgres:// or sqlite:");
            }
        }
        Ok(())
    }
}

fn merge(base: &mut toml::Value, over: toml::Value) {
    match (base, over) {
        (toml::Value::Table(b), toml::Value::Table(o)) => {
            for (k, v) in o {
                match b.get_mut(&k) {
                    Some(existing) => merge(existing, v),
                    None => {
                        b.insert(k, v);
                    }
                }
            }
        }
        (b, o) => *b = o,
    }
}

/// `rest` is `section_field` lower-cased; sections are matched by name, so fields may contain
/// underscores (`auth_access_ttl_secs` -> `auth.access_ttl_secs`).
fn apply_env(
    tree: &mut toml::Value,
    key: &str,
    rest: &str,
    value: &str,
) -> Result<(), ConfigError> {
    let unknown = || ConfigError::UnknownEnv(key.to_string());
    let table = tree.as_table_mut().ok_or_else(unknown)?;
    let (section, field) = table
        .keys()
        .filter_map(|s| {
            rest.strip_prefix(s.as_str())?
                .strip_prefix('_')
                .map(|f| (s.clone(), f))
        })
        .next()
        .ok_or_else(unknown)?;
    let section = table
        .get_mut(&section)
        .and_then(|s| s.as_table_mut())
        .ok_or_else(unknown)?;
    let parsed = match section.get(field) {
        Some(toml::Value::Integer(_)) => toml::Value::Integer(
            value
                .parse()
                .map_err(|_| ConfigError::Invalid(format!("{key} must be an integer")))?,
        ),
        Some(toml::Value::Boolean(_)) => toml::Value::Boolean(
            value
                .parse()
                .map_err(|_| ConfigError::Invalid(format!("{key} must be true/false")))?,
        ),
        Some(toml::Value::Array(_)) => toml::Value::Array(
            value
                .split(',')
                .map(str::trim)
                .filter(|s| !s.is_empty())
                .map(|s| toml::Value::String(s.into()))
                .collect(),
        ),
        // Optional fields (absent from the defaults) are strings: urls.
        Some(toml::Value::String(_)) | None
            if is_known_optional(field) || section.contains_key(field) =>
        {
            toml::Value::String(value.into())
        }
        _ => return Err(unknown()),
    };
    section.insert(field.to_string(), parsed);
    Ok(())
}

fn is_known_optional(field: &str) -> bool {
    matches!(field, "url" | "metrics_bind" | "secrets_key_file")
}

#[cfg(test)]
#[path = "load_tests.rs"]
mod tests;
