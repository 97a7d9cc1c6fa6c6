//! Following one chat turn on a socket: its deltas, its tool events and how it ended.

use super::completions::route_upstream;
use super::fixtures::Member;
use super::fixtures::{session, share, user};
use super::upstream::Upstream;
use super::ws::{connect_authed, WsClient};
use super::TestApp;
use serde_json::{json, Value};
use std::time::Duration;

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

/// Two watchers (possibly on two instances): one joins mid-turn; both end with the final text,
/// no index missing or doubled; then a cancel from the second instance stops the next turn.
pub async fn watch_join_and_cancel(a: &TestApp, b: &TestApp, up: &Upstream) {
    let (alice, bob) = (user(a).await, user(a).await);
    let ch = session(a, &alice).await;
    share(a, &alice, &ch, &bob, "editor").await;
    let mut on_a = connect_authed(&a.base, &alice.tokens.access).await;
    on_a.subscribe(&ch).await;
    let r = send(&mut on_a, &ch, "oa-slow40", "go").await;
    let turn = r["turn_id"].as_str().unwrap().to_owned();
    let mut seen_a = follow(&mut on_a, &ch, &turn, Follow::deltas(8)).await;

    let mut on_b = connect_authed(&b.base, &bob.tokens.access).await;
    let joined = on_b.subscribe(&ch).await;
    let live = &joined["result"]["turn"];
    assert_eq!(live["turn_id"], turn.as_str(), "{joined}");
    let k = live["index"].as_u64().unwrap();
    assert!(k >= 8, "the join sees the content so far (index {k})");
    let partial = live["content"].as_str().unwrap().to_owned();
    let seen_b = follow(&mut on_b, &ch, &turn, Follow::END).await;
    let rest = follow(&mut on_a, &ch, &turn, Follow::END).await;
    seen_a.deltas.extend(rest.deltas);
    seen_a.assert_contiguous_from(1);
    seen_b.assert_contiguous_from(k + 1);
    assert_eq!(seen_a.deltas.len(), 40);
    let final_text: String = (0..40).map(|i| format!("w{i} ")).collect();
    assert_eq!(seen_a.text(), final_text);
    assert_eq!(partial.clone() + &seen_b.text(), final_text);
    assert_eq!(rest.end["data"]["status"], "complete");
    assert_eq!(seen_b.end["data"]["index"], 40);
    let m = message(b, &bob, &ch, r["message_id"].as_str().unwrap()).await;
    assert_eq!(m["content"], final_text.as_str());
    assert_eq!(m["streaming"], false);

    // Next turn: bob cannot start a second one meanwhile, then cancels it from his instance.
    let r = send(&mut on_a, &ch, "oa-slow", "again").await;
    let turn = r["turn_id"].as_str().unwrap().to_owned();
    follow(&mut on_b, &ch, &turn, Follow::deltas(1)).await;
    let busy = on_b
        .request("chat.send", json!({"session_id": ch.strip_prefix("session:").unwrap(), "message": "me too", "model": "echo"}))
        .await;
    assert_eq!(busy["code"], "turn_active", "{busy}");
    assert!(busy["message"].as_str().unwrap().contains(&turn));
    let aborted = up.seen.abort.notified();
    let r_cancel = on_b.request("chat.cancel", json!({"turn_id": turn})).await;
    assert_eq!(r_cancel["type"], "ok", "{r_cancel}");
    let end_a = follow(&mut on_a, &ch, &turn, Follow::END).await.end;
    let end_b = follow(&mut on_b, &ch, &turn, Follow::END).await.end;
    for end in [&end_a, &end_b] {
        assert_eq!(end["event"], "chat.done");
        assert_eq!(end["data"]["status"], "cancelled");
    }
    tokio::time::timeout(Duration::from_secs(1), aborted)
        .await
        .expect("the upstream request was closed");
    let m = message(a, &alice, &ch, r["message_id"].as_str().unwrap()).await;
    assert_eq!(m["metadata"]["status"], "cancelled");
    assert_eq!(m["streaming"], false);
    // And the session is free again.
    let r = send(&mut on_b, &ch, "echo", "free").await;
    assert_eq!(
        follow(&mut on_b, &ch, r["turn_id"].as_str().unwrap(), Follow::END)
            .await
            .text(),
        "free"
    );
}
