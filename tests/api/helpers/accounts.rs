//! Sign-in helpers shared by the account suites.

use super::fixtures::Member;
use super::*;
use reqwest::StatusCode;
use serde_json::{json, Value};

pub const NEW_PASSWORD: &str = "quiet-harbour-47";

pub async fn second_sign_in(app: &TestApp, m: &Member) -> Tokens {
    let r = app.login(&m.email, PASSWORD).await;
    assert_eq!(r.status(), StatusCode::OK);
    Tokens::from(&r.json::<Value>().await.unwrap())
}

pub async fn me_status(app: &TestApp, token: &str) -> StatusCode {
    app.get_auth("/v1/auth/me", token).await.status()
}

pub async fn refresh_status(app: &TestApp, refresh: &str) -> StatusCode {
    app.post("/v1/auth/refresh", &json!({"refresh_token": refresh}))
        .await
        .status()
}

pub async fn verify(app: &TestApp, token: &str) -> Value {
    let r = app
        .post("/v1/auth/verify-token", &json!({"token": token}))
        .await;
    let status = r.status();
    let body: Value = r.json().await.unwrap();
    assert_eq!(status, StatusCode::OK, "{token:?}: {body}");
    body
}
