//! Bad input gets a clear error in the one shape and changes nothing; headers every response has.

use crate::helpers::*;
use reqwest::StatusCode;
use serde_json::json;

#[tokio::test]
async fn malformed_missing_wrong_type_and_oversized_bodies() {
    within(async {
        let app = spawn_with(|c| c.server.body_limit_bytes = 4096).await;
        let post_raw = |body: String, ct: Option<&'static str>| {
            let mut rq = app.http.post(app.url("/v1/auth/login")).body(body);
            if let Some(ct) = ct {
                rq = rq.header("content-type", ct);
            }
            rq.send()
        };
        let e = error_of(
            post_raw("{\"email\":".into(), Some("application/json"))
                .await
                .unwrap(),
            StatusCode::BAD_REQUEST,
        )
        .await;
        assert_eq!(e["code"], "malformed_json");
        assert_eq!(e["type"], "invalid_request_error");

        let e = error_of(
            app.post("/v1/auth/login", &json!({"email": "a@b.co"}))
                .await,
            StatusCode::BAD_REQUEST,
        )
        .await;
        assert_eq!(e["param"], "password");
        assert!(e["message"].as_str().unwrap().contains("missing field"));

        let e = error_of(
            app.post("/v1/auth/login", &json!({"email": 42, "password": "x"}))
                .await,
            StatusCode::BAD_REQUEST,
        )
        .await;
        assert_eq!(e["param"], "email");

        let e = error_of(
            post_raw("{}".into(), None).await.unwrap(),
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
        )
        .await;
        assert_eq!(e["code"], "unsupported_media_type");

        let huge = json!({"email": "a@b.co", "password": "x".repeat(10_000)}).to_string();
        let e = error_of(
            post_raw(huge, Some("application/json")).await.unwrap(),
            StatusCode::PAYLOAD_TOO_LARGE,
        )
        .await;
        assert_eq!(e["code"], "payload_too_large");
        assert!(e["message"].as_str().unwrap().contains("4096"));

        let e = error_of(
            app.http.get(app.url("/v1/nope")).send().await.unwrap(),
            StatusCode::NOT_FOUND,
        )
        .await;
        assert_eq!(e["code"], "not_found");
        let e = error_of(
            app.http
                .delete(app.url("/v1/auth/login"))
                .send()
                .await
                .unwrap(),
            StatusCode::METHOD_NOT_ALLOWED,
        )
        .await;
        assert_eq!(e["code"], "method_not_allowed");

        // None of that created anything.
        let admin = app.admin_token().await;
        let users: serde_json::Value = app
            .get_auth("/v1/admin/users", &admin)
            .await
            .json()
            .await
            .unwrap();
        assert_eq!(
            users["data"].as_array().unwrap().len(),
            1,
            "only the admin exists"
        );
    })
    .await
}

#[tokio::test]
async fn request_id_security_headers_and_cors() {
    within(async {
        let app = spawn_app().await;
        let r = app
            .http
            .get(app.url("/health"))
            .header("x-request-id", "trace-me-123")
            .send()
            .await
            .unwrap();
        assert_eq!(
            r.headers()["x-request-id"],
            "trace-me-123",
            "request id taken from the request"
        );
        assert_eq!(r.headers()["x-content-type-options"], "nosniff");
        assert_eq!(r.headers()["x-frame-options"], "DENY");
        assert!(r.headers().contains_key("content-security-policy"));
        let r = app.http.get(app.url("/health")).send().await.unwrap();
        assert!(
            !r.headers()["x-request-id"].is_empty(),
            "request id generated when absent"
        );

        let preflight = |origin: &'static str| {
            app.http
                .request(reqwest::Method::OPTIONS, app.url("/v1/auth/login"))
                .header("origin", origin)
                .header("access-control-request-method", "POST")
                .send()
        };
        let ok = preflight("capacitor://localhost").await.unwrap();
        assert_eq!(
            ok.headers()["access-control-allow-origin"],
            "capacitor://localhost"
        );
        let evil = preflight("https://evil.example").await.unwrap();
        assert!(!evil.headers().contains_key("access-control-allow-origin"));
    })
    .await
}
