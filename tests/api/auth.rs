//! Accounts, tokens, lockout, API keys and roles, end to end over HTTP.

use crate::helpers::*;
use reqwest::StatusCode;
use serde_json::{json, Value};
use switchyard::{
    auth::jwt::{Claims, KeySet},
    domain::{Role, UserId},
};

#[tokio::test]
async fn register_login_me() {
    within(async {
        let app = spawn_app().await;
        let email = unique_email();
        let reg = app
            .post(
                "/v1/auth/register",
                &json!({"email": email.to_uppercase(), "password": PASSWORD}),
            )
            .await;
        assert_eq!(reg.status(), StatusCode::CREATED);
        let body: Value = reg.json().await.unwrap();
        assert_eq!(
            body["user"]["email"], email,
            "email is normalized to lower case"
        );
        assert_eq!(body["user"]["role"], "user");
        assert_eq!(body["tokens"]["token_type"], "Bearer");
        assert_eq!(body["tokens"]["expires_in"], 900);

        let login = app.login(&email, PASSWORD).await;
        assert_eq!(login.status(), StatusCode::OK);
        let tokens = Tokens::from(&login.json::<Value>().await.unwrap());
        let me: Value = app
            .get_auth("/v1/auth/me", &tokens.access)
            .await
            .json()
            .await
            .unwrap();
        assert_eq!(me["email"], email);
        assert_eq!(me["id"], body["user"]["id"]);

        // Access tokens carry kid/iss/aud and verify against the published JWKS.
        let jwks: Value = app
            .http
            .get(app.url("/.well-known/jwks.json"))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        let header = jsonwebtoken::decode_header(&tokens.access).unwrap();
        assert_eq!(header.alg, jsonwebtoken::Algorithm::EdDSA);
        let jwk = jwks["keys"]
            .as_array()
            .unwrap()
            .iter()
            .find(|k| k["kid"] == header.kid.clone().unwrap().as_str())
            .expect("kid published");
        let key =
            jsonwebtoken::DecodingKey::from_ed_components(jwk["x"].as_str().unwrap()).unwrap();
        let mut v = jsonwebtoken::Validation::new(jsonwebtoken::Algorithm::EdDSA);
        v.set_audience(&["switchyard"]);
        v.set_issuer(&["switchyard"]);
        let claims = jsonwebtoken::decode::<Value>(&tokens.access, &key, &v)
            .expect("verifies with JWKS")
            .claims;
        assert_eq!(claims["sub"], body["user"]["id"]);
    })
    .await
}

#[tokio::test]
async fn registration_refusals() {
    within(async {
        let app = spawn_app().await;
        let email = unique_email();
        let weak = app
            .post(
                "/v1/auth/register",
                &json!({"email": email, "password": "short"}),
            )
            .await;
        let e = error_of(weak, StatusCode::BAD_REQUEST).await;
        assert_eq!(e["param"], "password");
        assert!(e["message"].as_str().unwrap().contains("at least 10"));
        let common = app
            .post(
                "/v1/auth/register",
                &json!({"email": email, "password": "password1234"}),
            )
            .await;
        assert!(error_of(common, StatusCode::BAD_REQUEST).await["message"]
            .as_str()
            .unwrap()
            .contains("common"));
        let bad_email = app
            .post(
                "/v1/auth/register",
                &json!({"email": "not-an-email", "password": PASSWORD}),
            )
            .await;
        assert_eq!(
            error_of(bad_email, StatusCode::BAD_REQUEST).await["param"],
            "email"
        );

        app.register(&email).await;
        let dup = app
            .post(
                "/v1/auth/register",
                &json!({"email": email, "password": PASSWORD}),
            )
            .await;
        assert_eq!(
            error_of(dup, StatusCode::CONFLICT).await["code"],
            "conflict"
        );
    })
    .await
}

#[tokio::test]
async fn unknown_email_and_wrong_password_answer_alike() {
    within(async {
        let app = spawn_app().await;
        let email = unique_email();
        app.register(&email).await;
        let wrong = error_of(
            app.login(&email, "wrong-password-1").await,
            StatusCode::UNAUTHORIZED,
        )
        .await;
        let unknown = error_of(
            app.login(&unique_email(), "wrong-password-1").await,
            StatusCode::UNAUTHORIZED,
        )
        .await;
        assert_eq!(wrong["message"], unknown["message"]);
        assert_eq!(wrong["code"], unknown["code"]);
        assert_eq!(wrong["code"], "invalid_credentials");
    })
    .await
}

#[tokio::test]
async fn lockout_after_failed_logins() {
    within(async {
        let app = spawn_with(|c| {
            c.auth.lockout_threshold = 5;
            c.auth.lockout_secs = 900;
        })
        .await;
        let email = unique_email();
        app.register(&email).await;
        // A success in between resets the count.
        for _ in 0..4 {
            assert_eq!(
                app.login(&email, "wrong-password-1").await.status(),
                StatusCode::UNAUTHORIZED
            );
        }
        assert_eq!(app.login(&email, PASSWORD).await.status(), StatusCode::OK);
        for _ in 0..4 {
            assert_eq!(
                app.login(&email, "wrong-password-1").await.status(),
                StatusCode::UNAUTHORIZED
            );
        }
        let fifth = app.login(&email, "wrong-password-1").await;
        let retry_after: u64 = fifth.headers()["retry-after"]
            .to_str()
            .unwrap()
            .parse()
            .unwrap();
        assert!(
            (890..=900).contains(&retry_after),
            "retry-after {retry_after}"
        );
        let e = error_of(fifth, StatusCode::LOCKED).await;
        assert_eq!(e["code"], "account_locked");
        assert!(e["message"].as_str().unwrap().contains("try again after"));
        // Even the right password is refused while locked.
        let e = error_of(app.login(&email, PASSWORD).await, StatusCode::LOCKED).await;
        assert_eq!(e["code"], "account_locked");

        let admin = app.admin_token().await;
        let audit: Value = app
            .get_auth("/v1/admin/audit?limit=100", &admin)
            .await
            .json()
            .await
            .unwrap();
        let events: Vec<&str> = audit["data"]
            .as_array()
            .unwrap()
            .iter()
            .map(|e| e["event"].as_str().unwrap())
            .collect();
        for wanted in [
            "register",
            "login",
            "login_failed",
            "account_locked",
            "login_refused_locked",
        ] {
            assert!(events.contains(&wanted), "audit has {wanted}: {events:?}");
        }
    })
    .await
}

#[tokio::test]
async fn lock_expires() {
    within(async {
        let app = spawn_with(|c| {
            c.auth.lockout_threshold = 2;
            c.auth.lockout_secs = 1;
        })
        .await;
        let email = unique_email();
        app.register(&email).await;
        app.login(&email, "wrong-password-1").await;
        assert_eq!(
            app.login(&email, "wrong-password-1").await.status(),
            StatusCode::LOCKED
        );
        tokio::time::sleep(std::time::Duration::from_millis(1200)).await;
        assert_eq!(app.login(&email, PASSWORD).await.status(), StatusCode::OK);
    })
    .await
}

#[tokio::test]
async fn refresh_rotates_and_reuse_revokes_the_family() {
    within(async {
        // Reuse detection itself: no grace window (its own test covers the window).
        let app = spawn_with(|c| c.auth.refresh_reuse_grace_secs = 0).await;
        let first = app.register(&unique_email()).await;
        let r = app
            .post("/v1/auth/refresh", &json!({"refresh_token": first.refresh}))
            .await;
        assert_eq!(r.status(), StatusCode::OK);
        let second = Tokens::from(&r.json::<Value>().await.unwrap());
        assert_ne!(second.refresh, first.refresh);
        assert_eq!(
            app.get_auth("/v1/auth/me", &second.access).await.status(),
            StatusCode::OK
        );

        // The old token replayed: refused, and the whole family dies with it.
        let replay = app
            .post("/v1/auth/refresh", &json!({"refresh_token": first.refresh}))
            .await;
        assert!(error_of(replay, StatusCode::UNAUTHORIZED).await["message"]
            .as_str()
            .unwrap()
            .contains("already used"));
        let after = app
            .post(
                "/v1/auth/refresh",
                &json!({"refresh_token": second.refresh}),
            )
            .await;
        assert!(error_of(after, StatusCode::UNAUTHORIZED).await["message"]
            .as_str()
            .unwrap()
            .contains("revoked"));
    })
    .await
}

#[tokio::test]
async fn logout_revokes_the_family() {
    within(async {
        let app = spawn_app().await;
        let t = app.register(&unique_email()).await;
        let out = app
            .post("/v1/auth/logout", &json!({"refresh_token": t.refresh}))
            .await;
        assert_eq!(out.status(), StatusCode::NO_CONTENT);
        let r = app
            .post("/v1/auth/refresh", &json!({"refresh_token": t.refresh}))
            .await;
        assert_eq!(
            error_of(r, StatusCode::UNAUTHORIZED).await["code"],
            "invalid_token"
        );
        let unknown = app
            .post("/v1/auth/refresh", &json!({"refresh_token": "syr_nope"}))
            .await;
        assert_eq!(
            error_of(unknown, StatusCode::UNAUTHORIZED).await["code"],
            "invalid_token"
        );
    })
    .await
}

#[tokio::test]
async fn bad_access_tokens_are_refused() {
    within(async {
        let app = spawn_app().await;
        let dir = app.dir.as_ref().unwrap().path();
        let own = KeySet::load(&[], dir, "switchyard", "switchyard", 0).expect("server key");
        let foreign = KeySet::from_der(
            &[switchyard::auth::jwt::generate_der().unwrap()],
            "switchyard",
            "switchyard",
            0,
        )
        .unwrap();
        let now = chrono::Utc::now().timestamp();
        let claims = |aud: &str, exp: i64| Claims {
            sub: UserId::new(),
            iss: "switchyard".into(),
            aud: aud.into(),
            exp,
            iat: now - 10,
            role: Role::Admin,
            sid: None,
        };

        let good = own.sign(&claims("switchyard", now + 300));
        assert_eq!(
            app.get_auth("/v1/admin/users", &good).await.status(),
            StatusCode::OK,
            "control: a good token works"
        );
        let cases = [
            (own.sign(&claims("switchyard", now - 3600)), "expired"),
            (
                foreign.sign(&claims("switchyard", now + 300)),
                "signing key",
            ),
            (own.sign(&claims("someone-else", now + 300)), "audience"),
            ("not.a.jwt".to_string(), "malformed"),
        ];
        for (token, why) in cases {
            let e = error_of(
                app.get_auth("/v1/admin/users", &token).await,
                StatusCode::UNAUTHORIZED,
            )
            .await;
            assert_eq!(e["code"], "invalid_token");
            assert!(e["message"].as_str().unwrap().contains(why), "{why}: {e}");
        }
        let none = app.http.get(app.url("/v1/auth/me")).send().await.unwrap();
        assert_eq!(none.headers()["www-authenticate"], "Bearer");
        assert_eq!(
            error_of(none, StatusCode::UNAUTHORIZED).await["code"],
            "missing_authorization"
        );
    })
    .await
}
