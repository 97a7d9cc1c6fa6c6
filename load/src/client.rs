//! Shared pieces: account set-up over REST, sockets from spread source addresses, /proc reads.

use anyhow::{anyhow, Context};
use serde_json::{json, Value};
use tokio::net::TcpSocket;
use tokio_tungstenite::{
    client_async,
    tungstenite::{client::IntoClientRequest, http::HeaderValue},
    WebSocketStream,
};

pub const PASSWORD: &str = "load-test-password-91";

/// Registers a fresh account; returns (access token, email).
pub async fn register(http: &reqwest::Client, base: &str) -> anyhow::Result<(String, String)> {
    let email = format!("load-{}@example.com", uuid::Uuid::new_v4().simple());
    let r: Value = http
        .post(format!("{base}/v1/auth/register"))
        .json(&json!({"email": email, "password": PASSWORD}))
        .send()
        .await?
        .json()
        .await?;
    let token = r["tokens"]["access_token"]
        .as_str()
        .ok_or_else(|| anyhow!("register failed: {r}"))?;
    Ok((token.to_string(), email))
}

/// An API key (does not expire during a long run).
pub async fn api_key(http: &reqwest::Client, base: &str, token: &str) -> anyhow::Result<String> {
    let r: Value = http
        .post(format!("{base}/v1/api-keys"))
        .bearer_auth(token)
        .json(&json!({"name": "load"}))
        .send()
        .await?
        .json()
        .await?;
    Ok(r["secret"]
        .as_str()
        .ok_or_else(|| anyhow!("api key failed: {r}"))?
        .to_string())
}

pub async fn session(http: &reqwest::Client, base: &str, token: &str) -> anyhow::Result<String> {
    let r: Value = http
        .post(format!("{base}/v1/sessions"))
        .bearer_auth(token)
        .json(&json!({"title": "load"}))
        .send()
        .await?
        .json()
        .await?;
    Ok(format!(
        "session:{}",
        r["id"]
            .as_str()
            .ok_or_else(|| anyhow!("session failed: {r}"))?
    ))
}

pub type Ws = WebSocketStream<tokio::net::TcpStream>;

/// Opens an authenticated socket from source address 127.0.0.(2 + n % 250), so one generator
/// can hold more than 64k connections to one server port.
pub async fn connect(base: &str, token: &str, n: usize) -> anyhow::Result<Ws> {
    let url = format!("{}/v1/ws", base.replacen("http", "ws", 1));
    let mut req = url.as_str().into_client_request()?;
    req.headers_mut().insert(
        "authorization",
        HeaderValue::from_str(&format!("Bearer {token}"))?,
    );
    let host = req.uri().host().context("host")?.to_string();
    let port = req.uri().port_u16().unwrap_or(80);
    let target: std::net::SocketAddr = format!("{host}:{port}").parse()?;
    let socket = TcpSocket::new_v4()?;
    socket.bind(format!("127.0.0.{}:0", 2 + n % 250).parse()?)?;
    let stream = socket.connect(target).await?;
    stream.set_nodelay(true)?;
    let (ws, _) = client_async(req, stream).await?;
    Ok(ws)
}

/// Resident set size of `pid` in KiB, from /proc.
pub fn rss_kib(pid: u32) -> anyhow::Result<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status"))?;
    let line = status
        .lines()
        .find(|l| l.starts_with("VmRSS:"))
        .context("VmRSS")?;
    Ok(line.split_whitespace().nth(1).context("value")?.parse()?)
}

pub fn report(name: &str, h: &hdrhistogram::Histogram<u64>, unit: &str, scale: f64) {
    println!(
        "{name}: n={} p50={:.3}{unit} p99={:.3}{unit} p999={:.3}{unit} max={:.3}{unit}",
        h.len(),
        h.value_at_quantile(0.5) as f64 / scale,
        h.value_at_quantile(0.99) as f64 / scale,
        h.value_at_quantile(0.999) as f64 / scale,
        h.max() as f64 / scale
    );
}

/// Reads one HTTP request (head and `content-length` body) from a fake upstream's socket;
/// returns the body, or `None` when the peer went away first.
pub async fn read_request_body(sock: &mut tokio::net::TcpStream) -> Option<Vec<u8>> {
    use tokio::io::AsyncReadExt;
    let mut buf = vec![0u8; 65536];
    let mut got = Vec::new();
    loop {
        let n = sock.read(&mut buf).await.ok()?;
        if n == 0 {
            return None;
        }
        got.extend_from_slice(&buf[..n]);
        if let Some(h) = got.windows(4).position(|w| w == b"\r\n\r\n") {
            let head = String::from_utf8_lossy(&got[..h]).to_ascii_lowercase();
            let len: usize = head
                .lines()
                .find_map(|l| l.strip_prefix("content-length:"))
                .and_then(|v| v.trim().parse().ok())
                .unwrap_or(0);
            if got.len() >= h + 4 + len {
                return Some(got[h + 4..h + 4 + len].to_vec());
            }
        }
    }
}
