//! Tool rounds in socket turns. This command runs its own OpenAI-compatible upstream
//! (`--upstream`, default 127.0.0.1:9101): a request without tool results gets a call of the
//! tool, one with a result gets a short text. The server must route a model to it:
//!
//!   SWITCHYARD_LLM_OPENAI_BASE_URL=http://127.0.0.1:9101/v1 SWITCHYARD_LLM_MODELS=toolcall=openai:toolcall
//!
//! By default the tool is client-side (`pick_file`, declared in `chat.send`, answered by the
//! generator at once). With `--mcp NAME` the account first configures the allowlisted stdio
//! server NAME and the model calls `NAME__<tool>` with `--args`. `--sessions` sessions of one
//! account run turns back to back for `--seconds`.
//!
//! Reported: `tool.call` to `tool.result` as a client sees it (client tools: the answer's trip
//! through the server, the record's commit and the event; MCP: the stdio round trip too), from
//! `tool.result` to the model's next text (the follow-up upstream request), and whole turns.

use crate::client::{connect, register, report, session, Ws};
use futures::{SinkExt, StreamExt};
use hdrhistogram::Histogram;
use serde_json::{json, Value};
use std::time::{Duration, Instant};
use tokio::{
    io::AsyncWriteExt,
    net::{TcpListener, TcpStream},
};
use tokio_tungstenite::tungstenite::Message;

#[derive(clap::Args)]
pub struct Args {
    #[arg(long, default_value = "http://127.0.0.1:8080")]
    url: String,
    #[arg(long, default_value = "127.0.0.1:9101")]
    upstream: String,
    #[arg(long, default_value_t = 10)]
    sessions: usize,
    #[arg(long, default_value_t = 10)]
    seconds: u64,
    #[arg(long, default_value = "toolcall")]
    model: String,
    /// The tool's name (client-side, or on the `--mcp` server).
    #[arg(long, default_value = "pick_file")]
    tool: String,
    /// Call the tool on this allowlisted stdio MCP server instead of the client.
    #[arg(long)]
    mcp: Option<String>,
    /// The call's arguments (JSON object).
    #[arg(long, default_value = "{}")]
    args: String,
    /// Turns per session before moving to a fresh one (a turn's cost grows with the session's
    /// history: its transcript is read and sent upstream every turn).
    #[arg(long, default_value_t = 20)]
    turns_per_session: u64,
}

/// What a session task needs to open further sessions.
#[derive(Clone)]
struct Ctx {
    http: reqwest::Client,
    url: String,
    token: String,
    model: String,
    client_tool: Option<String>,
    per_session: u64,
}

/// Per session: tool.call -> tool.result, tool.result -> next text, whole turns (µs).
type Seen = [Histogram<u64>; 3];

fn hist() -> Histogram<u64> {
    Histogram::new(3).expect("histogram")
}

pub async fn run(a: Args) -> anyhow::Result<()> {
    let function = match &a.mcp {
        Some(server) => format!("{server}__{}", a.tool),
        None => a.tool.clone(),
    };
    let listener = TcpListener::bind(&a.upstream).await?;
    let (f, args) = (function.clone(), a.args.clone());
    tokio::spawn(async move {
        while let Ok((sock, _)) = listener.accept().await {
            tokio::spawn(upstream(sock, f.clone(), args.clone()));
        }
    });
    let http = reqwest::Client::builder().tcp_nodelay(true).build()?;
    let (token, _) = register(&http, &a.url).await?;
    if let Some(server) = &a.mcp {
        let r = http
            .post(format!("{}/v1/mcp/servers", a.url))
            .bearer_auth(&token)
            .json(&json!({"name": server, "transport": "stdio", "command": server}))
            .send()
            .await?;
        anyhow::ensure!(r.status().is_success(), "mcp server: {}", r.text().await?);
    }
    let deadline = Instant::now() + Duration::from_secs(a.seconds);
    let started = Instant::now();
    let mut tasks = Vec::new();
    let ctx = Ctx {
        http: http.clone(),
        url: a.url.clone(),
        token: token.clone(),
        model: a.model.clone(),
        client_tool: a.mcp.is_none().then(|| a.tool.clone()),
        per_session: a.turns_per_session.max(1),
    };
    for n in 0..a.sessions {
        let mut ws = connect(&a.url, &token, n).await?;
        if a.mcp.is_some() {
            wait_ready(&mut ws).await?;
        }
        let ctx = ctx.clone();
        tasks.push(tokio::spawn(async move { turns(ws, ctx, deadline).await }));
    }
    let mut all: Seen = [hist(), hist(), hist()];
    for t in tasks {
        for (into, from) in all.iter_mut().zip(t.await??) {
            into.add(from)?;
        }
    }
    let secs = started.elapsed().as_secs_f64();
    let [call, follow, turn] = &all;
    println!(
        "{} turns with one tool round each in {secs:.1} s: {:.0} turns/s",
        turn.len(),
        turn.len() as f64 / secs
    );
    report("tool.call -> tool.result", call, "ms", 1000.0);
    report("tool.result -> next text", follow, "ms", 1000.0);
    report("whole turn (chat.send -> chat.done)", turn, "ms", 1000.0);
    Ok(())
}

/// Reads until the user's MCP server is ready.
async fn wait_ready(ws: &mut Ws) -> anyhow::Result<()> {
    let until = Instant::now() + Duration::from_secs(30);
    while let Ok(Some(m)) = tokio::time::timeout_at(until.into(), ws.next()).await {
        if let Message::Text(t) = m? {
            if t.contains("\"mcp.status\"") && t.contains("\"state\":\"ready\"") {
                return Ok(());
            }
        }
    }
    anyhow::bail!("the MCP server did not become ready within 30 s")
}

async fn turns(mut ws: Ws, ctx: Ctx, deadline: Instant) -> anyhow::Result<Seen> {
    let (mut call_h, mut follow_h, mut turn_h) = (hist(), hist(), hist());
    let mut sid = String::new();
    let mut n = 0u64;
    while Instant::now() < deadline {
        if n.is_multiple_of(ctx.per_session) {
            if !sid.is_empty() {
                let unsub = json!({"type": "unsubscribe", "id": format!("u{n}"), "channel": format!("session:{sid}")});
                ws.send(Message::text(unsub.to_string())).await?;
            }
            let channel = session(&ctx.http, &ctx.url, &ctx.token).await?;
            let sub = json!({"type": "subscribe", "id": format!("s{n}"), "channel": channel});
            ws.send(Message::text(sub.to_string())).await?;
            sid = channel.trim_start_matches("session:").to_owned();
        }
        n += 1;
        let mut send = json!({"type": "chat.send", "id": format!("c{n}"), "session_id": sid, "message": "go", "model": ctx.model});
        if let Some(t) = &ctx.client_tool {
            send["tools"] = json!([{"name": t}]);
        }
        let t0 = Instant::now();
        ws.send(Message::text(send.to_string())).await?;
        let (mut called, mut answered) = (None::<Instant>, None::<Instant>);
        loop {
            let m = tokio::time::timeout(Duration::from_secs(30), ws.next())
                .await?
                .ok_or_else(|| anyhow::anyhow!("socket closed"))??;
            let Message::Text(t) = m else { continue };
            if t.contains("\"type\":\"error\"") {
                anyhow::bail!("refused: {t}");
            }
            if !t.contains("\"type\":\"event\"") {
                continue;
            }
            let v: Value = serde_json::from_str(t.as_str())?;
            match v["event"].as_str().unwrap_or_default() {
                "tool.call" => {
                    called = Some(Instant::now());
                    if v["data"]["side"] == "client" {
                        let r = json!({"type": "tool.result", "id": format!("t{n}"), "turn_id": v["data"]["turn_id"],
                            "call_id": v["data"]["call_id"], "result": "src/main.rs"});
                        ws.send(Message::text(r.to_string())).await?;
                    }
                }
                "tool.result" | "tool.error" => {
                    anyhow::ensure!(v["event"] == "tool.result", "tool failed: {v}");
                    let now = Instant::now();
                    if let Some(c) = called {
                        call_h.record(now.duration_since(c).as_micros() as u64).ok();
                    }
                    answered = Some(now);
                }
                "chat.delta" => {
                    if let Some(r) = answered.take() {
                        follow_h.record(r.elapsed().as_micros() as u64).ok();
                    }
                }
                "chat.done" | "chat.error" => {
                    anyhow::ensure!(v["data"]["status"] == "complete", "turn ended: {v}");
                    turn_h.record(t0.elapsed().as_micros() as u64).ok();
                    break;
                }
                _ => {}
            }
        }
    }
    Ok([call_h, follow_h, turn_h])
}

/// One OpenAI-style streamed answer: a call of `function` until the turn holds a tool result,
/// then a short text.
async fn upstream(mut sock: TcpStream, function: String, args: String) {
    let _ = sock.set_nodelay(true);
    let Some(raw) = crate::client::read_request_body(&mut sock).await else {
        return;
    };
    let body: Value = serde_json::from_slice(&raw).unwrap_or_default();
    // Only this turn's results count: earlier turns' calls come back as history.
    let msgs = body["messages"].as_array().cloned().unwrap_or_default();
    let last_user = msgs.iter().rposition(|m| m["role"] == "user").unwrap_or(0);
    let answered = msgs[last_user..].iter().any(|m| m["role"] == "tool");
    let chunk = |delta: Value, finish: Value| {
        let c = json!({"id": "c", "object": "chat.completion.chunk", "created": 1, "model": "toolcall",
            "choices": [{"index": 0, "delta": delta, "finish_reason": finish}]});
        format!("data: {c}\n\n")
    };
    let mut out = String::from(
        "HTTP/1.1 200 OK\r\ncontent-type: text/event-stream\r\nconnection: close\r\n\r\n",
    );
    if answered {
        for w in ["Opened ", "it."] {
            out += &chunk(json!({"content": w}), Value::Null);
        }
        out += &chunk(json!({}), json!("stop"));
    } else {
        out += &chunk(
            json!({"tool_calls": [{"index": 0, "id": "call_1", "type": "function",
                "function": {"name": function, "arguments": args}}]}),
            Value::Null,
        );
        out += &chunk(json!({}), json!("tool_calls"));
    }
    out += "data: [DONE]\n\n";
    let _ = sock.write_all(out.as_bytes()).await;
    let _ = sock.shutdown().await;
}
