//! Subscribe / join storm: N sockets connect and subscribe to one session at once. Reports how
//! long until every socket is subscribed and caught up, what failed (by error code), what
//! closed (by close code), how much presence traffic the storm caused, and (with --pid) the
//! server's RSS per subscribed socket.
//!
//! With `--users K` the sockets belong to K accounts (the first owns the session and shares it
//! with the others as editors), so the membership checks are not all for one user.

use crate::client::{api_key, connect, register, report, rss_kib, session};
use futures::{SinkExt, StreamExt};
use hdrhistogram::Histogram;
use serde_json::{json, Value};
use std::{
    collections::BTreeMap,
    sync::{
        atomic::{AtomicU64, Ordering::Relaxed},
        Arc,
    },
    time::{Duration, Instant},
};
use tokio_tungstenite::tungstenite::Message;

#[derive(clap::Args)]
pub struct Args {
    #[arg(long, default_value = "http://127.0.0.1:8080")]
    url: String,
    #[arg(long, default_value_t = 10_000)]
    conns: usize,
    /// Accounts the sockets are spread over.
    #[arg(long, default_value_t = 1)]
    users: usize,
    /// Connection attempts in flight at once.
    #[arg(long, default_value_t = 1000)]
    parallel: usize,
    /// Subscribe with `since: 0` (a change list) instead of asking for a snapshot.
    #[arg(long)]
    since: bool,
    /// Seconds to keep every socket open after the last one subscribed, counting what arrives.
    #[arg(long, default_value_t = 3)]
    hold_seconds: u64,
    /// Server process id, to report RSS per subscribed socket.
    #[arg(long)]
    pid: Option<u32>,
}

/// What every socket adds to.
#[derive(Default)]
struct Tally {
    presence_frames: AtomicU64,
    other_frames: AtomicU64,
    bytes: AtomicU64,
}

enum Outcome {
    Subscribed(Duration),
    Refused(String),
    ConnectFailed,
    Closed(String),
}

async fn accounts(a: &Args, http: &reqwest::Client) -> anyhow::Result<(Vec<String>, String)> {
    let (owner, _) = register(http, &a.url).await?;
    let channel = session(http, &a.url, &owner).await?;
    let id = channel.trim_start_matches("session:").to_string();
    let mut keys = vec![api_key(http, &a.url, &owner).await?];
    for _ in 1..a.users {
        let (token, email) = register(http, &a.url).await?;
        let r = http
            .post(format!("{}/v1/sessions/{id}/members", a.url))
            .bearer_auth(&owner)
            .json(&json!({"email": email, "role": "editor"}))
            .send()
            .await?;
        anyhow::ensure!(r.status().is_success(), "share failed: {}", r.status());
        keys.push(api_key(http, &a.url, &token).await?);
    }
    Ok((keys, channel))
}

pub async fn run(a: Args) -> anyhow::Result<()> {
    let http = reqwest::Client::new();
    let (keys, channel) = accounts(&a, &http).await?;
    tokio::time::sleep(Duration::from_millis(500)).await;
    let before = a.pid.map(rss_kib).transpose()?;
    let sem = Arc::new(tokio::sync::Semaphore::new(a.parallel));
    let tally = Arc::new(Tally::default());
    let release = Arc::new(tokio::sync::Notify::new());
    let (done_tx, mut done_rx) = tokio::sync::mpsc::unbounded_channel();
    let start = Instant::now();
    for n in 0..a.conns {
        let (url, key, sem) = (a.url.clone(), keys[n % keys.len()].clone(), sem.clone());
        let (tally, release, done) = (tally.clone(), release.clone(), done_tx.clone());
        let sub = json!({"type": "subscribe", "id": "s", "channel": channel, "since": a.since.then_some(0)});
        tokio::spawn(async move {
            let permit = sem.acquire_owned().await.expect("open");
            let Ok(mut ws) = connect(&url, &key, n).await else {
                let _ = done.send(Outcome::ConnectFailed);
                return;
            };
            drop(permit);
            let outcome = subscribe(&mut ws, &sub, start, &tally).await;
            let ok = matches!(outcome, Outcome::Subscribed(_));
            let _ = done.send(outcome);
            if ok {
                let closed = hold(&mut ws, &tally, &release).await;
                if let Some(code) = closed {
                    let _ = done.send(Outcome::Closed(code));
                }
            }
        });
    }
    drop(done_tx);
    let mut lat = Histogram::<u64>::new(3)?;
    let (mut refused, mut closed) = (BTreeMap::new(), BTreeMap::new());
    let mut connect_failed = 0;
    let mut seen = 0;
    let mut all_in = start.elapsed();
    while seen < a.conns {
        let Some(o) = done_rx.recv().await else { break };
        // A close after subscribing is a second outcome of the same socket.
        seen += usize::from(!matches!(o, Outcome::Closed(_)));
        match o {
            Outcome::Subscribed(d) => {
                lat.record(d.as_micros() as u64).ok();
                all_in = start.elapsed();
            }
            Outcome::Refused(code) => *refused.entry(code).or_insert(0) += 1,
            Outcome::ConnectFailed => connect_failed += 1,
            Outcome::Closed(code) => *closed.entry(code).or_insert(0) += 1,
        }
    }
    let presence_at_end = tally.presence_frames.load(Relaxed);
    tokio::time::sleep(Duration::from_secs(a.hold_seconds)).await;
    let after = a.pid.map(rss_kib).transpose()?;
    release.notify_waiters();
    tokio::time::sleep(Duration::from_millis(200)).await;
    while let Ok(o) = done_rx.try_recv() {
        if let Outcome::Closed(code) = o {
            *closed.entry(code).or_insert(0) += 1;
        }
    }
    let ok = lat.len();
    println!(
        "storm: {} sockets, {} users: {ok} subscribed and caught up in {:.2}s (connect failed {connect_failed}, refused {refused:?}, closed {closed:?})",
        a.conns,
        keys.len(),
        all_in.as_secs_f64()
    );
    report("start-to-subscribed", &lat, "ms", 1000.0);
    let presence = tally.presence_frames.load(Relaxed);
    println!(
        "presence frames received: {presence_at_end} by the last subscribe, {presence} in all ({:.1} per socket); other frames {}; {:.1} MiB received",
        presence as f64 / ok.max(1) as f64,
        tally.other_frames.load(Relaxed),
        tally.bytes.load(Relaxed) as f64 / 1048576.0
    );
    if let (Some(b), Some(a)) = (before, after) {
        let per = a.saturating_sub(b) as f64 * 1024.0 / ok.max(1) as f64;
        println!("server RSS: before {b} KiB, after {a} KiB, per subscribed socket {per:.0} bytes ({:.2} KiB)", per / 1024.0);
    }
    Ok(())
}

/// Sends the subscribe and waits for its reply, counting what comes before it (a socket that
/// closes first counts as refused, with its close code).
async fn subscribe(
    ws: &mut crate::client::Ws,
    sub: &Value,
    start: Instant,
    tally: &Tally,
) -> Outcome {
    if ws.send(Message::text(sub.to_string())).await.is_err() {
        return Outcome::Refused("send failed".into());
    }
    loop {
        let Ok(Some(Ok(m))) = tokio::time::timeout(Duration::from_secs(60), ws.next()).await else {
            return Outcome::Refused("no reply".into());
        };
        let t = match m {
            Message::Text(t) => t,
            Message::Close(c) => {
                let code = c.map_or("none".into(), |c| c.code.to_string());
                return Outcome::Refused(format!("closed {code}"));
            }
            _ => continue,
        };
        count(tally, t.as_str());
        if !t.as_str().contains("\"id\":\"s\"") {
            continue;
        }
        let v: Value = serde_json::from_str(t.as_str()).unwrap_or_default();
        return match v["type"].as_str() {
            Some("ok") => Outcome::Subscribed(start.elapsed()),
            _ => Outcome::Refused(v["error"]["code"].as_str().unwrap_or("?").to_string()),
        };
    }
}

/// Reads until released; returns the close code if the server closed the socket first.
async fn hold(
    ws: &mut crate::client::Ws,
    tally: &Tally,
    release: &tokio::sync::Notify,
) -> Option<String> {
    let released = release.notified();
    tokio::pin!(released);
    loop {
        tokio::select! {
            _ = &mut released => return None,
            m = ws.next() => match m {
                Some(Ok(Message::Text(t))) => count(tally, t.as_str()),
                Some(Ok(Message::Close(c))) => return Some(c.map_or("none".into(), |c| c.code.to_string())),
                Some(Ok(_)) => {}
                _ => return Some("dropped".into()),
            }
        }
    }
}

fn count(tally: &Tally, t: &str) {
    tally.bytes.fetch_add(t.len() as u64, Relaxed);
    if t.contains("\"event\":\"presence.") {
        tally.presence_frames.fetch_add(1, Relaxed);
    } else {
        tally.other_frames.fetch_add(1, Relaxed);
    }
}
