//! Chat turns over the socket: deltas to every subscriber on every instance, joining mid-turn,
//! cancel from anywhere, upstream failures, and refusals.

use crate::helpers::fixtures::{session, share, user};
use crate::helpers::turns::{follow, message, send, slow_routes, watch_join_and_cancel, Follow};
use crate::helpers::upstream::Upstream;
use crate::helpers::ws::*;
use crate::helpers::*;
use serde_json::{json, Value};
use std::time::Duration;

#[tokio::test]
async fn a_turn_streams_to_subscribers_and_ends_as_a_synced_message() {
    within(async {
        let app = spawn_app().await;
        let alice = user(&app).await;
        let ch = session(&app, &alice).await;
        let mut c = connect_authed(&app.base, &alice.tokens.access).await;
        c.subscribe(&ch).await;
        let text = "hello brave  new world";
        let r = send(&mut c, &ch, "echo", text).await;
        let turn = r["turn_id"].as_str().unwrap().to_owned();
        let seen = follow(&mut c, &ch, &turn, Follow::END).await;
        seen.assert_contiguous_from(1);
        assert_eq!(seen.text(), text);
        let done = &seen.end["data"];
        assert_eq!(seen.end["event"], "chat.done");
        assert_eq!(done["status"], "complete");
        assert_eq!(done["finish_reason"], "stop");
        assert_eq!(done["index"], seen.deltas.len());
        assert_eq!(done["usage"]["completion_tokens"], 4);
        // The final message is durable and ordinary; the user's message precedes it.
        let m = message(&app, &alice, &ch, r["message_id"].as_str().unwrap()).await;
        assert_eq!(m["content"], text);
        assert_eq!(m["role"], "assistant");
        assert_eq!(m["streaming"], false);
        assert_eq!(m["metadata"]["status"], "complete");
        let u = message(&app, &alice, &ch, r["user_message_id"].as_str().unwrap()).await;
        assert_eq!(
            (u["role"].as_str(), u["content"].as_str()),
            (Some("user"), Some(text))
        );
        // The next turn sees the conversation: echo repeats the newest user message.
        let r2 = send(&mut c, &ch, "echo", "second").await;
        let seen = follow(&mut c, &ch, r2["turn_id"].as_str().unwrap(), Follow::END).await;
        assert_eq!(seen.text(), "second");
        // Usage is recorded for socket turns too.
        let mut n = 0;
        for _ in 0..100 {
            let v: Value = app
                .get_auth("/v1/usage", &alice.tokens.access)
                .await
                .json()
                .await
                .unwrap();
            n = v["data"]
                .as_array()
                .unwrap()
                .iter()
                .filter(|r| r["source"] == "chat")
                .count();
            if n == 2 {
                break;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        assert_eq!(n, 2);
    })
    .await
}

#[tokio::test]
async fn join_mid_turn_and_cancel_on_one_instance() {
    within(async {
        let up = Upstream::start().await;
        let app = spawn_with(|c| slow_routes(c, &up)).await;
        watch_join_and_cancel(&app, &app, &up).await;
    })
    .await
}

#[tokio::test]
async fn two_instances_watch_one_turn_join_mid_turn_and_cancel_across() {
    if redis_url().is_none() {
        eprintln!("two_instances_watch_one_turn_join_mid_turn_and_cancel_across: needs TEST_REDIS_URL (Redis pass)");
        return;
    }
    within(async {
        let up = Upstream::start().await;
        let cluster = Cluster::new().await;
        let a = cluster.spawn(|c| slow_routes(c, &up)).await;
        let b = cluster.spawn(|c| slow_routes(c, &up)).await;
        watch_join_and_cancel(&a, &b, &up).await;
    })
    .await
}

#[tokio::test]
async fn an_upstream_failure_ends_the_turn_with_chat_error_and_a_failed_message() {
    within(async {
        let up = Upstream::start().await;
        let app = spawn_with(|c| slow_routes(c, &up)).await;
        let alice = user(&app).await;
        let ch = session(&app, &alice).await;
        let mut c = connect_authed(&app.base, &alice.tokens.access).await;
        c.subscribe(&ch).await;
        for (model, partial, code) in [
            ("oa-midfail", "Partial answer", "upstream_error"),
            ("oa-500", "", "upstream_error"),
            ("an-error", "Partial", "upstream_error"),
        ] {
            let r = send(&mut c, &ch, model, "hi").await;
            let seen = follow(&mut c, &ch, r["turn_id"].as_str().unwrap(), Follow::END).await;
            assert_eq!(seen.end["event"], "chat.error", "{model}");
            assert_eq!(seen.end["data"]["code"], code);
            assert_eq!(seen.text(), partial);
            let m = message(&app, &alice, &ch, r["message_id"].as_str().unwrap()).await;
            assert_eq!(m["metadata"]["status"], "failed", "{model}");
            assert_eq!(m["content"], partial);
            assert_eq!(m["streaming"], false);
        }
    })
    .await
}

#[tokio::test]
async fn bad_chat_requests_are_refused_and_change_nothing() {
    within(async {
        let app = spawn_with(|c| c.chat.max_message_bytes = 16).await;
        let (alice, mallory, viewer) = (user(&app).await, user(&app).await, user(&app).await);
        let ch = session(&app, &alice).await;
        share(&app, &alice, &ch, &viewer, "viewer").await;
        let sid = ch.strip_prefix("session:").unwrap();
        let mut m = connect_authed(&app.base, &mallory.tokens.access).await;
        let r = m.request("chat.send", json!({"session_id": sid, "message": "hi"})).await;
        assert_eq!(r["code"], "not_found", "someone else's session: {r}");
        let mut v = connect_authed(&app.base, &viewer.tokens.access).await;
        let r = v.request("chat.send", json!({"session_id": sid, "message": "hi"})).await;
        assert_eq!(r["code"], "forbidden");
        let mut a = connect_authed(&app.base, &alice.tokens.access).await;
        for (frame, code) in [
            (json!({"session_id": sid, "message": ""}), "invalid_request"),
            (json!({"session_id": sid, "message": "seventeen bytes!!"}), "invalid_request"),
            (json!({"session_id": sid, "message": "hi", "model": "nope"}), "model_not_found"),
            (json!({"session_id": "not-a-uuid", "message": "hi"}), "invalid_request"),
            (json!({"session_id": sid}), "invalid_request"),
        ] {
            let r = a.request_unchecked("chat.send", frame.clone()).await;
            assert_eq!(r["code"], code, "{frame}: {r}");
        }
        let r = a.request("chat.cancel", json!({"turn_id": uuid::Uuid::new_v4()})).await;
        assert_eq!(r["code"], "not_found");
        // A client cannot write the server's stream ops (the schema does not allow them either).
        let r = a
            .request_unchecked(
                "session.push",
                json!({"session_id": sid, "mutations": [{"client_id": "c1", "mutation_id": 1, "hlc": format!("{}:0", now()),
                    "ops": [{"op": "stream_start", "message_id": "fake"}]}]}),
            )
            .await;
        assert_eq!(r["result"]["results"][0]["status"], "refused", "{r}");
        let r = a.subscribe(&ch).await;
        assert_eq!(r["result"]["snapshot"]["messages"], json!([]), "nothing was written");
        assert!(r["result"].get("turn").is_none());
    })
    .await
}

fn now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis() as u64
}

#[tokio::test]
async fn content_is_saved_while_streaming_and_a_turn_past_its_limit_fails() {
    within(async {
        let up = Upstream::start().await;
        let app = spawn_with(|c| {
            slow_routes(c, &up);
            c.chat.save_interval_ms = 100;
            c.chat.max_turn_secs = 1;
        })
        .await;
        let alice = user(&app).await;
        let ch = session(&app, &alice).await;
        let mut c = connect_authed(&app.base, &alice.tokens.access).await;
        c.subscribe(&ch).await;
        // 100 chunks 50 ms apart: 5 s, past the 1 s limit.
        let r = send(&mut c, &ch, "oa-slow", "go").await;
        let id = r["message_id"].as_str().unwrap().to_owned();
        let turn = r["turn_id"].as_str().unwrap().to_owned();
        follow(&mut c, &ch, &turn, Follow::deltas(8)).await;
        // Saved as it grows: a reader sees partial content while it still streams.
        let m = message(&app, &alice, &ch, &id).await;
        assert_eq!(m["streaming"], true);
        assert!(m["content"].as_str().unwrap().starts_with("w0 w1 "), "{m}");
        let end = follow(&mut c, &ch, &turn, Follow::END).await.end;
        assert_eq!(end["event"], "chat.error");
        assert_eq!(end["data"]["code"], "turn_timeout");
        let m = message(&app, &alice, &ch, &id).await;
        assert_eq!(m["metadata"]["status"], "failed");
        assert_eq!(m["streaming"], false);
    })
    .await
}

#[tokio::test]
async fn the_conversation_sent_upstream_is_built_from_the_session() {
    within(async {
        let up = Upstream::start().await;
        let app = spawn_with(|c| slow_routes(c, &up)).await;
        let alice = user(&app).await;
        let ch = session(&app, &alice).await;
        let sid = ch.strip_prefix("session:").unwrap();
        // The session's model and system prompt, and an earlier exchange, set through sync.
        let ops = json!([{"client_id": "c1", "mutation_id": 1, "hlc": format!("{}:0", now()), "ops": [
            {"op": "set_field", "field": "system_prompt", "value": "You are terse."},
            {"op": "set_field", "field": "model", "value": "oa-text"},
            {"op": "append_message", "message_id": "u0", "role": "user", "content": "earlier question"},
            {"op": "append_message", "message_id": "a0", "role": "assistant", "content": "earlier answer"}]}]);
        let r = app
            .http
            .post(app.url(&format!("/v1/sessions/{sid}/mutations")))
            .bearer_auth(&alice.tokens.access)
            .json(&json!({"mutations": ops}))
            .send()
            .await
            .unwrap();
        assert!(r.status().is_success());
        let mut c = connect_authed(&app.base, &alice.tokens.access).await;
        c.subscribe(&ch).await;
        let r = c
            .request("chat.send", json!({"session_id": sid, "message": "new question"}))
            .await;
        assert_eq!(r["result"]["model"], "oa-text", "the session's model: {r}");
        let seen = follow(&mut c, &ch, r["result"]["turn_id"].as_str().unwrap(), Follow::END).await;
        assert_eq!(seen.text(), "Hello! How can I help — ünïcödé?");
        assert_eq!(
            up.last_body()["messages"],
            json!([
                {"role": "system", "content": "You are terse."},
                {"role": "user", "content": "earlier question"},
                {"role": "assistant", "content": "earlier answer"},
                {"role": "user", "content": "new question"}
            ])
        );
    })
    .await
}
