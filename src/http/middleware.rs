//! Cross-cutting HTTP layers: error bodies carry the request id, route-keyed metrics, the auth
//! rate limit and its headers.

use super::extract::{client_ip, BodyLimit};
use crate::{
    error::{AppError, ErrorBody},
    protocol::ErrorCode,
    state::AppState,
};
use axum::{
    body::Body,
    extract::{MatchedPath, Request, State},
    http::{header, HeaderName, HeaderValue, StatusCode},
    middleware::Next,
    response::{IntoResponse, Response},
};
use std::time::Instant;

pub const REQUEST_ID: HeaderName = HeaderName::from_static("x-request-id");

/// Every 4xx/5xx leaves in the one error shape with its request id: ours get the id added,
/// bare ones (405 from the router, 413 from a layer) are given a body.
pub async fn error_body(State(state): State<AppState>, mut req: Request, next: Next) -> Response {
    let request_id = req
        .headers()
        .get(&REQUEST_ID)
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned);
    req.extensions_mut().insert(BodyLimit {
        bytes: state.config.server.body_limit_bytes,
        json_depth: state.config.server.max_json_depth,
    });
    let resp = next.run(req).await;
    let status = resp.status();
    if !(status.is_client_error() || status.is_server_error())
        || resp.extensions().get::<super::health::KeepBody>().is_some()
    {
        return resp;
    }
    let (mut parts, body) = resp.into_parts();
    let mut error = match parts.extensions.remove::<ErrorBody>() {
        Some(e) => e,
        None => {
            let message = match status {
                StatusCode::METHOD_NOT_ALLOWED => "method not allowed on this route".to_string(),
                StatusCode::REQUEST_TIMEOUT => format!(
                    "the request took longer than {} s",
                    state.config.server.request_timeout_secs
                ),
                StatusCode::PAYLOAD_TOO_LARGE => format!(
                    "request body is larger than the {}-byte limit",
                    state.config.server.body_limit_bytes
                ),
                s => s.canonical_reason().unwrap_or("error").to_lowercase(),
            };
            let code = match status {
                StatusCode::METHOD_NOT_ALLOWED => ErrorCode::MethodNotAllowed,
                StatusCode::PAYLOAD_TOO_LARGE => ErrorCode::PayloadTooLarge,
                StatusCode::REQUEST_TIMEOUT => ErrorCode::RequestTimeout,
                StatusCode::NOT_FOUND => ErrorCode::NotFound,
                s if s.is_server_error() => ErrorCode::InternalError,
                _ => ErrorCode::InvalidRequest,
            };
            drop(body);
            ErrorBody::new(status, code, message, None)
        }
    };
    error.error.request_id = request_id;
    let json = serde_json::to_vec(&error).unwrap_or_default();
    parts.headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    parts.headers.remove(header::CONTENT_LENGTH);
    Response::from_parts(parts, Body::from(json))
}

/// `http_requests_total` and `http_request_duration_seconds` keyed by route template (never
/// the raw path, which would explode cardinality).
pub async fn http_metrics(req: Request, next: Next) -> Response {
    let route = req
        .extensions()
        .get::<MatchedPath>()
        .map_or_else(|| "unmatched".to_owned(), |m| m.as_str().to_owned());
    // Extension methods would each be a new time series: anything unusual is `other`.
    let method = match req.method().as_str() {
        m @ ("GET" | "POST" | "PUT" | "PATCH" | "DELETE" | "HEAD" | "OPTIONS") => m,
        _ => "other",
    }
    .to_owned();
    let start = Instant::now();
    let resp = next.run(req).await;
    let status = resp.status().as_u16().to_string();
    let labels = [("method", method), ("route", route), ("status", status)];
    metrics::counter!("http_requests_total", &labels).increment(1);
    metrics::histogram!("http_request_duration_seconds", &labels[..2])
        .record(start.elapsed().as_secs_f64());
    resp
}

/// While the kill switch is on, 503 with the reason and `Retry-After`, except what operators,
/// probes and other services need: health, metrics, the admin and debug routes, signing in (to
/// reach them), token verification, JWKS and the docs.
pub async fn maintenance_gate(State(state): State<AppState>, req: Request, next: Next) -> Response {
    let Some(m) = state.kill_switch.current() else {
        return next.run(req).await;
    };
    let path = req.uri().path();
    let exempt = path.starts_with("/health")
        || path == "/metrics"
        || path.starts_with("/v1/admin/")
        || path == "/v1/debug"
        || matches!(
            path,
            "/v1/auth/login" | "/v1/auth/refresh" | "/v1/auth/logout" | "/v1/auth/verify-token"
        )
        || path == "/.well-known/jwks.json"
        || path == "/openapi.json"
        || path == "/docs"
        || path.starts_with("/docs/");
    if exempt {
        return next.run(req).await;
    }
    metrics::counter!("maintenance_refused_total").increment(1);
    AppError::Maintenance {
        reason: m.reason.clone(),
        retry_after_secs: m.retry_after_secs,
    }
    .into_response()
}

/// Per-IP limit on the auth routes; every response says where the caller stands.
pub async fn auth_rate_limit(State(state): State<AppState>, req: Request, next: Next) -> Response {
    let (parts, body) = req.into_parts();
    let ip = client_ip(&parts, state.config.server.trusted_proxies);
    let decision = state
        .auth_limiter
        .check(&crate::domain::client_bucket(ip).to_string())
        .await;
    let mut resp = if decision.allowed {
        next.run(Request::from_parts(parts, body)).await
    } else {
        metrics::counter!("ratelimit_refused_total", "limiter" => "auth").increment(1);
        AppError::RateLimited {
            retry_after_secs: decision.reset_secs.max(1),
        }
        .into_response()
    };
    let h = resp.headers_mut();
    h.insert("x-ratelimit-limit", HeaderValue::from(decision.limit));
    h.insert(
        "x-ratelimit-remaining",
        HeaderValue::from(decision.remaining),
    );
    h.insert("x-ratelimit-reset", HeaderValue::from(decision.reset_secs));
    resp
}
