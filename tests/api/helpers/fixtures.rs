//! Users, sessions and shares made through the real API, the store suites' stores, and the
//! sync requests tests send over REST.

use super::*;
use serde_json::{json, Value};
use std::{sync::Arc, time::Duration};
use switchyard::store::{self, Store};

/// A user, their token, and a session they own.
pub struct Member {
    pub tokens: Tokens,
    pub user_id: String,
    pub email: String,
}

pub async fn user(app: &TestApp) -> Member {
    let email = unique_email();
    let tokens = app.register(&email).await;
    let me: Value = app
        .get_auth("/v1/auth/me", &tokens.access)
        .await
        .json()
        .await
        .unwrap();
    Member {
        tokens,
        user_id: me["id"].as_str().unwrap().to_string(),
        email,
    }
}

/// A fresh untitled session (version 0: a title given at creation is its first change).
pub async fn session(app: &TestApp, owner: &Member) -> String {
    let r = app
        .http
        .post(app.url("/v1/sessions"))
        .bearer_auth(&owner.tokens.access)
        .json(&json!({}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 201);
    format!(
        "session:{}",
        r.json::<Value>().await.unwrap()["id"].as_str().unwrap()
    )
}

pub async fn share(app: &TestApp, owner: &Member, channel: &str, with: &Member, role: &str) {
    let id = channel.strip_prefix("session:").unwrap();
    let r = app
        .http
        .post(app.url(&format!("/v1/sessions/{id}/members")))
        .bearer_auth(&owner.tokens.access)
        .json(&json!({"email": with.email, "role": role}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 204);
}

pub fn now_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis() as u64
}

pub fn id_of(ch: &str) -> &str {
    ch.strip_prefix("session:").unwrap()
}

pub async fn push(app: &TestApp, who: &Member, ch: &str, mutations: Value) -> (u16, Value) {
    let r = app
        .http
        .post(app.url(&format!("/v1/sessions/{}/mutations", id_of(ch))))
        .bearer_auth(&who.tokens.access)
        .json(&json!({ "mutations": mutations }))
        .send()
        .await
        .unwrap();
    (r.status().as_u16(), r.json().await.unwrap())
}

pub async fn snapshot(app: &TestApp, who: &Member, ch: &str) -> Value {
    app.get_auth(&format!("/v1/sessions/{}", id_of(ch)), &who.tokens.access)
        .await
        .json()
        .await
        .unwrap()
}

pub fn tag(client: &str, id: u64, ms: u64, t: &str) -> Value {
    json!({"client_id": client, "mutation_id": id, "hlc": format!("{ms}:0"), "ops": [{"op": "add_tag", "tag": t}]})
}

pub fn append(client: &str, id: u64, ms: u64, msg: &str, content: &str) -> Value {
    json!({"client_id": client, "mutation_id": id, "hlc": format!("{ms}:0"),
           "ops": [{"op": "append_message", "message_id": msg, "role": "user", "content": content}]})
}

pub async fn stores() -> Vec<(tempfile::TempDir, Arc<dyn Store>)> {
    let mut out = Vec::new();
    let dir = tempfile::tempdir().unwrap();
    let s = store::connect(None, dir.path(), 5, Duration::from_secs(5))
        .await
        .unwrap();
    out.push((dir, s));
    if let Some(base) = pg_url() {
        let url = fresh_pg_database(&base).await;
        let dir = tempfile::tempdir().unwrap();
        out.push((
            dir,
            store::connect(
                Some(&url),
                std::path::Path::new("."),
                5,
                Duration::from_secs(5),
            )
            .await
            .unwrap(),
        ));
    }
    out
}

/// A new API key of the caller: its id and secret.
pub async fn api_key(app: &TestApp, token: &str) -> (String, String) {
    let r = app
        .http
        .post(app.url("/v1/api-keys"))
        .bearer_auth(token)
        .json(&json!({"name": "ci"}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::CREATED);
    let v: Value = r.json().await.unwrap();
    (
        v["id"].as_str().unwrap().to_owned(),
        v["secret"].as_str().unwrap().to_owned(),
    )
}
