//! What a newcomer's first `curl` finds: the server's name, version and where to go next. At
//! `/v1` always, and at `/` when no web client is served there.

use crate::state::AppState;
use axum::http::{header, request::Parts};
use serde::Serialize;
use utoipa::ToSchema;
use utoipa_axum::{router::OpenApiRouter, routes};

pub fn routes(web_client_at_root: bool) -> OpenApiRouter<AppState> {
    let r = OpenApiRouter::new().routes(routes!(v1));
    if web_client_at_root {
        r
    } else {
        r.routes(routes!(root))
    }
}

#[derive(Serialize, ToSchema)]
pub struct ServiceInfo {
    /// Always `switchyard`.
    name: &'static str,
    version: &'static str,
    /// Browsable API docs.
    docs: &'static str,
    openapi: &'static str,
    /// The multiplexed WebSocket's path.
    websocket: &'static str,
    /// The same as a URL, from the `Host` the request was sent to (absent when it is not a
    /// valid authority).
    websocket_url: Option<String>,
    health: &'static str,
}

fn info(parts: &Parts) -> axum::Json<ServiceInfo> {
    // Only a well-formed authority is echoed, so a spoofed Host cannot inject anything else.
    let websocket_url = parts
        .headers
        .get(header::HOST)
        .and_then(|h| h.to_str().ok())
        .and_then(|h| h.parse::<axum::http::uri::Authority>().ok())
        .map(|a| format!("ws://{a}/v1/ws"));
    axum::Json(ServiceInfo {
        name: "switchyard",
        version: env!("CARGO_PKG_VERSION"),
        docs: "/docs",
        openapi: "/openapi.json",
        websocket: "/v1/ws",
        websocket_url,
        health: "/health",
    })
}

/// The server's name, version and links (docs, OpenAPI, the socket).
#[utoipa::path(get, path = "/v1", operation_id = "getServiceInfo", tag = "health", responses((status = 200, body = ServiceInfo)))]
async fn v1(parts: Parts) -> axum::Json<ServiceInfo> {
    info(&parts)
}

/// The same as `/v1`; served only when no web client is (it is the page there otherwise).
#[utoipa::path(get, path = "/", operation_id = "getRootServiceInfo", tag = "health", responses((status = 200, body = ServiceInfo)))]
async fn root(parts: Parts) -> axum::Json<ServiceInfo> {
    info(&parts)
}
