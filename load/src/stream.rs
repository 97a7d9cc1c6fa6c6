//! Latency the server adds to each streamed chunk. This command runs its own OpenAI-compatible
//! upstream (`--upstream`, default 127.0.0.1:9100) whose chunks carry their send time; the
//! server must route a model to it:
//!
//!   SWITCHYARD_LLM_OPENAI_BASE_URL=http://127.0.0.1:9100/v1 SWITCHYARD_LLM_MODELS=stamp=openai:stamp
//!
//! First `--streams` clients read the upstream directly (the baseline: loopback, HTTP, SSE
//! parsing), then the same number stream through `/v1/chat/completions`; "added" is the
//! difference. Client, server and upstream share the machine's cores.

use crate::client::{api_key, register, report};
use futures::StreamExt;
use hdrhistogram::Histogram;
use serde_json::json;
use std::time::{Duration, SystemTime, UNIX_EPOCH};
use tokio::{
    io::AsyncWriteExt,
    net::{TcpListener, TcpStream},
};

#[derive(clap::Args)]
pub struct Args {
    #[arg(long, default_value = "http://127.0.0.1:8080")]
    url: String,
    #[arg(long, default_value = "127.0.0.1:9100")]
    upstream: String,
    #[arg(long, default_value_t = 200)]
    streams: usize,
    /// Chunks per stream.
    #[arg(long, default_value_t = 100)]
    chunks: usize,
    /// Milliseconds between a stream's chunks.
    #[arg(long, default_value_t = 20)]
    interval_ms: u64,
    #[arg(long, default_value = "stamp")]
    model: String,
    /// Stream through socket turns (`chat.send`, `chat.delta` events) instead of REST SSE.
    #[arg(long)]
    ws: bool,
}

fn now_us() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_micros() as u64)
}

pub async fn run(a: Args) -> anyhow::Result<()> {
    let listener = TcpListener::bind(&a.upstream).await?;
    let (chunks, interval) = (a.chunks, a.interval_ms);
    tokio::spawn(async move {
        while let Ok((sock, _)) = listener.accept().await {
            tokio::spawn(upstream(sock, chunks, interval));
        }
    });
    let http = reqwest::Client::builder().tcp_nodelay(true).build()?;
    let direct = format!("http://{}/v1/chat/completions", a.upstream);
    let (base, base_first) = measure(&http, &direct, None, &a.model, a.streams).await?;
    report("direct to upstream (baseline)", &base, "ms", 1000.0);
    report("  first chunk (stream set-up)", &base_first, "ms", 1000.0);
    let (token, _) = register(&http, &a.url).await?;
    let key = api_key(&http, &a.url, &token).await?;
    let through = format!("{}/v1/chat/completions", a.url);
    let (via, via_first) = if a.ws {
        measure_ws(&http, &a.url, &key, &a.model, a.streams).await?
    } else {
        measure(&http, &through, Some(&key), &a.model, a.streams).await?
    };
    report("through switchyard", &via, "ms", 1000.0);
    report("  first chunk (stream set-up)", &via_first, "ms", 1000.0);
    for q in [0.5, 0.99] {
        println!(
            "added at p{}: {:.3} ms",
            q * 100.0,
            (via.value_at_quantile(q) as f64 - base.value_at_quantile(q) as f64) / 1000.0
        );
    }
    Ok(())
}

/// Opens `streams` concurrent streams and records, per chunk, receive time minus send time (µs).
/// A stream's first chunk also carries the response set-up, so it is reported on its own.
async fn measure(
    http: &reqwest::Client,
    url: &str,
    key: Option<&str>,
    model: &str,
    streams: usize,
) -> anyhow::Result<(Histogram<u64>, Histogram<u64>)> {
    let body =
        json!({"model": model, "stream": true, "messages": [{"role": "user", "content": "go"}]});
    let mut tasks = Vec::new();
    for _ in 0..streams {
        let mut req = http.post(url).json(&body);
        if let Some(k) = key {
            req = req.bearer_auth(k);
        }
        tasks.push(tokio::spawn(async move {
            let mut h = Histogram::<u64>::new(3).expect("histogram");
            let mut first = Histogram::<u64>::new(3).expect("histogram");
            let resp = req.send().await?;
            anyhow::ensure!(resp.status().is_success(), "status {}", resp.status());
            let mut body = resp.bytes_stream();
            let mut buf = Vec::new();
            while let Some(b) = body.next().await {
                let now = now_us();
                buf.extend_from_slice(&b?);
                while let Some(i) = buf.windows(2).position(|w| w == b"\n\n") {
                    let event: Vec<u8> = buf.drain(..i + 2).collect();
                    if let Some(ts) = stamp(&event) {
                        let target = if first.is_empty() { &mut first } else { &mut h };
                        target.record(now.saturating_sub(ts)).ok();
                    }
                }
            }
            Ok((h, first))
        }));
    }
    let mut all = Histogram::<u64>::new(3)?;
    let mut firsts = Histogram::<u64>::new(3)?;
    for t in tasks {
        let (h, f) = t.await??;
        all.add(h)?;
        firsts.add(f)?;
    }
    Ok((all, firsts))
}

/// Like `measure`, through socket turns: one socket and one session per stream, each sending
/// `chat.send` and timing its `chat.delta` events.
async fn measure_ws(
    http: &reqwest::Client,
    base: &str,
    key: &str,
    model: &str,
    streams: usize,
) -> anyhow::Result<(Histogram<u64>, Histogram<u64>)> {
    use futures::SinkExt;
    use tokio_tungstenite::tungstenite::Message;
    let mut tasks = Vec::new();
    for n in 0..streams {
        let channel = crate::client::session(http, base, key).await?;
        let mut ws = crate::client::connect(base, key, n).await?;
        let model = model.to_owned();
        tasks.push(tokio::spawn(async move {
            let (mut h, mut first) = (Histogram::<u64>::new(3)?, Histogram::<u64>::new(3)?);
            let sub = json!({"type": "subscribe", "id": "s", "channel": channel});
            ws.send(Message::text(sub.to_string())).await?;
            let sid = channel.trim_start_matches("session:");
            let send = json!({"type": "chat.send", "id": "c", "session_id": sid, "message": "go", "model": model});
            ws.send(Message::text(send.to_string())).await?;
            while let Some(m) = ws.next().await {
                let now = now_us();
                let Message::Text(t) = m? else { continue };
                if t.contains("\"chat.done\"") || t.contains("\"chat.error\"") {
                    break;
                }
                if t.contains("\"type\":\"error\"") {
                    anyhow::bail!("refused: {t}");
                }
                if let Some(ts) = t.find("\"text\":\"t").and_then(|i| stamp_at(&t[i + 9..])) {
                    let target = if first.is_empty() { &mut first } else { &mut h };
                    target.record(now.saturating_sub(ts)).ok();
                }
            }
            Ok::<_, anyhow::Error>((h, first))
        }));
    }
    let mut all = Histogram::<u64>::new(3)?;
    let mut firsts = Histogram::<u64>::new(3)?;
    for t in tasks {
        let (h, f) = t.await??;
        all.add(h)?;
        firsts.add(f)?;
    }
    Ok((all, firsts))
}

/// `<micros>.` at the start of `s`.
fn stamp_at(s: &str) -> Option<u64> {
    s[..s.find('.')?].parse().ok()
}

/// The send time in a chunk whose content is `t<micros>.`.
fn stamp(event: &[u8]) -> Option<u64> {
    let s = std::str::from_utf8(event).ok()?;
    let i = s.find("\"content\":\"t")? + 12;
    let end = s[i..].find('.')? + i;
    s[i..end].parse().ok()
}

async fn upstream(mut sock: TcpStream, chunks: usize, interval_ms: u64) {
    let _ = sock.set_nodelay(true);
    if crate::client::read_request_body(&mut sock).await.is_none() {
        return;
    }
    let head = b"HTTP/1.1 200 OK\r\ncontent-type: text/event-stream\r\nconnection: close\r\n\r\n";
    if sock.write_all(head).await.is_err() {
        return;
    }
    let mut tick = tokio::time::interval(Duration::from_millis(interval_ms));
    for _ in 0..chunks {
        tick.tick().await;
        let chunk = format!(
            "data: {{\"id\":\"c\",\"object\":\"chat.completion.chunk\",\"created\":1,\"model\":\"stamp\",\"choices\":[{{\"index\":0,\"delta\":{{\"content\":\"t{}.\"}},\"finish_reason\":null}}]}}\n\n",
            now_us()
        );
        if sock.write_all(chunk.as_bytes()).await.is_err() {
            return;
        }
    }
    let tail = "data: {\"id\":\"c\",\"object\":\"chat.completion.chunk\",\"created\":1,\"model\":\"stamp\",\"choices\":[{\"index\":0,\"delta\":{},\"finish_reason\":\"stop\"}]}\n\ndata: [DONE]\n\n";
    let _ = sock.write_all(tail.as_bytes()).await;
    let _ = sock.shutdown().await;
}
