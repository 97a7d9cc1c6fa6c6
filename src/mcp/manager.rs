//! Runs users' MCP clients and keeps their status.
//!
//! **Which instance runs them:** one per user, chosen by a lease in Redis (`SET NX`, 30 s,
//! refreshed every 5 s by its holder): the first instance where that user has a socket takes
//! it, so two instances never both spawn the same stdio server. Without Redis the one instance
//! runs them. Every 5 s each instance claims the lease for users connected to it when it is
//! free (the holder died) and the holder re-reads the users' server list, so a change made
//! through another instance reaches it; a change made here applies at once.
//!
//! Status changes go out as `mcp.status` events on `user:<id>` (every instance, every
//! connection of that user); the holder also keeps them in Redis so a new connection anywhere
//! gets the current status of all the user's servers at once.

use super::{client::Target, lease::status_key, status::Status};
use crate::{
    bus::{Bus, Lease, RedisLease, Shared},
    config::McpConfig,
    domain::UserId,
    store::{McpServer, Store},
};
use dashmap::DashMap;
use std::{collections::BTreeMap, sync::Arc};
use tokio_util::sync::CancellationToken;
use uuid::Uuid;

pub(super) struct Running {
    pub(super) user: UserId,
    fingerprint: String,
    pub(super) stop: CancellationToken,
}

/// Keeps a user's MCP clients running while a turn of theirs may call them; see
/// [`McpManager::hold`].
pub struct Hold {
    manager: Arc<McpManager>,
    user: UserId,
}

impl Drop for Hold {
    fn drop(&mut self) {
        if let Some(mut n) = self.manager.holds.get_mut(&self.user) {
            *n = n.saturating_sub(1);
        }
        self.manager.holds.remove_if(&self.user, |_, n| *n == 0);
    }
}

/// Owned by `AppState`; lives as long as the server. Its loop (`run`) stops every client at
/// shutdown; a user's clients stop when the user has been gone for `mcp.idle_grace_secs`.
pub struct McpManager {
    pub(super) store: Arc<dyn Store>,
    pub(super) bus: Arc<dyn Bus>,
    /// Redis, when other instances may run some users' clients (status is kept there).
    pub(super) shared: Option<Shared>,
    /// Which instance runs each user's clients, when there are others (Redis).
    pub(super) lease: Option<Box<dyn Lease>>,
    pub(super) cfg: McpConfig,
    /// Every secret of the server's configuration, scrubbed from what users see.
    pub(super) secrets: Vec<String>,
    /// Opens stored header values (and seals new ones, through `servers`).
    pub(super) sealer: super::seal::Sealer,
    pub(super) instance: String,
    /// When each user was last seen with a socket on this instance (or a turn running).
    pub(super) last_seen: DashMap<UserId, std::time::Instant>,
    /// Running turns per user (their MCP clients stay up meanwhile).
    pub(super) holds: DashMap<UserId, usize>,
    pub(super) running: DashMap<Uuid, Running>,
    pub(super) owned: DashMap<UserId, ()>,
    pub(super) statuses: DashMap<UserId, BTreeMap<Uuid, Status>>,
    /// Ready connections, to call tools through, by server id.
    pub(super) peers: DashMap<Uuid, Ready>,
    /// Questions (`elicitation/create`) waiting for each user's answer.
    pub(super) elicitations: DashMap<UserId, usize>,
    /// Tool calls running here, per server id, with the turn each came from.
    pub(super) inflight: DashMap<Uuid, Vec<(u64, super::elicit::CallOrigin)>>,
}

/// A ready connection of a user's server.
#[derive(Clone)]
pub(super) struct Ready {
    pub(super) user: UserId,
    pub(super) name: String,
    pub(super) peer: rmcp::service::Peer<rmcp::service::RoleClient>,
    /// Time its calls spent waiting on the user.
    pub(super) waits: Arc<super::elicit::UserWait>,
}

fn fingerprint(s: &McpServer) -> String {
    format!(
        "{}|{:?}|{:?}|{:?}|{}",
        s.transport, s.url, s.command, s.headers, s.name
    )
}

impl McpManager {
    pub fn new(
        store: Arc<dyn Store>,
        bus: Arc<dyn Bus>,
        shared: Option<Shared>,
        cfg: McpConfig,
        secrets: Vec<String>,
        sealer: super::seal::Sealer,
    ) -> Arc<Self> {
        Arc::new(Self {
            store,
            bus,
            lease: shared
                .clone()
                .map(|s| Box::new(RedisLease::new(s)) as Box<dyn Lease>),
            shared,
            cfg,
            secrets,
            sealer,
            instance: Uuid::new_v4().to_string(),
            last_seen: DashMap::new(),
            holds: DashMap::new(),
            running: DashMap::new(),
            owned: DashMap::new(),
            statuses: DashMap::new(),
            peers: DashMap::new(),
            elicitations: DashMap::new(),
            inflight: DashMap::new(),
        })
    }

    /// MCP clients running on this instance.
    pub fn running_here(&self) -> usize {
        self.running.len()
    }

    pub fn sealer(&self) -> &super::seal::Sealer {
        &self.sealer
    }

    /// Header values stored before sealing existed are sealed the first time their user's
    /// servers load, so no plaintext secret stays in the database.
    async fn seal_stored(&self, servers: &[McpServer]) {
        let plain = |s: &&McpServer| {
            s.headers.values().any(|v| {
                v.as_str()
                    .is_some_and(|v| !super::seal::Sealer::is_sealed(v))
            })
        };
        for s in servers.iter().filter(plain) {
            let mut sealed = s.clone();
            if super::servers::seal_headers(&self.sealer, &mut sealed).is_ok() {
                if let Err(e) = self.store.update_mcp_server(&sealed).await {
                    tracing::warn!(error = %e, server = %s.id, "MCP headers not sealed yet");
                }
            }
        }
    }

    /// Keeps `user`'s clients running until the guard drops (a turn that may call them).
    pub fn hold(self: &Arc<Self>, user: UserId) -> Hold {
        *self.holds.entry(user).or_insert(0) += 1;
        Hold {
            manager: self.clone(),
            user,
        }
    }

    pub(super) fn tool_limits(&self) -> super::client::ToolLimits {
        super::client::ToolLimits {
            pages: self.cfg.max_tool_pages,
            tools: self.cfg.max_tools,
            bytes: self.cfg.max_tool_bytes,
        }
    }

    /// The configured secrets plus what this server was given (environment values set for
    /// it, header values): none of them may show in a status.
    pub(super) fn secrets_for(&self, target: &Target) -> Vec<String> {
        let mut s = self.secrets.clone();
        match target {
            Target::Stdio { env, .. } => s.extend(
                env.iter()
                    .filter(|(k, _)| !self.cfg.stdio_pass_env.contains(k))
                    .map(|(_, v)| v.clone())
                    .filter(|v| v.len() >= 4),
            ),
            Target::Http { headers, .. } => s.extend(
                headers
                    .iter()
                    .map(|(_, v)| v.clone())
                    .filter(|v| v.len() >= 4),
            ),
        }
        s
    }

    /// Whether other instances may run some users' clients (Redis configured).
    pub(super) fn shared(&self) -> bool {
        self.shared.is_some()
    }

    /// A socket of `user` connected here: run their servers if no instance does.
    pub async fn ensure_user(self: &Arc<Self>, user: UserId) {
        if self.lease(user).await {
            self.reload_user(user).await;
        }
    }

    /// Brings the running clients in line with the user's configuration.
    pub async fn reload_user(self: &Arc<Self>, user: UserId) {
        if !self.owned.contains_key(&user) {
            return;
        }
        let servers = match self.store.list_mcp_servers(user).await {
            Ok(s) => s,
            Err(e) => return tracing::warn!(error = %e, "MCP servers not loaded"),
        };
        self.seal_stored(&servers).await;
        let wanted: BTreeMap<Uuid, &McpServer> = servers
            .iter()
            .filter(|s| s.enabled)
            .map(|s| (s.id, s))
            .collect();
        let stale: Vec<Uuid> = self
            .running
            .iter()
            .filter(|r| r.user == user)
            .filter(|r| {
                wanted
                    .get(r.key())
                    .is_none_or(|s| fingerprint(s) != r.fingerprint)
            })
            .map(|r| *r.key())
            .collect();
        for id in stale {
            if let Some((_, r)) = self.running.remove(&id) {
                r.stop.cancel();
            }
        }
        self.show_stopped(user, &servers).await;
        for (id, s) in wanted {
            if !self.running.contains_key(&id) {
                self.start(user, s).await;
            }
        }
    }

    /// Disabled servers show as stopped; deleted ones disappear.
    async fn show_stopped(&self, user: UserId, servers: &[McpServer]) {
        for s in servers.iter().filter(|s| !s.enabled) {
            let known = self
                .statuses
                .get(&user)
                .and_then(|m| m.get(&s.id).map(|st| st.state != "stopped"))
                .unwrap_or(true);
            if known {
                self.set(user, Status::new(s.id, &s.name, "stopped")).await;
            }
        }
        let gone: Vec<Uuid> = self
            .statuses
            .get(&user)
            .map(|m| {
                m.keys()
                    .filter(|id| !servers.iter().any(|s| s.id == **id))
                    .copied()
                    .collect()
            })
            .unwrap_or_default();
        for id in gone {
            let name = self
                .statuses
                .get_mut(&user)
                .and_then(|mut m| m.remove(&id))
                .map(|s| s.name)
                .unwrap_or_default();
            self.publish(user, &Status::new(id, &name, "stopped")).await;
            if let Some(shared) = &self.shared {
                let _ = shared.hash_del(&status_key(user), &id.to_string()).await;
            }
        }
    }

    /// Starts a supervised client for `s` (or shows why its configuration cannot run).
    async fn start(self: &Arc<Self>, user: UserId, s: &McpServer) {
        let id = s.id;
        let target = match self.target(s) {
            Ok(t) => t,
            Err(why) => {
                let status = Status {
                    error: Some(why.into()),
                    ..Status::new(id, &s.name, "error")
                };
                return self.set(user, status).await;
            }
        };
        let stop = CancellationToken::new();
        self.running.insert(
            id,
            Running {
                user,
                fingerprint: fingerprint(s),
                stop: stop.clone(),
            },
        );
        tokio::spawn(
            self.clone()
                .supervise(user, id, s.name.clone(), target, stop),
        );
    }

    pub(super) async fn stop_user(&self, user: UserId) {
        let ids: Vec<Uuid> = self
            .running
            .iter()
            .filter(|r| r.user == user)
            .map(|r| *r.key())
            .collect();
        for id in ids {
            if let Some((_, r)) = self.running.remove(&id) {
                r.stop.cancel();
            }
        }
        self.statuses.remove(&user);
    }

    fn target(&self, s: &McpServer) -> Result<Target, &'static str> {
        let unlisted = "command is no longer allowlisted";
        match s.transport.as_str() {
            "stdio" => {
                let name = s.command.as_deref().ok_or(unlisted)?;
                let line = self
                    .cfg
                    .stdio_allowlist
                    .iter()
                    .find_map(|e| {
                        let (n, cmd) = e.split_once('=')?;
                        (n.trim() == name).then(|| cmd.trim().to_owned())
                    })
                    .ok_or(unlisted)?;
                let mut parts = line.split_whitespace().map(str::to_owned);
                Ok(Target::Stdio {
                    program: parts.next().ok_or(unlisted)?,
                    args: parts.collect(),
                    env: self.cfg.stdio_env_of(name),
                })
            }
            _ => {
                let mut headers = Vec::with_capacity(s.headers.len());
                for (k, v) in &s.headers {
                    let plain = v
                        .as_str()
                        .and_then(|v| self.sealer.open(s.user_id.0, s.id, k, v))
                        .ok_or("a stored header does not open with this server's key (mcp.secrets_key_file); set the headers again")?;
                    headers.push((k.clone(), plain));
                }
                Ok(Target::Http {
                    url: s.url.clone().ok_or("the server has no url")?,
                    headers,
                    allow_private: self.cfg.allow_private_urls,
                })
            }
        }
    }
}
