//! Client-side tools in chat turns: declared in `chat.send`, forwarded as `tool.call`, answered
//! by the client's `tool.result` (only by its user, once) or timed out; bounded tool rounds and
//! refused declarations.

use crate::helpers::fixtures::{session, user};
use crate::helpers::tools::{answer, client_setup, pick_file, records, start};
use crate::helpers::turns::{follow, Follow};
use crate::helpers::ws::*;
use crate::helpers::*;
use serde_json::json;

#[tokio::test]
async fn a_client_tool_round_trips_and_only_its_user_answers_once() {
    within(async {
        let (up, app, alice, ch, mut c) = client_setup(|c| c.chat.max_tool_result_bytes = 64).await;
        let turn = start(&mut c, &ch, "t-client", pick_file()).await;
        let call = c.event(&ch, "tool.call").await["data"].clone();
        assert_eq!(call["side"], "client");
        assert!(call["server"].is_null());
        assert_eq!(call["arguments"], json!({"prompt": "which"}));
        let call_id = call["call_id"].as_str().unwrap();
        // Someone else cannot answer it; bad answers change nothing.
        let mallory = user(&app).await;
        let mut m = connect_authed(&app.base, &mallory.tokens.access).await;
        let r = answer(&mut m, &turn, call_id, "evil.rs").await;
        assert_eq!(r["code"], "forbidden", "{r}");
        let r = c
            .request_unchecked(
                "tool.result",
                json!({"turn_id": turn, "call_id": call_id, "result": "a", "error": "b"}),
            )
            .await;
        assert_eq!(r["code"], "invalid_request", "{r}");
        let r = answer(&mut c, &turn, "call_unknown", "x").await;
        assert_eq!(r["code"], "not_found", "{r}");
        let r = c
            .request_unchecked(
                "tool.result",
                json!({"turn_id": "nope", "call_id": call_id, "result": "x"}),
            )
            .await;
        assert_eq!(r["code"], "invalid_request", "{r}");
        let r = answer(&mut c, &turn, call_id, "src/main.rs").await;
        assert_eq!(r["type"], "ok", "{r}");
        let again = answer(&mut c, &turn, call_id, "other.rs").await;
        assert_eq!(again["code"], "not_found", "answered once");
        let t = follow(&mut c, &ch, &turn, Follow::END).await;
        assert_eq!(t.events("tool.result")[0]["result"], "src/main.rs");
        assert_eq!(t.text(), "Checking. The tool said: src/main.rs");
        assert_eq!(
            up.last_body()["messages"]
                .as_array()
                .unwrap()
                .last()
                .unwrap()["content"],
            "src/main.rs"
        );
        let recs = records(&app, &alice, &ch).await;
        assert_eq!(
            (recs[0]["status"].as_str(), recs[0]["server"].as_str()),
            (Some("ok"), None)
        );
        assert_eq!(recs[0]["result"], "src/main.rs");
        // An error answer reaches the model as the tool's failure.
        let turn = start(&mut c, &ch, "t-client", pick_file()).await;
        let t = follow(
            &mut c,
            &ch,
            &turn,
            Follow::answering(json!({"error": "dismissed"})),
        )
        .await;
        assert_eq!(t.events("tool.error")[0]["code"], "tool_failed");
        assert_eq!(
            t.text(),
            "Checking. The tool said: error (tool_failed): dismissed"
        );
        // Past chat.max_tool_result_bytes the result is cut, for the model and the record.
        let turn = start(&mut c, &ch, "t-client", pick_file()).await;
        let t = follow(
            &mut c,
            &ch,
            &turn,
            Follow::answering(json!({"result": "x".repeat(200)})),
        )
        .await;
        let cut = format!("{}…[truncated]", "x".repeat(64));
        assert_eq!(
            t.events("tool.result")[0]["result"],
            json!({"truncated": true, "text": cut})
        );
        assert_eq!(t.text(), format!("Checking. The tool said: {cut}"));
        // Cancelled while waiting for the client: the call and the turn end at once.
        let turn = start(&mut c, &ch, "t-client", pick_file()).await;
        c.event(&ch, "tool.call").await;
        let r = c.request("chat.cancel", json!({"turn_id": turn})).await;
        assert_eq!(r["type"], "ok", "{r}");
        let t = follow(&mut c, &ch, &turn, Follow::END).await;
        assert_eq!(t.events("tool.error")[0]["code"], "cancelled");
        assert_eq!(t.end["data"]["status"], "cancelled");
        let recs = records(&app, &alice, &ch).await;
        assert_eq!(recs.len(), 4);
        assert_eq!(recs[3]["status"], "cancelled");
    })
    .await
}

#[tokio::test]
async fn a_client_that_never_answers_times_out_and_tool_rounds_are_bounded() {
    within(async {
        let (up, app, alice, ch, mut c) = client_setup(|c| {
            c.chat.client_tool_timeout_ms = 300;
            c.chat.max_tool_rounds = 2;
        })
        .await;
        let turn = start(&mut c, &ch, "t-client", pick_file()).await;
        let t = follow(&mut c, &ch, &turn, Follow::END).await;
        assert_eq!(t.events("tool.error")[0]["code"], "tool_timeout");
        assert_eq!(t.end["data"]["status"], "complete");
        let call_id = t.events("tool.call")[0]["call_id"].as_str().unwrap().to_owned();
        let late = answer(&mut c, &turn, &call_id, "late").await;
        assert_eq!(late["code"], "not_found", "{late}");
        assert_eq!(records(&app, &alice, &ch).await[0]["status"], "timeout");
        // A model that always wants the tool: two rounds, then it must answer in text.
        let before = up.requests().len();
        let turn = start(&mut c, &ch, "t-loop", pick_file()).await;
        let t = follow(&mut c, &ch, &turn, Follow::answering(json!({"result": "x"}))).await;
        assert_eq!(t.events("tool.call").len(), 2);
        assert_eq!(t.text(), "Checking. Checking. done after 2 tool results");
        let reqs = up.requests();
        assert_eq!(reqs.len() - before, 3);
        assert_eq!(reqs.last().unwrap().2["tool_choice"], "none");
        // Client tools are checked before anything is written.
        let bad = json!({"tools": [{"name": "a__b"}]});
        let f = json!({"session_id": ch.strip_prefix("session:").unwrap(), "message": "x", "model": "t-client", "tools": bad["tools"]});
        let r = c.request_unchecked("chat.send", f).await;
        assert_eq!(r["code"], "invalid_request", "{r}");
        assert!(r["message"].as_str().unwrap().starts_with("tools[0].name"), "{r}");
    })
    .await
}

#[tokio::test]
async fn too_many_client_tools_are_refused() {
    within(async {
        let app = spawn_with(|c| c.chat.max_client_tools = 1).await;
        let alice = user(&app).await;
        let ch = session(&app, &alice).await;
        let mut c = connect_authed(&app.base, &alice.tokens.access).await;
        let r = c
            .request(
                "chat.send",
                json!({"session_id": ch.strip_prefix("session:").unwrap(), "message": "x",
                       "tools": [{"name": "a"}, {"name": "b"}]}),
            )
            .await;
        assert_eq!(r["code"], "invalid_request", "{r}");
        assert!(
            r["message"]
                .as_str()
                .unwrap()
                .contains("at most 1 client tools"),
            "{r}"
        );
        let snap = c.subscribe(&ch).await;
        assert_eq!(
            snap["result"]["snapshot"]["messages"],
            json!([]),
            "nothing written"
        );
    })
    .await
}
