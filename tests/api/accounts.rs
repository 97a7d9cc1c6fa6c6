//! The account's own life (password change, profile, deletion), what an admin changes about
//! it (password reset, role, disabling), and `verify-token`, over HTTP and the socket.

use crate::helpers::fixtures::{api_key, session, share, user, Member};
use crate::helpers::ws::*;
use crate::helpers::*;
use reqwest::{Method, StatusCode};
use serde_json::{json, Value};

const NEW_PASSWORD: &str = "quiet-harbour-47";

async fn second_sign_in(app: &TestApp, m: &Member) -> Tokens {
    let r = app.login(&m.email, PASSWORD).await;
    assert_eq!(r.status(), StatusCode::OK);
    Tokens::from(&r.json::<Value>().await.unwrap())
}

async fn me_status(app: &TestApp, token: &str) -> StatusCode {
    app.get_auth("/v1/auth/me", token).await.status()
}

async fn refresh_status(app: &TestApp, refresh: &str) -> StatusCode {
    app.post("/v1/auth/refresh", &json!({"refresh_token": refresh}))
        .await
        .status()
}

async fn verify(app: &TestApp, token: &str) -> Value {
    let r = app
        .post("/v1/auth/verify-token", &json!({"token": token}))
        .await;
    let status = r.status();
    let body: Value = r.json().await.unwrap();
    assert_eq!(status, StatusCode::OK, "{token:?}: {body}");
    body
}

#[tokio::test]
async fn a_password_change_keeps_this_sign_in_and_ends_every_other() {
    within(async {
        let app = spawn_app().await;
        let m = user(&app).await;
        let other = second_sign_in(&app, &m).await;
        let mut here = connect_authed(&app.base, &m.tokens.access).await;
        let mut there = connect_authed(&app.base, &other.access).await;
        let change =
            |current: &str, new: &str| json!({"current_password": current, "new_password": new});
        let path = "/v1/auth/change-password";

        let wrong = app
            .call(
                Method::POST,
                path,
                &m.tokens.access,
                Some(&change("nope-nope-nope", NEW_PASSWORD)),
            )
            .await;
        let e = error_of(wrong, StatusCode::BAD_REQUEST).await;
        assert_eq!(e["param"], "current_password", "{e}");
        let weak = app
            .call(
                Method::POST,
                path,
                &m.tokens.access,
                Some(&change(PASSWORD, "short")),
            )
            .await;
        let e = error_of(weak, StatusCode::BAD_REQUEST).await;
        assert!(
            e["message"].as_str().unwrap().contains("at least 10"),
            "{e}"
        );
        let (_, key) = api_key(&app, &m.tokens.access).await;
        let by_key = app
            .call(
                Method::POST,
                path,
                &key,
                Some(&change(PASSWORD, NEW_PASSWORD)),
            )
            .await;
        error_of(by_key, StatusCode::FORBIDDEN).await;

        let r = app
            .call(
                Method::POST,
                path,
                &m.tokens.access,
                Some(&change(PASSWORD, NEW_PASSWORD)),
            )
            .await;
        assert_eq!(r.status(), StatusCode::OK);
        assert_eq!(r.json::<Value>().await.unwrap()["revoked_sign_ins"], 1);

        // The other sign-in: its socket closes, its access and refresh tokens stop at once.
        let (how, seen) = there.closed().await;
        assert_eq!(code_of(&how), 4001, "{how:?}");
        assert!(
            seen.iter().any(|f| f["code"] == "invalid_token"),
            "{seen:?}"
        );
        assert_eq!(
            me_status(&app, &other.access).await,
            StatusCode::UNAUTHORIZED
        );
        assert_eq!(
            refresh_status(&app, &other.refresh).await,
            StatusCode::UNAUTHORIZED
        );
        assert_eq!(verify(&app, &other.access).await, json!({"active": false}));
        // This one lives on, and so does the API key.
        assert_eq!(here.request("ping", json!({})).await["type"], "ok");
        assert_eq!(me_status(&app, &m.tokens.access).await, StatusCode::OK);
        assert_eq!(me_status(&app, &key).await, StatusCode::OK);
        assert_eq!(
            app.login(&m.email, PASSWORD).await.status(),
            StatusCode::UNAUTHORIZED
        );
        assert_eq!(
            app.login(&m.email, NEW_PASSWORD).await.status(),
            StatusCode::OK
        );

        let admin = app.admin_token().await;
        let audit = app
            .get_json(&format!("/v1/admin/audit?user_id={}", m.user_id), &admin)
            .await;
        let events: Vec<&str> = audit["data"]
            .as_array()
            .unwrap()
            .iter()
            .filter_map(|e| e["event"].as_str())
            .collect();
        assert!(events.contains(&"password_changed"), "{events:?}");
    })
    .await
}

#[tokio::test]
async fn logout_stops_that_sign_ins_access_token_at_once() {
    within(async {
        let app = spawn_app().await;
        let m = user(&app).await;
        let other = second_sign_in(&app, &m).await;
        let r = app
            .post(
                "/v1/auth/logout",
                &json!({"refresh_token": m.tokens.refresh}),
            )
            .await;
        assert_eq!(r.status(), StatusCode::NO_CONTENT);
        assert_eq!(
            me_status(&app, &m.tokens.access).await,
            StatusCode::UNAUTHORIZED
        );
        assert_eq!(me_status(&app, &other.access).await, StatusCode::OK);
        // A socket follows its sign-in through auth.refresh: moved to `third`, it closes when
        // `third` is revoked.
        let third = second_sign_in(&app, &m).await;
        let mut socket = connect_authed(&app.base, &other.access).await;
        let r = socket
            .request("auth.refresh", json!({"token": third.access}))
            .await;
        assert_eq!(r["type"], "ok", "{r}");
        let r = app
            .post("/v1/auth/logout", &json!({"refresh_token": other.refresh}))
            .await;
        assert_eq!(r.status(), StatusCode::NO_CONTENT);
        assert_eq!(
            socket.request("ping", json!({})).await["type"],
            "ok",
            "not other's any more"
        );
        let r = app
            .post("/v1/auth/logout", &json!({"refresh_token": third.refresh}))
            .await;
        assert_eq!(r.status(), StatusCode::NO_CONTENT);
        let (how, _) = socket.closed().await;
        assert_eq!(code_of(&how), 4001, "{how:?}");
    })
    .await
}

#[tokio::test]
async fn an_admin_resets_a_password_and_sets_a_role_that_the_next_token_carries() {
    within(async {
        let app = spawn_app().await;
        let admin = app.admin_token().await;
        let m = user(&app).await;
        let reset = format!("/v1/admin/users/{}/password", m.user_id);
        let body = json!({"new_password": NEW_PASSWORD});
        let by_user = app
            .call(Method::POST, &reset, &m.tokens.access, Some(&body))
            .await;
        error_of(by_user, StatusCode::FORBIDDEN).await;
        let weak = app
            .call(
                Method::POST,
                &reset,
                &admin,
                Some(&json!({"new_password": "aaaaaaaaaaaa"})),
            )
            .await;
        error_of(weak, StatusCode::BAD_REQUEST).await;
        let nobody = format!("/v1/admin/users/{}/password", uuid::Uuid::new_v4());
        error_of(
            app.call(Method::POST, &nobody, &admin, Some(&body)).await,
            StatusCode::NOT_FOUND,
        )
        .await;
        let r = app.call(Method::POST, &reset, &admin, Some(&body)).await;
        assert_eq!(r.status(), StatusCode::OK);
        assert_eq!(r.json::<Value>().await.unwrap()["revoked_sign_ins"], 1);
        assert_eq!(
            me_status(&app, &m.tokens.access).await,
            StatusCode::UNAUTHORIZED
        );
        assert_eq!(
            app.login(&m.email, PASSWORD).await.status(),
            StatusCode::UNAUTHORIZED
        );
        let fresh = app.login(&m.email, NEW_PASSWORD).await;
        let fresh = Tokens::from(&fresh.json::<Value>().await.unwrap());

        let patch = format!("/v1/admin/users/{}", m.user_id);
        for bad in [
            json!({"role": "root"}),
            json!({"role": null}),
            json!({"disabled": "yes"}),
            json!({"owner": true}),
        ] {
            let r = app.call(Method::PATCH, &patch, &admin, Some(&bad)).await;
            assert_eq!(r.status(), StatusCode::BAD_REQUEST, "{bad}");
        }
        let r = app
            .call(
                Method::PATCH,
                "/v1/admin/users/not-a-uuid",
                &admin,
                Some(&json!({})),
            )
            .await;
        error_of(r, StatusCode::BAD_REQUEST).await;
        let admin_id = verify(&app, &admin).await["sub"]
            .as_str()
            .unwrap()
            .to_owned();
        let own = app
            .call(
                Method::PATCH,
                &format!("/v1/admin/users/{admin_id}"),
                &admin,
                Some(&json!({"disabled": true})),
            )
            .await;
        error_of(own, StatusCode::BAD_REQUEST).await;

        let r = app
            .call(
                Method::PATCH,
                &patch,
                &admin,
                Some(&json!({"role": "analyst"})),
            )
            .await;
        assert_eq!(r.status(), StatusCode::OK);
        let body: Value = r.json().await.unwrap();
        assert_eq!(body["user"]["role"], "analyst");
        assert!(
            body["note"].as_str().unwrap().contains("next access token"),
            "{body}"
        );
        // The token in hand claims the old role and is refused; the next one has the new one.
        assert_eq!(verify(&app, &fresh.access).await, json!({"active": false}));
        let next = app
            .post("/v1/auth/refresh", &json!({"refresh_token": fresh.refresh}))
            .await;
        let next = Tokens::from(&next.json::<Value>().await.unwrap());
        let after = verify(&app, &next.access).await;
        assert_eq!(
            (after["role"].clone(), after["token_type"].clone()),
            (json!("analyst"), json!("access_token"))
        );

        // A demoted admin stops being one at once, not when their token expires.
        let other_admin = user(&app).await;
        let promoted = format!("/v1/admin/users/{}", other_admin.user_id);
        let r = app
            .call(
                Method::PATCH,
                &promoted,
                &admin,
                Some(&json!({"role": "admin"})),
            )
            .await;
        assert_eq!(r.status(), StatusCode::OK);
        let r = app
            .post(
                "/v1/auth/refresh",
                &json!({"refresh_token": other_admin.tokens.refresh}),
            )
            .await;
        let other_tokens = Tokens::from(&r.json::<Value>().await.unwrap());
        assert_eq!(
            app.get_auth("/v1/admin/users", &other_tokens.access)
                .await
                .status(),
            StatusCode::OK
        );
        let r = app
            .call(
                Method::PATCH,
                &promoted,
                &admin,
                Some(&json!({"role": "user"})),
            )
            .await;
        assert_eq!(r.status(), StatusCode::OK);
        let r = app.get_auth("/v1/admin/users", &other_tokens.access).await;
        assert_eq!(r.status(), StatusCode::UNAUTHORIZED);
        let listed = app.get_json("/v1/admin/users?limit=100", &admin).await;
        let row = listed["data"]
            .as_array()
            .unwrap()
            .iter()
            .find(|u| u["id"] == m.user_id.as_str())
            .cloned()
            .unwrap();
        assert_eq!(
            (row["role"].clone(), row["disabled"].clone()),
            (json!("analyst"), json!(false))
        );
    })
    .await
}

#[tokio::test]
async fn verify_token_says_only_active_or_not() {
    within(async {
        let app = spawn_app().await;
        let m = user(&app).await;
        let v = verify(&app, &m.tokens.access).await;
        assert_eq!(v["active"], true);
        assert_eq!(v["sub"], m.user_id.as_str());
        assert!(v["exp"].as_i64().unwrap() > chrono::Utc::now().timestamp());
        let (_, key) = api_key(&app, &m.tokens.access).await;
        let k = verify(&app, &key).await;
        assert_eq!(
            (k["token_type"].clone(), k.get("exp").is_none()),
            (json!("api_key"), true)
        );
        let mut forged = m.tokens.access.clone();
        forged.pop();
        for t in [forged.as_str(), "sk-sy-nope", "", m.tokens.refresh.as_str()] {
            assert_eq!(verify(&app, t).await, json!({"active": false}), "{t:?}");
        }
        let r = app
            .post("/v1/auth/verify-token", &json!({"token": 7}))
            .await;
        error_of(r, StatusCode::BAD_REQUEST).await;
    })
    .await
}

#[tokio::test]
async fn a_disabled_account_is_refused_at_once_on_every_instance() {
    within(async {
        let cluster = Cluster::new().await;
        let a = cluster.spawn(|_| {}).await;
        let b = if cluster.redis_url.is_some() {
            Some(cluster.spawn(|_| {}).await)
        } else {
            None
        };
        let other = b.as_ref().unwrap_or(&a);
        let admin = a.admin_token().await;
        let m = user(&a).await;
        let (_, key) = api_key(&a, &m.tokens.access).await;
        let mut jwt_socket = connect_authed(&other.base, &m.tokens.access).await;
        let mut key_socket = connect_authed(&other.base, &key).await;
        let patch = format!("/v1/admin/users/{}", m.user_id);
        let r = a
            .call(
                Method::PATCH,
                &patch,
                &admin,
                Some(&json!({"disabled": true})),
            )
            .await;
        assert_eq!(r.status(), StatusCode::OK);
        assert_eq!(r.json::<Value>().await.unwrap()["user"]["disabled"], true);
        for s in [&mut jwt_socket, &mut key_socket] {
            let (how, _) = s.closed().await;
            assert_eq!(code_of(&how), 4001, "{how:?}");
        }
        for app in [&a, other] {
            assert_eq!(
                me_status(app, &m.tokens.access).await,
                StatusCode::UNAUTHORIZED
            );
            assert_eq!(me_status(app, &key).await, StatusCode::UNAUTHORIZED);
            assert!(connect(&app.base, Some(&m.tokens.access), None)
                .await
                .is_err());
        }
        let e = error_of(a.login(&m.email, PASSWORD).await, StatusCode::FORBIDDEN).await;
        assert_eq!(e["code"], "account_disabled");
        // A wrong password is told nothing about it.
        error_of(
            a.login(&m.email, "wrong-password-1").await,
            StatusCode::UNAUTHORIZED,
        )
        .await;
        let e = error_of(
            a.post(
                "/v1/auth/refresh",
                &json!({"refresh_token": m.tokens.refresh}),
            )
            .await,
            StatusCode::FORBIDDEN,
        )
        .await;
        assert_eq!(e["code"], "account_disabled");

        let r = a
            .call(
                Method::PATCH,
                &patch,
                &admin,
                Some(&json!({"disabled": false})),
            )
            .await;
        assert_eq!(r.status(), StatusCode::OK);
        let back = a.login(&m.email, PASSWORD).await;
        assert_eq!(back.status(), StatusCode::OK);
        let back = Tokens::from(&back.json::<Value>().await.unwrap());
        assert_eq!(me_status(other, &back.access).await, StatusCode::OK);
        assert_eq!(
            me_status(other, &key).await,
            StatusCode::OK,
            "the key works again"
        );
    })
    .await
}

#[tokio::test]
async fn a_profile_changes_only_what_is_given_within_its_limits() {
    within(async {
        let app = spawn_with(|c| c.auth.max_preferences_bytes = 64).await;
        let m = user(&app).await;
        let path = "/v1/user/profile";
        let t = &m.tokens.access;
        let p = app.get_json(path, t).await;
        assert_eq!((p["email"].clone(), p["username"].clone()), (json!(m.email), Value::Null));
        let r = app.call(Method::PATCH, path, t,
            Some(&json!({"display_name": "  Ada L. ", "username": "Ada.L", "preferences": {"theme": "dark"}}))).await;
        assert_eq!(r.status(), StatusCode::OK);
        let p: Value = r.json().await.unwrap();
        assert_eq!(p["display_name"], "Ada L.");
        assert_eq!(p["username"], "ada.l");
        let r = app.call(Method::PATCH, path, t, Some(&json!({"preferences": {"theme": "light"}}))).await;
        let p: Value = r.json().await.unwrap();
        assert_eq!((p["display_name"].clone(), p["preferences"].clone()),
            (json!("Ada L."), json!({"theme": "light"})), "untouched fields stay");

        let big = json!({"preferences": {"k": "x".repeat(80)}});
        for (bad, param) in [
            (big, "preferences"),
            (json!({"preferences": [1, 2]}), "preferences"),
            (json!({"username": "a"}), "username"),
            (json!({"username": "ad/min"}), "username"),
            (json!({"display_name": "bell\u{7}"}), "display_name"),
            (json!({"email": "new@example.com"}), "password"),
            (json!({"email": "new@example.com", "password": "wrong-password-1"}), "password"),
        ] {
            let r = app.call(Method::PATCH, path, t, Some(&bad)).await;
            let e = error_of(r, StatusCode::BAD_REQUEST).await;
            assert_eq!(e["param"], param, "{bad}: {e}");
        }
        for bad in [json!({"username": null}), json!({"role": "admin"}), json!({"display_name": "nul\u{0}"})] {
            let r = app.call(Method::PATCH, path, t, Some(&bad)).await;
            assert_eq!(r.status(), StatusCode::BAD_REQUEST, "{bad}");
        }
        let rival = user(&app).await;
        let r = app.call(Method::PATCH, path, &rival.tokens.access, Some(&json!({"username": "ADA.L"}))).await;
        assert_eq!(error_of(r, StatusCode::CONFLICT).await["message"], "this username is taken");
        let r = app.call(Method::PATCH, path, &rival.tokens.access,
            Some(&json!({"email": m.email, "password": PASSWORD}))).await;
        error_of(r, StatusCode::CONFLICT).await;

        let new_email = unique_email();
        let r = app.call(Method::PATCH, path, t, Some(&json!({"email": new_email, "password": PASSWORD}))).await;
        assert_eq!(r.status(), StatusCode::OK);
        assert_eq!(app.login(&new_email, PASSWORD).await.status(), StatusCode::OK);
        assert_eq!(app.login(&m.email, PASSWORD).await.status(), StatusCode::UNAUTHORIZED);
        assert_eq!(app.get_json(path, t).await["username"], "ada.l");
    })
    .await
}

#[tokio::test]
async fn deleting_an_account_removes_what_it_owns_and_tells_collaborators() {
    within(async {
        let app = spawn_app().await;
        let (m, bob) = (user(&app).await, user(&app).await);
        let owned = session(&app, &m).await;
        share(&app, &m, &owned, &bob, "editor").await;
        let theirs = session(&app, &bob).await;
        share(&app, &bob, &theirs, &m, "editor").await;
        let (_, key) = api_key(&app, &m.tokens.access).await;
        let project = app
            .call(
                Method::POST,
                "/v1/projects",
                &m.tokens.access,
                Some(&json!({"name": "p"})),
            )
            .await;
        assert_eq!(project.status(), StatusCode::CREATED);
        let mut watcher = connect_authed(&app.base, &bob.tokens.access).await;
        assert_eq!(watcher.subscribe(&owned).await["type"], "ok");
        let mut own_socket = connect_authed(&app.base, &m.tokens.access).await;

        let path = "/v1/user/profile";
        let wrong = app
            .call(
                Method::DELETE,
                path,
                &m.tokens.access,
                Some(&json!({"password": "wrong-password-1"})),
            )
            .await;
        error_of(wrong, StatusCode::BAD_REQUEST).await;
        let by_key = app
            .call(
                Method::DELETE,
                path,
                &key,
                Some(&json!({"password": PASSWORD})),
            )
            .await;
        error_of(by_key, StatusCode::FORBIDDEN).await;
        assert_eq!(
            me_status(&app, &m.tokens.access).await,
            StatusCode::OK,
            "nothing changed yet"
        );

        let r = app
            .call(
                Method::DELETE,
                path,
                &m.tokens.access,
                Some(&json!({"password": PASSWORD})),
            )
            .await;
        assert_eq!(r.status(), StatusCode::NO_CONTENT);
        let (how, _) = own_socket.closed().await;
        assert_eq!(code_of(&how), 4001, "{how:?}");
        assert_eq!(
            watcher.event(&owned, "session.revoked").await["data"]["channel"],
            owned.as_str()
        );
        for t in [&m.tokens.access, &key] {
            assert_eq!(me_status(&app, t).await, StatusCode::UNAUTHORIZED);
        }
        assert_eq!(
            refresh_status(&app, &m.tokens.refresh).await,
            StatusCode::UNAUTHORIZED
        );
        assert_eq!(
            app.login(&m.email, PASSWORD).await.status(),
            StatusCode::UNAUTHORIZED
        );
        let sessions = app.get_json("/v1/sessions", &bob.tokens.access).await;
        let ids: Vec<String> = sessions["data"]
            .as_array()
            .unwrap()
            .iter()
            .map(|s| format!("session:{}", s["id"].as_str().unwrap()))
            .collect();
        assert!(
            !ids.contains(&owned),
            "the deleted user's session is gone: {ids:?}"
        );
        assert!(ids.contains(&theirs), "bob's own session stays");
        let id = theirs.strip_prefix("session:").unwrap();
        let members = app
            .get_json(&format!("/v1/sessions/{id}/members"), &bob.tokens.access)
            .await;
        assert!(
            !members.to_string().contains(&m.user_id),
            "membership removed: {members}"
        );
        // The address is free again.
        let again = app
            .post(
                "/v1/auth/register",
                &json!({"email": m.email, "password": PASSWORD}),
            )
            .await;
        assert_eq!(again.status(), StatusCode::CREATED);
    })
    .await
}

#[tokio::test]
async fn an_instance_started_later_refuses_what_was_revoked_before() {
    within(async {
        let cluster = Cluster::new().await;
        let a = cluster.spawn(|_| {}).await;
        let admin = a.admin_token().await;
        let (gone, disabled, demoted, out) = (
            user(&a).await,
            user(&a).await,
            user(&a).await,
            user(&a).await,
        );
        let r = a
            .call(
                Method::DELETE,
                "/v1/user/profile",
                &gone.tokens.access,
                Some(&json!({"password": PASSWORD})),
            )
            .await;
        assert_eq!(r.status(), StatusCode::NO_CONTENT);
        for (m, change) in [
            (&disabled, json!({"disabled": true})),
            (&demoted, json!({"role": "analyst"})),
        ] {
            let path = format!("/v1/admin/users/{}", m.user_id);
            assert_eq!(
                a.call(Method::PATCH, &path, &admin, Some(&change))
                    .await
                    .status(),
                StatusCode::OK
            );
        }
        let r = a
            .post(
                "/v1/auth/logout",
                &json!({"refresh_token": out.tokens.refresh}),
            )
            .await;
        assert_eq!(r.status(), StatusCode::NO_CONTENT);
        let later = cluster.spawn(|_| {}).await;
        for m in [&gone, &disabled, &demoted, &out] {
            assert_eq!(
                me_status(&later, &m.tokens.access).await,
                StatusCode::UNAUTHORIZED,
                "{}",
                m.email
            );
        }
    })
    .await
}

#[tokio::test]
async fn reading_the_profile_is_not_held_to_the_password_routes_limit() {
    within(async {
        let app = spawn_with(|c| c.ratelimit.auth_requests = 3).await;
        let m = user(&app).await; // register: 1 of 3
        for _ in 0..6 {
            assert_eq!(
                app.get_auth("/v1/user/profile", &m.tokens.access)
                    .await
                    .status(),
                StatusCode::OK
            );
        }
        let patch = |n: &str| json!({"display_name": n});
        for n in ["a", "b"] {
            let r = app
                .call(
                    Method::PATCH,
                    "/v1/user/profile",
                    &m.tokens.access,
                    Some(&patch(n)),
                )
                .await;
            assert_eq!(r.status(), StatusCode::OK);
        }
        let r = app
            .call(
                Method::PATCH,
                "/v1/user/profile",
                &m.tokens.access,
                Some(&patch("c")),
            )
            .await;
        assert_eq!(
            error_of(r, StatusCode::TOO_MANY_REQUESTS).await["code"],
            "rate_limit_exceeded"
        );
    })
    .await
}
