//! The one place that wires everything: config -> store, keys, Redis, services -> router.
//! Takes a bound listener (tests bind port 0) and runs until a shutdown future resolves.

use crate::{
    auth::{jwt::KeySet, AuthService},
    bus::{local::LocalBus, redis::RedisBus, Bus},
    config::Config,
    http,
    hub::Hub,
    ratelimit::RateLimiter,
    redis_conn::RedisConn,
    state::AppState,
    store,
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

pub async fn connect_redis(url: &str) -> anyhow::Result<Arc<RedisConn>> {
    let conn = RedisConn::new(url)?;
    conn.check().await?;
    Ok(Arc::new(conn))
}

impl App {
    pub async fn build(config: Config, listener: TcpListener) -> anyhow::Result<Self> {
        let config = Arc::new(config);
        let store = open_store(&config).await?;
        let a = &config.auth;
        let keys = Arc::new(KeySet::load(
            &a.key_files,
            &config.server.data_dir,
            &a.issuer,
            &a.audience,
            a.leeway_secs,
        )?);
        let redis = match &config.redis.url {
            Some(url) => Some(connect_redis(url).await?),
            None => None,
        };
        let rl = &config.ratelimit;
        let auth_limiter = Arc::new(RateLimiter::new(
            "auth",
            rl.auth_requests,
            Duration::from_secs(rl.auth_window_secs),
            rl.max_tracked_clients,
            redis.clone().map(|r| (r, config.redis.key_prefix.clone())),
        ));
        let shutdown = CancellationToken::new();
        let tracker = TaskTracker::new();
        let hub = Arc::new(Hub::new());
        let bus: Arc<dyn Bus> = match &redis {
            Some(conn) => Arc::new(RedisBus::start(
                hub.clone(),
                conn.client().clone(),
                conn.clone(),
                config.redis.key_prefix.clone(),
                shutdown.clone(),
                &tracker,
            )),
            None => Arc::new(LocalBus::new(hub.clone())),
        };
        // Start ready: give the bus a moment to make its first pub/sub connection.
        let connecting = std::time::Instant::now();
        while bus.state() == crate::bus::BusState::Disconnected
            && connecting.elapsed() < Duration::from_secs(3)
        {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        let auth = Arc::new(AuthService::new(
            store.clone(),
            keys,
            bus.clone(),
            a.clone(),
        )?);
        let sync = crate::sync::service::SyncService::new(
            store.clone(),
            bus.clone(),
            hub.clone(),
            config.sync.clone(),
        );
        let (gap_tx, gap_rx) = tokio::sync::mpsc::channel(1024);
        hub.set_gap_reporter(gap_tx);
        tracker.spawn(sync.clone().heal_gaps(gap_rx, shutdown.clone()));
        let completions = Arc::new(crate::chat::completion::Completions {
            models: crate::llm::models::Models::from_config(&config.llm)?,
            quota: crate::chat::quota::Quota::new(
                &config.llm,
                redis.clone().map(|r| (r, config.redis.key_prefix.clone())),
            ),
            usage: crate::chat::usage::UsageRecorder::start(
                store.clone(),
                shutdown.clone(),
                &tracker,
            ),
        });
        let mcp = crate::mcp::manager::McpManager::new(
            store.clone(),
            bus.clone(),
            redis.clone().map(|r| (r, config.redis.key_prefix.clone())),
            config.mcp.clone(),
            config.secret_values(),
            crate::mcp::seal::Sealer::load(
                config.mcp.secrets_key_file.as_deref(),
                &config.server.data_dir,
            )?,
        );
        let chat = Arc::new(crate::chat::ChatService {
            completions,
            sync: sync.clone(),
            bus: bus.clone(),
            hub: hub.clone(),
            config: config.chat.clone(),
            tracker: tracker.clone(),
            mcp: mcp.clone(),
            mcp_config: config.mcp.clone(),
            store: store.clone(),
        });
        let connections = Arc::new(crate::connections::Connections::new(&config.ws));
        tracker.spawn(mcp.clone().run(connections.clone(), shutdown.clone()));
        mcp.serve_requests(&hub, &tracker, shutdown.clone());
        let state = AppState {
            config: config.clone(),
            store: store.clone(),
            auth,
            auth_limiter,
            redis,
            metrics: crate::telemetry::metrics_handle(),
            hub,
            bus,
            connections,
            sync,
            chat,
            mcp,
            shutdown,
            tracker,
        };
        let router = http::router(state.clone(), axum::Router::new());
        tracing::info!(
            addr = %listener.local_addr()?,
            store = store.backend(),
            redis = config.redis.url.is_some(),
            "switchyard ready"
        );
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
