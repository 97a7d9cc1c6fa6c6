//! Session listings, revocation of a live member, and session-list notifications.

use crate::helpers::fixtures::{session, share, user};
use crate::helpers::ws::*;
use crate::helpers::*;
use serde_json::{json, Value};

fn now_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis() as u64
}

#[tokio::test]
async fn listings_paginate_and_filter() {
    within(async {
        let app = spawn_app().await;
        let (owner, other) = (user(&app).await, user(&app).await);
        let t = &owner.tokens.access;
        let mut channels = Vec::new();
        for _ in 0..3 {
            channels.push(session(&app, &owner).await);
        }
        let theirs = session(&app, &other).await;
        share(&app, &other, &theirs, &owner, "viewer").await;

        let page: Value = app.get_auth("/v1/sessions?limit=2", t).await.json().await.unwrap();
        assert_eq!(page["data"].as_array().unwrap().len(), 2);
        let cursor = page["next_cursor"].as_str().unwrap();
        let rest: Value = app.get_auth(&format!("/v1/sessions?limit=3&after={cursor}"), t).await.json().await.unwrap();
        assert_eq!(rest["data"].as_array().unwrap().len(), 2);
        assert_eq!(rest["data"][1]["role"], "viewer", "shared sessions are listed with the role");
        assert!(rest["next_cursor"].is_null());

        let ch = &channels[0];
        let id = ch.strip_prefix("session:").unwrap();
        let base = now_ms();
        let mutations: Vec<Value> = (1..=5u64)
            .map(|i| json!({"client_id": "web", "mutation_id": i, "hlc": format!("{}:0", base + i), "ops": [
                {"op": "append_message", "message_id": format!("m{i}"), "role": if i % 2 == 0 { "assistant" } else { "user" }, "content": format!("c{i}")}]}))
            .chain(std::iter::once(json!({"client_id": "web", "mutation_id": 6, "hlc": format!("{}:0", base + 6), "ops": [
                {"op": "delete_message", "message_id": "m3"}, {"op": "set_field", "field": "title", "value": "Parser work"}]})))
            .collect();
        let r = app.http.post(app.url(&format!("/v1/sessions/{id}/mutations"))).bearer_auth(t).json(&json!({"mutations": mutations})).send().await.unwrap();
        assert_eq!(r.status(), 200);
        let p1: Value = app.get_auth(&format!("/v1/sessions/{id}/messages?limit=2"), t).await.json().await.unwrap();
        let ids: Vec<&str> = p1["data"].as_array().unwrap().iter().map(|m| m["id"].as_str().unwrap()).collect();
        assert_eq!(ids, ["m1", "m2"]);
        let p2: Value = app.get_auth(&format!("/v1/sessions/{id}/messages?limit=2&after={}", p1["next_cursor"].as_str().unwrap()), t).await.json().await.unwrap();
        let ids: Vec<&str> = p2["data"].as_array().unwrap().iter().map(|m| m["id"].as_str().unwrap()).collect();
        assert_eq!(ids, ["m4", "m5"], "deleted m3 is left out");
        let users: Value = app.get_auth(&format!("/v1/sessions/{id}/messages?role=user"), t).await.json().await.unwrap();
        assert_eq!(users["data"].as_array().unwrap().len(), 2);
        let bad = app.get_auth(&format!("/v1/sessions/{id}/messages?role=robot"), t).await;
        assert_eq!(error_of(bad, reqwest::StatusCode::BAD_REQUEST).await["param"], "role");
        let listed: Value = app.get_auth("/v1/sessions", t).await.json().await.unwrap();
        let mine = listed["data"].as_array().unwrap().iter().find(|s| s["id"] == id).unwrap();
        assert_eq!((mine["title"].as_str(), mine["version"].as_u64()), (Some("Parser work"), Some(6)));
        let stranger = user(&app).await;
        assert_eq!(app.get_auth(&format!("/v1/sessions/{id}/messages"), &stranger.tokens.access).await.status(), 404);
    })
    .await
}

#[tokio::test]
async fn a_revoked_member_loses_the_live_channel_at_once() {
    within(async {
        let cluster = Cluster::new().await;
        let a = cluster.spawn(|_| {}).await;
        let b = if cluster.redis_url.is_some() { Some(cluster.spawn(|_| {}).await) } else { None };
        let (owner, guest) = (user(&a).await, user(&a).await);
        let ch = session(&a, &owner).await;
        let id = ch.strip_prefix("session:").unwrap().to_string();
        share(&a, &owner, &ch, &guest, "editor").await;
        let guest_base = b.as_ref().map_or(a.base.clone(), |b| b.base.clone());
        let mut g = connect_authed(&guest_base, &guest.tokens.access).await;
        assert_eq!(g.subscribe(&ch).await["type"], "ok");
        let mut o = connect_authed(&a.base, &owner.tokens.access).await;
        assert_eq!(o.subscribe(&ch).await["type"], "ok");

        let r = a.http.delete(a.url(&format!("/v1/sessions/{id}/members/{}", guest.user_id))).bearer_auth(&owner.tokens.access).send().await.unwrap();
        assert_eq!(r.status(), 204);
        let ev = g.event(&ch, "session.revoked").await;
        assert_eq!(ev["data"]["channel"], ch.as_str());
        let listed = g.event(&format!("user:{}", guest.user_id), "session.list_changed").await;
        assert_eq!(listed["data"]["reason"], "revoked");
        o.presence_diff(&ch, "leaves", &guest.user_id).await;

        // Nothing more arrives for that session, and the guest can neither publish nor push.
        let push = json!({"session_id": id, "mutations": [{"client_id": "owner-web", "mutation_id": 1, "hlc": format!("{}:0", now_ms()), "ops": [{"op": "add_tag", "tag": "x"}]}]});
        assert_eq!(o.request("session.push", push).await["result"]["version"], 1);
        let r = g.request("publish", json!({"channel": ch, "event": "typing", "data": {}})).await;
        assert_eq!(r["code"], "not_subscribed");
        let r = g.request("session.push", json!({"session_id": id, "mutations": [{"client_id": "g", "mutation_id": 1, "hlc": "1:0", "ops": [{"op": "add_tag", "tag": "y"}]}]})).await;
        assert_eq!(r["code"], "not_found");
        assert_eq!(g.subscribe(&ch).await["code"], "forbidden");
        assert!(!g.pending_has("sync.change"), "no change reached the revoked member");
        g.drop_pending(); // presence from before the revocation
        assert!(g.pending_is_empty_after(std::time::Duration::from_millis(300)).await, "no sync.change reached the revoked member");
    })
    .await
}

#[tokio::test]
async fn sessions_created_offline_and_deleted_by_ops() {
    within(async {
        let app = spawn_app().await;
        let (owner, editor) = (user(&app).await, user(&app).await);
        let mut ws = connect_authed(&app.base, &owner.tokens.access).await;
        // The phone made this session offline, with its own id.
        let id = uuid::Uuid::now_v7().to_string();
        let base = now_ms();
        let create = json!({"session_id": id, "mutations": [{"client_id": "phone", "mutation_id": 1, "hlc": format!("{base}:0"),
            "ops": [{"op": "create_session"}, {"op": "set_field", "field": "title", "value": "Written on a plane"}]}]});
        let r = ws.request("session.push", create.clone()).await;
        assert_eq!(r["result"]["results"][0]["status"], "applied", "{r}");
        let listed = ws.event(&format!("user:{}", owner.user_id), "session.list_changed").await;
        assert_eq!(listed["data"]["reason"], "created");
        let list: Value = app.get_auth("/v1/sessions", &owner.tokens.access).await.json().await.unwrap();
        assert_eq!(list["data"][0]["title"], "Written on a plane");
        // Someone else cannot claim an existing id by "creating" it.
        let mut intruder = connect_authed(&app.base, &editor.tokens.access).await;
        let steal = json!({"session_id": id, "mutations": [{"client_id": "x", "mutation_id": 1, "hlc": format!("{base}:0"), "ops": [{"op": "create_session"}]}]});
        assert_eq!(intruder.request("session.push", steal).await["code"], "not_found");

        let ch = format!("session:{id}");
        share(&app, &owner, &ch, &editor, "editor").await;
        let del = |client: &str, n: u64| json!({"session_id": id, "mutations": [{"client_id": client, "mutation_id": n, "hlc": format!("{}:0", base + 10), "ops": [{"op": "delete_session"}]}]});
        let r = intruder.request("session.push", del("ed", 1)).await;
        assert!(r["result"]["results"][0]["error"].as_str().unwrap().contains("only the owner"), "{r}");
        assert_eq!(intruder.subscribe(&ch).await["type"], "ok");
        let r = ws.request("session.push", del("phone", 2)).await;
        assert_eq!(r["result"]["results"][0]["status"], "applied");
        let change = intruder.event(&ch, "sync.change").await;
        assert_eq!(change["data"]["ops"][0]["op"], "delete_session");
        assert_eq!(app.get_auth(&format!("/v1/sessions/{id}"), &owner.tokens.access).await.status(), 404);
        let list: Value = app.get_auth("/v1/sessions", &editor.tokens.access).await.json().await.unwrap();
        assert!(list["data"].as_array().unwrap().is_empty());
        let r = ws.request("session.push", json!({"session_id": id, "mutations": [{"client_id": "phone", "mutation_id": 3, "hlc": format!("{}:0", base + 20), "ops": [{"op": "add_tag", "tag": "x"}]}]})).await;
        assert_eq!(r["code"], "not_found", "a deleted session takes no more changes");
    })
    .await
}
