//! Any OpenAI-compatible upstream: `POST {base}/chat/completions` with `stream: true` and
//! `stream_options.include_usage`, decoded from its `data:` chunks, or, for a caller that wants
//! the answer whole, with `stream: false`, decoded from the one `chat.completion` object.
//! Handles a usage-only last chunk (`choices: []` or `null`) and an `{"error":...}` payload
//! after a 200.

use super::{
    upstream::Upstream, ChatRequest, Chunk, ChunkStream, Delivery, FinishReason, LlmError,
    Provider, Usage,
};
use async_stream::try_stream;
use async_trait::async_trait;
use futures::StreamExt;
use serde_json::Value;
use std::sync::Arc;

/// Tool calls one response may make; a larger index from an upstream is a broken stream (it
/// would otherwise size our buffers).
pub const MAX_TOOL_CALLS: u64 = 256;

/// Whole answers up to this size are decoded on the request's task.
const INLINE_DECODE: usize = 64 * 1024;

pub struct OpenAi {
    /// `{base}/chat/completions`, parsed once (not per request) when it parses; one that does
    /// not fails each request as unreachable.
    url: Result<reqwest::Url, String>,
    api_key: String,
    upstream: Arc<Upstream>,
}

impl OpenAi {
    pub fn new(base_url: &str, api_key: &str, upstream: Arc<Upstream>) -> Self {
        let url = format!("{}/chat/completions", base_url.trim_end_matches('/'));
        Self {
            url: reqwest::Url::parse(&url).map_err(|_| url),
            api_key: api_key.to_owned(),
            upstream,
        }
    }
}

/// A whole answer, or the events of an upstream that streamed although asked not to.
fn decode_fetched(f: &super::upstream::Fetched) -> Result<Vec<Chunk>, LlmError> {
    if !f.event_stream {
        return super::openai_answer::decode_whole(&f.body);
    }
    let events = super::sse::Parser::new()
        .feed(&f.body)
        .map_err(|e| LlmError::Stream(e.to_string()))?;
    let mut out = Vec::new();
    for ev in events {
        if decode_event(&ev.data, &mut out)? {
            return Ok(out);
        }
    }
    Err(unfinished())
}

/// One event of an OpenAI stream: its chunks into `out`; true at the closing `[DONE]`.
fn decode_event(data: &str, out: &mut Vec<Chunk>) -> Result<bool, LlmError> {
    if data == "[DONE]" {
        return Ok(true);
    }
    if !data.is_empty() {
        decode(data, out)?;
    }
    Ok(false)
}

fn unfinished() -> LlmError {
    LlmError::Stream("stream ended before [DONE]".into())
}

pub(super) fn finish(s: &str) -> FinishReason {
    match s {
        "length" => FinishReason::Length,
        "tool_calls" | "function_call" => FinishReason::ToolCalls,
        "content_filter" => FinishReason::ContentFilter,
        _ => FinishReason::Stop,
    }
}

/// An `{"error":{...}}` payload that came with a 200.
fn provider_error(v: &Value) -> Result<(), LlmError> {
    let Some(err) = v.get("error").filter(|e| !e.is_null()) else {
        return Ok(());
    };
    Err(LlmError::Provider {
        kind: err["type"]
            .as_str()
            .or_else(|| err["code"].as_str())
            .unwrap_or("error")
            .to_owned(),
        message: err["message"]
            .as_str()
            .unwrap_or("upstream error")
            .to_owned(),
    })
}

fn usage(v: &Value, out: &mut Vec<Chunk>) {
    if let Some(u) = v.get("usage").filter(|u| u.is_object()) {
        out.push(Chunk::Usage(Usage {
            prompt_tokens: u["prompt_tokens"].as_u64().unwrap_or(0),
            completion_tokens: u["completion_tokens"].as_u64().unwrap_or(0),
        }));
    }
}

/// One tool call (streamed part or whole) as a chunk; `index` is the call's position.
fn tool_call(index: u64, tc: &Value) -> Result<Chunk, LlmError> {
    if index >= MAX_TOOL_CALLS {
        return Err(LlmError::Stream(format!(
            "tool call index {index} out of range"
        )));
    }
    Ok(Chunk::ToolCall {
        index: index as u32,
        id: tc["id"].as_str().map(str::to_owned),
        name: tc["function"]["name"].as_str().map(str::to_owned),
        arguments: tc["function"]["arguments"]
            .as_str()
            .unwrap_or_default()
            .to_owned(),
    })
}

/// The chunks one `data:` payload carries.
pub fn decode(data: &str, out: &mut Vec<Chunk>) -> Result<(), LlmError> {
    let v: Value =
        serde_json::from_str(data).map_err(|e| LlmError::Stream(format!("bad chunk: {e}")))?;
    provider_error(&v)?;
    if let Some(choice) = v["choices"].as_array().and_then(|c| c.first()) {
        let delta = &choice["delta"];
        if let Some(t) = delta["content"].as_str().filter(|t| !t.is_empty()) {
            out.push(Chunk::Text(t.to_owned()));
        }
        for tc in delta["tool_calls"].as_array().into_iter().flatten() {
            out.push(tool_call(tc["index"].as_u64().unwrap_or(0), tc)?);
        }
        if let Some(f) = choice["finish_reason"].as_str() {
            out.push(Chunk::Finish(finish(f)));
        }
    }
    usage(&v, out);
    Ok(())
}

impl OpenAi {
    fn request(
        &self,
        body: &bytes::Bytes,
        accept: &'static str,
        c: &reqwest::Client,
    ) -> reqwest::RequestBuilder {
        let r = match &self.url {
            Ok(u) => c.post(u.clone()),
            Err(s) => c.post(s),
        };
        let r = r
            .header("accept", accept)
            .header("content-type", "application/json")
            .body(body.clone());
        if self.api_key.is_empty() {
            r
        } else {
            r.bearer_auth(&self.api_key)
        }
    }
}

#[async_trait]
impl Provider for OpenAi {
    async fn stream(&self, req: ChatRequest) -> Result<ChunkStream, LlmError> {
        let body = super::openai_request::encode(&req, Delivery::Streamed);
        let events = self
            .upstream
            .open("openai", |c| self.request(&body, "text/event-stream", c))
            .await?;
        Ok(Box::pin(try_stream! {
            let mut events = std::pin::pin!(events);
            let mut out = Vec::new();
            let mut done = false;
            while let Some(ev) = events.next().await {
                done = decode_event(&ev?.data, &mut out)?;
                for c in out.drain(..) {
                    yield c;
                }
                if done {
                    break;
                }
            }
            if !done {
                Err(unfinished())?;
            }
        }))
    }

    async fn whole(&self, req: ChatRequest) -> Result<ChunkStream, LlmError> {
        let body = super::openai_request::encode(&req, Delivery::Whole);
        let answer = self
            .upstream
            .fetch("openai", |c| self.request(&body, "application/json", c))
            .await?;
        // A few KiB decode in microseconds; a big answer goes off the runtime's threads.
        let chunks = if answer.body.len() <= INLINE_DECODE {
            decode_fetched(&answer)?
        } else {
            tokio::task::spawn_blocking(move || decode_fetched(&answer))
                .await
                .map_err(|_| LlmError::Stream("decoding the answer failed".into()))??
        };
        Ok(Box::pin(futures::stream::iter(chunks.into_iter().map(Ok))))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn usage_only_chunk_with_null_or_empty_choices() {
        for choices in ["null", "[]"] {
            let mut out = Vec::new();
            let data = format!(
                r#"{{"id":"x","choices":{choices},"usage":{{"prompt_tokens":3,"completion_tokens":5}}}}"#
            );
            decode(&data, &mut out).unwrap();
            assert_eq!(
                out,
                vec![Chunk::Usage(Usage {
                    prompt_tokens: 3,
                    completion_tokens: 5
                })]
            );
        }
    }

    #[test]
    fn an_absurd_tool_call_index_is_refused() {
        let mut out = Vec::new();
        let data = r#"{"choices":[{"delta":{"tool_calls":[{"index":4000000000,"function":{"arguments":"{}"}}]}}]}"#;
        assert!(matches!(decode(data, &mut out), Err(LlmError::Stream(_))));
    }

    #[test]
    fn error_payload_after_200_is_a_provider_error() {
        let mut out = Vec::new();
        let e = decode(
            r#"{"error":{"message":"overloaded","type":"server_error"}}"#,
            &mut out,
        )
        .unwrap_err();
        assert_eq!(
            e,
            LlmError::Provider {
                kind: "server_error".into(),
                message: "overloaded".into()
            }
        );
    }
}
