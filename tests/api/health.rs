//! Liveness, readiness and metrics.

use crate::helpers::*;
use reqwest::StatusCode;
use serde_json::Value;

#[tokio::test]
async fn live_ready_and_metrics() {
    within(async {
        let app = spawn_with(|c| c.server.metrics_token.0 = "metrics-token-1".into()).await;
        assert_eq!(
            app.http
                .get(app.url("/health"))
                .send()
                .await
                .unwrap()
                .status(),
            StatusCode::OK
        );
        let ready = app.http.get(app.url("/health/ready")).send().await.unwrap();
        assert_eq!(ready.status(), StatusCode::OK);
        let body: Value = ready.json().await.unwrap();
        assert_eq!(body["database"], "ok");
        let expected_redis = if redis_url().is_some() {
            "ok"
        } else {
            "not_configured"
        };
        assert_eq!(body["redis"], expected_redis);

        app.login(&unique_email(), "whatever-pass-1").await;
        let text = app
            .http
            .get(app.url("/metrics"))
            .bearer_auth("metrics-token-1")
            .send()
            .await
            .unwrap()
            .text()
            .await
            .unwrap();
        assert!(
            text.contains("http_requests_total"),
            "request counter exported"
        );
        assert!(
            text.contains("route=\"/v1/auth/login\""),
            "keyed by route template"
        );
    })
    .await
}

/// Cuts the connection to PostgreSQL under a running server. Needs `TEST_DATABASE_URL`: an
/// embedded SQLite file cannot be made unreachable from outside the process.
#[tokio::test]
async fn ready_is_503_when_the_database_is_unreachable() {
    let Some(base) = pg_url() else {
        eprintln!("ready_is_503_when_the_database_is_unreachable: needs TEST_DATABASE_URL (PostgreSQL pass)");
        return;
    };
    within(async {
        let db = fresh_pg_database(&base).await;
        let (proxy, url, _) = Proxy::in_front_of(&db, 5432).await;
        let app = spawn_with(|c| {
            c.database.url = Some(url.clone());
            c.database.acquire_timeout_secs = 1;
        })
        .await;
        assert_eq!(
            app.http
                .get(app.url("/health/ready"))
                .send()
                .await
                .unwrap()
                .status(),
            StatusCode::OK
        );
        proxy.cut();
        let r = app.http.get(app.url("/health/ready")).send().await.unwrap();
        assert_eq!(r.status(), StatusCode::SERVICE_UNAVAILABLE);
        let body: Value = r.json().await.unwrap();
        assert_eq!(body["status"], "not_ready");
        assert_eq!(body["database"], "down", "no error text leaves: {body}");
        // Liveness does not depend on the database.
        assert_eq!(
            app.http
                .get(app.url("/health"))
                .send()
                .await
                .unwrap()
                .status(),
            StatusCode::OK
        );
    })
    .await
}

/// Same for Redis, when configured.
#[tokio::test]
async fn ready_is_503_when_redis_is_unreachable() {
    let Some(redis) = redis_url() else {
        eprintln!("ready_is_503_when_redis_is_unreachable: needs TEST_REDIS_URL (Redis pass)");
        return;
    };
    within(async {
        let (proxy, url, _) = Proxy::in_front_of(&redis, 6379).await;
        let app = spawn_with(|c| c.redis.url = Some(url.clone())).await;
        assert_eq!(
            app.http
                .get(app.url("/health/ready"))
                .send()
                .await
                .unwrap()
                .status(),
            StatusCode::OK
        );
        proxy.cut();
        let r = app.http.get(app.url("/health/ready")).send().await.unwrap();
        assert_eq!(r.status(), StatusCode::SERVICE_UNAVAILABLE);
        let body: Value = r.json().await.unwrap();
        assert_eq!(body["redis"], "down", "no error text leaves: {body}");
    })
    .await
}

/// `/health/live` is `/health` under Kubernetes' name; `/v1` says what this is and where to go,
/// and so does `/` when no web client is served there (it is the web client's page otherwise).
#[tokio::test]
async fn live_alias_and_service_info() {
    within(async {
        let app = spawn_app().await;
        let get = |path: &'static str| app.http.get(app.url(path)).send();
        let live: Value = get("/health/live").await.unwrap().json().await.unwrap();
        assert_eq!(live["status"], "ok");
        let r = app
            .http
            .get(app.url("/v1"))
            .header("host", "example.test:8443")
            .send()
            .await
            .unwrap();
        let info: Value = r.json().await.unwrap();
        assert_eq!(info["name"], "switchyard");
        assert_eq!(info["version"], env!("CARGO_PKG_VERSION"));
        assert_eq!(info["websocket_url"], "ws://example.test:8443/v1/ws");
        assert_eq!(info["openapi"], "/openapi.json");
        let page = get("/").await.unwrap();
        assert!(page.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/html"));

        let bare = spawn_with(|c| c.server.web_dir = Default::default()).await;
        let root: Value = bare
            .http
            .get(bare.url("/"))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        assert_eq!(root["websocket"], "/v1/ws");
        // A Host that is not an authority is not echoed.
        let r = bare
            .http
            .get(bare.url("/v1"))
            .header("host", "a b<script>")
            .send()
            .await
            .unwrap();
        let v: Value = r.json().await.unwrap();
        assert!(v["websocket_url"].is_null(), "{v}");
    })
    .await
}
