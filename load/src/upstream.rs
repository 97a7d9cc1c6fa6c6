//! A keep-alive OpenAI-compatible upstream for `load completions --upstream`: a request with
//! `"stream":true` gets one SSE chunk per word, any other a `chat.completion` object; both carry
//! usage, and both have a length, so connections are reused as a real provider's are.

use tokio::{
    io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader},
    net::{TcpListener, TcpStream},
};

/// Binds `addr` and answers on it until the process ends.
pub async fn serve(addr: &str, words: usize) -> anyhow::Result<()> {
    let listener = TcpListener::bind(addr).await?;
    let json = answer_json(words);
    let sse = answer_sse(words);
    tokio::spawn(async move {
        while let Ok((sock, _)) = listener.accept().await {
            let (json, sse) = (json.clone(), sse.clone());
            tokio::spawn(async move {
                let _ = connection(sock, &json, &sse).await;
            });
        }
    });
    Ok(())
}

async fn connection(sock: TcpStream, json: &[u8], sse: &[u8]) -> std::io::Result<()> {
    sock.set_nodelay(true)?;
    let mut r = BufReader::new(sock);
    let mut line = String::new();
    let mut body = Vec::new();
    loop {
        let mut len = 0usize;
        loop {
            line.clear();
            if r.read_line(&mut line).await? == 0 {
                return Ok(());
            }
            let l = line.trim_end();
            if l.is_empty() {
                break;
            }
            if let Some((name, value)) = l.split_once(':') {
                if name.eq_ignore_ascii_case("content-length") {
                    len = value.trim().parse().unwrap_or(0);
                }
            }
        }
        body.resize(len, 0);
        r.read_exact(&mut body).await?;
        let streaming = body.windows(13).any(|w| w == b"\"stream\":true");
        r.get_mut()
            .write_all(if streaming { sse } else { json })
            .await?;
    }
}

fn text(words: usize) -> Vec<String> {
    (0..words).map(|i| format!("word{i} ")).collect()
}

fn response(content_type: &str, body: &str) -> bytes::Bytes {
    format!(
        "HTTP/1.1 200 OK\r\ncontent-type: {content_type}\r\ncontent-length: {}\r\n\r\n{body}",
        body.len()
    )
    .into()
}

fn answer_json(words: usize) -> bytes::Bytes {
    let body = serde_json::json!({
        "id": "chatcmpl-load", "object": "chat.completion", "created": 1, "model": "gw",
        "choices": [{"index": 0, "message": {"role": "assistant", "content": text(words).concat()},
                     "finish_reason": "stop"}],
        "usage": {"prompt_tokens": 9, "completion_tokens": words, "total_tokens": 9 + words},
    });
    response("application/json", &body.to_string())
}

fn answer_sse(words: usize) -> bytes::Bytes {
    let chunk = |delta: serde_json::Value, finish: Option<&str>| {
        let c = serde_json::json!({"id": "chatcmpl-load", "object": "chat.completion.chunk",
            "created": 1, "model": "gw",
            "choices": [{"index": 0, "delta": delta, "finish_reason": finish}]});
        format!("data: {c}\n\n")
    };
    let mut body = chunk(
        serde_json::json!({"role": "assistant", "content": ""}),
        None,
    );
    for w in text(words) {
        body.push_str(&chunk(serde_json::json!({ "content": w }), None));
    }
    body.push_str(&chunk(serde_json::json!({}), Some("stop")));
    let usage = serde_json::json!({"id": "chatcmpl-load", "object": "chat.completion.chunk",
        "created": 1, "model": "gw", "choices": [],
        "usage": {"prompt_tokens": 9, "completion_tokens": words, "total_tokens": 9 + words}});
    body.push_str(&format!("data: {usage}\n\ndata: [DONE]\n\n"));
    response("text/event-stream", &body)
}
