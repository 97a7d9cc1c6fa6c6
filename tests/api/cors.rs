//! CORS as a browser meets it: `*` works (it used to panic at start), the headers an official
//! SDK asks for in a preflight are allowed, and credentials are never allowed.

use crate::helpers::fixtures::user;
use crate::helpers::ws::*;
use crate::helpers::*;

async fn preflight(app: &TestApp, origin: &str, headers: &str) -> reqwest::Response {
    app.http
        .request(reqwest::Method::OPTIONS, app.url("/v1/chat/completions"))
        .header("origin", origin)
        .header("access-control-request-method", "POST")
        .header("access-control-request-headers", headers)
        .send()
        .await
        .unwrap()
}

#[tokio::test]
async fn a_wildcard_origin_list_serves_every_origin_without_credentials() {
    within(async {
        let app = spawn_with(|c| c.server.cors_origins = vec!["*".into()]).await;
        let r = preflight(
            &app,
            "https://anywhere.example",
            "authorization,content-type",
        )
        .await;
        let h = r.headers();
        assert_eq!(h["access-control-allow-origin"], "*");
        assert!(!h.contains_key("access-control-allow-credentials"));
        let m = user(&app).await;
        assert!(
            connect(
                &app.base,
                Some(&m.tokens.access),
                Some("https://anywhere.example")
            )
            .await
            .is_ok(),
            "the socket takes any origin too"
        );
    })
    .await
}

#[tokio::test]
async fn the_headers_the_openai_sdk_sends_pass_a_preflight_from_an_allowed_origin_only() {
    within(async {
        let app = spawn_with(|c| c.server.cors_origins = vec!["https://app.example".into()]).await;
        let asked = "authorization,content-type,x-stainless-os,x-stainless-lang,\
                     x-stainless-package-version,x-stainless-retry-count,x-stainless-timeout";
        let r = preflight(&app, "https://app.example", asked).await;
        let h = r.headers();
        assert_eq!(h["access-control-allow-origin"], "https://app.example");
        let allowed = h["access-control-allow-headers"]
            .to_str()
            .unwrap()
            .to_lowercase();
        for name in asked.split(',') {
            assert!(allowed.contains(name), "{name} not in {allowed}");
        }
        // The answer itself lets the page read the rate-limit headers.
        let r = app
            .http
            .get(app.url("/health"))
            .header("origin", "https://app.example")
            .send()
            .await
            .unwrap();
        let exposed = r.headers()["access-control-expose-headers"]
            .to_str()
            .unwrap()
            .to_lowercase();
        assert!(
            exposed.contains("x-ratelimit-remaining-requests"),
            "{exposed}"
        );
        let r = preflight(&app, "https://evil.example", asked).await;
        assert!(!r.headers().contains_key("access-control-allow-origin"));
    })
    .await
}
