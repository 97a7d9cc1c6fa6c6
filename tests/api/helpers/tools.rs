//! Chat turns with tools: routes to the upstream's tool scenarios, starting a turn, answering
//! a client tool, and the tool records REST lists.

use super::completions::route_upstream;
use super::fixtures::{session, user, Member};
use super::upstream::Upstream;
use super::ws::*;
use super::*;
use serde_json::{json, Value};
use switchyard::config::Config;

const ROUTES: &[&str] = &[
    "t-add=openai:tool:fast__add:a=2,b=3",
    "t-sleep=openai:tool:fast__sleep:seconds=30",
    "t-two=openai:tool:fast__add:a=1,b=1:fast__echo:text=hi",
    "t-bad=openai:tool:fast__nope:x=1",
    "t-client=openai:tool:pick_file:prompt=which",
    "t-loop=openai:toolloop:pick_file",
];

pub fn routes(c: &mut Config, up: &Upstream) {
    route_upstream(c, up);
    c.llm.models.extend(ROUTES.iter().map(|s| s.to_string()));
}

pub async fn start(c: &mut WsClient, ch: &str, model: &str, extra: Value) -> String {
    let mut f = json!({"session_id": ch.strip_prefix("session:").unwrap(), "message": "go", "model": model});
    for (k, v) in extra.as_object().unwrap() {
        f[k] = v.clone();
    }
    let r = c.request("chat.send", f).await;
    assert_eq!(r["type"], "ok", "{r}");
    r["result"]["turn_id"].as_str().unwrap().to_owned()
}

pub async fn records(app: &TestApp, who: &Member, ch: &str) -> Vec<Value> {
    let id = ch.strip_prefix("session:").unwrap();
    let r = app
        .get_auth(&format!("/v1/sessions/{id}/tools"), &who.tokens.access)
        .await;
    assert_eq!(r.status(), 200);
    r.json::<Value>().await.unwrap()["data"]
        .as_array()
        .unwrap()
        .clone()
}

/// Sends `tool.result` for `call_id` of `turn` with `result` (checked against the schema).
pub async fn answer(c: &mut WsClient, turn: &str, call_id: &str, result: &str) -> Value {
    c.request(
        "tool.result",
        json!({"turn_id": turn, "call_id": call_id, "result": result}),
    )
    .await
}

pub fn pick_file() -> Value {
    json!({"tools": [{"name": "pick_file", "description": "Ask the user for a file",
        "parameters": {"type": "object", "properties": {"prompt": {"type": "string"}}}}]})
}

/// A server routed to a fresh test upstream, a user, their session and a subscribed socket.
pub async fn client_setup(
    tweak: impl FnOnce(&mut Config),
) -> (Upstream, TestApp, Member, String, WsClient) {
    let up = Upstream::start().await;
    let app = spawn_with(|c| {
        routes(c, &up);
        tweak(c);
    })
    .await;
    let alice = user(&app).await;
    let ch = session(&app, &alice).await;
    let mut c = connect_authed(&app.base, &alice.tokens.access).await;
    c.subscribe(&ch).await;
    (up, app, alice, ch, c)
}
