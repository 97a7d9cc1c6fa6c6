//! What an unauthenticated caller or a copied file can read: metrics behind their token or
//! their own listener, readiness that names no secret, stored secrets sealed.

use crate::helpers::fixtures::user;
use crate::helpers::*;
use reqwest::StatusCode;
use serde_json::json;

#[tokio::test]
async fn metrics_readiness_and_stored_secrets_give_nothing_away() {
    within(async {
        let app = spawn_with(|c| c.mcp.allow_private_urls = true).await;
        assert_eq!(
            app.http
                .get(app.url("/metrics"))
                .send()
                .await
                .unwrap()
                .status(),
            StatusCode::NOT_FOUND,
            "no token configured: not served"
        );
        let m = user(&app).await;
        let r = app
            .http
            .post(app.url("/v1/mcp/servers"))
            .bearer_auth(&m.tokens.access)
            .json(
                &json!({"name": "remote", "transport": "http", "url": "http://127.0.0.1:9/mcp",
                          "headers": {"Authorization": "Bearer very-secret-mcp-token"}}),
            )
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 201);
        if app.config.database.url.is_none() {
            let db = app.dir.as_ref().unwrap().path().join("switchyard.db");
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(&db).unwrap().permissions().mode() & 0o777;
            assert_eq!(mode, 0o600, "the database file is the server's alone");
        }
        let servers = app
            .state
            .store
            .list_mcp_servers(m.user_id.parse().unwrap())
            .await
            .unwrap();
        let stored = servers[0].headers["Authorization"].as_str().unwrap();
        assert!(
            stored.starts_with("enc:v1:") && !stored.contains("very-secret"),
            "{stored}"
        );
    })
    .await
}

#[tokio::test]
async fn metrics_need_the_token_or_their_own_listener() {
    within(async {
        let port = {
            std::net::TcpListener::bind("127.0.0.1:0")
                .unwrap()
                .local_addr()
                .unwrap()
                .port()
        };
        let app = spawn_with(|c| {
            c.server.metrics_token.0 = "scrape-me-1".into();
            c.server.metrics_bind = Some(([127, 0, 0, 1], port).into());
        })
        .await;
        assert_eq!(
            app.http
                .get(app.url("/metrics"))
                .send()
                .await
                .unwrap()
                .status(),
            StatusCode::UNAUTHORIZED
        );
        assert_eq!(
            app.http
                .get(app.url("/metrics"))
                .bearer_auth("wrong")
                .send()
                .await
                .unwrap()
                .status(),
            StatusCode::UNAUTHORIZED
        );
        assert_eq!(
            app.http
                .get(app.url("/metrics"))
                .bearer_auth("scrape-me-1")
                .send()
                .await
                .unwrap()
                .status(),
            StatusCode::OK
        );
        let r = app
            .http
            .get(format!("http://127.0.0.1:{port}/metrics"))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), StatusCode::OK);
        assert!(r.text().await.unwrap().contains("http_requests_total"));
    })
    .await
}
