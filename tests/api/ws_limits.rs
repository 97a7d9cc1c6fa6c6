//! Every WebSocket limit, hit on purpose, with its documented answer.

use crate::helpers::fixtures::{session, user};
use crate::helpers::ws::*;
use crate::helpers::*;
use serde_json::json;
use std::collections::HashSet;
use tokio_tungstenite::tungstenite::Message;

#[tokio::test]
async fn bad_frames_get_errors_and_the_socket_lives() {
    within(async {
        let app = spawn_app().await;
        let m = user(&app).await;
        let mut c = connect_authed(&app.base, &m.tokens.access).await;
        c.send_raw("{not json".into()).await;
        assert_eq!(c.next().await.unwrap()["code"], "bad_frame");
        c.send_raw(r#"{"type":"teleport","id":"t1"}"#.into()).await;
        let e = c.next().await.unwrap();
        assert_eq!(
            (e["code"].as_str(), e["id"].as_str()),
            (Some("unknown_type"), Some("t1"))
        );
        c.send_raw(r#"{"type":"subscribe","id":"s1","channel":42}"#.into())
            .await;
        let e = c.next().await.unwrap();
        assert_eq!(
            (e["code"].as_str(), e["id"].as_str()),
            (Some("bad_request"), Some("s1"))
        );
        c.send_raw(r#"{"type":"ping"}"#.into()).await;
        assert_eq!(c.next().await.unwrap()["code"], "bad_request");
        c.send_message(Message::binary(vec![1u8, 2, 3]))
            .await
            .unwrap();
        assert_eq!(c.next().await.unwrap()["code"], "bad_frame");
        assert_eq!(
            c.request("ping", json!({})).await["type"],
            "ok",
            "still alive"
        );
    })
    .await
}

#[tokio::test]
async fn oversized_frame_closes_with_1009() {
    within(async {
        let app = spawn_with(|c| c.ws.max_frame_bytes = 1024).await;
        let m = user(&app).await;
        let mut c = connect_authed(&app.base, &m.tokens.access).await;
        let _ = c.send_message(Message::text("x".repeat(4096))).await;
        let (how, _) = c.closed().await;
        assert!(matches!(code_of(&how), 1009 | 0), "{how:?}");
        // Whatever the transport did, the server counts it as too big and stays up.
        assert_eq!(
            app.http
                .get(app.url("/health"))
                .send()
                .await
                .unwrap()
                .status(),
            200
        );
    })
    .await
}

#[tokio::test]
async fn flood_past_the_rate_limit_closes_with_4029() {
    within(async {
        let app = spawn_with(|c| c.ws.frames_per_sec = 5).await;
        let m = user(&app).await;
        let mut c = connect_authed(&app.base, &m.tokens.access).await;
        for i in 0..40 {
            if c.send_message(Message::text(
                json!({"type": "ping", "id": format!("p{i}")}).to_string(),
            ))
            .await
            .is_err()
            {
                break;
            }
        }
        let (how, seen) = c.closed().await;
        assert_eq!(code_of(&how), 4029, "{how:?}");
        assert!(seen.iter().any(|f| f["code"] == "rate_limited"));
        let oks = seen.iter().filter(|f| f["type"] == "ok").count();
        assert!(
            (10..40).contains(&oks),
            "burst of 2x rate served before the limit: {oks}"
        );
    })
    .await
}

#[tokio::test]
async fn subscription_and_connection_caps() {
    within(async {
        let app = spawn_with(|c| {
            c.ws.max_subscriptions = 2;
            c.ws.max_connections_per_user = 2;
        })
        .await;
        let m = user(&app).await;
        let mut c = connect_authed(&app.base, &m.tokens.access).await;
        for _ in 0..2 {
            let ch = session(&app, &m).await;
            assert_eq!(c.subscribe(&ch).await["type"], "ok");
        }
        let third = session(&app, &m).await;
        assert_eq!(c.subscribe(&third).await["code"], "too_many_subscriptions");

        let _second = connect_authed(&app.base, &m.tokens.access).await;
        let mut over = connect(&app.base, Some(&m.tokens.access), None)
            .await
            .unwrap();
        let (how, seen) = over.closed().await;
        assert_eq!(code_of(&how), 4030);
        assert_eq!(seen[0]["code"], "too_many_connections");
        // Closing one frees a slot.
        c.close().await;
        tokio::time::sleep(std::time::Duration::from_millis(200)).await;
        let _again = connect_authed(&app.base, &m.tokens.access).await;
    })
    .await
}

#[tokio::test]
async fn slow_consumer_is_closed_and_a_fast_one_gets_everything() {
    within(async {
        let app = spawn_with(|c| {
            c.ws.send_queue = 16;
            c.ws.frames_per_sec = 100_000;
            // The slow reader does read in the end: give it time to take the close frame.
            c.ws.write_timeout_secs = 60;
        })
        .await;
        let m = user(&app).await;
        let ch = session(&app, &m).await;
        let mut publisher = connect_authed(&app.base, &m.tokens.access).await;
        let mut fast = connect_authed(&app.base, &m.tokens.access).await;
        let mut slow = connect_authed(&app.base, &m.tokens.access).await;
        for c in [&mut publisher, &mut fast, &mut slow] {
            assert_eq!(c.subscribe(&ch).await["type"], "ok");
        }
        const N: usize = 400;
        let blob = "x".repeat(60_000);
        let target = ch.clone();
        let reader = tokio::spawn(async move {
            let mut seen = HashSet::new();
            while seen.len() < N {
                let ev = fast.broadcast(&ch, "blob").await;
                seen.insert(ev["data"]["seq"].as_u64().unwrap());
            }
            seen.len()
        });
        for seq in 0..N {
            let r = publisher
                .request(
                    "publish",
                    json!({"channel": target, "event": "blob", "data": {"seq": seq, "blob": blob}}),
                )
                .await;
            assert_eq!(r["type"], "ok");
            publisher.drop_pending();
        }
        assert_eq!(
            reader.await.unwrap(),
            N,
            "the fast subscriber got every event"
        );
        let (how, _) = slow.closed().await;
        assert_eq!(code_of(&how), 4008, "{how:?}");
    })
    .await
}
