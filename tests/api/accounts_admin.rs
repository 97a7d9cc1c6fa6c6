//! What an admin changes about an account: its password, its role, whether it is disabled.

use crate::helpers::accounts::*;
use crate::helpers::fixtures::{api_key, user};
use crate::helpers::ws::*;
use crate::helpers::*;
use reqwest::{Method, StatusCode};
use serde_json::{json, Value};

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
        // Nor may a user make themselves an admin.
        let own = format!("/v1/admin/users/{}", m.user_id);
        let r = app
            .call(
                Method::PATCH,
                &own,
                &m.tokens.access,
                Some(&json!({"role": "admin"})),
            )
            .await;
        error_of(r, StatusCode::FORBIDDEN).await;
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
