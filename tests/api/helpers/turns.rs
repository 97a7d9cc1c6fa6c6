//! Following one chat turn on a socket: its deltas, its tool events and how it ended.

use super::completions::route_upstream;
use super::fixtures::Member;
use super::upstream::Upstream;
use super::ws::{connect_authed, WsClient};
use super::TestApp;
use serde_json::{json, Value};

/// Everything one turn emitted on the session channel, in order.
pub struct Turn {
    /// `(index, text)` of each `chat.delta`.
    pub deltas: Vec<(u64, String)>,
    /// `tool.call`, `tool.result` and `tool.error` events, whole.
    pub tool_events: Vec<Value>,
    /// The `chat.done` or `chat.error` event; `Null` when following stopped before it.
    pub end: Value,
}

impl Turn {
    pub fn text(&self) -> String {
        self.deltas.iter().map(|(_, t)| t.as_str()).collect()
    }

    /// The `data` of each tool event named `name`.
    pub fn events(&self, name: &str) -> Vec<&Value> {
        self.tool_events
            .iter()
            .filter(|e| e["event"] == name)
            .map(|e| &e["data"])
            .collect()
    }

    /// Indexes are contiguous from `from`.
    pub fn assert_contiguous_from(&self, from: u64) {
        let idx: Vec<u64> = self.deltas.iter().map(|(i, _)| *i).collect();
        let want: Vec<u64> = (from..from + idx.len() as u64).collect();
        assert_eq!(idx, want, "no index missing or doubled");
    }
}

/// How far to follow a turn, and what to do on the way.
#[derive(Default)]
pub struct Follow {
    /// Stop after this many deltas (before the end).
    pub deltas: Option<usize>,
    /// Answer each client-side `tool.call` with this `tool.result` body.
    pub answer: Option<Value>,
}

impl Follow {
    /// To `chat.done` or `chat.error`.
    pub const END: Follow = Follow {
        deltas: None,
        answer: None,
    };

    pub fn deltas(n: usize) -> Self {
        Follow {
            deltas: Some(n),
            answer: None,
        }
    }

    pub fn answering(answer: Value) -> Self {
        Follow {
            deltas: None,
            answer: Some(answer),
        }
    }
}

/// Reads `turn`'s events on `ch` as `how` says; other frames are skipped.
pub async fn follow(c: &mut WsClient, ch: &str, turn: &str, how: Follow) -> Turn {
    let mut t = Turn {
        deltas: Vec::new(),
        tool_events: Vec::new(),
        end: Value::Null,
    };
    loop {
        let v = c.next().await.expect("socket open");
        if v["type"] != "event" || v["channel"] != ch || v["data"]["turn_id"] != turn {
            continue;
        }
        match v["event"].as_str().unwrap() {
            "chat.delta" => {
                t.deltas.push((
                    v["data"]["index"].as_u64().unwrap(),
                    v["data"]["text"].as_str().unwrap().to_owned(),
                ));
                if how.deltas.is_some_and(|n| t.deltas.len() >= n) {
                    return t;
                }
            }
            "chat.done" | "chat.error" => {
                t.end = v;
                return t;
            }
            e if e.starts_with("tool.") => {
                if let (true, Some(a)) = (
                    e == "tool.call" && v["data"]["side"] == "client",
                    &how.answer,
                ) {
                    let mut f = a.clone();
                    f["turn_id"] = json!(turn);
                    f["call_id"] = v["data"]["call_id"].clone();
                    let r = c.request("tool.result", f).await;
                    assert_eq!(r["type"], "ok", "{r}");
                }
                t.tool_events.push(v);
            }
            _ => {}
        }
    }
}

/// The session's assistant message `id`, as a fresh subscriber's snapshot shows it.
pub async fn message(app: &TestApp, who: &Member, ch: &str, id: &str) -> Value {
    let mut c = connect_authed(&app.base, &who.tokens.access).await;
    let r = c.subscribe(ch).await;
    let msgs = r["result"]["snapshot"]["messages"]
        .as_array()
        .unwrap()
        .clone();
    c.close().await;
    msgs.into_iter()
        .find(|m| m["id"] == id)
        .expect("message in snapshot")
}

pub async fn send(c: &mut WsClient, ch: &str, model: &str, text: &str) -> Value {
    let r = c
        .request(
            "chat.send",
            json!({"session_id": ch.strip_prefix("session:").unwrap(), "message": text, "model": model}),
        )
        .await;
    assert_eq!(r["type"], "ok", "{r}");
    r["result"].clone()
}

/// The completion routes, and `oa-slow40`: 40 deltas, 25 ms apart.
pub fn slow_routes(c: &mut switchyard::config::Config, up: &Upstream) {
    route_upstream(c, up);
    c.llm.models.push("oa-slow40=openai:slow:40:25".into());
}
