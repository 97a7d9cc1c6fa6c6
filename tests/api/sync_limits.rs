//! What keeps a session and its bookkeeping bounded: client ids scoped per account with their
//! old answers pruned, and the per-session caps refused with a reason while other users' writes
//! go on.

use crate::helpers::fixtures::{append, now_ms, push, snapshot, tag};
use crate::helpers::fixtures::{session, share, user};
use crate::helpers::*;
use serde_json::{json, Value};

#[tokio::test]
async fn client_ids_are_per_account_and_old_answers_are_pruned() {
    within(async {
        let app = spawn_app().await;
        let (a, b) = (user(&app).await, user(&app).await);
        let ch = session(&app, &a).await;
        share(&app, &a, &ch, &b, "editor").await;
        let base = now_ms();
        // The same id on two accounts: two clients, each with its own sequence.
        let (_, r) = push(&app, &a, &ch, json!([tag("shared-id", 1, base, "a1")])).await;
        assert_eq!(r["results"][0]["status"], "applied");
        let (_, r) = push(
            &app,
            &b,
            &ch,
            json!([
                tag("shared-id", 1, base, "b1"),
                tag("shared-id", 2, base, "b2")
            ]),
        )
        .await;
        assert_eq!(
            r["results"][0]["status"], "applied",
            "a guessed id cannot be squatted: {r}"
        );
        assert_eq!(r["results"][1]["status"], "applied");
        // Pushing from id N says the client holds the answers below N: they go (pruned as the
        // client's last id crosses each multiple of 32).
        for id in 3..=40u64 {
            let (_, r) = push(
                &app,
                &b,
                &ch,
                json!([tag("shared-id", id, base, &format!("b{id}"))]),
            )
            .await;
            assert_eq!(r["results"][0]["status"], "applied", "{r}");
        }
        let (_, r) = push(&app, &b, &ch, json!([tag("shared-id", 1, base, "b1")])).await;
        assert_eq!(r["results"][0]["code"], "already_processed", "{r}");
        let (_, r) = push(&app, &b, &ch, json!([tag("shared-id", 40, base, "b40")])).await;
        assert_eq!(
            r["results"][0]["status"], "applied",
            "the latest answer is kept: {r}"
        );
    })
    .await
}

#[tokio::test]
async fn a_session_at_its_caps_refuses_growth_and_another_users_write_still_succeeds() {
    within(async {
        let app = spawn_with(|c| {
            c.sync.max_context_keys = 300;
            c.sync.max_tags = 50;
            c.sync.max_messages = 2;
            c.sync.max_context_bytes = 4_000;
            c.sync.max_content_bytes = 2_000;
        })
        .await;
        let (owner, other) = (user(&app).await, user(&app).await);
        let ch = session(&app, &owner).await;
        let base = now_ms();
        // Fill context keys with deletes (tombstones count) and tags, 100 mutations a push.
        let mut id = 0u64;
        for chunk in 0..3 {
            let muts: Vec<Value> = (0..100).map(|i| {
                id += 1;
                json!({"client_id": "fill", "mutation_id": id, "hlc": format!("{}:0", base + id), "ops": [{"op": "delete_context", "key": format!("k{chunk}-{i}")}]})
            }).collect();
            let (_, r) = push(&app, &owner, &ch, json!(muts)).await;
            assert!(r["results"].as_array().unwrap().iter().all(|r| r["status"] == "applied"), "{r}");
        }
        let over = |op: Value, id: u64| json!([{"client_id": "fill", "mutation_id": id, "hlc": format!("{}:0", base + id), "ops": [op]}]);
        let other_ch = session(&app, &other).await;
        let (mine, theirs) = tokio::join!(
            push(&app, &owner, &ch, over(json!({"op": "set_context", "key": "one-more", "value": 1}), 301)),
            push(&app, &other, &other_ch, json!([tag("o", 1, base, "fine")]))
        );
        assert_eq!((mine.1["results"][0]["status"].as_str(), mine.1["results"][0]["code"].as_str()), (Some("refused"), Some("limit_exceeded")), "{}", mine.1);
        assert!(mine.1["results"][0]["error"].as_str().unwrap().contains("300 context keys"));
        assert_eq!((theirs.0, theirs.1["results"][0]["status"].as_str()), (200, Some("applied")), "{}", theirs.1);
        // An existing key can still change; a value past the byte cap cannot.
        let (_, r) = push(&app, &owner, &ch, over(json!({"op": "set_context", "key": "k0-1", "value": "x".repeat(100)}), 302)).await;
        assert_eq!(r["results"][0]["status"], "applied", "{r}");
        let (_, r) = push(&app, &owner, &ch, over(json!({"op": "set_context", "key": "k0-2", "value": "x".repeat(5_000)}), 303)).await;
        assert_eq!(r["results"][0]["code"], "limit_exceeded", "{r}");
        // Tags, messages and content bytes have their caps too.
        let tags: Vec<Value> = (0..51).map(|i| json!({"op": "add_tag", "tag": format!("t{i}")})).collect();
        let (_, r) = push(&app, &owner, &ch, over(json!({"op": "add_tag", "tag": "solo"}), 304)).await;
        assert_eq!(r["results"][0]["status"], "applied");
        let (_, r) = push(&app, &owner, &ch, json!([{"client_id": "fill", "mutation_id": 305, "hlc": format!("{}:0", base + 305), "ops": tags}])).await;
        assert_eq!(r["results"][0]["code"], "limit_exceeded", "{r}");
        let (_, r) = push(&app, &owner, &ch, over(json!({"op": "append_message", "message_id": "meta", "role": "user", "content": "",
            "metadata": {"blob": "z".repeat(2_100)}}), 306)).await;
        assert_eq!(r["results"][0]["code"], "limit_exceeded", "metadata counts with the content: {r}");
        let (_, r) = push(&app, &owner, &ch, over(json!({"op": "append_message", "message_id": "big", "role": "user", "content": "y".repeat(2_001)}), 307)).await;
        assert_eq!(r["results"][0]["code"], "limit_exceeded", "{r}");
        let (_, r) = push(&app, &owner, &ch, json!([append("fill", 308, base + 308, "m1", "a"), append("fill", 309, base + 309, "m2", "b"), append("fill", 310, base + 310, "m3", "c")])).await;
        let statuses: Vec<&str> = r["results"].as_array().unwrap().iter().map(|r| r["status"].as_str().unwrap()).collect();
        assert_eq!(statuses, ["applied", "applied", "refused"], "{r}");
        assert!(r["results"][2]["error"].as_str().unwrap().contains("at most 2 messages"));
        let s = snapshot(&app, &owner, &ch).await;
        assert_eq!((s["tags"].as_array().unwrap().len(), s["messages"].as_array().unwrap().len()), (1, 2), "refusals changed nothing");
    })
    .await
}
