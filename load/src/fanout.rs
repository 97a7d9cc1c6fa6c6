//! One publisher, N subscribers on one session channel (or spread over `--channels`). The
//! publisher stamps each event with its send time; subscribers (same machine, same clock) record
//! publish-to-receive latency.

use crate::client::{api_key, connect, register, report, session};
use futures::{SinkExt, StreamExt};
use hdrhistogram::Histogram;
use serde_json::{json, Value};
use std::{
    sync::Arc,
    time::{Duration, Instant, SystemTime, UNIX_EPOCH},
};
use tokio_tungstenite::tungstenite::Message;

#[derive(clap::Args)]
pub struct Args {
    /// Where the publisher connects.
    #[arg(long, default_value = "http://127.0.0.1:8080")]
    url: String,
    /// Where subscribers connect (another instance, for cross-instance fan-out). Default: --url.
    #[arg(long)]
    sub_url: Option<String>,
    #[arg(long, default_value_t = 1000)]
    subs: usize,
    /// Publishes per second.
    #[arg(long, default_value_t = 1000)]
    rate: u64,
    #[arg(long, default_value_t = 10)]
    seconds: u64,
    /// Approximate event size in bytes.
    #[arg(long, default_value_t = 100)]
    size: usize,
    /// Sessions: subscribers are spread over them and publishes go to each in turn (on a
    /// Redis Cluster, their channels spread over the shards). At most 100.
    #[arg(long, default_value_t = 1)]
    channels: usize,
}

fn now_us() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_micros() as u64)
}

pub async fn run(a: Args) -> anyhow::Result<()> {
    let http = reqwest::Client::new();
    let sub_url = a.sub_url.clone().unwrap_or_else(|| a.url.clone());
    let (token, _) = register(&http, &a.url).await?;
    let key = api_key(&http, &a.url, &token).await?;
    let n_channels = a.channels.clamp(1, 100);
    let mut channels = Vec::new();
    for _ in 0..n_channels {
        channels.push(session(&http, &a.url, &token).await?);
    }
    let total = a.rate * a.seconds;
    // Publish i goes to channel i % n: how many each channel gets.
    let per_channel = |c: usize| (total + (n_channels - 1 - c) as u64) / n_channels as u64;
    let done = Arc::new(tokio::sync::Notify::new());

    let mut subs = Vec::new();
    let mut expected = 0u64;
    for n in 0..a.subs {
        let channel = channels[n % n_channels].clone();
        let mine = per_channel(n % n_channels);
        expected += mine;
        let mut ws = connect(&sub_url, &key, n).await?;
        ws.next().await; // welcome
        ws.send(Message::text(
            json!({"type": "subscribe", "id": "s", "channel": channel}).to_string(),
        ))
        .await?;
        loop {
            let m = ws.next().await.ok_or_else(|| anyhow::anyhow!("closed"))??;
            if let Message::Text(t) = m {
                if t.as_str().contains("\"type\":\"ok\"") {
                    break;
                }
            }
        }
        let deadline = Duration::from_secs(a.seconds + 10);
        subs.push(tokio::spawn(async move {
            let mut h = Histogram::<u64>::new(3).expect("histogram");
            // The clock starts at the first event: set-up of later subscribers takes a while.
            let mut until: Option<Instant> = None;
            while h.len() < mine && until.is_none_or(|e| Instant::now() < e) {
                let Ok(Some(Ok(m))) = tokio::time::timeout(Duration::from_secs(5), ws.next()).await
                else {
                    break;
                };
                let Message::Text(t) = m else { continue };
                if let Some(i) = t.as_str().find("\"sent\":") {
                    let rest = &t.as_str()[i + 7..];
                    let end = rest
                        .find(|c: char| !c.is_ascii_digit())
                        .unwrap_or(rest.len());
                    if let Ok(sent) = rest[..end].parse::<u64>() {
                        h.record(now_us().saturating_sub(sent)).ok();
                        until.get_or_insert_with(|| Instant::now() + deadline);
                    }
                }
            }
            h
        }));
    }
    eprintln!(
        "{} subscribers ready on {n_channels} channel(s)",
        subs.len()
    );

    let mut pubws = connect(&a.url, &key, 251).await?;
    pubws.next().await; // welcome
                        // Publishing needs a subscription. `echo: false`: the publisher does not get its own
                        // events back, only the replies (drained below).
    for channel in &channels {
        pubws
            .send(Message::text(
                json!({"type": "subscribe", "id": "s", "channel": channel}).to_string(),
            ))
            .await?;
    }
    let (mut sink, mut stream) = pubws.split();
    let drain = tokio::spawn(async move { while let Some(Ok(_)) = stream.next().await {} });
    let pad = "x".repeat(a.size.saturating_sub(60));
    let start = Instant::now();
    let interval = Duration::from_secs_f64(1.0 / a.rate as f64);
    for i in 0..total {
        let due = start + interval.mul_f64(i as f64);
        if let Some(wait) = due.checked_duration_since(Instant::now()) {
            tokio::time::sleep(wait).await;
        }
        let channel = &channels[i as usize % n_channels];
        let frame = json!({"type": "publish", "id": "p", "channel": channel, "event": "m", "echo": false, "data": {"sent": now_us(), "p": pad}});
        sink.send(Message::text(frame.to_string())).await?;
    }
    let publish_secs = start.elapsed().as_secs_f64();
    let mut all = Histogram::<u64>::new(3)?;
    for s in subs {
        all.add(s.await?)?;
    }
    let elapsed = start.elapsed().as_secs_f64();
    done.notify_waiters();
    drain.abort();
    println!(
        "fanout: {} subs on {n_channels} channel(s), {} publishes in {:.2}s ({:.0}/s), {} of {} delivered ({:.2}%), {:.0} deliveries/s",
        a.subs,
        total,
        publish_secs,
        total as f64 / publish_secs,
        all.len(),
        expected,
        100.0 * all.len() as f64 / expected as f64,
        all.len() as f64 / elapsed
    );
    report("publish-to-receive", &all, "ms", 1000.0);
    let _ = Value::Null;
    Ok(())
}
