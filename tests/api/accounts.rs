//! Sign-ins and their revocation: a password change, logout, verify-token, and an instance
//! started later refusing what was revoked before it.

use crate::helpers::accounts::*;
use crate::helpers::fixtures::{api_key, user};
use crate::helpers::ws::*;
use crate::helpers::*;
use reqwest::{Method, StatusCode};
use serde_json::{json, Value};

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
