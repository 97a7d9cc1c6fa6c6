//! `/docs`: Swagger UI over `/openapi.json`, served by the server itself, with a page policy
//! that lets it run while every other route keeps `default-src 'none'`.

use crate::helpers::*;
use reqwest::{header, StatusCode};

fn header_of(r: &reqwest::Response, name: header::HeaderName) -> String {
    r.headers()
        .get(&name)
        .unwrap_or_else(|| panic!("{name} is set"))
        .to_str()
        .unwrap()
        .to_string()
}

#[tokio::test]
async fn docs_page_and_its_assets_are_served_locally() {
    within(async {
        let app = spawn_app().await;

        let page = app.http.get(app.url("/docs")).send().await.unwrap();
        assert_eq!(page.status(), StatusCode::OK);
        assert!(header_of(&page, header::CONTENT_TYPE).starts_with("text/html"));
        let csp = header_of(&page, header::CONTENT_SECURITY_POLICY);
        assert!(csp.contains("script-src 'self'"), "page CSP: {csp}");
        assert!(!csp.contains("'unsafe-"), "page CSP: {csp}");
        assert!(csp.contains("frame-ancestors 'none'"), "page CSP: {csp}");
        let html = page.text().await.unwrap();
        for asset in [
            "/docs/swagger-ui-bundle.js",
            "/docs/swagger-ui.css",
            "/docs/init.js",
        ] {
            assert!(html.contains(asset), "the page loads {asset}");
        }
        assert!(!html.contains("https://"), "nothing from elsewhere");

        let bundle = app
            .http
            .get(app.url("/docs/swagger-ui-bundle.js"))
            .send()
            .await
            .unwrap();
        assert_eq!(bundle.status(), StatusCode::OK);
        assert!(header_of(&bundle, header::CONTENT_TYPE).starts_with("application/javascript"));
        assert!(header_of(&bundle, header::CACHE_CONTROL).contains("max-age="));
        assert!(bundle.bytes().await.unwrap().len() > 100 * 1024);

        let init = app.http.get(app.url("/docs/init.js")).send().await.unwrap();
        assert_eq!(init.status(), StatusCode::OK);
        assert!(header_of(&init, header::CONTENT_TYPE).starts_with("application/javascript"));
        assert!(init.text().await.unwrap().contains("/openapi.json"));

        let css = app
            .http
            .get(app.url("/docs/swagger-ui.css"))
            .send()
            .await
            .unwrap();
        assert_eq!(css.status(), StatusCode::OK);
        assert!(header_of(&css, header::CONTENT_TYPE).starts_with("text/css"));

        let slash = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .unwrap()
            .get(app.url("/docs/"))
            .send()
            .await
            .unwrap();
        assert!(slash.status().is_redirection());
        assert_eq!(header_of(&slash, header::LOCATION), "/docs");
    })
    .await
}

#[tokio::test]
async fn other_routes_keep_the_strict_policy() {
    within(async {
        let app = spawn_app().await;
        for path in ["/health", "/openapi.json"] {
            let r = app.http.get(app.url(path)).send().await.unwrap();
            assert_eq!(r.status(), StatusCode::OK, "{path}");
            let csp = header_of(&r, header::CONTENT_SECURITY_POLICY);
            assert!(csp.starts_with("default-src 'none'"), "{path}: {csp}");
            assert!(!csp.contains("script-src"), "{path}: {csp}");
        }
        let doc: serde_json::Value = app
            .http
            .get(app.url("/openapi.json"))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        assert!(
            (doc["paths"].as_object().unwrap().keys()).all(|p| !p.starts_with("/docs")),
            "the docs pages are not API"
        );
    })
    .await
}
