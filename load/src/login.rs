//! Concurrent logins (argon2id on the server) with a /health probe every 10 ms beside them.

use crate::client::{register, report, PASSWORD};
use hdrhistogram::Histogram;
use serde_json::json;
use std::time::{Duration, Instant};

#[derive(clap::Args)]
pub struct Args {
    #[arg(long, default_value = "http://127.0.0.1:8080")]
    url: String,
    #[arg(long, default_value_t = 20)]
    concurrency: usize,
    #[arg(long, default_value_t = 10)]
    seconds: u64,
}

pub async fn run(a: Args) -> anyhow::Result<()> {
    let http = reqwest::Client::new();
    let (_, email) = register(&http, &a.url).await?;
    let end = Instant::now() + Duration::from_secs(a.seconds);
    let mut tasks = Vec::new();
    for _ in 0..a.concurrency {
        let (http, url, email) = (http.clone(), a.url.clone(), email.clone());
        tasks.push(tokio::spawn(async move {
            let mut h = Histogram::<u64>::new(3).expect("histogram");
            while Instant::now() < end {
                let t = Instant::now();
                let r = http
                    .post(format!("{url}/v1/auth/login"))
                    .json(&json!({"email": email, "password": PASSWORD}))
                    .send()
                    .await;
                if r.map(|r| r.status().is_success()).unwrap_or(false) {
                    h.record(t.elapsed().as_micros() as u64).ok();
                }
            }
            h
        }));
    }
    let probe = {
        let (http, url) = (http.clone(), a.url.clone());
        tokio::spawn(async move {
            let mut h = Histogram::<u64>::new(3).expect("histogram");
            while Instant::now() < end {
                let t = Instant::now();
                if http.get(format!("{url}/health")).send().await.is_ok() {
                    h.record(t.elapsed().as_micros() as u64).ok();
                }
                tokio::time::sleep(Duration::from_millis(10)).await;
            }
            h
        })
    };
    let mut logins = Histogram::<u64>::new(3)?;
    for t in tasks {
        logins.add(t.await?)?;
    }
    let health = probe.await?;
    println!(
        "login x{} for {}s: {:.1} logins/s",
        a.concurrency,
        a.seconds,
        logins.len() as f64 / a.seconds as f64
    );
    report("login latency", &logins, "ms", 1000.0);
    report("/health latency during logins", &health, "ms", 1000.0);
    Ok(())
}
