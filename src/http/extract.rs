//! Request extractors whose failures come out in the one error shape.

use crate::{error::AppError, protocol::json_guard, state::AppState};
use axum::{
    extract::{rejection::JsonRejection, ConnectInfo, FromRequest, FromRequestParts, Request},
    http::{request::Parts, StatusCode},
};
use serde::de::DeserializeOwned;
use std::net::{IpAddr, SocketAddr};

/// `axum::Json`, but a bad body is a 400/413/415 in our error shape naming the bad field;
/// nesting deeper than `server.max_json_depth` is refused before parsing, and so is text with
/// U+0000 (no database column takes it) unless the route answers it itself (`ALLOW_NUL`: the
/// sync write path refuses such a mutation alone; completions store no text).
pub struct Json<T, const ALLOW_NUL: bool = false>(pub T);

impl<T: DeserializeOwned, S: Send + Sync, const ALLOW_NUL: bool> FromRequest<S>
    for Json<T, ALLOW_NUL>
{
    type Rejection = AppError;

    async fn from_request(req: Request, state: &S) -> Result<Self, AppError> {
        let limits = req
            .extensions()
            .get::<BodyLimit>()
            .copied()
            .unwrap_or(BodyLimit {
                bytes: 0,
                json_depth: 32,
            });
        if !is_json(req.headers()) {
            return Err(AppError::UnsupportedMediaType(
                "expected Content-Type: application/json".into(),
            ));
        }
        let bytes = axum::body::Bytes::from_request(req, state)
            .await
            .map_err(|rej| {
                if rej.status() == StatusCode::PAYLOAD_TOO_LARGE {
                    AppError::PayloadTooLarge(limits.bytes)
                } else {
                    AppError::Validation {
                        param: None,
                        message: rej.body_text(),
                    }
                }
            })?;
        let scan =
            json_guard::scan(&bytes, limits.json_depth).map_err(|e| AppError::Validation {
                param: None,
                message: e.to_string(),
            })?;
        if scan.has_nul && !ALLOW_NUL {
            return Err(AppError::Validation {
                param: None,
                message: "text must not contain NUL (U+0000)".into(),
            });
        }
        match axum::Json::<T>::from_bytes(&bytes) {
            Ok(axum::Json(v)) => Ok(Json(v)),
            Err(rej) => Err(json_rejection(rej, limits.bytes)),
        }
    }
}

/// `application/json` or `application/<anything>+json`, as axum's own extractor accepts.
fn is_json(headers: &axum::http::HeaderMap) -> bool {
    headers
        .get(axum::http::header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .map(|v| {
            v.split(';')
                .next()
                .unwrap_or_default()
                .trim()
                .to_ascii_lowercase()
        })
        .is_some_and(|m| {
            m == "application/json" || (m.starts_with("application/") && m.ends_with("+json"))
        })
}

/// The configured body limits, put in request extensions so the extractor and errors can
/// state them.
#[derive(Clone, Copy)]
pub struct BodyLimit {
    pub bytes: usize,
    pub json_depth: usize,
}

fn json_rejection(rej: JsonRejection, limit: usize) -> AppError {
    match rej {
        JsonRejection::JsonSyntaxError(e) => AppError::MalformedJson(e.body_text()),
        JsonRejection::JsonDataError(e) => {
            let text = e.body_text();
            let param = text
                .split('`')
                .nth(1)
                .filter(|_| text.contains("missing field") || text.contains("unknown field"))
                .map(str::to_owned)
                .or_else(|| {
                    // "Failed to deserialize the JSON body into the target type: email: invalid type..."
                    text.split(": ")
                        .nth(1)
                        .filter(|p| !p.contains(' '))
                        .map(str::to_owned)
                });
            AppError::Validation {
                param,
                message: text,
            }
        }
        JsonRejection::MissingJsonContentType(_) => {
            AppError::UnsupportedMediaType("expected Content-Type: application/json".into())
        }
        other if other.status() == StatusCode::PAYLOAD_TOO_LARGE => {
            AppError::PayloadTooLarge(limit)
        }
        other => AppError::Validation {
            param: None,
            message: other.body_text(),
        },
    }
}

/// The caller's IP: the socket peer, or the `X-Forwarded-For` entry added by the outermost
/// of `server.trusted_proxies` proxies in front.
pub struct ClientIp(pub IpAddr);

impl FromRequestParts<AppState> for ClientIp {
    type Rejection = AppError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, AppError> {
        Ok(ClientIp(client_ip(
            parts,
            state.config.server.trusted_proxies,
        )))
    }
}

pub fn client_ip(parts: &Parts, trusted_proxies: usize) -> IpAddr {
    let peer = parts
        .extensions
        .get::<ConnectInfo<SocketAddr>>()
        .map_or(IpAddr::from([0, 0, 0, 0]), |c| c.0.ip());
    if trusted_proxies == 0 {
        return peer;
    }
    // Every header line counts: a proxy may add its own line instead of appending.
    let entries: Vec<&str> = parts
        .headers
        .get_all("x-forwarded-for")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .map(str::trim)
        .collect();
    // Fewer entries than trusted hops: the header is not what our proxies write; trust none.
    entries
        .len()
        .checked_sub(trusted_proxies)
        .and_then(|i| entries[i].parse().ok())
        .unwrap_or(peer)
}
