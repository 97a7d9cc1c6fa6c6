//! Non-streaming `/v1/chat/completions` against the built-in `echo` model: completions/s and
//! request latency, with `--concurrency` keep-alive clients.

use crate::client::{api_key, register, report};
use hdrhistogram::Histogram;
use serde_json::json;
use std::time::{Duration, Instant};

#[derive(clap::Args)]
pub struct Args {
    #[arg(long, default_value = "http://127.0.0.1:8080")]
    url: String,
    #[arg(long, default_value_t = 64)]
    concurrency: usize,
    #[arg(long, default_value_t = 10)]
    seconds: u64,
    #[arg(long, default_value = "echo")]
    model: String,
    /// Authenticate with the access token instead of an API key.
    #[arg(long)]
    jwt: bool,
}

pub async fn run(a: Args) -> anyhow::Result<()> {
    let http = reqwest::Client::builder()
        .pool_max_idle_per_host(a.concurrency)
        .tcp_nodelay(true)
        .build()?;
    let (token, _) = register(&http, &a.url).await?;
    let key = if a.jwt {
        token
    } else {
        api_key(&http, &a.url, &token).await?
    };
    let body = serde_json::to_vec(&json!({"model": a.model,
        "messages": [{"role": "user", "content": "the quick brown fox jumps over the lazy dog"}]}))?;
    let start = Instant::now();
    let end = start + Duration::from_secs(a.seconds);
    let mut tasks = Vec::new();
    for _ in 0..a.concurrency {
        let (http, url, key, body) = (http.clone(), a.url.clone(), key.clone(), body.clone());
        tasks.push(tokio::spawn(async move {
            let mut h = Histogram::<u64>::new(3).expect("histogram");
            let mut errors = 0u64;
            while Instant::now() < end {
                let t = Instant::now();
                let r = http
                    .post(format!("{url}/v1/chat/completions"))
                    .bearer_auth(&key)
                    .header("content-type", "application/json")
                    .body(body.clone())
                    .send()
                    .await;
                let ok = match r {
                    Ok(r) => r.status().is_success() && r.bytes().await.is_ok(),
                    Err(_) => false,
                };
                if ok {
                    h.record(t.elapsed().as_micros() as u64).ok();
                } else {
                    errors += 1;
                }
            }
            (h, errors)
        }));
    }
    let mut all = Histogram::<u64>::new(3)?;
    let mut errors = 0;
    for t in tasks {
        let (h, e) = t.await?;
        all.add(h)?;
        errors += e;
    }
    let secs = start.elapsed().as_secs_f64();
    println!(
        "completions: {} ok, {errors} failed in {secs:.1}s = {:.0} completions/s ({} clients, model {})",
        all.len(),
        all.len() as f64 / secs,
        a.concurrency,
        a.model
    );
    report("latency", &all, "ms", 1000.0);
    Ok(())
}
