//! Session sync write path: C clients each push one mutation at a time (waiting for the ack)
//! to S sessions; reports committed mutations per second and push-to-ack latency.

use crate::client::{api_key, connect, register, report, session};
use futures::{SinkExt, StreamExt};
use hdrhistogram::Histogram;
use serde_json::json;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};
use tokio_tungstenite::tungstenite::Message;

#[derive(clap::Args)]
pub struct Args {
    #[arg(long, default_value = "http://127.0.0.1:8080")]
    url: String,
    /// Sessions written to (clients are spread over them).
    #[arg(long, default_value_t = 1)]
    sessions: usize,
    /// Concurrent clients, each with one push in flight.
    #[arg(long, default_value_t = 50)]
    clients: usize,
    #[arg(long, default_value_t = 10)]
    seconds: u64,
    /// Target pushes per second per client (0 = as fast as acks come back).
    #[arg(long, default_value_t = 0)]
    rate: u64,
    /// Before measuring, fill each session with this many context keys...
    #[arg(long, default_value_t = 0)]
    prefill_keys: usize,
    /// ...tags...
    #[arg(long, default_value_t = 0)]
    prefill_tags: usize,
    /// ...and messages (as the default caps allow: 1000, 200, 10000), so the figure says what
    /// a push costs in a full session.
    #[arg(long, default_value_t = 0)]
    prefill_messages: usize,
}

/// Fills `session` through the REST write path, 100 ops a mutation, 10 mutations a push.
async fn prefill(
    http: &reqwest::Client,
    a: &Args,
    token: &str,
    session: &str,
) -> anyhow::Result<()> {
    let id = session.trim_start_matches("session:");
    let mut ops: Vec<serde_json::Value> = Vec::new();
    ops.extend((0..a.prefill_keys).map(|i| json!({"op": "set_context", "key": format!("pre-{i}"), "value": {"n": i, "path": "src/some/file.rs"}})));
    ops.extend((0..a.prefill_tags).map(|i| json!({"op": "add_tag", "tag": format!("tag-{i}")})));
    ops.extend((0..a.prefill_messages).map(|i| json!({"op": "append_message", "message_id": format!("pre-{i}"), "role": "user", "content": "a message already in the session, about as long as a short one"})));
    let ms = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64);
    let mutations: Vec<serde_json::Value> = ops
        .chunks(100)
        .enumerate()
        .map(|(i, chunk)| json!({"client_id": "prefill", "mutation_id": i + 1, "hlc": format!("{}:0", ms - 60_000), "ops": chunk}))
        .collect();
    // 10 mutations of 100 ops stay well under the 1 MiB body limit.
    for batch in mutations.chunks(10) {
        let r = http
            .post(format!("{}/v1/sessions/{id}/mutations", a.url))
            .bearer_auth(token)
            .json(&json!({ "mutations": batch }))
            .send()
            .await?
            .error_for_status()?;
        let body: serde_json::Value = r.json().await?;
        let refused = body["results"]
            .as_array()
            .map_or(0, |r| r.iter().filter(|r| r["status"] != "applied").count());
        anyhow::ensure!(refused == 0, "prefill refused: {body}");
    }
    Ok(())
}

pub async fn run(a: Args) -> anyhow::Result<()> {
    let http = reqwest::Client::new();
    let (token, _) = register(&http, &a.url).await?;
    let key = api_key(&http, &a.url, &token).await?;
    let mut sessions = Vec::new();
    for _ in 0..a.sessions {
        let s = session(&http, &a.url, &token).await?;
        if a.prefill_keys + a.prefill_tags + a.prefill_messages > 0 {
            prefill(&http, &a, &token, &s).await?;
        }
        sessions.push(s);
    }
    let run_id = uuid::Uuid::new_v4().simple().to_string();
    let mut sockets = Vec::new();
    for c in 0..a.clients {
        let mut ws = connect(&a.url, &key, c).await?;
        ws.next().await; // welcome
        sockets.push(ws);
    }
    // The clock starts once every client is connected.
    let started = Instant::now();
    let end = started + Duration::from_secs(a.seconds);
    let mut tasks = Vec::new();
    let clients = a.clients;
    for (c, mut ws) in sockets.into_iter().enumerate() {
        let session_id = sessions[c % sessions.len()]
            .trim_start_matches("session:")
            .to_string();
        let client_id = format!("load-{}-{c}", &run_id[..8]);
        let interval = (a.rate > 0).then(|| Duration::from_secs_f64(1.0 / a.rate as f64));
        tasks.push(tokio::spawn(async move {
            let mut h = Histogram::<u64>::new(3).expect("histogram");
            let mut id = 0u64;
            let start = Instant::now();
            while Instant::now() < end {
                if let Some(iv) = interval {
                    // Clients are spread over the interval, not all due at the same instant
                    // (a burst of every client at once is no client population's shape).
                    let phase = c as f64 / clients as f64;
                    let due = start + iv.mul_f64(id as f64 + phase);
                    if let Some(w) = due.checked_duration_since(Instant::now()) {
                        tokio::time::sleep(w).await;
                    }
                }
                id += 1;
                let ms = SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_millis() as u64);
                let frame = json!({"type": "session.push", "id": id.to_string(), "session_id": session_id, "mutations": [
                    {"client_id": client_id, "mutation_id": id, "hlc": format!("{ms}:0"),
                     "ops": [{"op": "set_context", "key": format!("k{}", id % 16), "value": id},
                             {"op": "append_message", "message_id": format!("{client_id}-{id}"), "role": "user", "content": "hello from load"}]}]});
                let t = Instant::now();
                if ws.send(Message::text(frame.to_string())).await.is_err() {
                    break;
                }
                let want = format!("\"id\":\"{id}\"");
                loop {
                    match ws.next().await {
                        Some(Ok(Message::Text(t))) if t.as_str().contains(&want) => {
                            if !t.as_str().contains("\"status\":\"applied\"") {
                                eprintln!("client {c}: not applied: {t}");
                                return h;
                            }
                            break;
                        }
                        Some(Ok(_)) => continue,
                        other => {
                            eprintln!("client {c} stopped: {other:?}");
                            return h;
                        }
                    }
                }
                h.record(t.elapsed().as_micros() as u64).ok();
            }
            h
        }));
    }
    let mut all = Histogram::<u64>::new(3)?;
    for t in tasks {
        all.add(t.await?)?;
    }
    let secs = started.elapsed().as_secs_f64();
    println!(
        "sync: {} clients on {} session(s): {} mutations committed, {:.0} mutations/s",
        a.clients,
        a.sessions,
        all.len(),
        all.len() as f64 / secs
    );
    report("push-to-ack", &all, "ms", 1000.0);
    Ok(())
}
