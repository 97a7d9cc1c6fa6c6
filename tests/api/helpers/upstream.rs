//! A model provider for tests: a real HTTP server on a real socket that speaks OpenAI's
//! `/v1/chat/completions` and Anthropic's `/v1/messages` streaming formats, replaying recorded
//! traces (tests/fixtures/upstream/) in small pieces so SSE chunk boundaries fall anywhere. An
//! OpenAI request without `"stream": true` gets the same answer as one `chat.completion` object
//! (assembled from the trace's chunks, as OpenAI would have answered), with a 200 and an
//! `{"error":...}` body where the trace fails midway.
//!
//! The scenario is the upstream model name the server sends (set through `llm.models`):
//! `trace:<file>`, `trace-crlf:<file>`, `reset` (a chunk, then a TCP reset), `status:<code>`,
//! `slow:<chunks>:<ms>` (text chunks `w0 `, `w1 `, ... every `ms`), `flaky` (503 once, then
//! text), `hang` (never answers), `garbage` (a 200 whose body is not JSON), `always-sse:<file>` (streams even when asked not to), and a model using tools: `tool:<name>:<k=v,...>[:<name>:<args>...]`
//! says `Checking. ` and calls those functions (in parallel when several) until the
//! conversation holds tool results after its last user message, then answers `The tool said: <results>`;
//! `toolloop:<name>` calls `name` every time unless `tool_choice` is `none`; `anytool`
//! calls the first function offered, as `tool:` would with made-up required arguments.

#![allow(dead_code)]

mod wire;

use wire::{error_status, replay, reset, send, send_whole, SSE_HEAD};

use serde_json::Value;
use std::{
    net::SocketAddr,
    path::PathBuf,
    sync::{
        atomic::{AtomicUsize, Ordering},
        Arc, Mutex,
    },
    time::Duration,
};
use tokio::{
    io::{AsyncReadExt, AsyncWriteExt},
    net::{TcpListener, TcpStream},
    sync::Notify,
};

/// One request as the upstream received it: path, headers (lowercased names), JSON body.
pub type Request = (String, Vec<(String, String)>, Value);

#[derive(Default)]
pub struct Seen {
    /// Every request: path, headers (lowercased names) and JSON body.
    pub requests: Mutex<Vec<Request>>,
    /// Streams whose client went away before the stream ended.
    pub aborted: AtomicUsize,
    pub abort: Notify,
    flaky: AtomicUsize,
}

pub struct Upstream {
    pub addr: SocketAddr,
    pub seen: Arc<Seen>,
}

impl Upstream {
    pub async fn start() -> Self {
        let listener = TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind upstream");
        let addr = listener.local_addr().expect("addr");
        let seen = Arc::new(Seen::default());
        let s = seen.clone();
        tokio::spawn(async move {
            while let Ok((sock, _)) = listener.accept().await {
                tokio::spawn(serve(sock, s.clone()));
            }
        });
        Self { addr, seen }
    }

    /// For `llm.openai_base_url`.
    pub fn openai_url(&self) -> String {
        format!("http://{}/v1", self.addr)
    }

    /// For `llm.anthropic_base_url`.
    pub fn anthropic_url(&self) -> String {
        format!("http://{}", self.addr)
    }

    pub fn requests(&self) -> Vec<Request> {
        self.seen.requests.lock().unwrap().clone()
    }

    pub fn last_body(&self) -> Value {
        self.requests().last().expect("a request").2.clone()
    }

    pub fn aborted(&self) -> usize {
        self.seen.aborted.load(Ordering::SeqCst)
    }
}

fn fixture(name: &str) -> Vec<u8> {
    let p = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/upstream")
        .join(name);
    std::fs::read(&p).unwrap_or_else(|e| panic!("{}: {e}", p.display()))
}

async fn read_request(sock: &mut TcpStream) -> Option<Request> {
    let mut buf = Vec::new();
    let mut tmp = [0u8; 4096];
    let head_end = loop {
        let n = sock.read(&mut tmp).await.ok()?;
        if n == 0 {
            return None;
        }
        buf.extend_from_slice(&tmp[..n]);
        if let Some(i) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            break i + 4;
        }
    };
    let head = String::from_utf8_lossy(&buf[..head_end]).to_string();
    let mut lines = head.split("\r\n");
    let path = lines.next()?.split(' ').nth(1)?.to_owned();
    let headers: Vec<(String, String)> = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(k, v)| (k.trim().to_ascii_lowercase(), v.trim().to_owned()))
        .collect();
    let len: usize = headers
        .iter()
        .find(|(k, _)| k == "content-length")
        .and_then(|(_, v)| v.parse().ok())
        .unwrap_or(0);
    while buf.len() < head_end + len {
        let n = sock.read(&mut tmp).await.ok()?;
        if n == 0 {
            return None;
        }
        buf.extend_from_slice(&tmp[..n]);
    }
    let body = serde_json::from_slice(&buf[head_end..head_end + len]).unwrap_or(Value::Null);
    Some((path, headers, body))
}

async fn serve(mut sock: TcpStream, seen: Arc<Seen>) {
    let _ = sock.set_nodelay(true);
    let Some((path, headers, body)) = read_request(&mut sock).await else {
        return;
    };
    seen.requests
        .lock()
        .unwrap()
        .push((path.clone(), headers, body.clone()));
    let anthropic = path.ends_with("/messages");
    let whole = !anthropic && body["stream"] != true;
    let model = body["model"].as_str().unwrap_or_default().to_owned();
    let parts: Vec<&str> = model.split(':').collect();
    match parts.as_slice() {
        ["trace", file] => send(&mut sock, fixture(file), whole).await,
        ["always-sse", file] => replay(&mut sock, fixture(file)).await,
        ["trace-crlf", file] => {
            let text = String::from_utf8(fixture(file)).unwrap();
            send(&mut sock, text.replace('\n', "\r\n").into_bytes(), whole).await
        }
        ["status", code] => error_status(&mut sock, code.parse().unwrap(), anthropic).await,
        ["flaky"] if seen.flaky.fetch_add(1, Ordering::SeqCst) == 0 => {
            error_status(&mut sock, 503, anthropic).await
        }
        ["flaky"] => send(&mut sock, fixture("openai_text.sse"), whole).await,
        ["reset"] if whole => {
            // A head promising more than arrives, part of the body, then the reset.
            let _ = sock
                .write_all(b"HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: 400\r\n\r\n{\"id\":\"chatcmpl-reset\",")
                .await;
            let _ = sock.flush().await;
            tokio::time::sleep(Duration::from_millis(50)).await;
            reset(sock);
        }
        ["reset"] => {
            let _ = sock.write_all(SSE_HEAD).await;
            let first = fixture("openai_text.sse");
            // Two events (the role, then "Hello"), then the reset.
            let cut = first
                .windows(2)
                .enumerate()
                .filter(|(_, w)| w == b"\n\n")
                .nth(1)
                .unwrap()
                .0
                + 2;
            let _ = sock.write_all(&first[..cut]).await;
            let _ = sock.flush().await;
            tokio::time::sleep(Duration::from_millis(50)).await;
            reset(sock);
        }
        ["hang"] => {
            let mut b = [0u8; 1];
            let _ = sock.read(&mut b).await; // until the client gives up
            seen.aborted.fetch_add(1, Ordering::SeqCst);
            seen.abort.notify_waiters();
        }
        ["anytool"] => {
            let results = tool_results(&body);
            match (results.is_empty(), first_tool(&body)) {
                (true, Some((name, spec))) => tool_calls(&mut sock, &[(&name, &spec)], whole).await,
                (true, None) => text(&mut sock, "No tool was offered.", whole).await,
                (false, _) => {
                    let said = format!("The tool said: {}", results.join(" | "));
                    text(&mut sock, &said, whole).await
                }
            }
        }
        ["tool", calls @ ..] if calls.len() % 2 == 0 => {
            let results = tool_results(&body);
            if results.is_empty() {
                let calls: Vec<(&str, &str)> = calls.chunks(2).map(|c| (c[0], c[1])).collect();
                tool_calls(&mut sock, &calls, whole).await
            } else {
                text(
                    &mut sock,
                    &format!("The tool said: {}", results.join(" | ")),
                    whole,
                )
                .await
            }
        }
        ["toolloop", name] => {
            if body["tool_choice"] == "none" {
                let n = this_turn(&body)
                    .iter()
                    .filter(|m| m["role"] == "tool")
                    .count();
                text(&mut sock, &format!("done after {n} tool results"), whole).await
            } else {
                tool_calls(&mut sock, &[(name, "")], whole).await
            }
        }
        ["garbage"] if whole => {
            let resp = "HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: 8\r\nconnection: close\r\n\r\n{\"id\": \u{0}";
            let _ = sock.write_all(resp.as_bytes()).await;
            let _ = sock.shutdown().await;
        }
        ["garbage"] => replay(&mut sock, b"data: {\"id\": \x00\n\n".to_vec()).await,
        ["slow", n, ms] => {
            let (n, ms) = (n.parse().unwrap(), ms.parse().unwrap());
            slow(&mut sock, &seen, n, ms, whole).await
        }
        _ => error_status(&mut sock, 404, anthropic).await,
    }
}

/// `n` words, one every `ms`; asked for a whole answer, it answers once all are "generated".
async fn slow(sock: &mut TcpStream, seen: &Seen, n: usize, ms: u64, whole: bool) {
    let chunk = |content: &str, finish: &str| {
        format!(
            "data: {{\"id\":\"chatcmpl-slow\",\"object\":\"chat.completion.chunk\",\"created\":1,\"model\":\"m\",\"choices\":[{{\"index\":0,\"delta\":{content},\"finish_reason\":{finish}}}]}}\n\n"
        )
    };
    if !whole && sock.write_all(SSE_HEAD).await.is_err() {
        return;
    }
    let mut all = String::new();
    let (mut rd, mut wr) = sock.split();
    let mut probe = [0u8; 1];
    for i in 0..n {
        let piece = chunk(&format!("{{\"content\":\"w{i} \"}}"), "null");
        if whole {
            all += &piece;
        } else if wr.write_all(piece.as_bytes()).await.is_err() {
            break;
        }
        tokio::select! {
            _ = tokio::time::sleep(Duration::from_millis(ms)) => {}
            r = rd.read(&mut probe) => {
                if matches!(r, Ok(0) | Err(_)) {
                    seen.aborted.fetch_add(1, Ordering::SeqCst);
                    seen.abort.notify_waiters();
                    return;
                }
            }
        }
    }
    let tail = chunk("{}", "\"stop\"")
        + &format!("data: {{\"id\":\"chatcmpl-slow\",\"object\":\"chat.completion.chunk\",\"created\":1,\"model\":\"m\",\"choices\":[],\"usage\":{{\"prompt_tokens\":5,\"completion_tokens\":{n}}}}}\n\ndata: [DONE]\n\n");
    if whole {
        return send_whole(sock, (all + &tail).as_bytes()).await;
    }
    let _ = wr.write_all(tail.as_bytes()).await;
    let _ = wr.shutdown().await;
}

/// The messages after the last user message (earlier turns' tool calls are history).
fn this_turn(body: &Value) -> Vec<Value> {
    let all = body["messages"].as_array().cloned().unwrap_or_default();
    let last_user = all
        .iter()
        .rposition(|m| m["role"] == "user")
        .map_or(0, |i| i + 1);
    all[last_user..].to_vec()
}

fn openai_chunk(delta: Value, finish: Option<&str>) -> String {
    let c = serde_json::json!({
        "id": "chatcmpl-tool", "object": "chat.completion.chunk", "created": 1, "model": "m",
        "choices": [{"index": 0, "delta": delta, "finish_reason": finish}],
    });
    format!("data: {c}\n\n")
}

const USAGE_AND_DONE: &str = "data: {\"id\":\"chatcmpl-tool\",\"object\":\"chat.completion.chunk\",\"created\":1,\"model\":\"m\",\"choices\":[],\"usage\":{\"prompt_tokens\":10,\"completion_tokens\":4}}\n\ndata: [DONE]\n\n";

/// `k=v,k=v` as a JSON object (values that parse as JSON are JSON, others strings).
/// The tool results after the conversation's last user message.
fn tool_results(body: &Value) -> Vec<String> {
    this_turn(body)
        .iter()
        .filter(|m| m["role"] == "tool")
        .filter_map(|m| m["content"].as_str().map(str::to_owned))
        .collect()
}

/// The first function offered, with a value for each required parameter of its schema
/// (a number 2, a string "x", a boolean true), as `tool:`'s `k=v,...`.
fn first_tool(body: &Value) -> Option<(String, String)> {
    let f = &body["tools"].as_array()?.first()?["function"];
    let schema = &f["parameters"];
    let spec: Vec<String> = schema["required"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(Value::as_str)
        .map(|k| {
            let v = match schema["properties"][k]["type"].as_str() {
                Some("number" | "integer") => "2",
                Some("boolean") => "true",
                _ => "x",
            };
            format!("{k}={v}")
        })
        .collect();
    Some((f["name"].as_str()?.to_owned(), spec.join(",")))
}

fn arguments(spec: &str) -> String {
    let mut m = serde_json::Map::new();
    for kv in spec.split(',').filter(|s| !s.is_empty()) {
        let (k, v) = kv.split_once('=').unwrap_or((kv, ""));
        let v = serde_json::from_str(v).unwrap_or_else(|_| Value::String(v.into()));
        m.insert(k.into(), v);
    }
    Value::Object(m).to_string()
}

/// Text, then the calls: each call's arguments streamed in two pieces.
async fn tool_calls(sock: &mut TcpStream, calls: &[(&str, &str)], whole: bool) {
    let mut out = openai_chunk(
        serde_json::json!({"role": "assistant", "content": "Checking. "}),
        None,
    );
    for (i, (name, spec)) in calls.iter().enumerate() {
        let args = arguments(spec);
        let (a, b) = args.split_at(args.len() / 2);
        out += &openai_chunk(
            serde_json::json!({"tool_calls": [{"index": i, "id": format!("call_{i}_{name}"), "type": "function",
                "function": {"name": name, "arguments": a}}]}),
            None,
        );
        out += &openai_chunk(
            serde_json::json!({"tool_calls": [{"index": i, "function": {"arguments": b}}]}),
            None,
        );
    }
    out += &openai_chunk(serde_json::json!({}), Some("tool_calls"));
    out += USAGE_AND_DONE;
    send(sock, out.into_bytes(), whole).await
}

async fn text(sock: &mut TcpStream, text: &str, whole: bool) {
    let mut out = openai_chunk(
        serde_json::json!({"role": "assistant", "content": ""}),
        None,
    );
    for w in text.split_inclusive(' ') {
        out += &openai_chunk(serde_json::json!({"content": w}), None);
    }
    out += &openai_chunk(serde_json::json!({}), Some("stop"));
    out += USAGE_AND_DONE;
    send(sock, out.into_bytes(), whole).await
}
