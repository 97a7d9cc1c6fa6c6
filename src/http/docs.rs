//! Swagger UI at `/docs`, over `/openapi.json`. Its files are compiled in (vendored under
//! `assets/swagger-ui`) so the docs work offline and always match the binary that serves them.
//! Plain routes, left out of the OpenAPI document: they are pages for people, not API.

use crate::state::AppState;
use axum::{
    http::header,
    response::{IntoResponse, Redirect},
    routing::get,
    Router,
};

macro_rules! asset {
    ($file:literal) => {
        include_bytes!(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/assets/swagger-ui/",
            $file
        ))
    };
}

/// Replaces the app's `default-src 'none'` on this page alone, with only what Swagger UI uses:
/// its own script and stylesheet, icons drawn as `data:` images, and `fetch` of the document
/// and, with "Try it out", of the API, all on this origin. Its inline styles are set from script
/// (through the CSSOM, which `style-src` does not govern), so no `'unsafe-inline'`. Checked by
/// driving the page in Chromium, operations, models and "Try it out", with no violation.
const PAGE_CSP: &str = "default-src 'none'; script-src 'self'; style-src 'self'; \
     img-src 'self' data:; connect-src 'self'; base-uri 'none'; form-action 'none'; \
     frame-ancestors 'none'";

/// The files change only with the binary; a day bounds how long a browser keeps an old one.
const ASSET_CACHE: &str = "public, max-age=86400";

const JS: &str = "application/javascript; charset=utf-8";

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/docs", get(page))
        .route("/docs/", get(|| async { Redirect::permanent("/docs") }))
        .route(
            "/docs/swagger-ui-bundle.js",
            get(|| file(JS, asset!("swagger-ui-bundle.js"))),
        )
        .route("/docs/init.js", get(|| file(JS, asset!("init.js"))))
        .route(
            "/docs/swagger-ui.css",
            get(|| file("text/css; charset=utf-8", asset!("swagger-ui.css"))),
        )
        .route(
            "/docs/favicon-32x32.png",
            get(|| file("image/png", asset!("favicon-32x32.png"))),
        )
}

async fn page() -> impl IntoResponse {
    (
        [
            (header::CONTENT_TYPE, "text/html; charset=utf-8"),
            (header::CONTENT_SECURITY_POLICY, PAGE_CSP),
        ],
        asset!("index.html").as_slice(),
    )
}

async fn file(content_type: &'static str, body: &'static [u8]) -> impl IntoResponse {
    (
        [
            (header::CONTENT_TYPE, content_type),
            (header::CACHE_CONTROL, ASSET_CACHE),
        ],
        body,
    )
}
