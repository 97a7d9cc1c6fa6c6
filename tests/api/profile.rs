//! The account's own profile: edits within limits, the rate limit, and deleting the account.

use crate::helpers::accounts::*;
use crate::helpers::fixtures::{api_key, session, share, user};
use crate::helpers::ws::*;
use crate::helpers::*;
use reqwest::{Method, StatusCode};
use serde_json::{json, Value};

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
        let deep = format!("{{\"preferences\": {}1{}}}", "[".repeat(200), "]".repeat(200));
        let r = app.http.patch(app.url(path)).bearer_auth(t)
            .header("content-type", "application/json").body(deep).send().await.unwrap();
        assert_eq!(r.status(), StatusCode::BAD_REQUEST, "200 levels deep");
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
