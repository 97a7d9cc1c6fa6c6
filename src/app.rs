//! The one place that wires everything: config -> store, keys, Redis, services -> router.
//! Takes a bound listener (tests bind port 0) and runs until a shutdown future resolves.

use crate::{
    auth::{jwt::KeySet, AuthService},
    bus::redis_conn::RedisConn,
    bus::{local::LocalBus, redis::RedisBus, Bus, Inbox, Shared},
    chat::{
        completion::Completions, live::LiveTurns, quota::Quota, usage::UsageRecorder, ChatService,
    },
    config::Config,
    connections::Connections,
    http,
    hub::Hub,
    llm::models::Models,
    mcp::{manager::McpManager, seal::Sealer},
    ratelimit::RateLimiter,
    state::AppState,
    store,
    sync::service::SyncService,
};
use std::{future::Future, net::SocketAddr, sync::Arc, time::Duration};
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

pub struct App {
    listener: TcpListener,
    /// `server.metrics_bind`: `/metrics` only, no token.
    metrics_listener: Option<TcpListener>,
    router: axum::Router,
    state: AppState,
}

/// Opens the configured store and applies migrations (also the `migrate` command).
pub async fn open_store(config: &Config) -> anyhow::Result<Arc<dyn store::Store>> {
    let db = &config.database;
    Ok(store::connect(
        db.url.as_deref(),
        &config.server.data_dir,
        db.max_connections,
        Duration::from_secs(db.acquire_timeout_secs),
    )
    .await?)
}

pub async fn connect_redis(
    target: &crate::bus::redis_conn::Target,
) -> anyhow::Result<Arc<RedisConn>> {
    let conn = RedisConn::new(target)?;
    conn.check().await?;
    Ok(Arc::new(conn))
}

/// The transport every service shares, with the receiving ends of what it hands them.
struct Transport {
    hub: Arc<Hub>,
    bus: Arc<dyn Bus>,
    inbox: crate::bus::InboxRx,
    gaps: tokio::sync::mpsc::Receiver<crate::hub::Gap>,
}

impl App {
    pub async fn build(config: Config, listener: TcpListener) -> anyhow::Result<Self> {
        let config = Arc::new(config);
        let store = open_store(&config).await?;
        let redis = match config.redis.target() {
            Some(target) => Some(connect_redis(&target).await?),
            None => None,
        };
        let shutdown = CancellationToken::new();
        let tracker = TaskTracker::new();
        let transport = transport(&config, &redis, &shutdown, &tracker).await;
        let shared = redis.map(|r| Shared::new(r, config.redis.key_prefix.clone()));
        let state = services(
            config.clone(),
            store.clone(),
            shared,
            transport,
            shutdown,
            tracker,
        )?;
        state
            .auth
            .load_refused()
            .await
            .map_err(|e| anyhow::anyhow!("reading revoked sign-ins: {e}"))?;
        (state.tracker).spawn(state.auth.clone().follow_refused(state.shutdown.clone()));
        (state.kill_switch.load().await)
            .map_err(|e| anyhow::anyhow!("reading the kill switch: {e}"))?;
        if let Some(shared) = state.redis.clone() {
            let (s, stop) = (state.clone(), state.shutdown.clone());
            state
                .tracker
                .spawn(http::ops::publish_snapshots(s, shared, stop));
        }
        let router = http::router(state.clone(), axum::Router::new());
        let addr = listener.local_addr()?;
        tracing::info!(
            %addr,
            store = store.backend(),
            redis = config.redis.target().is_some(),
            url = %format!("http://{addr}"),
            docs = %format!("http://{addr}/docs"),
            websocket = %format!("ws://{addr}/v1/ws"),
            "switchyard ready"
        );
        if store.list_users(None, 1).await?.is_empty() {
            tracing::info!(
                "no account exists yet: make the first admin with `switchyard user create \
                 --email you@example.com --admin`, or register one with POST /v1/auth/register"
            );
        }
        let metrics_listener = match config.server.metrics_bind {
            Some(addr) => Some(TcpListener::bind(addr).await?),
            None => None,
        };
        Ok(Self {
            listener,
            metrics_listener,
            router,
            state,
        })
    }

    pub fn local_addr(&self) -> std::io::Result<SocketAddr> {
        self.listener.local_addr()
    }

    pub fn state(&self) -> &AppState {
        &self.state
    }

    /// Serves until `shutdown` resolves. Then: stop accepting, tell every socket to reconnect
    /// elsewhere (1012), let in-flight requests and connection clean-up finish, all within
    /// `server.shutdown_grace_secs`.
    pub async fn run(
        self,
        shutdown: impl Future<Output = ()> + Send + 'static,
    ) -> anyhow::Result<()> {
        let grace = Duration::from_secs(self.state.config.server.shutdown_grace_secs);
        let stop = self.state.shutdown.clone();
        let trigger = stop.clone();
        tokio::spawn(async move {
            shutdown.await;
            trigger.cancel();
        });
        let tracker = self.state.tracker.clone();
        let server = &self.state.config.server;
        let limits = crate::http::serve::Limits {
            max_connections: server.max_http_connections,
            max_per_address: if server.trusted_proxies > 0 {
                0
            } else {
                server.max_http_connections_per_ip
            },
            header_read_timeout: Duration::from_secs(server.header_read_timeout_secs),
        };
        if let Some(l) = self.metrics_listener {
            let metrics = crate::http::health::metrics_listener(self.state.clone());
            let stop = stop.clone();
            tokio::spawn(async move {
                let r = axum::serve(l, metrics)
                    .with_graceful_shutdown(stop.cancelled_owned())
                    .await;
                if let Err(e) = r {
                    tracing::warn!(error = %e, "metrics listener stopped");
                }
            });
        }
        let serve = crate::http::serve::serve(self.listener, self.router, limits, stop.clone());
        let drained = async {
            serve.await?;
            tracker.close();
            tracker.wait().await;
            Ok::<_, std::io::Error>(())
        };
        let deadline = async {
            stop.cancelled().await;
            tokio::time::sleep(grace).await;
        };
        tokio::select! {
            r = drained => r?,
            _ = deadline => tracing::warn!(?grace, "grace period over; dropping remaining connections"),
        }
        tracing::info!("switchyard stopped");
        Ok(())
    }
}

/// The hub and the bus, with the queues from them to services made here (the bus knows no
/// service; each service is handed its end in `services`).
async fn transport(
    config: &Config,
    redis: &Option<Arc<RedisConn>>,
    shutdown: &CancellationToken,
    tracker: &TaskTracker,
) -> Transport {
    let (gap_tx, gaps) = tokio::sync::mpsc::channel(1024);
    let hub = Arc::new(Hub::new(gap_tx));
    let (inbox_tx, inbox) = Inbox::new();
    let bus: Arc<dyn Bus> = match redis {
        Some(conn) => Arc::new(RedisBus::start(
            hub.clone(),
            inbox_tx,
            conn.clone(),
            crate::bus::redis::RedisBusOptions {
                prefix: config.redis.key_prefix.clone(),
                presence_diff_max: config.ws.presence_diff_max,
                drain: Duration::from_secs(config.server.shutdown_grace_secs),
            },
            shutdown.clone(),
            tracker,
        )),
        None => Arc::new(LocalBus::new(hub.clone(), inbox_tx)),
    };
    // Start ready: give the bus a moment to make its first pub/sub connection.
    let connecting = std::time::Instant::now();
    while bus.state() == crate::bus::BusState::Disconnected
        && connecting.elapsed() < Duration::from_secs(3)
    {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    Transport {
        hub,
        bus,
        inbox,
        gaps,
    }
}

/// Every service, built on the store and the transport, and their background tasks started.
fn services(
    config: Arc<Config>,
    store: Arc<dyn store::Store>,
    redis: Option<Shared>,
    t: Transport,
    shutdown: CancellationToken,
    tracker: TaskTracker,
) -> anyhow::Result<AppState> {
    let (auth, auth_limiter) = auth_service(&config, &store, &t.bus, &t.inbox.refused, &redis)?;
    let sync = SyncService::new(
        store.clone(),
        t.bus.clone(),
        t.hub.clone(),
        config.sync.clone(),
    );
    tracker.spawn(sync.clone().heal_gaps(t.gaps, shutdown.clone()));
    let mcp = McpManager::new(
        store.clone(),
        t.bus.clone(),
        redis.clone(),
        config.mcp.clone(),
        config.secret_values(),
        Sealer::load(
            config.mcp.secrets_key_file.as_deref(),
            &config.server.data_dir,
        )?,
    );
    let connections = Arc::new(Connections::new(&config.ws));
    let presence = Arc::new(crate::presence::Presence::new(t.bus.clone(), &config.ws));
    tracker.spawn(presence.clone().run(shutdown.clone()));
    tracker.spawn(mcp.clone().run(connections.clone(), shutdown.clone()));
    let crate::bus::InboxRx {
        cancels: inbox_cancels,
        requests,
        ..
    } = t.inbox;
    mcp.serve_requests(requests, &tracker, shutdown.clone());
    let claims: Option<Box<dyn crate::bus::Lease>> = redis
        .clone()
        .map(|r| Box::new(crate::bus::RedisLease::new(r)) as Box<dyn crate::bus::Lease>);
    let live = Arc::new(LiveTurns::new(t.bus.clone(), claims));
    tracker.spawn(live.clone().serve_cancels(inbox_cancels, shutdown.clone()));
    let files = Arc::new(crate::files::FileService::new(
        config.files.clone(),
        &config.server.data_dir,
        store.clone(),
        t.bus.clone(),
    )?);
    tracker.spawn(files.clone().run_collector(shutdown.clone()));
    let chat = Arc::new(ChatService {
        files: files.clone(),
        completions: completions(&config, &store, &redis, &shutdown, &tracker)?,
        sync: sync.clone(),
        bus: t.bus.clone(),
        live,
        config: config.chat.clone(),
        tracker: tracker.clone(),
        mcp: mcp.clone(),
        mcp_config: config.mcp.clone(),
        store: store.clone(),
    });
    tracker.spawn(chat.clone().sweep_orphans(
        shutdown.clone(),
        Duration::from_secs(config.server.shutdown_grace_secs),
    ));
    let kill_switch = kill_switch(&config, &store, &t.hub, &shutdown, &tracker);
    Ok(AppState {
        instance: t.bus.instance().unwrap_or_else(uuid::Uuid::new_v4),
        started_at: chrono::Utc::now(),
        kill_switch,
        config,
        store,
        auth,
        auth_limiter,
        redis,
        metrics: crate::telemetry::metrics_handle(),
        hub: t.hub,
        bus: t.bus,
        connections,
        presence,
        sync,
        chat,
        files,
        mcp,
        shutdown,
        tracker,
    })
}

/// The kill switch, following the stored state from now on.
fn kill_switch(
    config: &Config,
    store: &Arc<dyn store::Store>,
    hub: &Arc<Hub>,
    shutdown: &CancellationToken,
    tracker: &TaskTracker,
) -> Arc<crate::maintenance::KillSwitch> {
    let k = Arc::new(crate::maintenance::KillSwitch::new(
        store.clone(),
        hub.clone(),
        Duration::from_millis(config.server.maintenance_poll_ms),
        Duration::from_secs(config.server.maintenance_grace_secs),
    ));
    tracker.spawn(k.clone().run(shutdown.clone()));
    k
}

/// Sign-in and tokens, with the per-address limit on its endpoints.
fn auth_service(
    config: &Config,
    store: &Arc<dyn store::Store>,
    bus: &Arc<dyn Bus>,
    refused: &Arc<crate::domain::Refused>,
    redis: &Option<Shared>,
) -> anyhow::Result<(Arc<AuthService>, Arc<RateLimiter>)> {
    let a = &config.auth;
    let keys = Arc::new(KeySet::load(
        &a.key_files,
        &config.server.data_dir,
        &a.issuer,
        &a.audience,
        a.leeway_secs,
    )?);
    let rl = &config.ratelimit;
    let limiter = Arc::new(RateLimiter::new(
        "auth",
        rl.auth_requests,
        Duration::from_secs(rl.auth_window_secs),
        rl.max_tracked_clients,
        redis.clone(),
    ));
    let auth = Arc::new(AuthService::new(
        store.clone(),
        keys,
        bus.clone(),
        refused.clone(),
        a.clone(),
    )?);
    Ok((auth, limiter))
}

/// Models, quota and usage records: what every completion goes through.
fn completions(
    config: &Config,
    store: &Arc<dyn store::Store>,
    redis: &Option<Shared>,
    shutdown: &CancellationToken,
    tracker: &TaskTracker,
) -> anyhow::Result<Arc<Completions>> {
    Ok(Arc::new(Completions {
        models: Models::from_config(&config.llm)?,
        quota: Quota::new(&config.llm, redis.clone()),
        usage: UsageRecorder::start(
            store.clone(),
            std::time::Duration::from_millis(config.llm.usage_flush_ms),
            shutdown.clone(),
            tracker,
        ),
    }))
}
