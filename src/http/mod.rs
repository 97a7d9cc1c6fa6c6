//! The REST surface. Each submodule owns a group of routes and documents them with
//! `#[utoipa::path]`; routes are only ever added through `utoipa_axum::routes!`, so the served
//! API and `/openapi.json` are one and the same list.

pub mod account;
pub mod admin;
pub mod auth;
pub mod authn;
pub mod completions;
pub mod compress;
pub mod docs;
pub mod extract;
pub mod files;
pub mod health;
pub mod info;
pub mod maintenance;
pub mod mcp;
pub mod mfa;
pub mod middleware;
pub mod openai_wire;
pub mod openapi;
pub mod ops;
pub mod projects;
pub mod serve;
pub mod sessions;
pub mod tools;
pub mod web;

use crate::state::AppState;
use axum::{
    extract::{DefaultBodyLimit, MatchedPath, Request},
    http::{header, HeaderName, HeaderValue, Method},
    middleware::{from_fn, from_fn_with_state},
    Router,
};
use middleware::REQUEST_ID;
use std::time::Duration;
use tower::ServiceBuilder;
use tower_http::{
    cors::{AllowHeaders, AllowOrigin, CorsLayer},
    request_id::{MakeRequestUuid, PropagateRequestIdLayer, SetRequestIdLayer},
    set_header::SetResponseHeaderLayer,
    trace::TraceLayer,
};
use utoipa::OpenApi;
use utoipa_axum::router::OpenApiRouter;

/// All documented routes, and the OpenAPI document describing exactly them.
pub fn api(state: &AppState) -> (Router<AppState>, utoipa::openapi::OpenApi) {
    let limited = (auth::rate_limited_routes()
        .merge(account::rate_limited_routes())
        .merge(mfa::rate_limited_routes()))
    .layer(from_fn_with_state(
        state.clone(),
        middleware::auth_rate_limit,
    ));
    // Every route but the streaming ones answers within the request deadline (408 after).
    let deadline = Duration::from_secs(state.config.server.request_timeout_secs);
    let timed = OpenApiRouter::new()
        .merge(limited)
        .merge(auth::routes())
        .merge(account::routes())
        .merge(mfa::routes())
        .merge(admin::routes())
        .merge(maintenance::routes())
        .merge(ops::routes())
        .merge(health::routes())
        .merge(info::routes(web::present(&state.config.server.web_dir)))
        .merge(sessions::routes())
        .merge(tools::routes())
        .merge(projects::routes())
        .merge(mcp::routes())
        .layer(tower_http::timeout::TimeoutLayer::with_status_code(
            axum::http::StatusCode::REQUEST_TIMEOUT,
            deadline,
        ));
    OpenApiRouter::with_openapi(openapi::ApiDoc::openapi())
        .merge(timed)
        .merge(completions::routes())
        .merge(files::routes(state))
        .merge(crate::ws::routes())
        .split_for_parts()
}

/// The whole HTTP application with its layers, ready to serve.
pub fn router(state: AppState, extra: Router<AppState>) -> Router {
    let (api, doc) = api(&state);
    let doc = std::sync::Arc::new(doc);
    let cors = cors(&state.config.server);
    let body_limit = state.config.server.body_limit_bytes;
    let security = ServiceBuilder::new()
        .layer(SetResponseHeaderLayer::if_not_present(
            header::X_CONTENT_TYPE_OPTIONS,
            HeaderValue::from_static("nosniff"),
        ))
        .layer(SetResponseHeaderLayer::if_not_present(
            header::X_FRAME_OPTIONS,
            HeaderValue::from_static("DENY"),
        ))
        .layer(SetResponseHeaderLayer::if_not_present(
            header::REFERRER_POLICY,
            HeaderValue::from_static("no-referrer"),
        ))
        .layer(SetResponseHeaderLayer::if_not_present(
            header::CONTENT_SECURITY_POLICY,
            HeaderValue::from_static("default-src 'none'; frame-ancestors 'none'"),
        ))
        .layer(SetResponseHeaderLayer::if_not_present(
            header::STRICT_TRANSPORT_SECURITY,
            HeaderValue::from_static("max-age=63072000; includeSubDomains"),
        ))
        .layer(SetResponseHeaderLayer::if_not_present(
            header::CACHE_CONTROL,
            HeaderValue::from_static("no-store"),
        ));
    api.merge(extra)
        .merge(docs::routes())
        .route(
            "/openapi.json",
            axum::routing::get(move || {
                let doc = doc.clone();
                async move { axum::Json(doc.as_ref().clone()) }
            }),
        )
        .fallback_service(web::service(&state.config.server.web_dir))
        .layer(
            ServiceBuilder::new()
                .layer(SetRequestIdLayer::new(REQUEST_ID, MakeRequestUuid))
                .layer(PropagateRequestIdLayer::new(REQUEST_ID))
                .layer(TraceLayer::new_for_http().make_span_with(|req: &Request| {
                    let route = req.extensions().get::<MatchedPath>().map(|m| m.as_str());
                    let id = req.headers().get(&REQUEST_ID).and_then(|v| v.to_str().ok());
                    tracing::info_span!("request", method = %req.method(), route, request_id = id,
                        user_id = tracing::field::Empty)
                }))
                .layer(cors)
                .layer(from_fn_with_state(state.clone(), middleware::error_body))
                .layer(from_fn_with_state(
                    state.clone(),
                    middleware::maintenance_gate,
                ))
                .layer(security)
                .layer(from_fn(middleware::http_metrics))
                .layer(compress::responses(state.config.server.compress_min_bytes))
                .layer(compress::requests())
                .layer(DefaultBodyLimit::max(body_limit)),
        )
        .with_state(state)
}

/// Never with credentials (auth is a bearer token, not a cookie), so `*` is allowed. The
/// request headers a preflight asks for are mirrored: the official SDKs send their own
/// (`x-stainless-*`, `openai-beta`), and a fixed list would break each new one.
fn cors(server: &crate::config::ServerConfig) -> CorsLayer {
    let origins = if server.any_origin() {
        AllowOrigin::any()
    } else {
        let list: Vec<HeaderValue> = (server.cors_origins.iter())
            .filter_map(|o| o.parse().ok())
            .collect();
        AllowOrigin::list(list)
    };
    let exposed = [
        "x-ratelimit-limit",
        "x-ratelimit-remaining",
        "x-ratelimit-reset",
        "x-ratelimit-limit-requests",
        "x-ratelimit-remaining-requests",
        "x-ratelimit-reset-requests",
        "x-ratelimit-limit-tokens",
        "x-ratelimit-remaining-tokens",
        "x-ratelimit-reset-tokens",
    ]
    .map(HeaderName::from_static);
    CorsLayer::new()
        .allow_origin(origins)
        .allow_methods([
            Method::GET,
            Method::POST,
            Method::PUT,
            Method::PATCH,
            Method::DELETE,
        ])
        .allow_headers(AllowHeaders::mirror_request())
        .expose_headers(
            [REQUEST_ID, header::RETRY_AFTER]
                .into_iter()
                .chain(exposed)
                .collect::<Vec<_>>(),
        )
        .max_age(Duration::from_secs(600))
}
