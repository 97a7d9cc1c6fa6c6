//! Soak: a mixed workload for a while (sockets opening and closing, session pushes, channel
//! publishes, presence asks, chat turns with the `echo` model), the server sampled every
//! `--sample-secs` (RSS, open fds, threads from /proc; live tokio tasks, frames queued for
//! sockets, connections and channels from its `/metrics` when reachable), printed as a table,
//! then a verdict on drift: RSS and fds over the last sixth of the run (their median) within
//! `--drift-pct` of their median from a sixth to a third (after warm-up); fds also pass within
//! one per client, the sockets open at that instant; and no error.

use crate::client::{api_key, connect, register, rss_kib, session};
use crate::soak_sample::{fds, gauge, threads, windows};
use futures::{SinkExt, StreamExt};
use serde_json::{json, Value};
use std::{
    collections::BTreeMap,
    sync::{
        atomic::{AtomicU64, Ordering::Relaxed},
        Arc, Mutex,
    },
    time::{Duration, Instant, SystemTime, UNIX_EPOCH},
};
use tokio_tungstenite::tungstenite::Message;

#[derive(clap::Args)]
pub struct Args {
    #[arg(long, default_value = "http://127.0.0.1:8080")]
    url: String,
    /// The server's process id (RSS, fds and threads are read from /proc).
    #[arg(long)]
    pid: u32,
    #[arg(long, default_value_t = 30)]
    minutes: u64,
    #[arg(long, default_value_t = 60)]
    sample_secs: u64,
    /// Concurrent clients; each reconnects after every `--per-connection` actions.
    #[arg(long, default_value_t = 20)]
    clients: usize,
    #[arg(long, default_value_t = 50)]
    per_connection: u64,
    /// Sessions the clients share.
    #[arg(long, default_value_t = 10)]
    sessions: usize,
    /// Every this many seconds a fresh session joins the pool and the oldest leaves it (and is
    /// deleted a period later, when no client uses it any more), so the data a client reads on
    /// each reconnect stays the same size over a long run: growth left is the server's own.
    /// 0 keeps the same sessions for the whole run.
    #[arg(long, default_value_t = 60)]
    rotate_secs: u64,
    #[arg(long, default_value_t = 5.0)]
    drift_pct: f64,
    /// `server.metrics_token`, to read connection and channel gauges from /metrics.
    #[arg(long)]
    metrics_token: Option<String>,
}

#[derive(Default)]
struct Counts {
    connects: AtomicU64,
    pushes: AtomicU64,
    publishes: AtomicU64,
    presence: AtomicU64,
    turns: AtomicU64,
    errors: Mutex<BTreeMap<String, u64>>,
}

impl Counts {
    fn error(&self, what: impl Into<String>) {
        *self.errors.lock().unwrap().entry(what.into()).or_default() += 1;
    }
}

fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64)
}

type Ws = crate::client::Ws;

/// Sends `frame` and waits for the reply with its id; other frames are skipped.
async fn ask(ws: &mut Ws, frame: Value) -> anyhow::Result<Value> {
    let id = frame["id"].as_str().unwrap_or_default().to_owned();
    ws.send(Message::text(frame.to_string())).await?;
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    loop {
        let next = tokio::time::timeout_at(deadline, ws.next()).await?;
        match next {
            Some(Ok(Message::Text(t))) => {
                let v: Value = serde_json::from_str(t.as_str())?;
                if v["id"] == id.as_str() && v["type"] != "event" {
                    return Ok(v);
                }
            }
            Some(Ok(_)) => {}
            other => anyhow::bail!("socket ended: {other:?}"),
        }
    }
}

/// Waits for the end of turn `turn` on `channel`.
async fn turn_end(ws: &mut Ws, turn: &str) -> anyhow::Result<String> {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
    loop {
        match tokio::time::timeout_at(deadline, ws.next()).await? {
            Some(Ok(Message::Text(t))) => {
                let v: Value = serde_json::from_str(t.as_str())?;
                let ev = v["event"].as_str().unwrap_or_default();
                if (ev == "chat.done" || ev == "chat.error") && v["data"]["turn_id"] == turn {
                    return Ok(ev.to_owned());
                }
            }
            Some(Ok(_)) => {}
            other => anyhow::bail!("socket ended: {other:?}"),
        }
    }
}

/// The sessions clients pick from, rotated by `rotate`.
type Pool = Arc<Mutex<Vec<String>>>;

/// Every `every`: a new session joins the pool, the oldest leaves it, and the one that left a
/// period ago (no round uses it any more) is deleted.
async fn rotate(
    http: reqwest::Client,
    base: String,
    token: String,
    pool: Pool,
    every: Duration,
    end: Instant,
    c: Arc<Counts>,
) {
    let mut retired: Option<String> = None;
    while Instant::now() + every < end {
        tokio::time::sleep(every).await;
        let fresh = match session(&http, &base, &token).await {
            Ok(s) => s,
            Err(e) => {
                c.error(format!("rotate: {e}"));
                continue;
            }
        };
        let leaving = {
            let mut p = pool.lock().unwrap();
            p.push(fresh);
            p.remove(0)
        };
        if let Some(old) = retired.replace(leaving) {
            // Sessions are deleted through sync (a `delete_session` op), one client each.
            let id = old.trim_start_matches("session:");
            let body = json!({"mutations": [{"client_id": format!("rotator-{id}"),
                "mutation_id": 1, "hlc": format!("{}:0", now_ms()), "ops": [{"op": "delete_session"}]}]});
            match http
                .post(format!("{base}/v1/sessions/{id}/mutations"))
                .bearer_auth(&token)
                .json(&body)
                .send()
                .await
            {
                Ok(r) if r.status().is_success() => {}
                other => c.error(format!("delete session: {:?}", other.map(|r| r.status()))),
            }
        }
    }
}

/// One client's life: connect, subscribe, act `per` times, close; again until `end`.
async fn client(
    n: usize,
    base: String,
    token: String,
    sids: Pool,
    per: u64,
    end: Instant,
    c: Arc<Counts>,
) {
    let client_id = format!("soak-{n}-{}", now_ms());
    let mut mutation = 0u64;
    let mut round = 0u64;
    while Instant::now() < end {
        round += 1;
        let channel = {
            let p = sids.lock().unwrap();
            p[(n + round as usize) % p.len()].clone()
        };
        let sid = channel.trim_start_matches("session:");
        let mut ws = match connect(&base, &token, n).await {
            Ok(ws) => ws,
            Err(e) => {
                c.error(format!("connect: {e}"));
                tokio::time::sleep(Duration::from_secs(1)).await;
                continue;
            }
        };
        c.connects.fetch_add(1, Relaxed);
        let r = ask(
            &mut ws,
            json!({"type": "subscribe", "id": "s", "channel": channel}),
        )
        .await;
        if !matches!(&r, Ok(v) if v["type"] == "ok") {
            c.error(format!("subscribe: {r:?}"));
            continue;
        }
        for i in 0..per {
            if Instant::now() >= end {
                break;
            }
            let id = format!("r{i}");
            let outcome = match i % 10 {
                0 if i % 50 == 0 => {
                    let r = ask(&mut ws, json!({"type": "chat.send", "id": id, "session_id": sid, "message": "soak turn", "model": "echo"})).await;
                    match r {
                        Ok(v) if v["type"] == "ok" => {
                            let turn = v["result"]["turn_id"].as_str().unwrap_or_default().to_owned();
                            match turn_end(&mut ws, &turn).await {
                                Ok(e) if e == "chat.done" => {
                                    c.turns.fetch_add(1, Relaxed);
                                    Ok(())
                                }
                                other => Err(format!("turn: {other:?}")),
                            }
                        }
                        // Another client's turn runs in this session: expected, not an error.
                        Ok(v) if v["code"] == "turn_active" => Ok(()),
                        other => Err(format!("chat.send: {other:?}")),
                    }
                }
                1..=5 => {
                    mutation += 1;
                    let frame = json!({"type": "session.push", "id": id, "session_id": sid, "mutations": [
                        {"client_id": client_id, "mutation_id": mutation, "hlc": format!("{}:0", now_ms()),
                         "ops": [{"op": "set_context", "key": format!("k{}", mutation % 16), "value": mutation}]}]});
                    match ask(&mut ws, frame).await {
                        Ok(v) if v["type"] == "ok" => {
                            c.pushes.fetch_add(1, Relaxed);
                            Ok(())
                        }
                        other => Err(format!("session.push: {other:?}")),
                    }
                }
                6..=8 => match ask(&mut ws, json!({"type": "publish", "id": id, "channel": channel, "event": "soak", "data": {"n": i}})).await {
                    Ok(v) if v["type"] == "ok" => {
                        c.publishes.fetch_add(1, Relaxed);
                        Ok(())
                    }
                    other => Err(format!("publish: {other:?}")),
                },
                _ => match ask(&mut ws, json!({"type": "presence", "id": id, "channel": channel})).await {
                    Ok(v) if v["type"] == "ok" => {
                        c.presence.fetch_add(1, Relaxed);
                        Ok(())
                    }
                    other => Err(format!("presence: {other:?}")),
                },
            };
            if let Err(e) = outcome {
                c.error(e.chars().take(160).collect::<String>());
                break;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        let _ = ws.close(None).await;
    }
}

pub async fn run(a: Args) -> anyhow::Result<()> {
    let http = reqwest::Client::new();
    let (access, _) = register(&http, &a.url).await?;
    let mut sids = Vec::new();
    for _ in 0..a.sessions {
        sids.push(session(&http, &a.url, &access).await?);
    }
    // An API key: an access token would expire (15 min) before a long soak ends.
    let token = api_key(&http, &a.url, &access).await?;
    let sids: Pool = Arc::new(Mutex::new(sids));
    let counts = Arc::new(Counts::default());
    let started = Instant::now();
    let end = started + Duration::from_secs(a.minutes * 60);
    if a.rotate_secs > 0 {
        tokio::spawn(rotate(
            http.clone(),
            a.url.clone(),
            token.clone(),
            sids.clone(),
            Duration::from_secs(a.rotate_secs),
            end,
            counts.clone(),
        ));
    }
    let mut tasks = Vec::new();
    for n in 0..a.clients {
        tasks.push(tokio::spawn(client(
            n,
            a.url.clone(),
            token.clone(),
            sids.clone(),
            a.per_connection,
            end,
            counts.clone(),
        )));
    }
    println!("| minute | RSS MiB | heap MiB | fds | threads | tasks | queued frames | ws conns | channels | connects | pushes | publishes | presence | turns | errors |");
    println!(
        "| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |"
    );
    let mut samples: Vec<(f64, u64, u64)> = Vec::new();
    loop {
        let elapsed = started.elapsed();
        let metrics = match &a.metrics_token {
            Some(t) => http
                .get(format!("{}/metrics", a.url))
                .bearer_auth(t)
                .send()
                .await
                .ok(),
            None => http.get(format!("{}/metrics", a.url)).send().await.ok(),
        };
        let text = match metrics {
            Some(r) if r.status().is_success() => r.text().await.unwrap_or_default(),
            _ => String::new(),
        };
        let g = |n: &str| gauge(&text, n).map_or("-".to_string(), |v| format!("{v:.0}"));
        let rss = rss_kib(a.pid)? as f64 / 1024.0;
        let (f, t) = (fds(a.pid), threads(a.pid));
        let errors: u64 = counts.errors.lock().unwrap().values().sum();
        let heap = gauge(&text, "heap_allocated_bytes")
            .map_or("-".to_string(), |b| format!("{:.1}", b / 1048576.0));
        println!(
            "| {:.1} | {rss:.1} | {heap} | {f} | {t} | {} | {} | {} | {} | {} | {} | {} | {} | {} | {errors} |",
            elapsed.as_secs_f64() / 60.0,
            g("tokio_alive_tasks"),
            g("ws_send_queue_frames"),
            g("ws_connections"),
            g("hub_channels"),
            counts.connects.load(Relaxed),
            counts.pushes.load(Relaxed),
            counts.publishes.load(Relaxed),
            counts.presence.load(Relaxed),
            counts.turns.load(Relaxed),
        );
        samples.push((rss, f, errors));
        if Instant::now() >= end {
            break;
        }
        tokio::time::sleep(
            Duration::from_secs(a.sample_secs)
                .min(end - Instant::now() + Duration::from_millis(10)),
        )
        .await;
    }
    for t in tasks {
        let _ = t.await;
    }
    let errors = counts.errors.lock().unwrap().clone();
    for (what, n) in &errors {
        println!("error x{n}: {what}");
    }
    // After warm-up (the first sixth) against the end (the last sixth), each the median of its
    // samples: one sample taken while a turn or a burst of reconnects is in flight (or the
    // clients are stopping) is noise, a trend over minutes is not.
    let (base, last) = windows(&samples);
    let drift = |a: f64, b: f64| if a == 0.0 { 0.0 } else { (b - a) / a * 100.0 };
    let (dr, df) = (drift(base.0, last.0), drift(base.1 as f64, last.1 as f64));
    // Open fds move with the sockets open at the instant of the sample (each client is between
    // connections now and then), so up to one per client is churn, not a leak.
    let fd_ok = df.abs() <= a.drift_pct || last.1.abs_diff(base.1) <= a.clients as u64;
    let pass = dr.abs() <= a.drift_pct && fd_ok && errors.is_empty();
    println!(
        "soak: {} min, {} clients; RSS {:.1} -> {:.1} MiB ({dr:+.1}%), fds {} -> {} ({df:+.1}%), {} errors: {}",
        a.minutes,
        a.clients,
        base.0,
        last.0,
        base.1,
        last.1,
        errors.values().sum::<u64>(),
        if pass { "PASS" } else { "FAIL" }
    );
    if !pass {
        anyhow::bail!("drift past {}% or errors", a.drift_pct);
    }
    Ok(())
}
