//! Tools in chat turns: the test upstream (OpenAI wire format) asks for a tool, switchyard runs
//! it through a real FastMCP server over stdio (or forwards it to the client), emits
//! `tool.call` / `tool.result` / `tool.error`, feeds the answer back, and the model's follow-up
//! text ends the turn; every call is recorded and listed.

use crate::helpers::fixtures::{session, user, Member};
use crate::helpers::mcp::python;
use crate::helpers::mcp::{add_fast, allow, until};
use crate::helpers::tools::*;
use crate::helpers::turns::{follow, Follow};
use crate::helpers::upstream::Upstream;
use crate::helpers::ws::*;
use crate::helpers::*;
use serde_json::json;

/// The user, their session, a socket subscribed to it and to the user channel, FastMCP ready.
async fn ready_user(app: &TestApp) -> (Member, String, WsClient) {
    let alice = user(app).await;
    let ch = session(app, &alice).await;
    let mut c = connect_authed(&app.base, &alice.tokens.access).await;
    add_fast(app, &alice.tokens.access).await;
    until(&mut c, &format!("user:{}", alice.user_id), "ready").await;
    c.subscribe(&ch).await;
    (alice, ch, c)
}

#[tokio::test]
async fn a_turn_calls_an_mcp_tool_and_continues_with_its_answer() {
    let py = python().await.display().to_string();
    within(async {
        let up = Upstream::start().await;
        let marker = format!("m{}", uuid::Uuid::new_v4().simple());
        let app = spawn_with(|c| {
            routes(c, &up);
            allow(c, &py, &marker);
        })
        .await;
        let (alice, ch, mut c) = ready_user(&app).await;
        let turn = start(&mut c, &ch, "t-add", json!({})).await;
        let t = follow(&mut c, &ch, &turn, Follow::END).await;
        assert_eq!(t.end["event"], "chat.done", "{}", t.end);
        assert_eq!(t.end["data"]["status"], "complete");
        let call = t.events("tool.call")[0];
        assert_eq!(call["name"], "fast__add");
        assert_eq!(
            (call["server"].as_str(), call["tool"].as_str()),
            (Some("fast"), Some("add"))
        );
        assert_eq!(call["side"], "mcp");
        assert_eq!(call["arguments"], json!({"a": 2, "b": 3}));
        let result = t.events("tool.result")[0];
        assert_eq!(result["call_id"], call["call_id"]);
        assert_eq!(
            result["result"]["content"][0]["text"], "5",
            "the real server's answer"
        );
        // The model's text before the call and its follow-up are one message.
        assert_eq!(t.text(), "Checking. The tool said: 5");
        // The upstream got the tools, then the call and its result.
        let reqs = up.requests();
        let (first, second) = (&reqs[reqs.len() - 2].2, &reqs[reqs.len() - 1].2);
        let offered: Vec<&str> = first["tools"]
            .as_array()
            .unwrap()
            .iter()
            .map(|t| t["function"]["name"].as_str().unwrap())
            .collect();
        assert_eq!(offered, ["fast__add", "fast__echo", "fast__sleep"]);
        let msgs = second["messages"].as_array().unwrap();
        let n = msgs.len();
        assert_eq!(msgs[n - 2]["role"], "assistant");
        assert_eq!(
            msgs[n - 2]["tool_calls"][0]["function"]["name"],
            "fast__add"
        );
        assert_eq!(msgs[n - 1]["role"], "tool");
        assert_eq!(msgs[n - 1]["tool_call_id"], call["call_id"]);
        assert_eq!(msgs[n - 1]["content"], "5");
        // Recorded, over REST and the socket alike.
        let recs = records(&app, &alice, &ch).await;
        assert_eq!(recs.len(), 1);
        let r = &recs[0];
        assert_eq!(r["turn_id"], turn.as_str());
        assert_eq!(
            (r["name"].as_str(), r["server"].as_str(), r["tool"].as_str()),
            (Some("fast__add"), Some("fast"), Some("add"))
        );
        assert_eq!(r["arguments"], json!({"a": 2, "b": 3}));
        assert_eq!(r["result"]["content"][0]["text"], "5");
        assert_eq!(r["status"], "ok");
        assert!(r["duration_ms"].as_u64().is_some());
        let listed = c
            .request(
                "tool.list",
                json!({"session_id": ch.strip_prefix("session:").unwrap()}),
            )
            .await;
        assert_eq!(listed["result"]["data"], json!(recs));
        // The next turn's conversation holds the call, its result, then the text.
        let next = start(&mut c, &ch, "oa-text", json!({})).await;
        follow(&mut c, &ch, &next, Follow::END).await;
        let msgs = up.last_body()["messages"].as_array().unwrap().clone();
        let i = msgs
            .iter()
            .position(|m| m["tool_calls"].is_array())
            .expect("the earlier call is replayed");
        assert_eq!(msgs[i]["role"], "assistant");
        assert_eq!(msgs[i]["tool_calls"][0]["id"], call["call_id"]);
        assert_eq!(msgs[i]["tool_calls"][0]["function"]["name"], "fast__add");
        assert_eq!(
            (
                msgs[i + 1]["role"].as_str(),
                msgs[i + 1]["content"].as_str()
            ),
            (Some("tool"), Some("5"))
        );
        assert_eq!(msgs[i + 1]["tool_call_id"], call["call_id"]);
        assert_eq!(msgs[i + 2]["content"], "Checking. The tool said: 5");
        // Two calls in one round run together; both answers reach the model in call order.
        let turn = start(&mut c, &ch, "t-two", json!({})).await;
        let t = follow(&mut c, &ch, &turn, Follow::END).await;
        assert_eq!(t.events("tool.result").len(), 2);
        assert_eq!(t.text(), "Checking. The tool said: 2 | hi");
        // A name never offered, or a user who is not a member: a clear answer, nothing called.
        let turn = start(&mut c, &ch, "t-bad", json!({})).await;
        let t = follow(&mut c, &ch, &turn, Follow::END).await;
        assert_eq!(t.events("tool.error")[0]["code"], "unknown_tool");
        assert_eq!(t.end["data"]["status"], "complete");
        let mallory = user(&app).await;
        let id = ch.strip_prefix("session:").unwrap();
        let r = app
            .get_auth(&format!("/v1/sessions/{id}/tools"), &mallory.tokens.access)
            .await;
        assert_eq!(r.status(), 404);
    })
    .await
}

#[tokio::test]
async fn a_hanging_tool_times_out_into_tool_error_and_the_turn_still_ends() {
    let py = python().await.display().to_string();
    within(async {
        let up = Upstream::start().await;
        let marker = format!("m{}", uuid::Uuid::new_v4().simple());
        let app = spawn_with(|c| {
            routes(c, &up);
            allow(c, &py, &marker);
            c.mcp.tool_timeout_ms = 400;
        })
        .await;
        let (alice, ch, mut c) = ready_user(&app).await;
        let turn = start(&mut c, &ch, "t-sleep", json!({})).await;
        let t = follow(&mut c, &ch, &turn, Follow::END).await;
        let err = t.events("tool.error")[0];
        assert_eq!(err["code"], "tool_timeout");
        assert!(err["duration_ms"].as_u64().unwrap() >= 400);
        assert!(t.events("tool.result").is_empty());
        assert_eq!(t.end["event"], "chat.done");
        assert_eq!(t.end["data"]["status"], "complete");
        assert!(
            t.text()
                .starts_with("Checking. The tool said: error (tool_timeout)"),
            "{}",
            t.text()
        );
        let recs = records(&app, &alice, &ch).await;
        assert_eq!(recs[0]["status"], "timeout");
        assert!(recs[0]["result"].is_null());
    })
    .await
}

#[tokio::test]
async fn tool_calls_cross_instances_to_the_mcp_holder_and_answers_cross_back() {
    if redis_url().is_none() {
        eprintln!("tool_calls_cross_instances_to_the_mcp_holder_and_answers_cross_back: needs TEST_REDIS_URL (Redis pass)");
        return;
    }
    let py = python().await.display().to_string();
    within(async {
        let up = Upstream::start().await;
        let marker = format!("m{}", uuid::Uuid::new_v4().simple());
        let cluster = Cluster::new().await;
        let a = cluster
            .spawn(|c| {
                routes(c, &up);
                allow(c, &py, &marker);
            })
            .await;
        let b = cluster
            .spawn(|c| {
                routes(c, &up);
                allow(c, &py, &marker);
            })
            .await;
        // The user's MCP clients run on A (the only instance they are connected to at first).
        let (alice, ch, mut on_a) = ready_user(&a).await;
        let mut on_b = connect_authed(&b.base, &alice.tokens.access).await;
        on_b.subscribe(&ch).await;
        // The turn runs on B; its MCP call goes to A and the answer comes back.
        let turn = start(&mut on_b, &ch, "t-add", json!({})).await;
        let t = follow(&mut on_b, &ch, &turn, Follow::END).await;
        assert_eq!(
            t.events("tool.result")[0]["result"]["content"][0]["text"],
            "5",
            "{:?}",
            t.tool_events
        );
        assert_eq!(t.text(), "Checking. The tool said: 5");
        // A client tool of a turn on B, answered from the user's connection on A.
        let turn = start(&mut on_b, &ch, "t-client", pick_file()).await;
        let t = follow(
            &mut on_a,
            &ch,
            &turn,
            Follow::answering(json!({"result": "from-a.rs"})),
        )
        .await;
        assert_eq!(t.text(), "Checking. The tool said: from-a.rs");
        let recs = records(&b, &alice, &ch).await;
        assert_eq!(recs.len(), 2);
    })
    .await
}
