//! Request extractors whose failures come out in the one error shape.

use crate::{error::AppError, state::AppState};
use axum::{
    extract::{rejection::JsonRejection, ConnectInfo, FromRequest, FromRequestParts, Request},
    http::{request::Parts, StatusCode},
};
use serde::de::DeserializeOwned;
use std::net::{IpAddr, SocketAddr};

/// `axum::Json`, but a bad body is a 400/413/415 in our error shape naming the bad field.
pub struct Json<T>(pub T);

impl<T: DeserializeOwned, S: Send + Sync> FromRequest<S> for Json<T> {
    type Rejection = AppError;

    async fn from_request(req: Request, state: &S) -> Result<Self, AppError> {
        let limit = req.extensions().get::<BodyLimit>().map_or(0, |l| l.0);
        match axum::Json::<T>::from_request(req, state).await {
            Ok(axum::Json(v)) => Ok(Json(v)),
            Err(rej) => Err(json_rejection(rej, limit)),
        }
    }
}

/// The configured body limit, put in request extensions so errors can state it.
#[derive(Clone, Copy)]
pub struct BodyLimit(pub usize);

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

/// The caller's IP: the socket peer, or the first `X-Forwarded-For` hop when configured to
/// trust the proxy in front.
pub struct ClientIp(pub IpAddr);

impl FromRequestParts<AppState> for ClientIp {
    type Rejection = AppError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, AppError> {
        Ok(ClientIp(client_ip(
            parts,
            state.config.server.trust_forwarded_for,
        )))
    }
}

pub fn client_ip(parts: &Parts, trust_forwarded_for: bool) -> IpAddr {
    if trust_forwarded_for {
        let forwarded = parts
            .headers
            .get("x-forwarded-for")
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.split(',').next())
            .and_then(|v| v.trim().parse().ok());
        if let Some(ip) = forwarded {
            return ip;
        }
    }
    parts
        .extensions
        .get::<ConnectInfo<SocketAddr>>()
        .map_or(IpAddr::from([0, 0, 0, 0]), |c| c.0.ip())
}
