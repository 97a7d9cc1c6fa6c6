//! TOTP as a second factor: enroll, confirm (recovery codes), sign in with a code or a recovery
//! code (each once), the lock counting wrong codes, disabling, and roles that require one.

use crate::helpers::*;
use reqwest::{Method, StatusCode};
use serde_json::{json, Value};
use switchyard::auth::totp;

/// RFC 4648 base32 (what the enrollment answers) back to bytes.
fn unbase32(s: &str) -> Vec<u8> {
    let (mut out, mut buf, mut bits) = (Vec::new(), 0u32, 0);
    for c in s.bytes() {
        let v = match c {
            b'A'..=b'Z' => c - b'A',
            b'2'..=b'7' => c - b'2' + 26,
            _ => panic!("not base32: {s}"),
        };
        buf = (buf << 5) | u32::from(v);
        bits += 5;
        if bits >= 8 {
            bits -= 8;
            out.push((buf >> bits) as u8);
        }
    }
    out
}

fn now_step() -> u64 {
    chrono::Utc::now().timestamp() as u64 / totp::STEP_SECS
}

/// The code of `secret` for time step `step`, six digits as an app shows it.
fn code_at(secret: &[u8], step: u64) -> String {
    format!("{:06}", totp::code(secret, step))
}

/// The code `ahead` steps from now.
fn code(secret: &[u8], ahead: u64) -> String {
    code_at(secret, now_step() + ahead)
}

async fn login(app: &TestApp, email: &str, extra: Value) -> reqwest::Response {
    let mut body = json!({"email": email, "password": PASSWORD});
    body.as_object_mut()
        .unwrap()
        .extend(extra.as_object().unwrap().clone());
    app.post("/v1/auth/login", &body).await
}

/// Enrolls and confirms a factor for the token's account: its secret and recovery codes.
async fn turn_on(app: &TestApp, token: &str) -> (Vec<u8>, Vec<String>) {
    let r = app
        .call(
            Method::POST,
            "/v1/auth/totp",
            token,
            Some(&json!({"password": PASSWORD})),
        )
        .await;
    assert_eq!(r.status(), StatusCode::CREATED);
    let e: Value = r.json().await.unwrap();
    let secret = unbase32(e["secret"].as_str().unwrap());
    assert!(
        e["otpauth_uri"]
            .as_str()
            .unwrap()
            .starts_with("otpauth://totp/switchyard:"),
        "{e}"
    );
    let r = app
        .call(
            Method::POST,
            "/v1/auth/totp/confirm",
            token,
            Some(&json!({"code": code(&secret, 0)})),
        )
        .await;
    assert_eq!(r.status(), StatusCode::OK);
    let codes: Vec<String> = r.json::<Value>().await.unwrap()["recovery_codes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c.as_str().unwrap().to_owned())
        .collect();
    (secret, codes)
}

#[tokio::test]
async fn sign_in_takes_a_code_or_a_recovery_code_once_after_confirmation() {
    within(async {
        let app = spawn_app().await;
        let email = unique_email();
        let t = app.register(&email).await.access;
        assert_eq!(app.get_json("/v1/auth/totp", &t).await, json!({"enabled": false}));
        let wrong = app.call(Method::POST, "/v1/auth/totp", &t, Some(&json!({"password": "not-the-password-1"}))).await;
        error_of(wrong, StatusCode::BAD_REQUEST).await;
        // Enrolled but not confirmed: sign-in is unchanged; a wrong first code confirms nothing.
        let r = app.call(Method::POST, "/v1/auth/totp", &t, Some(&json!({"password": PASSWORD}))).await;
        let secret = unbase32(r.json::<Value>().await.unwrap()["secret"].as_str().unwrap());
        assert_eq!(login(&app, &email, json!({})).await.status(), StatusCode::OK);
        let bad = app.call(Method::POST, "/v1/auth/totp/confirm", &t, Some(&json!({"code": "000000x"}))).await;
        assert_eq!(error_of(bad, StatusCode::BAD_REQUEST).await["param"], "code");
        // Steps fixed here, so a 30 s boundary passing mid-test changes nothing.
        let step = now_step();
        let r = app.call(Method::POST, "/v1/auth/totp/confirm", &t, Some(&json!({"code": code_at(&secret, step)}))).await;
        assert_eq!(r.status(), StatusCode::OK);
        let codes = r.json::<Value>().await.unwrap()["recovery_codes"].clone();
        assert_eq!(codes.as_array().unwrap().len(), 10);
        assert_eq!(app.get_json("/v1/auth/totp", &t).await, json!({"enabled": true}));
        let again = app.call(Method::POST, "/v1/auth/totp", &t, Some(&json!({"password": PASSWORD}))).await;
        error_of(again, StatusCode::CONFLICT).await;

        // The password alone is not enough now; the code that confirmed is spent.
        let e = error_of(login(&app, &email, json!({})).await, StatusCode::UNAUTHORIZED).await;
        assert_eq!(e["code"], "mfa_required");
        let e = error_of(login(&app, &email, json!({"totp_code": code_at(&secret, step)})).await, StatusCode::UNAUTHORIZED).await;
        assert_eq!(e["code"], "invalid_mfa_code", "a code works once");
        let next = code_at(&secret, step + 1);
        assert_eq!(login(&app, &email, json!({"totp_code": next})).await.status(), StatusCode::OK);
        let e = error_of(login(&app, &email, json!({"totp_code": next})).await, StatusCode::UNAUTHORIZED).await;
        assert_eq!(e["code"], "invalid_mfa_code");
        // A wrong password with a right code is still a wrong password.
        let r = app.post("/v1/auth/login", &json!({"email": email, "password": "not-the-password-1", "totp_code": code(&secret, 1)})).await;
        assert_eq!(error_of(r, StatusCode::UNAUTHORIZED).await["code"], "invalid_credentials");
        // A recovery code, typed loosely, once.
        let rc = codes[0].as_str().unwrap().to_ascii_uppercase().replace('-', " ");
        assert_eq!(login(&app, &email, json!({"recovery_code": rc})).await.status(), StatusCode::OK);
        let e = error_of(login(&app, &email, json!({"recovery_code": rc})).await, StatusCode::UNAUTHORIZED).await;
        assert_eq!(e["code"], "invalid_mfa_code");

        // Off again with the password (not with an API key): the password alone signs in.
        let (_, key) = crate::helpers::fixtures::api_key(&app, &t).await;
        let r = app.call(Method::DELETE, "/v1/auth/totp", &key, Some(&json!({"password": PASSWORD}))).await;
        error_of(r, StatusCode::FORBIDDEN).await;
        let r = app.call(Method::DELETE, "/v1/auth/totp", &t, Some(&json!({"password": PASSWORD}))).await;
        assert_eq!(r.status(), StatusCode::NO_CONTENT);
        assert_eq!(login(&app, &email, json!({})).await.status(), StatusCode::OK);
        let audit = app.get_json("/v1/admin/audit?limit=100", &app.admin_token().await).await;
        let events: Vec<&str> = audit["data"].as_array().unwrap().iter().filter_map(|e| e["event"].as_str()).collect();
        for want in ["totp_enabled", "recovery_code_used", "totp_disabled"] {
            assert!(events.contains(&want), "{want} audited: {events:?}");
        }
    })
    .await
}

#[tokio::test]
async fn wrong_codes_lock_the_account_like_wrong_passwords() {
    within(async {
        let app = spawn_with(|c| c.auth.lockout_threshold = 3).await;
        let email = unique_email();
        let t = app.register(&email).await.access;
        let (secret, _) = turn_on(&app, &t).await;
        for _ in 0..2 {
            let e = error_of(
                login(&app, &email, json!({"totp_code": "123456"})).await,
                StatusCode::UNAUTHORIZED,
            )
            .await;
            assert_eq!(e["code"], "invalid_mfa_code");
        }
        let r = login(&app, &email, json!({"totp_code": "654321"})).await;
        assert_eq!(
            error_of(r, StatusCode::LOCKED).await["code"],
            "account_locked"
        );
        // Locked: even the right code waits.
        let r = login(&app, &email, json!({"totp_code": code(&secret, 1)})).await;
        error_of(r, StatusCode::LOCKED).await;
    })
    .await
}

#[tokio::test]
async fn a_role_that_requires_a_second_factor_is_refused_its_routes_without_one() {
    within(async {
        let app = spawn_with(|c| c.auth.second_factor_roles = vec!["admin".into()]).await;
        let admin = app.admin_token().await;
        let e = error_of(
            app.get_auth("/v1/admin/users", &admin).await,
            StatusCode::FORBIDDEN,
        )
        .await;
        assert!(
            e["message"]
                .as_str()
                .unwrap()
                .contains("POST /v1/auth/totp"),
            "{e}"
        );
        turn_on(&app, &admin).await;
        assert_eq!(
            app.get_auth("/v1/admin/users", &admin).await.status(),
            StatusCode::OK
        );
        // Ordinary routes never needed one.
        let user = app.register(&unique_email()).await.access;
        assert_eq!(
            app.get_auth("/v1/sessions", &user).await.status(),
            StatusCode::OK
        );
    })
    .await
}
