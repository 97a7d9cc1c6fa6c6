//! The sync write path against what a convergence check and an attacker found: snapshots that
//! did not match their version, answers that depended on grouping, NUL text, replicas that
//! could not merge like the server, creation titles outside the synced state, unknown ops that
//! failed a whole push, clocks from the future, and unbounded sessions.

use crate::helpers::fixtures::*;
use crate::helpers::fixtures::{session, share, user, Member};
use crate::helpers::replica::{apply_change, doc_from_snapshot, visible};
use crate::helpers::ws::*;
use crate::helpers::*;
use serde_json::{json, Value};

/// Every change of the session, from a subscribe with `since: 0`.
async fn all_changes(app: &TestApp, who: &Member, ch: &str) -> Vec<Value> {
    let mut c = connect_authed(&app.base, &who.tokens.access).await;
    let r = c
        .request("subscribe", json!({"channel": ch, "since": 0}))
        .await;
    r["result"]["changes"].as_array().expect("changes").clone()
}

#[tokio::test]
async fn a_snapshot_read_racing_pushes_is_exactly_the_replay_up_to_its_version() {
    within(async {
        let app = spawn_app().await;
        let owner = user(&app).await;
        let ch = session(&app, &owner).await;
        let base = now_ms();
        let writer = {
            let (app_http, url, token) = (
                app.http.clone(),
                app.url(&format!("/v1/sessions/{}/mutations", id_of(&ch))),
                owner.tokens.access.clone(),
            );
            tokio::spawn(async move {
                for i in 1..=60u64 {
                    let m = json!({"client_id": "w", "mutation_id": i, "hlc": format!("{}:0", base + i), "ops": [
                        {"op": "append_message", "message_id": format!("m{i}"), "role": "user", "content": format!("c{i}")},
                        {"op": "set_context", "key": format!("k{}", i % 7), "value": i}]});
                    let r = app_http.post(&url).bearer_auth(&token).json(&json!({"mutations": [m]})).send().await.unwrap();
                    assert_eq!(r.status(), 200);
                }
            })
        };
        let mut snaps = Vec::new();
        while !writer.is_finished() {
            snaps.push(snapshot(&app, &owner, &ch).await);
        }
        writer.await.unwrap();
        snaps.push(snapshot(&app, &owner, &ch).await);
        let changes = all_changes(&app, &owner, &ch).await;
        assert_eq!(changes.len(), 60);
        for s in &snaps {
            let v = s["version"].as_u64().unwrap() as usize;
            let mut replay = switchyard::sync::merge::Doc::default();
            for c in &changes[..v] {
                apply_change(&mut replay, c);
            }
            assert_eq!(
                visible(&doc_from_snapshot(s)),
                visible(&replay),
                "snapshot labelled {v} is the replay of changes 1..={v}"
            );
        }
    })
    .await
}

#[tokio::test]
async fn a_skipped_id_on_one_connection_never_refuses_the_right_id_on_another() {
    within(async {
        let app = spawn_app().await;
        let owner = user(&app).await;
        let ch = session(&app, &owner).await;
        let session_id = id_of(&ch).to_owned();
        let mut a = connect_authed(&app.base, &owner.tokens.access).await;
        let mut b = connect_authed(&app.base, &owner.tokens.access).await;
        let base = now_ms();
        for round in 0..20u64 {
            let client = format!("x{round}");
            let two = json!({"session_id": session_id, "mutations": [tag(&client, 2, base + round, "b")]});
            let one = json!({"session_id": session_id, "mutations": [tag(&client, 1, base + round, "a")]});
            let (ra, rb) = tokio::join!(a.request("session.push", two), b.request("session.push", one));
            let first = &rb["result"]["results"][0];
            assert_eq!(first["status"], "applied", "id 1 is the right next id: {rb}");
            let second = &ra["result"]["results"][0];
            assert!(
                second["status"] == "applied" || second == &json!({"status": "out_of_order", "client_id": client, "mutation_id": 2, "expected": 1}),
                "{ra}"
            );
        }
    })
    .await
}

#[tokio::test]
async fn nul_text_is_refused_alone_and_never_fails_the_pushes_grouped_with_it() {
    within(async {
        let app = spawn_app().await;
        let owner = user(&app).await;
        let ch = session(&app, &owner).await;
        let mut others = Vec::new();
        for _ in 0..4 {
            let m = user(&app).await;
            share(&app, &owner, &ch, &m, "editor").await;
            others.push(m);
        }
        let base = now_ms();
        let evil = json!([
            append("evil", 1, base, "bad", "a\u{0}b"),
            {"client_id": "evil", "mutation_id": 2, "hlc": format!("{base}:1"), "ops": [{"op": "set_context", "key": "k\u{0}", "value": 1}]},
            {"client_id": "evil", "mutation_id": 3, "hlc": format!("{base}:2"), "ops": [{"op": "set_field", "field": "title", "value": "t\u{0}"}]},
            tag("evil", 4, base, "fine")
        ]);
        let mut tasks = Vec::new();
        for (n, m) in others.iter().enumerate() {
            for i in 1..=20u64 {
                let body = json!([append(&format!("c{n}-{i}"), 1, base + i, &format!("c{n}-{i}"), "ok")]);
                let (http, url, token) = (app.http.clone(), app.url(&format!("/v1/sessions/{}/mutations", id_of(&ch))), m.tokens.access.clone());
                tasks.push(tokio::spawn(async move {
                    let r = http.post(url).bearer_auth(token).json(&json!({"mutations": body})).send().await.unwrap();
                    (r.status().as_u16(), r.json::<Value>().await.unwrap())
                }));
            }
        }
        let (status, r) = push(&app, &owner, &ch, evil).await;
        assert_eq!(status, 200, "{r}");
        for i in 0..3 {
            assert_eq!(r["results"][i]["status"], "refused", "{r}");
            assert_eq!(r["results"][i]["code"], "invalid");
            assert!(r["results"][i]["error"].as_str().unwrap().contains("NUL"), "{r}");
        }
        assert_eq!(r["results"][3]["status"], "applied", "the client's queue drains: {r}");
        for t in tasks {
            let (status, r) = t.await.unwrap();
            assert_eq!(status, 200, "{r}");
            assert_eq!(r["results"][0]["status"], "applied", "{r}");
        }
        let s = snapshot(&app, &owner, &ch).await;
        assert_eq!(s["messages"].as_array().unwrap().len(), 80);
        assert_eq!(s["tags"], json!(["fine"]));

        // Elsewhere, text that would reach a column is refused with a clear error.
        let r = app.http.post(app.url("/v1/projects")).bearer_auth(&owner.tokens.access)
            .json(&json!({"name": "p\u{0}"})).send().await.unwrap();
        assert!(error_of(r, reqwest::StatusCode::BAD_REQUEST).await["message"].as_str().unwrap().contains("NUL"));
        let mut c = connect_authed(&app.base, &owner.tokens.access).await;
        let r = c.request_unchecked("chat.send", json!({"session_id": id_of(&ch), "message": "x\u{0}"})).await;
        assert_eq!(r["code"], "invalid_request", "{r}");
    })
    .await
}

#[tokio::test]
async fn a_replica_from_a_snapshot_and_later_changes_merges_like_the_server() {
    within(async {
        let app = spawn_app().await;
        let (a, c) = (user(&app).await, user(&app).await);
        let ch = session(&app, &a).await;
        share(&app, &a, &ch, &c, "editor").await;
        let now = now_ms();
        // A's clock runs 20 s ahead; C writes after, with an older clock.
        let (_, r) = push(&app, &a, &ch, json!([{"client_id": "a", "mutation_id": 1, "hlc": format!("{}:0", now + 20_000),
            "ops": [{"op": "set_field", "field": "title", "value": "A"}, {"op": "delete_context", "key": "branch"}]}])).await;
        assert_eq!(r["results"][0]["status"], "applied", "{r}");
        let mut sub = connect_authed(&app.base, &c.tokens.access).await;
        let joined = sub.subscribe(&ch).await;
        let snap = &joined["result"]["snapshot"];
        assert_eq!(joined["result"]["reason"], "requested");
        assert!(snap["stamps"]["f:title"]["hlc"].as_str().unwrap().starts_with(&(now + 20_000).to_string()));
        assert!(snap["stamps"]["c:branch"].is_object(), "tombstones carry their stamp: {snap}");
        let server_hlc: switchyard::sync::hlc::Hlc = joined["result"]["server_hlc"].as_str().unwrap().parse().unwrap();
        assert!(server_hlc.ms >= now + 20_000, "server_hlc moved past every accepted clock");
        let mut replica = doc_from_snapshot(snap);

        let (_, r) = push(&app, &c, &ch, json!([{"client_id": "c", "mutation_id": 1, "hlc": format!("{now}:0"),
            "ops": [{"op": "set_field", "field": "title", "value": "C"}, {"op": "set_context", "key": "branch", "value": "main"},
                    {"op": "add_tag", "tag": "x"}]}])).await;
        assert_eq!(r["results"][0]["status"], "applied", "{r}");
        let change = sub.event(&ch, "sync.change").await;
        apply_change(&mut replica, &change["data"]);
        let server = snapshot(&app, &a, &ch).await;
        assert_eq!(server["fields"]["title"], "A", "the later clock wins");
        assert!(server["context"].get("branch").is_none(), "the tombstone beats the older write");
        assert_eq!(visible(&replica), visible(&doc_from_snapshot(&server)), "replica equals the server");
    })
    .await
}

#[tokio::test]
async fn a_title_given_at_creation_is_the_synced_title() {
    within(async {
        let app = spawn_app().await;
        let owner = user(&app).await;
        let r = app.http.post(app.url("/v1/sessions")).bearer_auth(&owner.tokens.access)
            .json(&json!({"title": "Plan the parser rewrite"})).send().await.unwrap();
        assert_eq!(r.status(), 201);
        let created: Value = r.json().await.unwrap();
        assert_eq!(created["version"], 1);
        let ch = format!("session:{}", created["id"].as_str().unwrap());
        let s = snapshot(&app, &owner, &ch).await;
        assert_eq!((s["version"].as_u64(), s["fields"]["title"].as_str()), (Some(1), Some("Plan the parser rewrite")));
        let changes = all_changes(&app, &owner, &ch).await;
        assert_eq!(changes[0]["client_id"], "~create");
        assert_eq!(changes[0]["ops"][1], json!({"op": "set_field", "field": "title", "value": "Plan the parser rewrite"}));
        let listed: Value = app.get_auth("/v1/sessions", &owner.tokens.access).await.json().await.unwrap();
        assert_eq!(listed["data"][0]["title"], "Plan the parser rewrite");

        // The socket's offline creation lands the same way.
        let id = uuid::Uuid::now_v7().to_string();
        let mut c = connect_authed(&app.base, &owner.tokens.access).await;
        let r = c.request("session.push", json!({"session_id": id, "mutations": [{"client_id": "ios", "mutation_id": 1,
            "hlc": format!("{}:0", now_ms()), "ops": [{"op": "create_session"}, {"op": "set_field", "field": "title", "value": "Offline"}]}]})).await;
        assert_eq!(r["result"]["results"][0]["version"], 1, "{r}");
        let s = snapshot(&app, &owner, &format!("session:{id}")).await;
        assert_eq!((s["version"].as_u64(), s["fields"]["title"].as_str()), (Some(1), Some("Offline")));
    })
    .await
}

#[tokio::test]
async fn an_unknown_op_refuses_only_its_own_mutation() {
    within(async {
        let app = spawn_app().await;
        let owner = user(&app).await;
        let ch = session(&app, &owner).await;
        let base = now_ms();
        let batch = json!([
            tag("new", 1, base, "before"),
            {"client_id": "new", "mutation_id": 2, "hlc": format!("{base}:1"), "ops": [{"op": "set_reaction", "message_id": "m", "emoji": "+1"}]},
            {"client_id": "new", "mutation_id": 3, "hlc": format!("{base}:2"), "ops": [{"op": "set_field", "field": "mood", "value": 1}]},
            tag("new", 4, base, "after")
        ]);
        let (status, r) = push(&app, &owner, &ch, batch).await;
        assert_eq!(status, 200, "{r}");
        let res = r["results"].as_array().unwrap();
        assert_eq!(res[0]["status"], "applied");
        assert_eq!((res[1]["status"].as_str(), res[1]["code"].as_str()), (Some("refused"), Some("unknown_op")), "{r}");
        assert!(res[1]["error"].as_str().unwrap().contains("set_reaction"));
        assert_eq!((res[2]["status"].as_str(), res[2]["code"].as_str()), (Some("refused"), Some("invalid")), "{r}");
        assert_eq!(res[3]["status"], "applied");
        // The client's id advanced past the refusals; a retry gets the same answer.
        let (_, r) = push(&app, &owner, &ch, json!([{"client_id": "new", "mutation_id": 2, "hlc": "1:0", "ops": [{"op": "set_reaction"}]}, tag("new", 5, base, "next")])).await;
        assert_eq!(r["results"][0]["code"], "unknown_op");
        assert_eq!(r["results"][1]["status"], "applied");
        assert_eq!(snapshot(&app, &owner, &ch).await["tags"], json!(["after", "before", "next"]));
    })
    .await
}

#[tokio::test]
async fn since_from_the_future_answers_a_snapshot_that_says_so() {
    within(async {
        let app = spawn_app().await;
        let owner = user(&app).await;
        let ch = session(&app, &owner).await;
        push(&app, &owner, &ch, json!([tag("w", 1, now_ms(), "a")])).await;
        let mut c = connect_authed(&app.base, &owner.tokens.access).await;
        let r = c
            .request("subscribe", json!({"channel": ch, "since": 40}))
            .await;
        assert_eq!(r["result"]["reason"], "ahead", "{r}");
        assert_eq!(r["result"]["snapshot"]["version"], 1);
    })
    .await
}

#[tokio::test]
async fn an_absurd_clock_counter_is_refused_and_the_server_clock_never_goes_back() {
    within(async {
        let app = spawn_app().await;
        let owner = user(&app).await;
        let ch = session(&app, &owner).await;
        let now = now_ms();
        let (_, r) = push(&app, &owner, &ch, json!([{"client_id": "h", "mutation_id": 1, "hlc": format!("{now}:{}", u32::MAX), "ops": [{"op": "add_tag", "tag": "x"}]}])).await;
        assert_eq!((r["results"][0]["status"].as_str(), r["results"][0]["code"].as_str()), (Some("refused"), Some("invalid")), "{r}");
        let (_, r) = push(&app, &owner, &ch, json!([{"client_id": "h", "mutation_id": 2, "hlc": format!("{now}:999999"), "ops": [{"op": "add_tag", "tag": "y"}]}])).await;
        assert_eq!(r["results"][0]["status"], "applied", "{r}");
        let hlc: switchyard::sync::hlc::Hlc = r["server_hlc"].as_str().unwrap().parse().unwrap();
        assert!(hlc > switchyard::sync::hlc::Hlc { ms: now, counter: 999_999 }, "{hlc}");
    })
    .await
}
