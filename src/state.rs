//! `AppState`: what every handler may reach. Cheap to clone (all `Arc`s); built once by
//! `app.rs` and dropped when the server has drained.

use crate::{
    auth::AuthService, bus::Bus, config::Config, hub::Hub, ratelimit::RateLimiter, store::Store,
};
use metrics_exporter_prometheus::PrometheusHandle;
use std::sync::Arc;

#[derive(Clone)]
pub struct AppState {
    /// This instance's id (the bus's, when there is one), for `/v1/debug`.
    pub instance: uuid::Uuid,
    pub started_at: chrono::DateTime<chrono::Utc>,
    pub config: Arc<Config>,
    pub store: Arc<dyn Store>,
    pub auth: Arc<AuthService>,
    pub auth_limiter: Arc<RateLimiter>,
    /// Present when Redis is configured; used for readiness and shared rate limits.
    pub redis: Option<crate::bus::Shared>,
    pub metrics: PrometheusHandle,
    pub hub: Arc<Hub>,
    pub bus: Arc<dyn Bus>,
    pub connections: Arc<crate::connections::Connections>,
    pub presence: Arc<crate::presence::Presence>,
    pub sync: Arc<crate::sync::service::SyncService>,
    pub chat: Arc<crate::chat::ChatService>,
    pub files: Arc<crate::files::FileService>,
    pub mcp: Arc<crate::mcp::manager::McpManager>,
    pub kill_switch: Arc<crate::maintenance::KillSwitch>,
    /// Cancelled when the instance begins to shut down; every long-lived loop watches it.
    pub shutdown: tokio_util::sync::CancellationToken,
    /// Tracks connections and background tasks so shutdown can wait for them.
    pub tracker: tokio_util::task::TaskTracker,
}
