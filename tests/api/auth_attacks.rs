//! Accounts against an attacker: spoofed forwarding headers, racing a lock with the right
//! password, API keys that outlive their revocation or mint their successors, credential
//! swaps in `auth.refresh`, and finding out who has an account.

use crate::helpers::fixtures::{api_key, session, user};
use crate::helpers::ws::*;
use crate::helpers::*;
use reqwest::StatusCode;
use serde_json::{json, Value};

#[tokio::test]
async fn a_spoofed_forwarded_for_does_not_escape_the_login_limit() {
    within(async {
        let app = spawn_with(|c| {
            c.ratelimit.auth_requests = 10;
            c.server.trusted_proxies = 1;
        })
        .await;
        let mut statuses = Vec::new();
        for i in 0..40 {
            // The client writes whatever it likes on the left; our one proxy appends the
            // address it saw on the right.
            let r = app
                .http
                .post(app.url("/v1/auth/login"))
                .header(
                    "x-forwarded-for",
                    format!("10.{i}.{i}.{i}, 198.51.100.{}", i % 7),
                )
                .header("x-forwarded-for", "203.0.113.9")
                .json(&json!({"email": unique_email(), "password": "whatever-pass-1"}))
                .send()
                .await
                .unwrap();
            statuses.push(r.status().as_u16());
        }
        assert_eq!(
            statuses.iter().filter(|s| **s == 401).count(),
            10,
            "{statuses:?}"
        );
        assert_eq!(
            statuses.iter().filter(|s| **s == 429).count(),
            30,
            "{statuses:?}"
        );
        // Another real client (another address appended by the proxy) has its own budget.
        let r = app
            .http
            .post(app.url("/v1/auth/login"))
            .header("x-forwarded-for", "203.0.113.10")
            .json(&json!({"email": unique_email(), "password": "whatever-pass-1"}))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), StatusCode::UNAUTHORIZED);
    })
    .await
}

#[tokio::test]
async fn the_right_password_racing_failures_cannot_unlock_the_account() {
    within(async {
        let app = spawn_with(|c| {
            // Slow enough hashing, one at a time: the right password waits behind the
            // wrong ones, which lock the account while it waits.
            c.auth.argon2_memory_kib = 19_456;
            c.auth.argon2_iterations = 2;
            c.auth.hash_concurrency = 1;
        })
        .await;
        let email = unique_email();
        app.register(&email).await;
        let mut wrong = Vec::new();
        for _ in 0..24 {
            let (http, url, email) = (app.http.clone(), app.url("/v1/auth/login"), email.clone());
            wrong.push(tokio::spawn(async move {
                http.post(url)
                    .json(&json!({"email": email, "password": "wrong-password-1"}))
                    .send()
                    .await
                    .unwrap()
                    .status()
                    .as_u16()
            }));
        }
        tokio::time::sleep(std::time::Duration::from_millis(30)).await;
        let right = app.login(&email, PASSWORD).await.status().as_u16();
        let mut wrong_statuses = Vec::new();
        for w in wrong {
            wrong_statuses.push(w.await.unwrap());
        }
        assert_eq!(
            right, 423,
            "a locked account refuses even the right password; wrong ones: {wrong_statuses:?}"
        );
        assert!(
            wrong_statuses.iter().all(|s| *s == 401 || *s == 423),
            "{wrong_statuses:?}"
        );
        assert_eq!(
            app.login(&email, PASSWORD).await.status(),
            StatusCode::LOCKED,
            "still locked"
        );
    })
    .await
}

#[tokio::test]
async fn an_api_key_cannot_mint_list_or_revoke_keys() {
    within(async {
        let app = spawn_app().await;
        let m = user(&app).await;
        let (id, secret) = api_key(&app, &m.tokens.access).await;
        let r = app
            .http
            .post(app.url("/v1/api-keys"))
            .bearer_auth(&secret)
            .json(&json!({"name": "successor"}))
            .send()
            .await
            .unwrap();
        assert_eq!(
            error_of(r, StatusCode::FORBIDDEN).await["code"],
            "forbidden"
        );
        let r = app
            .http
            .get(app.url("/v1/api-keys"))
            .bearer_auth(&secret)
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), StatusCode::FORBIDDEN);
        let r = app
            .http
            .delete(app.url(&format!("/v1/api-keys/{id}")))
            .bearer_auth(&secret)
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), StatusCode::FORBIDDEN);
        // The key itself still works where keys belong.
        assert_eq!(
            app.get_auth("/v1/models", &secret).await.status(),
            StatusCode::OK
        );
    })
    .await
}

#[tokio::test]
async fn a_socket_opened_with_a_revoked_api_key_is_closed_on_every_instance() {
    within(async {
        let cluster = Cluster::new().await;
        let a = cluster.spawn(|_| {}).await;
        let b = if cluster.redis_url.is_some() {
            Some(cluster.spawn(|_| {}).await)
        } else {
            None
        };
        let m = user(&a).await;
        let (id, secret) = api_key(&a, &m.tokens.access).await;
        let mut here = connect_authed(&a.base, &secret).await;
        let mut there = match &b {
            Some(b) => Some(connect_authed(&b.base, &secret).await),
            None => None,
        };
        let mut jwt = connect_authed(&a.base, &m.tokens.access).await;
        let r = a
            .http
            .delete(a.url(&format!("/v1/api-keys/{id}")))
            .bearer_auth(&m.tokens.access)
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), StatusCode::NO_CONTENT);
        let (how, seen) = here.closed().await;
        assert_eq!(code_of(&how), 4001, "{how:?}");
        assert!(
            seen.iter().any(|f| f["code"] == "invalid_api_key"),
            "{seen:?}"
        );
        if let Some(there) = there.as_mut() {
            let (how, _) = there.closed().await;
            assert_eq!(
                code_of(&how),
                4001,
                "closed on the other instance too: {how:?}"
            );
            let b = b.as_ref().unwrap();
            assert!(
                connect(&b.base, Some(&secret), None).await.is_err(),
                "and cannot open a new one there"
            );
        }
        assert_eq!(
            jwt.request("ping", json!({})).await["type"],
            "ok",
            "the user's other sockets live on"
        );
    })
    .await
}

#[tokio::test]
async fn auth_refresh_never_swaps_credential_kinds() {
    within(async {
        let app = spawn_app().await;
        let m = user(&app).await;
        let (_, secret) = api_key(&app, &m.tokens.access).await;
        let mut jwt = connect_authed(&app.base, &m.tokens.access).await;
        let r = jwt.request("auth.refresh", json!({"token": secret})).await;
        assert_eq!(
            r["code"], "invalid_request",
            "an API key cannot drop a JWT socket's expiry: {r}"
        );
        let mut keyed = connect_authed(&app.base, &secret).await;
        let r = keyed
            .request("auth.refresh", json!({"token": m.tokens.access}))
            .await;
        assert_eq!(r["code"], "invalid_request", "{r}");
        assert_eq!(jwt.request("ping", json!({})).await["type"], "ok");
    })
    .await
}

#[tokio::test]
async fn sharing_answers_the_same_for_unknown_addresses_remembers_nothing_and_lookalikes_are_one_account(
) {
    within(async {
        let app = spawn_app().await;
        let owner = user(&app).await;
        let known = user(&app).await;
        let ch = session(&app, &owner).await;
        let id = ch.strip_prefix("session:").unwrap();
        let share = |email: String| {
            let (http, url, t) = (
                app.http.clone(),
                app.url(&format!("/v1/sessions/{id}/members")),
                owner.tokens.access.clone(),
            );
            async move {
                let r = http
                    .post(url)
                    .bearer_auth(t)
                    .json(&json!({"email": email, "role": "editor"}))
                    .send()
                    .await
                    .unwrap();
                (r.status().as_u16(), r.text().await.unwrap())
            }
        };
        let newcomer = format!("new-{}@example.com", uuid::Uuid::new_v4().simple());
        assert_eq!(
            share(known.email.clone()).await,
            share(newcomer.clone()).await,
            "same status, same body"
        );
        // Nothing is remembered for an address without an account: whoever registers it later
        // (accounts are not verified) gets no access; the account shared with has it.
        let tokens = app.register(&newcomer).await;
        let mut c = connect_authed(&app.base, &tokens.access).await;
        assert_eq!(
            c.subscribe(&ch).await["code"],
            "forbidden",
            "a squatter of the address is no member"
        );
        let mut k = connect_authed(&app.base, &known.tokens.access).await;
        assert_eq!(k.subscribe(&ch).await["type"], "ok");

        // Fullwidth and zero-width lookalikes of an address are that address.
        let r = app
            .post(
                "/v1/auth/register",
                &json!({"email": "ａｌｉｃｅ@example.com", "password": PASSWORD}),
            )
            .await;
        assert_eq!(r.status(), StatusCode::CREATED);
        let r = app
            .post(
                "/v1/auth/register",
                &json!({"email": "ali\u{200b}ce@example.com", "password": PASSWORD}),
            )
            .await;
        assert_eq!(
            r.status(),
            StatusCode::CONFLICT,
            "a zero-width lookalike is the same account"
        );
        assert_eq!(
            app.login("alice@example.com", PASSWORD).await.status(),
            StatusCode::OK
        );
    })
    .await
}

#[tokio::test]
async fn two_tabs_refreshing_at_once_get_the_same_successor_and_a_late_replay_still_revokes() {
    within(async {
        let app = spawn_with(|c| c.auth.refresh_reuse_grace_secs = 1).await;
        let tokens = app.register(&unique_email()).await;
        let refresh = |t: String| {
            let (http, url) = (app.http.clone(), app.url("/v1/auth/refresh"));
            async move {
                let r = http
                    .post(url)
                    .json(&json!({"refresh_token": t}))
                    .send()
                    .await
                    .unwrap();
                (r.status().as_u16(), r.json::<Value>().await.unwrap())
            }
        };
        let (a, b) = tokio::join!(
            refresh(tokens.refresh.clone()),
            refresh(tokens.refresh.clone())
        );
        assert_eq!((a.0, b.0), (200, 200), "{a:?} {b:?}");
        assert_eq!(
            a.1["refresh_token"], b.1["refresh_token"],
            "one successor for both tabs"
        );
        let next = a.1["refresh_token"].as_str().unwrap().to_owned();
        // The family lives on: the successor works.
        let (s, r) = refresh(next.clone()).await;
        assert_eq!(s, 200, "{r}");
        // A replay of the first token after the grace window is a thief: the family goes.
        tokio::time::sleep(std::time::Duration::from_millis(1500)).await;
        let (s, _) = refresh(tokens.refresh.clone()).await;
        assert_eq!(s, 401);
        let (s, _) = refresh(r["refresh_token"].as_str().unwrap().to_owned()).await;
        assert_eq!(s, 401, "the whole family was revoked");
    })
    .await
}

#[tokio::test]
async fn an_api_key_socket_that_missed_the_revocation_message_still_closes() {
    within(async {
        let app = spawn_with(|c| {
            c.ws.heartbeat_secs = 1;
            c.auth.api_key_cache_secs = 1;
        })
        .await;
        let m = user(&app).await;
        let (id, secret) = api_key(&app, &m.tokens.access).await;
        let mut sock = connect_authed(&app.base, &secret).await;
        // Revoked behind the service's back: no message on the bus reaches the socket.
        let user_id: switchyard::domain::UserId = m.user_id.parse().unwrap();
        assert!(app
            .state
            .store
            .revoke_api_key(user_id, id.parse().unwrap())
            .await
            .unwrap());
        let (how, seen) = sock.closed().await;
        assert_eq!(code_of(&how), 4001, "{how:?}");
        assert!(
            seen.iter().any(|f| f["code"] == "invalid_api_key"),
            "{seen:?}"
        );
    })
    .await
}
