//! `AppState`: what every handler may reach. Cheap to clone (all `Arc`s); built once by
//! `app.rs` and dropped when the server has drained.

use crate::{auth::AuthService, config::Config, ratelimit::RateLimiter, store::Store};
use metrics_exporter_prometheus::PrometheusHandle;
use std::sync::Arc;

#[derive(Clone)]
pub struct AppState {
    pub config: Arc<Config>,
    pub store: Arc<dyn Store>,
    pub auth: Arc<AuthService>,
    pub auth_limiter: Arc<RateLimiter>,
    /// Present when Redis is configured; used for readiness and shared rate limits.
    pub redis: Option<redis::aio::ConnectionManager>,
    pub metrics: PrometheusHandle,
}
