//! The HTTP side every remote provider shares: one pooled reqwest client, retries only before
//! the first byte (after it, a retry could repeat text the client already has), the three
//! timeouts (connect, first byte, idle between chunks), and the body as server-sent events.

use super::{
    sse::{Event, Parser},
    LlmError,
};
use crate::config::LlmConfig;
use async_stream::try_stream;
use bytes::Bytes;
use futures::{Stream, StreamExt};
use std::time::Duration;

pub struct Upstream {
    client: reqwest::Client,
    first_byte: Duration,
    idle: Duration,
    answer: Duration,
    retries: u32,
    max_answer: usize,
}

/// Longest upstream error body read for its message.
const MAX_ERROR_BODY: usize = 16 * 1024;

impl Upstream {
    pub fn new(cfg: &LlmConfig) -> Self {
        let client = reqwest::Client::builder()
            .connect_timeout(Duration::from_millis(cfg.connect_timeout_ms))
            .tcp_nodelay(true)
            .pool_idle_timeout(Duration::from_secs(90))
            .build()
            .expect("reqwest client builds with static settings");
        Self {
            client,
            first_byte: Duration::from_millis(cfg.first_byte_timeout_ms),
            idle: Duration::from_millis(cfg.idle_timeout_ms),
            answer: Duration::from_millis(cfg.answer_timeout_ms),
            retries: cfg.retries,
            max_answer: cfg.max_answer_bytes,
        }
    }

    /// Sends the request `build` makes (again on each retry) and returns its events once the
    /// first bytes of a 2xx body arrived.
    pub async fn open(
        &self,
        provider: &'static str,
        build: impl Fn(&reqwest::Client) -> reqwest::RequestBuilder,
    ) -> Result<impl Stream<Item = Result<Event, LlmError>> + Send + 'static, LlmError> {
        let (first, body, _) = self
            .retrying(provider, self.first_byte, retriable, || {
                first_bytes(build(&self.client))
            })
            .await?;
        Ok(events(first, body, self.idle))
    }

    /// Sends the request `build` makes (again on each retry) and returns its whole 2xx body,
    /// at most `llm.max_answer_bytes`: for an upstream asked for a non-streaming answer, which
    /// may take `llm.answer_timeout_ms` to start. The idle timeout holds between the body's
    /// parts, as between a stream's chunks.
    pub async fn fetch(
        &self,
        provider: &'static str,
        build: impl Fn(&reqwest::Client) -> reqwest::RequestBuilder,
    ) -> Result<Fetched, LlmError> {
        let (first, mut body, event_stream) = self
            .retrying(provider, self.answer, refused_before_work, || {
                first_bytes(build(&self.client))
            })
            .await?;
        let max = self.max_answer;
        if first.len() > max {
            return Err(too_big(max));
        }
        let mut whole = bytes::BytesMut::from(&first[..]);
        loop {
            match tokio::time::timeout(self.idle, body.next()).await {
                Err(_) => return Err(LlmError::Timeout("between chunks")),
                Ok(None) => {
                    return Ok(Fetched {
                        body: whole.freeze(),
                        event_stream,
                    })
                }
                Ok(Some(Err(e))) => return Err(transport(e)),
                Ok(Some(Ok(b))) if whole.len() + b.len() > max => return Err(too_big(max)),
                Ok(Some(Ok(b))) => whole.extend_from_slice(&b),
            }
        }
    }

    /// Runs `attempt` until it succeeds, fails for good, or the retries are spent; each attempt
    /// has `timeout`. Retries happen only here, before anything reached a client.
    async fn retrying<T, F>(
        &self,
        provider: &'static str,
        timeout: Duration,
        retry: fn(&LlmError) -> bool,
        attempt: impl Fn() -> F,
    ) -> Result<T, LlmError>
    where
        F: std::future::Future<Output = Result<T, LlmError>>,
    {
        let mut tries = 0u32;
        loop {
            let started = tokio::time::timeout(timeout, attempt())
                .await
                .unwrap_or(Err(LlmError::Timeout("waiting for the first byte")));
            match started {
                Ok(t) => return Ok(t),
                Err(e) if tries < self.retries && retry(&e) => {
                    tries += 1;
                    metrics::counter!("llm_upstream_retries_total", "provider" => provider)
                        .increment(1);
                    tracing::info!(provider, attempt = tries, error = %e, "retrying upstream");
                    tokio::time::sleep(Duration::from_millis(100 << tries.min(4))).await;
                }
                Err(e) => {
                    metrics::counter!("llm_upstream_failures_total", "provider" => provider)
                        .increment(1);
                    return Err(e);
                }
            }
        }
    }
}

/// An answer past `llm.max_answer_bytes`, whole from the upstream or assembled for a client.
pub fn too_big(max: usize) -> LlmError {
    LlmError::Stream(format!("the answer exceeded {max} bytes; use stream: true"))
}

/// A whole upstream answer.
pub struct Fetched {
    pub body: Bytes,
    /// It came as `text/event-stream` although a whole answer was asked for (some compatible
    /// servers and proxies always stream).
    pub event_stream: bool,
}

type Body = futures::stream::BoxStream<'static, reqwest::Result<Bytes>>;

/// The first bytes of a 2xx body, the rest of it, and whether it is an event stream.
async fn first_bytes(req: reqwest::RequestBuilder) -> Result<(Bytes, Body, bool), LlmError> {
    let resp = req.send().await.map_err(transport)?;
    let status = resp.status();
    let event_stream = resp
        .headers()
        .get(reqwest::header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.trim_start().starts_with("text/event-stream"));
    if !status.is_success() {
        let retry_after_secs = resp
            .headers()
            .get(reqwest::header::RETRY_AFTER)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.trim().parse::<u64>().ok());
        let mut body = Vec::new();
        let mut stream = resp.bytes_stream();
        while let Some(Ok(b)) = stream.next().await {
            body.extend_from_slice(&b);
            if body.len() > MAX_ERROR_BODY {
                break;
            }
        }
        return Err(LlmError::Status {
            status: status.as_u16(),
            message: error_message(&body),
            retry_after_secs,
        });
    }
    let mut body: Body = resp.bytes_stream().boxed();
    loop {
        match body.next().await {
            Some(Ok(b)) if b.is_empty() => continue,
            Some(Ok(b)) => return Ok((b, body, event_stream)),
            Some(Err(e)) => return Err(transport(e)),
            None => return Err(LlmError::Stream("empty response body".into())),
        }
    }
}

/// The message inside an OpenAI (`{"error":{"message"}}`) or Anthropic
/// (`{"type":"error","error":{"message"}}`) error body, else a short excerpt.
pub fn error_message(body: &[u8]) -> String {
    let v: Option<serde_json::Value> = serde_json::from_slice(body).ok();
    if let Some(m) = v.as_ref().and_then(|v| {
        v["error"]["message"]
            .as_str()
            .or_else(|| v["error"].as_str())
            .or_else(|| v["message"].as_str())
    }) {
        return m.chars().take(500).collect();
    }
    String::from_utf8_lossy(&body[..body.len().min(200)]).into_owned()
}

fn transport(e: reqwest::Error) -> LlmError {
    // The cause (addresses, URLs) goes to the log, not to the client.
    tracing::warn!(error = ?e, "upstream transport error");
    if e.is_timeout() {
        LlmError::Timeout("connecting")
    } else if e.is_connect() {
        LlmError::Connect("connection failed".into())
    } else {
        LlmError::Stream("connection closed unexpectedly".into())
    }
}

/// A whole answer is generated (and billed) before its first byte: one that timed out or broke
/// may have been generated in full, so only a refusal before any work is tried again.
fn refused_before_work(e: &LlmError) -> bool {
    match e {
        LlmError::Connect(_) | LlmError::Timeout("connecting") => true,
        LlmError::Status { status, .. } => *status == 429 || *status >= 500,
        LlmError::Timeout(_) | LlmError::Stream(_) | LlmError::Provider { .. } => false,
    }
}

fn retriable(e: &LlmError) -> bool {
    match e {
        LlmError::Connect(_) | LlmError::Timeout(_) | LlmError::Stream(_) => true,
        LlmError::Status { status, .. } => *status == 429 || *status >= 500,
        LlmError::Provider { .. } => false,
    }
}

fn events(
    first: Bytes,
    mut body: Body,
    idle: Duration,
) -> impl Stream<Item = Result<Event, LlmError>> + Send + 'static {
    try_stream! {
        let mut parser = Parser::new();
        let mut chunk = first;
        loop {
            let evs = parser
                .feed(&chunk)
                .map_err(|e| LlmError::Stream(e.to_string()))?;
            for ev in evs {
                yield ev;
            }
            chunk = match tokio::time::timeout(idle, body.next()).await {
                Err(_) => Err(LlmError::Timeout("between chunks"))?,
                Ok(None) => break,
                Ok(Some(Err(e))) => Err(transport(e))?,
                Ok(Some(Ok(b))) => b,
            };
        }
    }
}
