//! API keys (created, used, listed, revoked) and roles, end to end over HTTP.

use crate::helpers::*;
use reqwest::StatusCode;
use serde_json::{json, Value};

#[tokio::test]
async fn api_keys_work_until_revoked() {
    within(async {
        let app = spawn_app().await;
        let email = unique_email();
        let t = app.register(&email).await;
        let created = app
            .http
            .post(app.url("/v1/api-keys"))
            .bearer_auth(&t.access)
            .json(&json!({"name": "ci script"}))
            .send()
            .await
            .unwrap();
        assert_eq!(created.status(), StatusCode::CREATED);
        let created: Value = created.json().await.unwrap();
        let secret = created["secret"].as_str().unwrap().to_string();
        assert!(secret.starts_with("sk-sy-"));

        let me: Value = app
            .get_auth("/v1/auth/me", &secret)
            .await
            .json()
            .await
            .unwrap();
        assert_eq!(me["email"], email);

        let list: Value = app
            .get_auth("/v1/api-keys", &t.access)
            .await
            .json()
            .await
            .unwrap();
        let k = &list["data"][0];
        assert_eq!(k["name"], "ci script");
        assert_eq!(k["prefix"], &secret[..12]);
        assert!(k["last_used_at"].is_string(), "last use recorded");
        assert!(
            k.get("secret").is_none() && !list.to_string().contains(&secret),
            "secret never listed"
        );

        // Someone else cannot revoke it.
        let other = app.register(&unique_email()).await;
        let id = created["id"].as_str().unwrap();
        let r = app
            .http
            .delete(app.url(&format!("/v1/api-keys/{id}")))
            .bearer_auth(&other.access)
            .send()
            .await
            .unwrap();
        error_of(r, StatusCode::NOT_FOUND).await;
        assert_eq!(
            app.get_auth("/v1/auth/me", &secret).await.status(),
            StatusCode::OK
        );

        let r = app
            .http
            .delete(app.url(&format!("/v1/api-keys/{id}")))
            .bearer_auth(&t.access)
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), StatusCode::NO_CONTENT);
        let e = error_of(
            app.get_auth("/v1/auth/me", &secret).await,
            StatusCode::UNAUTHORIZED,
        )
        .await;
        assert_eq!(e["code"], "invalid_api_key");
    })
    .await
}

#[tokio::test]
async fn admin_route_requires_admin_role() {
    within(async {
        let app = spawn_app().await;
        let user = app.register(&unique_email()).await;
        let e = error_of(
            app.get_auth("/v1/admin/users", &user.access).await,
            StatusCode::FORBIDDEN,
        )
        .await;
        assert_eq!(e["code"], "forbidden");
        let admin = app.admin_token().await;
        let page: Value = app
            .get_auth("/v1/admin/users?limit=1", &admin)
            .await
            .json()
            .await
            .unwrap();
        assert_eq!(page["data"].as_array().unwrap().len(), 1);
        let cursor = page["next_cursor"].as_str().expect("a second page exists");
        let next: Value = app
            .get_auth(&format!("/v1/admin/users?limit=1&after={cursor}"), &admin)
            .await
            .json()
            .await
            .unwrap();
        assert_ne!(next["data"][0]["id"], page["data"][0]["id"]);
        let bad = app.get_auth("/v1/admin/users?limit=1000", &admin).await;
        assert_eq!(
            error_of(bad, StatusCode::BAD_REQUEST).await["param"],
            "limit"
        );
    })
    .await
}
