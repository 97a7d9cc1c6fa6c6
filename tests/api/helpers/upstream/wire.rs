//! How the test upstream writes an answer: a trace replayed in small pieces (streamed), the
//! same trace as one `chat.completion` object (whole), an error status, or a reset.

use serde_json::Value;
use std::time::Duration;
use tokio::{io::AsyncWriteExt, net::TcpStream};

pub const SSE_HEAD: &[u8] = b"HTTP/1.1 200 OK\r\ncontent-type: text/event-stream\r\ncache-control: no-cache\r\nconnection: close\r\n\r\n";

/// SO_LINGER 0: closing sends RST, not FIN (blocking on drop is not a concern then).
pub fn reset(sock: TcpStream) {
    let std = sock.into_std().unwrap();
    let _ = socket2::SockRef::from(&std).set_linger(Some(Duration::ZERO));
    drop(std);
}

/// The SSE trace `data` as the client asked for it: streamed, or whole.
pub async fn send(sock: &mut TcpStream, data: Vec<u8>, whole: bool) {
    if whole {
        send_whole(sock, &data).await
    } else {
        replay(sock, data).await
    }
}

/// One `chat.completion` object built from an OpenAI stream's chunks, with its length; a stream
/// that fails midway becomes its `{"error":...}` body.
pub async fn send_whole(sock: &mut TcpStream, sse: &[u8]) {
    let body = assemble(sse).to_string();
    let resp = format!(
        "HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
        body.len()
    );
    let _ = sock.write_all(resp.as_bytes()).await;
    let _ = sock.shutdown().await;
}

fn assemble(sse: &[u8]) -> Value {
    let text = String::from_utf8_lossy(sse);
    let (mut content, mut calls, mut finish, mut usage) =
        (String::new(), Vec::<Value>::new(), Value::Null, Value::Null);
    for line in text.lines() {
        let Some(data) = line.trim_end().strip_prefix("data: ") else {
            continue;
        };
        let Ok(v) = serde_json::from_str::<Value>(data) else {
            continue; // [DONE]
        };
        if v.get("error").is_some() {
            return serde_json::json!({ "error": v["error"] });
        }
        if v["usage"].is_object() {
            usage = v["usage"].clone();
        }
        let Some(choice) = v["choices"].get(0) else {
            continue;
        };
        content += choice["delta"]["content"].as_str().unwrap_or_default();
        for tc in choice["delta"]["tool_calls"]
            .as_array()
            .into_iter()
            .flatten()
        {
            let i = tc["index"].as_u64().unwrap_or(0) as usize;
            if calls.len() <= i {
                calls.resize(
                    i + 1,
                    serde_json::json!({"type": "function", "function": {"arguments": ""}}),
                );
            }
            if let Some(id) = tc.get("id") {
                calls[i]["id"] = id.clone();
            }
            if let Some(n) = tc["function"].get("name") {
                calls[i]["function"]["name"] = n.clone();
            }
            let args = calls[i]["function"]["arguments"]
                .as_str()
                .unwrap_or_default()
                .to_owned()
                + tc["function"]["arguments"].as_str().unwrap_or_default();
            calls[i]["function"]["arguments"] = Value::String(args);
        }
        if !choice["finish_reason"].is_null() {
            finish = choice["finish_reason"].clone();
        }
    }
    let mut message = serde_json::json!({"role": "assistant", "content": content, "refusal": null});
    if !calls.is_empty() {
        message["tool_calls"] = Value::Array(calls);
        if content.is_empty() {
            message["content"] = Value::Null;
        }
    }
    serde_json::json!({
        "id": "chatcmpl-whole", "object": "chat.completion", "created": 1, "model": "m",
        "choices": [{"index": 0, "message": message, "logprobs": null, "finish_reason": finish}],
        "usage": usage,
    })
}

/// Writes `data` a few bytes at a time, so events and even UTF-8 characters split across reads.
pub async fn replay(sock: &mut TcpStream, data: Vec<u8>) {
    if sock.write_all(SSE_HEAD).await.is_err() {
        return;
    }
    for piece in data.chunks(7) {
        if sock.write_all(piece).await.is_err() {
            return;
        }
        let _ = sock.flush().await;
        tokio::task::yield_now().await;
    }
    let _ = sock.shutdown().await;
}

pub async fn error_status(sock: &mut TcpStream, code: u16, anthropic: bool) {
    let body = if anthropic {
        format!(
            r#"{{"type":"error","error":{{"type":"api_error","message":"upstream said {code}"}}}}"#
        )
    } else {
        format!(
            r#"{{"error":{{"message":"upstream said {code}","type":"server_error","param":null,"code":null}}}}"#
        )
    };
    let extra = if code == 429 {
        "retry-after: 7\r\n"
    } else {
        ""
    };
    let resp = format!(
        "HTTP/1.1 {code} Error\r\ncontent-type: application/json\r\ncontent-length: {}\r\n{extra}connection: close\r\n\r\n{body}",
        body.len()
    );
    let _ = sock.write_all(resp.as_bytes()).await;
    let _ = sock.shutdown().await;
}
