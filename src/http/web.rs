//! The web client, served at `/` from `server.web_dir` (its built files, committed under
//! `clients/web/dist`), with a content security policy of its own: its scripts and styles
//! from this origin, its socket to this origin. Any other unknown path is the JSON 404.

use crate::error::AppError;
use axum::{
    http::{header, HeaderValue},
    response::IntoResponse,
};
use std::{convert::Infallible, path::Path};
use tower::{service_fn, util::BoxCloneSyncService, ServiceBuilder, ServiceExt};
use tower_http::{services::ServeDir, set_header::SetResponseHeaderLayer};

/// What the app's pages may load: nothing from elsewhere.
const APP_CSP: &str = "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; \
     connect-src 'self'; manifest-src 'self'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'";

type Service = BoxCloneSyncService<axum::extract::Request, axum::response::Response, Infallible>;

fn not_found() -> Service {
    BoxCloneSyncService::new(service_fn(|_req: axum::extract::Request| async {
        Ok::<_, Infallible>(AppError::NotFound("no such route".into()).into_response())
    }))
}

/// `dir` holds a built web client.
pub fn present(dir: &Path) -> bool {
    !dir.as_os_str().is_empty() && dir.join("index.html").is_file()
}

/// The fallback of the router: the web client's files when `dir` holds them, else 404s.
pub fn service(dir: &Path) -> Service {
    if !present(dir) {
        if !dir.as_os_str().is_empty() {
            tracing::info!(dir = %dir.display(), "no web client there; / answers the service info");
        }
        return not_found();
    }
    let files = ServeDir::new(dir)
        .append_index_html_on_directories(true)
        .not_found_service(not_found());
    let svc = ServiceBuilder::new()
        .layer(SetResponseHeaderLayer::overriding(
            header::CONTENT_SECURITY_POLICY,
            HeaderValue::from_static(APP_CSP),
        ))
        .layer(SetResponseHeaderLayer::overriding(
            header::CACHE_CONTROL,
            HeaderValue::from_static("no-cache"),
        ))
        .service(files)
        .map_response(|r| r.map(axum::body::Body::new))
        .map_err(|e: Infallible| match e {});
    BoxCloneSyncService::new(svc)
}
