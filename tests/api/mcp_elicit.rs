//! Elicitation: a real MCP server (FastMCP, tests/mcp/elicit_server.py) asks its user for
//! input during a turn's tool call. The question reaches the user's other connection (on the
//! other instance when Redis is there), the first answer goes back with the form's defaults
//! filled in, the turn shows the call waiting, and a question nobody answers is `cancel`.

use crate::helpers::fixtures::{session, user, Member};
use crate::helpers::mcp::{me, python, until};
use crate::helpers::tools::{routes, start};
use crate::helpers::turns::{follow, Follow};
use crate::helpers::upstream::Upstream;
use crate::helpers::ws::*;
use crate::helpers::*;
use serde_json::{json, Value};
use std::path::PathBuf;
use switchyard::config::Config;

/// The turn's model calls `ask__ask` (once, or twice in parallel).
const ONE: &str = "ask1=openai:tool:ask__ask:question=Sign up?";
const TWO: &str = "ask2=openai:tool:ask__ask:question=First?:ask__ask:question=Second?";

fn setup(c: &mut Config, up: &Upstream, py: &str) {
    routes(c, up);
    c.llm.models.extend([ONE.into(), TWO.into()]);
    let script = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/mcp/elicit_server.py");
    c.mcp.stdio_allowlist = vec![format!("ask={py} {}", script.display())];
}

/// The user with the server `ask` ready; `c` (on `a`) subscribed to the session.
async fn ready(a: &TestApp, who: &Member) -> (String, String, WsClient) {
    let ch = session(a, who).await;
    let user_ch = me(a, &who.tokens.access).await;
    let mut c = connect_authed(&a.base, &who.tokens.access).await;
    let r = c
        .request(
            "mcp.create",
            json!({"server": {"name": "ask", "transport": "stdio", "command": "ask"}}),
        )
        .await;
    assert_eq!(r["type"], "ok", "{r}");
    until(&mut c, &user_ch, "ready").await;
    c.subscribe(&ch).await;
    (ch, user_ch, c)
}

async fn answer(c: &mut WsClient, id: &Value, action: &str, content: Option<Value>) -> Value {
    let mut f = json!({"elicitation_id": id, "action": action});
    if let Some(content) = content {
        f["content"] = content;
    }
    c.request("mcp.elicitation.result", f).await
}

fn tool_text(t: &crate::helpers::turns::Turn) -> Vec<String> {
    t.events("tool.result")
        .iter()
        .map(|r| {
            r["result"]["content"][0]["text"]
                .as_str()
                .unwrap()
                .to_owned()
        })
        .collect()
}

#[tokio::test]
async fn a_question_reaches_the_other_connection_and_its_answer_gets_the_defaults() {
    let py = python().await.display().to_string();
    within(async {
        let up = Upstream::start().await;
        // Two instances sharing Redis when it is there (the answer crosses the bus), else one.
        let cluster = Cluster::new().await;
        let tweak = |c: &mut Config| {
            setup(c, &up, &py);
            // Shorter than the person takes to answer: waiting on them does not count.
            c.mcp.tool_timeout_ms = 300;
        };
        let a = cluster.spawn(tweak).await;
        let b = match redis_url() {
            Some(_) => Some(cluster.spawn(tweak).await),
            None => None,
        };
        let alice = user(&a).await;
        let mallory = user(&a).await;
        let (ch, user_ch, mut c) = ready(&a, &alice).await;
        let other = b.as_ref().unwrap_or(&a);
        let mut phone = connect_authed(&other.base, &alice.tokens.access).await;

        let turn = start(&mut c, &ch, "ask1", json!({})).await;
        let q = phone.event(&user_ch, "mcp.elicitation").await["data"].clone();
        assert_eq!(q["server"], "ask");
        assert_eq!(q["message"], "Sign up?");
        assert_eq!(q["requested_schema"]["properties"]["age"]["default"], 36);
        assert_eq!(q["calls"][0]["turn_id"], turn.as_str());
        let id = q["elicitation_id"].clone();

        let mut m = connect_authed(&other.base, &mallory.tokens.access).await;
        let r = answer(&mut m, &id, "accept", Some(json!({"email": "evil@x"}))).await;
        assert_eq!(r["code"], "forbidden", "someone else cannot answer: {r}");
        for (action, content, why) in [
            (
                "decline",
                json!({"email": "a@b.c"}),
                "content without accept",
            ),
            ("accept", json!({"email": {"x": 1}}), "an object field"),
        ] {
            let f = json!({"elicitation_id": id, "action": action, "content": content});
            let r = phone.request_unchecked("mcp.elicitation.result", f).await;
            assert_eq!(r["code"], "invalid_request", "{why}: {r}");
        }
        for (f, why) in [
            (
                json!({"elicitation_id": id, "action": "maybe"}),
                "an unknown action",
            ),
            (
                json!({"elicitation_id": "nope", "action": "decline"}),
                "an id that is not a UUID",
            ),
            (
                json!({"elicitation_id": id, "action": "accept", "content": {"email": "a\u{0}b"}}),
                "a NUL byte",
            ),
            (
                json!({"elicitation_id": id, "action": "accept", "content": [1, 2]}),
                "content that is not an object",
            ),
        ] {
            let r = phone.request_unchecked("mcp.elicitation.result", f).await;
            assert_eq!(r["code"], "invalid_request", "{why}: {r}");
        }
        // Past the tool's 300 ms deadline, which does not run while the user answers.
        tokio::time::sleep(std::time::Duration::from_millis(800)).await;
        let r = answer(
            &mut phone,
            &id,
            "accept",
            Some(json!({"email": "a@b.c", "age": 40})),
        )
        .await;
        assert_eq!(r["type"], "ok", "{r}");
        let r = answer(&mut phone, &id, "decline", None).await;
        assert_eq!(r["code"], "not_found", "answered once: {r}");
        let ended = phone.event(&user_ch, "mcp.elicitation.ended").await["data"].clone();
        assert_eq!(
            ended,
            json!({"elicitation_id": id, "action": "accept", "timed_out": false})
        );

        let t = follow(&mut c, &ch, &turn, Follow::END).await;
        assert_eq!(t.end["data"]["status"], "complete", "{}", t.end);
        let waiting = t.events("tool.waiting");
        assert_eq!(waiting.len(), 1, "the call showed it waited");
        assert_eq!(waiting[0]["elicitation_id"], id);
        assert_eq!(waiting[0]["call_id"], t.events("tool.call")[0]["call_id"]);
        assert_eq!(
            tool_text(&t),
            [r#"{"age": 40, "email": "a@b.c", "name": "Ada", "news": false}"#],
            "the server got the answer with the defaults of the fields left out"
        );
    })
    .await
}

#[tokio::test]
async fn unanswered_questions_are_cancelled_and_too_many_at_once_are_cancelled_at_once() {
    let py = python().await.display().to_string();
    within(async {
        let up = Upstream::start().await;
        let app = spawn_with(|c| {
            setup(c, &up, &py);
            c.mcp.elicitation_timeout_ms = 700;
            c.mcp.max_pending_elicitations = 1;
        })
        .await;
        let alice = user(&app).await;
        let (ch, user_ch, mut c) = ready(&app, &alice).await;
        let mut phone = connect_authed(&app.base, &alice.tokens.access).await;

        // Two calls at once: one question waits (and times out), the other is over the limit.
        let turn = start(&mut c, &ch, "ask2", json!({})).await;
        let q = phone.event(&user_ch, "mcp.elicitation").await["data"].clone();
        let ended = phone.event(&user_ch, "mcp.elicitation.ended").await["data"].clone();
        assert_eq!(ended["elicitation_id"], q["elicitation_id"]);
        assert_eq!(
            (ended["action"].as_str(), ended["timed_out"].as_bool()),
            (Some("cancel"), Some(true))
        );
        let r = answer(
            &mut phone,
            &q["elicitation_id"],
            "accept",
            Some(json!({"email": "late@x"})),
        )
        .await;
        assert_eq!(r["code"], "not_found", "too late: {r}");
        let t = follow(&mut c, &ch, &turn, Follow::END).await;
        assert_eq!(t.end["data"]["status"], "complete", "{}", t.end);
        assert_eq!(tool_text(&t), ["cancel", "cancel"]);
        // Both calls run on the server that asked, so both show the one admitted question.
        let waiting = t.events("tool.waiting");
        assert!(
            !waiting.is_empty()
                && waiting
                    .iter()
                    .all(|w| w["elicitation_id"] == q["elicitation_id"]),
            "only the admitted question was shown: {waiting:?}"
        );

        // A question larger than mcp.max_elicitation_bytes never reaches the user.
        let small = spawn_with(|c| {
            setup(c, &up, &py);
            c.mcp.max_elicitation_bytes = 64;
        })
        .await;
        let bob = user(&small).await;
        let (bch, _, mut bc) = ready(&small, &bob).await;
        let mut watch = connect_authed(&small.base, &bob.tokens.access).await;
        let turn = start(&mut bc, &bch, "ask1", json!({})).await;
        let t = follow(&mut bc, &bch, &turn, Follow::END).await;
        assert_eq!(tool_text(&t), ["decline"]);
        assert!(t.events("tool.waiting").is_empty());
        // Anything sent to `watch` before the turn ended arrives before this reply.
        watch.request("ping", json!({})).await;
        assert!(
            !watch.pending_has("mcp.elicitation"),
            "the user was not asked"
        );

        // A wrong type in the answer reaches the server as cancel, never as the bad value.
        let turn = start(&mut c, &ch, "ask1", json!({})).await;
        let q = phone.event(&user_ch, "mcp.elicitation").await["data"].clone();
        let r = answer(
            &mut phone,
            &q["elicitation_id"],
            "accept",
            Some(json!({"email": "a@b.c", "age": "old"})),
        )
        .await;
        assert_eq!(r["type"], "ok", "{r}");
        let t = follow(&mut c, &ch, &turn, Follow::END).await;
        assert_eq!(tool_text(&t), ["cancel"]);
    })
    .await
}
