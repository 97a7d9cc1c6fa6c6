//! N authenticated idle sockets held open; reports the server's RSS growth per connection.

use crate::client::{api_key, connect, register, rss_kib};
use futures::StreamExt;
use std::time::Duration;

#[derive(clap::Args)]
pub struct Args {
    #[arg(long, default_value = "http://127.0.0.1:8080")]
    url: String,
    #[arg(long, default_value_t = 5000)]
    conns: usize,
    /// Server process id, to read its RSS.
    #[arg(long)]
    pid: u32,
    /// Parallel connection attempts.
    #[arg(long, default_value_t = 200)]
    parallel: usize,
    #[arg(long, default_value_t = 5)]
    hold_seconds: u64,
}

pub async fn run(a: Args) -> anyhow::Result<()> {
    let http = reqwest::Client::new();
    let (token, _) = register(&http, &a.url).await?;
    let key = api_key(&http, &a.url, &token).await?;
    tokio::time::sleep(Duration::from_millis(500)).await;
    let before = rss_kib(a.pid)?;
    let sem = std::sync::Arc::new(tokio::sync::Semaphore::new(a.parallel));
    let mut tasks = Vec::with_capacity(a.conns);
    for n in 0..a.conns {
        let (url, key, sem) = (a.url.clone(), key.clone(), sem.clone());
        tasks.push(tokio::spawn(async move {
            let permit = sem.acquire_owned().await.expect("open");
            let mut ws = connect(&url, &key, n).await?;
            let _welcome = ws.next().await;
            drop(permit);
            Ok::<_, anyhow::Error>(ws)
        }));
    }
    let mut held = Vec::with_capacity(a.conns);
    let mut failed = 0;
    for t in tasks {
        match t.await? {
            Ok(ws) => held.push(ws),
            Err(_) => failed += 1,
        }
    }
    tokio::time::sleep(Duration::from_secs(a.hold_seconds)).await;
    let after = rss_kib(a.pid)?;
    let per = (after.saturating_sub(before)) as f64 * 1024.0 / held.len().max(1) as f64;
    println!("connections held: {} (failed {failed})", held.len());
    println!("server RSS: before {before} KiB, after {after} KiB, per connection {:.0} bytes ({:.2} KiB)", per, per / 1024.0);
    Ok(())
}
