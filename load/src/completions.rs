//! `/v1/chat/completions` throughput and latency with `--concurrency` keep-alive clients,
//! against the built-in `echo` model, or (`--upstream`) through the OpenAI-compatible provider
//! to an upstream this command runs itself. With `--upstream` it first calls that upstream
//! directly (the baseline: loopback HTTP, JSON on the same cores), then through the server;
//! "added" is the difference. The server must route `--model` to the upstream:
//!
//!   SWITCHYARD_LLM_OPENAI_BASE_URL=http://127.0.0.1:9102/v1 SWITCHYARD_LLM_MODELS=gw=openai:gw

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
    /// Run an OpenAI-compatible upstream on this address and measure it directly first.
    #[arg(long)]
    upstream: Option<String>,
    /// Ask for `stream: true` (the upstream answers in `--words` chunks).
    #[arg(long)]
    stream: bool,
    /// Words in the upstream's answer.
    #[arg(long, default_value_t = 20)]
    words: usize,
}

/// One measured run: completions that succeeded, their latency, failures, wall time.
struct Run {
    latency: Histogram<u64>,
    errors: u64,
    secs: f64,
}

impl Run {
    fn print(&self, name: &str, clients: usize) {
        println!(
            "{name}: {} ok, {} failed in {:.1}s = {:.0} completions/s ({clients} clients)",
            self.latency.len(),
            self.errors,
            self.secs,
            self.latency.len() as f64 / self.secs
        );
        report("  latency", &self.latency, "ms", 1000.0);
    }
}

pub async fn run(a: Args) -> anyhow::Result<()> {
    let http = reqwest::Client::builder()
        .pool_max_idle_per_host(a.concurrency)
        .tcp_nodelay(true)
        .build()?;
    let mut body = json!({"model": a.model,
        "messages": [{"role": "user", "content": "the quick brown fox jumps over the lazy dog"}]});
    if a.stream {
        body["stream"] = json!(true);
    }
    let body = serde_json::to_vec(&body)?;
    let seconds = Duration::from_secs(a.seconds);
    let direct = match &a.upstream {
        Some(addr) => {
            crate::upstream::serve(addr, a.words).await?;
            let url = format!("http://{addr}/v1/chat/completions");
            let run = hammer(&http, url, None, &body, a.concurrency, seconds).await?;
            run.print("direct to upstream (baseline)", a.concurrency);
            Some(run)
        }
        None => None,
    };
    let (token, _) = register(&http, &a.url).await?;
    let key = if a.jwt {
        token
    } else {
        api_key(&http, &a.url, &token).await?
    };
    let url = format!("{}/v1/chat/completions", a.url);
    let via = hammer(&http, url, Some(key), &body, a.concurrency, seconds).await?;
    via.print(
        &format!("through switchyard (model {})", a.model),
        a.concurrency,
    );
    if let Some(d) = direct {
        for q in [0.5, 0.99] {
            let added =
                via.latency.value_at_quantile(q) as f64 - d.latency.value_at_quantile(q) as f64;
            println!("added at p{}: {:.3} ms", q * 100.0, added / 1000.0);
        }
    }
    Ok(())
}

/// `concurrency` clients posting `body` to `url` back to back for `seconds`.
async fn hammer(
    http: &reqwest::Client,
    url: String,
    key: Option<String>,
    body: &[u8],
    concurrency: usize,
    seconds: Duration,
) -> anyhow::Result<Run> {
    let start = Instant::now();
    let end = start + seconds;
    let body = bytes::Bytes::copy_from_slice(body);
    let mut tasks = Vec::new();
    for _ in 0..concurrency {
        let (http, url, key, body) = (http.clone(), url.clone(), key.clone(), body.clone());
        tasks.push(tokio::spawn(async move {
            let mut h = Histogram::<u64>::new(3).expect("histogram");
            let mut errors = 0u64;
            while Instant::now() < end {
                let t = Instant::now();
                let mut req = http
                    .post(&url)
                    .header("content-type", "application/json")
                    .body(body.clone());
                if let Some(k) = &key {
                    req = req.bearer_auth(k);
                }
                let ok = match req.send().await {
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
    let mut latency = Histogram::<u64>::new(3)?;
    let mut errors = 0;
    for t in tasks {
        let (h, e) = t.await?;
        latency.add(h)?;
        errors += e;
    }
    Ok(Run {
        latency,
        errors,
        secs: start.elapsed().as_secs_f64(),
    })
}
