//! Session sync end to end: the write path's exactly-once rules on both backends, convergence
//! of concurrent clients on two instances, catch-up with `since`, snapshots, authorization and
//! bad input.

use crate::helpers::fixtures::{session, share, user};
use crate::helpers::ws::*;
use crate::helpers::*;
use serde_json::{json, Value};

fn set_title(client: &str, id: u64, ms: u64, title: &str) -> Value {
    json!({"client_id": client, "mutation_id": id, "hlc": format!("{ms}:0"), "ops": [{"op": "set_field", "field": "title", "value": title}]})
}

fn append(client: &str, id: u64, ms: u64, message_id: &str, content: &str) -> Value {
    json!({"client_id": client, "mutation_id": id, "hlc": format!("{ms}:0"),
           "ops": [{"op": "append_message", "message_id": message_id, "role": "user", "content": content}]})
}

fn now_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis() as u64
}

async fn push(app: &TestApp, token: &str, channel: &str, mutations: Value) -> (u16, Value) {
    let id = channel.strip_prefix("session:").unwrap();
    let r = app
        .http
        .post(app.url(&format!("/v1/sessions/{id}/mutations")))
        .bearer_auth(token)
        .json(&json!({"mutations": mutations}))
        .send()
        .await
        .unwrap();
    (r.status().as_u16(), r.json().await.unwrap())
}

async fn read(app: &TestApp, token: &str, channel: &str) -> Value {
    let id = channel.strip_prefix("session:").unwrap();
    app.get_auth(&format!("/v1/sessions/{id}"), token)
        .await
        .json()
        .await
        .unwrap()
}

#[tokio::test]
async fn exactly_once_out_of_order_and_refusals() {
    within(async {
        let app = spawn_app().await;
        let owner = user(&app).await;
        let ch = session(&app, &owner).await;
        let t = &owner.tokens.access;
        let base = now_ms();

        let (status, r) = push(&app, t, &ch, json!([set_title("phone", 1, base, "one"), append("phone", 2, base + 1, "m1", "hello")])).await;
        assert_eq!(status, 200, "{r}");
        assert_eq!(r["results"][0], json!({"status": "applied", "client_id": "phone", "mutation_id": 1, "version": 1}));
        assert_eq!(r["version"], 2);
        assert!(r["server_hlc"].as_str().unwrap().contains(':'));

        // A retry gets its original answer and changes nothing.
        let (_, r) = push(&app, t, &ch, json!([set_title("phone", 1, base, "ignored")])).await;
        assert_eq!(r["results"][0]["version"], 1);
        assert_eq!(r["version"], 2);
        assert_eq!(read(&app, t, &ch).await["fields"]["title"], "one");

        // Skipping an id is refused and does not advance.
        let (_, r) = push(&app, t, &ch, json!([set_title("phone", 5, base + 5, "x")])).await;
        assert_eq!(r["results"][0], json!({"status": "out_of_order", "client_id": "phone", "mutation_id": 5, "expected": 3}));

        // An invalid mutation is refused by itself, with its reason, and advances the client.
        let bad = json!({"client_id": "phone", "mutation_id": 3, "hlc": format!("{}:0", base + 3), "ops": [{"op": "set_field", "field": "pinned", "value": "yes"}]});
        let reuse = append("phone", 4, base + 4, "m1", "again");
        let ok = set_title("phone", 5, base + 5, "five");
        let (_, r) = push(&app, t, &ch, json!([bad, reuse, ok])).await;
        assert_eq!(r["results"][0]["status"], "refused");
        assert!(r["results"][0]["error"].as_str().unwrap().contains("pinned must be true or false"));
        assert!(r["results"][1]["error"].as_str().unwrap().contains("already used"));
        assert_eq!(r["results"][2]["status"], "applied");
        let doc = read(&app, t, &ch).await;
        assert_eq!((doc["fields"]["title"].as_str(), doc["messages"].as_array().unwrap().len()), (Some("five"), 1));
        assert_eq!(doc["messages"][0]["content"], "hello", "the reused id did not overwrite");

        // A clock too far ahead is refused with the server clock in the message.
        let (_, r) = push(&app, t, &ch, json!([set_title("phone", 6, base + 3_600_000, "future")])).await;
        assert!(r["results"][0]["error"].as_str().unwrap().contains("clock too far ahead"));

        // Editing a message of another session is refused.
        let other = session(&app, &owner).await;
        let edit = json!({"client_id": "phone", "mutation_id": 7, "hlc": format!("{}:0", base + 7), "ops": [{"op": "edit_message", "message_id": "m1", "content": "x"}]});
        let (_, r) = push(&app, t, &other, json!([edit])).await;
        assert!(r["results"][0]["error"].as_str().unwrap().contains("no message"));
        assert_eq!(read(&app, t, &ch).await["messages"][0]["content"], "hello");
    })
    .await
}

#[tokio::test]
async fn malformed_pushes_change_nothing() {
    within(async {
        let app = spawn_with(|c| c.sync.max_batch = 3).await;
        let owner = user(&app).await;
        let ch = session(&app, &owner).await;
        let t = &owner.tokens.access;
        let wrong_type = json!([{"client_id": "c", "mutation_id": "one", "hlc": "1:0", "ops": []}]);
        assert_eq!(push(&app, t, &ch, wrong_type).await.0, 400);
        let many: Vec<Value> = (1..=4).map(|i| set_title("c", i, i, "t")).collect();
        let (status, r) = push(&app, t, &ch, json!(many)).await;
        assert_eq!(
            (status, r["error"]["param"].as_str()),
            (400, Some("mutations"))
        );
        let bad_client = json!([set_title("bad client id!", 1, 1, "t")]);
        assert_eq!(push(&app, t, &ch, bad_client).await.0, 400);
        assert_eq!(read(&app, t, &ch).await["version"], 0, "nothing applied");
    })
    .await
}

#[tokio::test]
async fn members_only_and_viewers_cannot_push() {
    within(async {
        let app = spawn_app().await;
        let (owner, viewer, stranger) = (user(&app).await, user(&app).await, user(&app).await);
        let ch = session(&app, &owner).await;
        share(&app, &owner, &ch, &viewer, "viewer").await;
        let m = json!([set_title("v", 1, now_ms(), "mine")]);
        assert_eq!(
            push(&app, &viewer.tokens.access, &ch, m.clone()).await.0,
            403
        );
        assert_eq!(push(&app, &stranger.tokens.access, &ch, m).await.0, 404);
        let id = ch.strip_prefix("session:").unwrap();
        assert_eq!(
            app.get_auth(&format!("/v1/sessions/{id}"), &stranger.tokens.access)
                .await
                .status(),
            404
        );
        assert_eq!(
            app.get_auth(&format!("/v1/sessions/{id}"), &viewer.tokens.access)
                .await
                .status(),
            200
        );
        let mut ws = connect_authed(&app.base, &viewer.tokens.access).await;
        let r = ws
            .request(
                "session.push",
                json!({"session_id": id, "mutations": [set_title("v", 1, now_ms(), "x")]}),
            )
            .await;
        assert_eq!(r["code"], "forbidden");
    })
    .await
}

#[tokio::test]
async fn since_replays_exactly_what_was_missed_and_far_behind_gets_a_snapshot() {
    within(async {
        let app = spawn_with(|c| c.sync.keep_versions = 3).await;
        let owner = user(&app).await;
        let ch = session(&app, &owner).await;
        let t = &owner.tokens.access;
        let base = now_ms();
        for i in 1..=4 {
            push(
                &app,
                t,
                &ch,
                json!([append("web", i, base + i, &format!("m{i}"), "x")]),
            )
            .await;
        }
        let mut c = connect_authed(&app.base, t).await;
        let r = c
            .request("subscribe", json!({"channel": ch, "since": 2}))
            .await;
        let versions: Vec<u64> = r["result"]["changes"]
            .as_array()
            .unwrap()
            .iter()
            .map(|c| c["version"].as_u64().unwrap())
            .collect();
        assert_eq!(versions, [3, 4], "{r}");
        assert_eq!(r["result"]["version"], 4);
        // Live changes follow with the next version.
        push(&app, t, &ch, json!([append("web", 5, base + 5, "m5", "x")])).await;
        assert_eq!(c.event(&ch, "sync.change").await["data"]["version"], 5);
        c.close().await;

        // Push enough to compact the log past version 1 (keep 3; compaction at 2x): snapshot.
        for i in 6..=12 {
            push(
                &app,
                t,
                &ch,
                json!([append("web", i, base + i, &format!("m{i}"), "x")]),
            )
            .await;
        }
        let mut c = connect_authed(&app.base, t).await;
        let r = c
            .request("subscribe", json!({"channel": ch, "since": 1}))
            .await;
        let snap = &r["result"]["snapshot"];
        assert_eq!(snap["version"], 12, "{r}");
        assert_eq!(snap["messages"].as_array().unwrap().len(), 12);
        assert!(r["result"].get("changes").is_none());
    })
    .await
}

#[tokio::test]
async fn three_clients_on_two_instances_converge() {
    within(async {
        let cluster = Cluster::new().await;
        let redis = cluster.redis_url.is_some();
        let a = cluster.spawn(|_| {}).await;
        // Without Redis the second instance cannot see the first's events; all three use `a`.
        let b = cluster.spawn(|_| {}).await;
        let (owner, editor) = (user(&a).await, user(&a).await);
        let ch = session(&a, &owner).await;
        share(&a, &owner, &ch, &editor, "editor").await;
        let id = ch.strip_prefix("session:").unwrap().to_string();
        let on_b = if redis { &b } else { &a };
        let mut c1 = connect_authed(&a.base, &owner.tokens.access).await;
        let mut c2 = connect_authed(&on_b.base, &editor.tokens.access).await;
        let mut c3 = connect_authed(&on_b.base, &owner.tokens.access).await;
        for c in [&mut c1, &mut c2, &mut c3] {
            assert_eq!(c.request("subscribe", json!({"channel": ch, "since": 0})).await["type"], "ok");
        }
        let base = now_ms();
        // Concurrent pushes: each client writes the same title and its own messages.
        let pushes = [("ios", &mut c1), ("web1", &mut c2), ("web2", &mut c3)];
        let mut futs = Vec::new();
        for (k, (client, c)) in pushes.into_iter().enumerate() {
            let id = id.clone();
            futs.push(async move {
                for i in 1..=5u64 {
                    let ms = base + i * 10 + k as u64;
                    let m = json!({"client_id": client, "mutation_id": i, "hlc": format!("{ms}:0"), "ops": [
                        {"op": "set_field", "field": "title", "value": format!("{client}-{i}")},
                        {"op": "set_context", "key": "k", "value": i},
                        {"op": "append_message", "message_id": format!("{client}-{i}"), "role": "user", "content": "hi"}]});
                    let r = c.request("session.push", json!({"session_id": id, "mutations": [m]})).await;
                    assert_eq!(r["result"]["results"][0]["status"], "applied", "{r}");
                }
                c
            });
        }
        let mut clients = futures::future::join_all(futs).await;
        // Everyone replays the 15 changes it saw (in version order, no gap, no duplicate).
        for c in clients.iter_mut() {
            let mut last = 0;
            while last < 15 {
                let ev = c.event(&ch, "sync.change").await;
                let v = ev["data"]["version"].as_u64().unwrap();
                assert_eq!(v, last + 1, "contiguous versions");
                last = v;
            }
        }
        let rest = read(&a, &owner.tokens.access, &ch).await;
        assert_eq!(rest["version"], 15);
        assert_eq!(rest["fields"]["title"], "web2-5", "largest clock wins (base+52)");
        assert_eq!(rest["messages"].as_array().unwrap().len(), 15);
        for c in clients.iter_mut() {
            let r = c.request("subscribe", json!({"channel": ch})).await;
            assert_eq!(r["result"]["snapshot"]["fields"], rest["fields"]);
        }

        // One client goes away, the others keep editing, it comes back with offline edits.
        drop(clients);
        c1.close().await;
        let mut clients = [&mut c2, &mut c3];
        let r = clients[0].request("session.push", json!({"session_id": id, "mutations": [
            {"client_id": "web1", "mutation_id": 6, "hlc": format!("{}:0", base + 100), "ops": [{"op": "add_tag", "tag": "urgent"}]}]})).await;
        assert_eq!(r["result"]["version"], 16);
        let mut back = connect_authed(&a.base, &owner.tokens.access).await;
        let r = back.request("subscribe", json!({"channel": ch, "since": 15})).await;
        assert_eq!(r["result"]["changes"].as_array().unwrap().len(), 1, "exactly the missed change");
        let offline_edits = json!({"session_id": id, "mutations": [
            {"client_id": "ios", "mutation_id": 6, "hlc": format!("{}:0", base + 40), "ops": [{"op": "set_field", "field": "title", "value": "stale offline title"}]},
            {"client_id": "ios", "mutation_id": 7, "hlc": format!("{}:0", base + 200), "ops": [{"op": "remove_tag", "tag": "urgent"}, {"op": "set_context", "key": "k", "value": "from phone"}]}]});
        let r = back.request("session.push", offline_edits).await;
        assert_eq!(r["result"]["version"], 18);
        let fin = read(&a, &owner.tokens.access, &ch).await;
        assert_eq!(fin["fields"]["title"], "web2-5", "an older offline write does not win");
        assert_eq!(fin["tags"], json!([]), "the later remove wins");
        assert_eq!(fin["context"]["k"], "from phone");
        for c in clients.iter_mut() {
            let r = c.request("subscribe", json!({"channel": ch})).await;
            assert_eq!(r["result"]["snapshot"]["fields"], fin["fields"]);
            assert_eq!(r["result"]["snapshot"]["context"], fin["context"]);
        }
    })
    .await
}
