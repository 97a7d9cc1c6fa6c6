//! Projects over REST and the socket, owner-only, with sidebar notifications.

use crate::helpers::fixtures::user;
use crate::helpers::ws::*;
use crate::helpers::*;
use reqwest::StatusCode;
use serde_json::{json, Value};

#[tokio::test]
async fn project_crud_rest_and_socket() {
    within(async {
        let app = spawn_app().await;
        let (me, other) = (user(&app).await, user(&app).await);
        let t = &me.tokens.access;
        let mut ws = connect_authed(&app.base, t).await;
        let r = app
            .http
            .post(app.url("/v1/projects"))
            .bearer_auth(t)
            .json(&json!({"name": "Compiler", "settings": {"model": "x"}}))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), StatusCode::CREATED);
        let p: Value = r.json().await.unwrap();
        let id = p["id"].as_str().unwrap().to_string();
        let ev = ws
            .event(&format!("user:{}", me.user_id), "project.changed")
            .await;
        assert_eq!(
            (
                ev["data"]["project_id"].as_str(),
                ev["data"]["change"].as_str()
            ),
            (Some(id.as_str()), Some("created"))
        );

        let r = ws
            .request(
                "project.update",
                json!({"project_id": id, "project": {"name": "Compiler v2", "description": "d"}}),
            )
            .await;
        assert_eq!(r["result"]["name"], "Compiler v2", "{r}");
        let got: Value = app
            .get_auth(&format!("/v1/projects/{id}"), t)
            .await
            .json()
            .await
            .unwrap();
        assert_eq!(
            (got["name"].as_str(), got["description"].as_str()),
            (Some("Compiler v2"), Some("d"))
        );
        let r = ws
            .request("project.create", json!({"project": {"name": "Second"}}))
            .await;
        assert_eq!(r["type"], "ok");
        let list = ws.request("project.list", json!({})).await;
        assert_eq!(list["result"]["data"].as_array().unwrap().len(), 2);

        // Someone else sees nothing and changes nothing.
        assert_eq!(
            app.get_auth(&format!("/v1/projects/{id}"), &other.tokens.access)
                .await
                .status(),
            404
        );
        let r = app
            .http
            .delete(app.url(&format!("/v1/projects/{id}")))
            .bearer_auth(&other.tokens.access)
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 404);
        // Bad input.
        let r = app
            .http
            .post(app.url("/v1/projects"))
            .bearer_auth(t)
            .json(&json!({"name": ""}))
            .send()
            .await
            .unwrap();
        assert_eq!(error_of(r, StatusCode::BAD_REQUEST).await["param"], "name");
        let r = ws
            .request_unchecked(
                "project.update",
                json!({"project_id": id, "project": {"name": "x", "settings": [1]}}),
            )
            .await;
        assert_eq!(r["code"], "invalid_request");
        let r = ws
            .request_unchecked("project.delete", json!({"project_id": "nope"}))
            .await;
        assert_eq!(r["code"], "invalid_request");

        let r = ws
            .request("project.delete", json!({"project_id": id}))
            .await;
        assert_eq!(r["type"], "ok");
        assert_eq!(
            app.get_auth(&format!("/v1/projects/{id}"), t)
                .await
                .status(),
            404
        );
        let sessions = ws.request("session.list", json!({"limit": 10})).await;
        assert!(sessions["result"]["data"].is_array());
    })
    .await
}

/// A PATCH with one field leaves the others as they were (it used to wipe `description` and
/// `settings`), on REST and the socket; `null` is refused rather than read as "clear".
#[tokio::test]
async fn a_patch_changes_only_the_fields_given() {
    within(async {
        let app = spawn_app().await;
        let me = user(&app).await;
        let t = &me.tokens.access;
        let p: Value = app
            .http
            .post(app.url("/v1/projects"))
            .bearer_auth(t)
            .json(&json!({"name": "A", "description": "keep me", "settings": {"model": "x"}}))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        let id = p["id"].as_str().unwrap().to_string();
        let path = format!("/v1/projects/{id}");
        let patch = |body: Value| {
            app.http
                .patch(app.url(&path))
                .bearer_auth(t)
                .json(&body)
                .send()
        };
        let r = patch(json!({"name": "B"})).await.unwrap();
        assert_eq!(r.status(), StatusCode::OK);
        let got = app.get_json(&path, t).await;
        assert_eq!(
            (&got["name"], &got["description"], &got["settings"]),
            (&json!("B"), &json!("keep me"), &json!({"model": "x"}))
        );

        let mut ws = connect_authed(&app.base, t).await;
        let r = ws
            .request(
                "project.update",
                json!({"project_id": id, "project": {"settings": {"color": "red"}}}),
            )
            .await;
        assert_eq!(
            (&r["result"]["name"], &r["result"]["description"]),
            (&json!("B"), &json!("keep me")),
            "{r}"
        );
        assert_eq!(r["result"]["settings"], json!({"color": "red"}));

        for bad in [
            json!({"description": null}),
            json!({"name": ""}),
            json!({"settings": "x"}),
            json!({"owner_id": me.user_id}),
        ] {
            let r = patch(bad.clone()).await.unwrap();
            assert_eq!(r.status(), StatusCode::BAD_REQUEST, "{bad}");
        }
        // An empty change changes nothing and answers the project.
        let r: Value = patch(json!({})).await.unwrap().json().await.unwrap();
        assert_eq!(r["updated_at"], app.get_json(&path, t).await["updated_at"]);
        let got = app.get_json(&path, t).await;
        assert_eq!(
            (&got["name"], &got["description"], &got["settings"]),
            (&json!("B"), &json!("keep me"), &json!({"color": "red"}))
        );
    })
    .await
}
