//! The multiplexed WebSocket against real servers with a real client.

use crate::helpers::fixtures::*;
use crate::helpers::ws::*;
use crate::helpers::*;
use serde_json::{json, Value};
use std::time::Duration;
use switchyard::{
    auth::jwt::{Claims, KeySet},
    domain::{Role, UserId},
};

#[tokio::test]
async fn auth_by_header_and_by_first_frame() {
    within(async {
        let app = spawn_app().await;
        let m = user(&app).await;
        let mut by_header = connect(&app.base, Some(&m.tokens.access), None)
            .await
            .unwrap();
        let w = by_header.next().await.unwrap();
        assert_eq!(
            (w["type"].as_str(), w["user_id"].as_str()),
            (Some("welcome"), Some(m.user_id.as_str()))
        );

        let mut by_frame = connect(&app.base, None, None).await.unwrap();
        by_frame
            .send(json!({"type": "auth", "id": "a1", "token": m.tokens.access}))
            .await;
        let ok = by_frame.next().await.unwrap();
        assert_eq!(
            (ok["type"].as_str(), ok["id"].as_str()),
            (Some("ok"), Some("a1"))
        );
        assert_eq!(by_frame.next().await.unwrap()["type"], "welcome");
        let pong = by_frame.request("ping", json!({})).await;
        assert!(pong["result"]["server_time"].as_u64().unwrap() > 0);

        // API keys work on the socket too.
        let key: Value = app
            .http
            .post(app.url("/v1/api-keys"))
            .bearer_auth(&m.tokens.access)
            .json(&json!({"name": "k"}))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        let mut by_key = connect(&app.base, Some(key["secret"].as_str().unwrap()), None)
            .await
            .unwrap();
        let w = by_key.next().await.unwrap();
        assert_eq!(w["expires_at"], Value::Null);

        // A bad bearer header is refused at the upgrade.
        assert_eq!(
            connect(&app.base, Some("garbage"), None).await.err(),
            Some(401)
        );
    })
    .await
}

#[tokio::test]
async fn auth_frame_refusals_close_the_socket() {
    within(async {
        let app = spawn_with(|c| c.ws.auth_timeout_secs = 1).await;
        let mut silent = connect(&app.base, None, None).await.unwrap();
        let (how, seen) = silent.closed().await;
        assert_eq!(code_of(&how), 4002, "{how:?}");
        assert_eq!(seen[0]["code"], "auth_timeout");

        let mut bad = connect(&app.base, None, None).await.unwrap();
        bad.send(json!({"type": "auth", "id": "x", "token": "nope"}))
            .await;
        let (how, seen) = bad.closed().await;
        assert_eq!(code_of(&how), 4001);
        assert_eq!(
            (seen[0]["id"].as_str(), seen[0]["code"].as_str()),
            (Some("x"), Some("invalid_token"))
        );

        let mut eager = connect(&app.base, None, None).await.unwrap();
        eager.send(json!({"type": "ping", "id": "p"})).await;
        let (how, seen) = eager.closed().await;
        assert_eq!(code_of(&how), 4001);
        assert_eq!(seen[0]["code"], "auth_required");
    })
    .await
}

#[tokio::test]
async fn expired_token_closes_and_refresh_keeps_the_socket() {
    within(async {
        let app = spawn_with(|c| {
            c.auth.access_ttl_secs = 2;
            c.auth.leeway_secs = 0;
        })
        .await;
        let m = user(&app).await;
        let mut c = connect_authed(&app.base, &m.tokens.access).await;
        let (how, seen) = c.closed().await;
        assert_eq!(code_of(&how), 4003, "{how:?}");
        assert_eq!(seen.last().unwrap()["code"], "token_expired");

        // Refresh in band with a longer-lived token for the same user: the socket stays.
        let keys = KeySet::load(
            &[],
            app.dir.as_ref().unwrap().path(),
            "switchyard",
            "switchyard",
            0,
        )
        .unwrap();
        let long = keys.sign(&Claims {
            sub: m.user_id.parse::<UserId>().unwrap(),
            iss: "switchyard".into(),
            aud: "switchyard".into(),
            exp: chrono::Utc::now().timestamp() + 600,
            iat: chrono::Utc::now().timestamp(),
            role: Role::User,
            sid: None,
        });
        let fresh = Tokens::from(
            &app.login(&m.email, PASSWORD)
                .await
                .json::<Value>()
                .await
                .unwrap(),
        );
        let mut c = connect_authed(&app.base, &fresh.access).await;
        let r = c.request("auth.refresh", json!({"token": long})).await;
        assert_eq!(r["type"], "ok", "{r}");
        tokio::time::sleep(Duration::from_millis(3000)).await;
        assert_eq!(
            c.request("ping", json!({})).await["type"],
            "ok",
            "still open after the first token expired"
        );

        // Someone else's token is refused and changes nothing.
        let other = user(&app).await;
        let r = c
            .request("auth.refresh", json!({"token": other.tokens.access}))
            .await;
        assert_eq!(r["code"], "forbidden");
    })
    .await
}

#[tokio::test]
async fn origin_allowlist_at_upgrade() {
    within(async {
        let app = spawn_with(|c| c.server.cors_origins = vec!["https://app.example".into()]).await;
        let m = user(&app).await;
        assert_eq!(
            connect(
                &app.base,
                Some(&m.tokens.access),
                Some("https://evil.example")
            )
            .await
            .err(),
            Some(403)
        );
        assert!(connect(
            &app.base,
            Some(&m.tokens.access),
            Some("https://app.example")
        )
        .await
        .is_ok());
    })
    .await
}

#[tokio::test]
async fn members_only_publish_and_presence() {
    within(async {
        let app = spawn_app().await;
        let (alice, bob, eve) = (user(&app).await, user(&app).await, user(&app).await);
        let ch = session(&app, &alice).await;
        share(&app, &alice, &ch, &bob, "viewer").await;
        let mut a = connect_authed(&app.base, &alice.tokens.access).await;
        let mut b = connect(&app.base, Some(&bob.tokens.access), None)
            .await
            .unwrap();
        b.next().await.unwrap();
        let mut e = connect_authed(&app.base, &eve.tokens.access).await;

        assert_eq!(e.subscribe(&ch).await["code"], "forbidden");
        assert_eq!(
            e.request_unchecked("subscribe", json!({"channel": "session:not-a-uuid"}))
                .await["code"],
            "bad_channel"
        );
        assert_eq!(
            e.subscribe(&format!("user:{}", alice.user_id)).await["code"],
            "bad_channel",
            "not your user channel"
        );
        let r = e
            .request(
                "publish",
                json!({"channel": ch, "event": "typing", "data": {}}),
            )
            .await;
        assert_eq!(r["code"], "not_subscribed");

        assert_eq!(a.subscribe(&ch).await["type"], "ok");
        let own = a.event(&ch, "presence.diff").await;
        assert_eq!(
            own["data"]["joins"][0]["user_id"],
            alice.user_id.as_str(),
            "a subscriber sees its own join first: {own}"
        );
        assert_eq!(own["data"]["count"], 1, "{own}");
        let joined = b.subscribe(&ch).await;
        let present: Vec<&str> = joined["result"]["presence"]
            .as_array()
            .unwrap()
            .iter()
            .map(|m| m["user_id"].as_str().unwrap())
            .collect();
        assert!(
            present.contains(&alice.user_id.as_str()) && present.contains(&bob.user_id.as_str()),
            "{joined}"
        );
        let j = a.event(&ch, "presence.diff").await;
        assert_eq!(
            j["data"]["joins"][0]["user_id"],
            bob.user_id.as_str(),
            "{j}"
        );
        assert_eq!(
            (&j["data"]["leaves"], &j["data"]["count"]),
            (&json!([]), &json!(2))
        );

        let r = a
            .request(
                "publish",
                json!({"channel": ch, "event": "cursor", "data": {"line": 7}}),
            )
            .await;
        assert_eq!(r["type"], "ok");
        let ev = b.broadcast(&ch, "cursor").await;
        assert_eq!(ev["data"]["line"], 7);
        assert_eq!(ev["from"]["user_id"], alice.user_id.as_str());
        assert!(
            e.pending_is_empty_after(Duration::from_millis(200)).await,
            "non-member got nothing"
        );

        b.close().await;
        let left = a.event(&ch, "presence.diff").await;
        assert_eq!(
            left["data"]["leaves"][0]["user_id"],
            bob.user_id.as_str(),
            "{left}"
        );
        assert_eq!(left["data"]["count"], 1);
        let p = a.request("presence", json!({"channel": ch})).await;
        assert_eq!(p["result"]["members"].as_array().unwrap().len(), 1);
        assert_eq!(p["result"]["count"], 1);
    })
    .await
}

#[tokio::test]
async fn a_publisher_can_leave_itself_out_of_its_broadcast() {
    within(async {
        let app = spawn_app().await;
        let (alice, bob) = (user(&app).await, user(&app).await);
        let ch = session(&app, &alice).await;
        share(&app, &alice, &ch, &bob, "editor").await;
        let mut a = connect_authed(&app.base, &alice.tokens.access).await;
        let mut b = connect_authed(&app.base, &bob.tokens.access).await;
        assert_eq!(a.subscribe(&ch).await["type"], "ok");
        a.presence_diff(&ch, "joins", &alice.user_id).await;
        assert_eq!(b.subscribe(&ch).await["type"], "ok");
        a.presence_diff(&ch, "joins", &bob.user_id).await;
        let cursor = |line: u64, echo: Value| {
            json!({"channel": ch, "event": "cursor", "data": {"line": line}, "echo": echo})
        };

        let r = a.request("publish", cursor(1, json!(false))).await;
        assert_eq!(r["type"], "ok", "{r}");
        assert_eq!(b.broadcast(&ch, "cursor").await["data"]["line"], 1);
        assert!(
            a.pending_is_empty_after(Duration::from_millis(200)).await,
            "echo: false leaves the publisher out"
        );

        let mut echoed = cursor(2, Value::Null);
        echoed.as_object_mut().unwrap().remove("echo");
        assert_eq!(a.request("publish", echoed).await["type"], "ok");
        assert_eq!(a.broadcast(&ch, "cursor").await["data"]["line"], 2, "echo by default");
        assert_eq!(b.broadcast(&ch, "cursor").await["data"]["line"], 2);

        let r = a.request_unchecked("publish", cursor(3, json!("no"))).await;
        assert_eq!(r["code"], "bad_request", "{r}");
        assert_eq!(a.request("publish", cursor(4, json!(true))).await["type"], "ok");
        assert_eq!(
            b.broadcast(&ch, "cursor").await["data"]["line"],
            4,
            "the refused publish went nowhere"
        );
    })
    .await
}
