//! Accounts and sessions a fault run starts with, and the server's view of a session.

use serde_json::{json, Value};
use std::time::Duration;

/// A user made through the API.
#[derive(Clone)]
pub struct Account {
    pub token: String,
    pub email: String,
}

pub async fn account(base: &str) -> Account {
    let email = crate::helpers::unique_email();
    let r: Value = reqwest::Client::new()
        .post(format!("{base}/v1/auth/register"))
        .json(&json!({"email": email, "password": crate::helpers::PASSWORD}))
        .send()
        .await
        .expect("register")
        .json()
        .await
        .expect("register answer");
    Account {
        token: r["tokens"]["access_token"]
            .as_str()
            .expect("token")
            .to_owned(),
        email,
    }
}

/// A session of `owner`'s, shared with `editor`.
pub async fn shared_session(base: &str, owner: &Account, editor: &Account) -> String {
    let http = reqwest::Client::new();
    let r: Value = http
        .post(format!("{base}/v1/sessions"))
        .bearer_auth(&owner.token)
        .json(&json!({}))
        .send()
        .await
        .expect("create session")
        .json()
        .await
        .expect("session");
    let id = r["id"].as_str().expect("session id").to_owned();
    let s = http
        .post(format!("{base}/v1/sessions/{id}/members"))
        .bearer_auth(&owner.token)
        .json(&json!({"email": editor.email, "role": "editor"}))
        .send()
        .await
        .expect("share")
        .status();
    assert_eq!(s, 204);
    id
}

/// A session's state as the server has it now.
pub async fn server_snapshot(base: &str, token: &str, session: &str) -> Value {
    let r = reqwest::Client::new()
        .get(format!("{base}/v1/sessions/{session}"))
        .bearer_auth(token)
        .timeout(Duration::from_secs(10))
        .send()
        .await
        .expect("snapshot");
    assert_eq!(r.status(), 200, "snapshot of {session}");
    r.json().await.expect("snapshot JSON")
}
