//! The Anthropic Messages API (`POST {base}/v1/messages`, `stream: true`). Its typed events
//! (`message_start`, `content_block_*`, `message_delta`, `message_stop`, `ping`, `error`) are
//! translated into our chunks. Tool calls are numbered by our own counter: Anthropic's block
//! index also counts text blocks, OpenAI clients expect 0, 1, 2... over calls only.

use super::{
    upstream::Upstream, ChatMessage, ChatRequest, Chunk, ChunkStream, FinishReason, LlmError, Part,
    Provider, Role, ToolChoice, Usage,
};
use async_stream::try_stream;
use async_trait::async_trait;
use futures::StreamExt;
use serde_json::{json, Value};
use std::{collections::HashMap, sync::Arc};

pub const API_VERSION: &str = "2023-06-01";
/// Anthropic requires `max_tokens`; used when the caller gives none.
pub const DEFAULT_MAX_TOKENS: u32 = 4096;

pub struct Anthropic {
    base_url: String,
    api_key: String,
    upstream: Arc<Upstream>,
}

impl Anthropic {
    pub fn new(base_url: &str, api_key: &str, upstream: Arc<Upstream>) -> Self {
        Self {
            base_url: base_url.trim_end_matches('/').to_owned(),
            api_key: api_key.to_owned(),
            upstream,
        }
    }
}

/// Content blocks of one of our messages, and the Anthropic role they go under. Anthropic
/// refuses `tool_use`/`tool_result` blocks in a request that defines no tools (an earlier
/// turn's calls, when this turn offers none), so those become text then.
fn blocks(m: &ChatMessage, tools: bool) -> (&'static str, Vec<Value>) {
    match m.role {
        Role::Tool if tools => (
            "user",
            vec![
                json!({"type": "tool_result", "tool_use_id": m.tool_call_id, "content": m.content}),
            ],
        ),
        Role::Tool => (
            "user",
            vec![
                json!({"type": "text", "text": format!("[tool result {}]: {}",
                m.tool_call_id.as_deref().unwrap_or_default(), m.content)}),
            ],
        ),
        Role::Assistant => {
            let mut b = Vec::new();
            if !m.content.is_empty() {
                b.push(json!({"type": "text", "text": m.content}));
            }
            for c in &m.tool_calls {
                if tools {
                    let input: Value =
                        serde_json::from_str(&c.arguments).unwrap_or_else(|_| json!({}));
                    b.push(json!({"type": "tool_use", "id": c.id, "name": c.name, "input": input}));
                } else {
                    b.push(json!({"type": "text",
                        "text": format!("[tool call {} {}({})]", c.id, c.name, c.arguments)}));
                }
            }
            ("assistant", b)
        }
        _ if !m.parts.is_empty() => ("user", m.parts.iter().map(part).collect()),
        _ => ("user", vec![json!({"type": "text", "text": m.content})]),
    }
}

/// A part as an Anthropic block: an image from a `data:` URL goes as base64 with its media
/// type, any other URL as a `url` source.
fn part(p: &Part) -> Value {
    match p {
        Part::Text(t) => json!({"type": "text", "text": t}),
        Part::Image(i) => match i
            .url
            .strip_prefix("data:")
            .and_then(|rest| rest.split_once(";base64,"))
        {
            Some((media_type, data)) => json!({"type": "image",
                "source": {"type": "base64", "media_type": media_type, "data": data}}),
            None => json!({"type": "image", "source": {"type": "url", "url": i.url}}),
        },
    }
}

pub fn body(req: &ChatRequest) -> Value {
    let system: Vec<&str> = req
        .messages
        .iter()
        .filter(|m| m.role == Role::System)
        .map(|m| m.content.as_str())
        .collect();
    // Consecutive same-role messages merge: tool results after a call go in one user turn.
    let mut messages: Vec<Value> = Vec::new();
    for m in req.messages.iter().filter(|m| m.role != Role::System) {
        let (role, mut content) = blocks(m, !req.tools.is_empty());
        if content.is_empty() {
            continue;
        }
        match messages.last_mut() {
            Some(last) if last["role"] == role => {
                if let Some(arr) = last["content"].as_array_mut() {
                    arr.append(&mut content);
                }
            }
            _ => messages.push(json!({"role": role, "content": content})),
        }
    }
    let mut b = json!({
        "model": req.model,
        "messages": messages,
        "max_tokens": req.max_tokens.unwrap_or(DEFAULT_MAX_TOKENS),
        "stream": true,
    });
    if !system.is_empty() {
        b["system"] = json!(system.join("\n\n"));
    }
    if !req.tools.is_empty() {
        b["tools"] = req
            .tools
            .iter()
            .map(|t| json!({"name": t.name, "description": t.description, "input_schema": t.parameters}))
            .collect();
    }
    if let Some(c) = &req.tool_choice {
        b["tool_choice"] = match c {
            ToolChoice::Auto => json!({"type": "auto"}),
            ToolChoice::None => json!({"type": "none"}),
            ToolChoice::Required => json!({"type": "any"}),
            ToolChoice::Function(n) => json!({"type": "tool", "name": n}),
        };
    }
    if !req.stop.is_empty() {
        b["stop_sequences"] = json!(req.stop);
    }
    if let Some(t) = req.temperature {
        b["temperature"] = json!(t);
    }
    if let Some(t) = req.top_p {
        b["top_p"] = json!(t);
    }
    if let Some(u) = &req.user {
        b["metadata"] = json!({ "user_id": u });
    }
    b
}

pub fn finish_reason(stop_reason: &str) -> FinishReason {
    match stop_reason {
        "max_tokens" | "model_context_window_exceeded" => FinishReason::Length,
        "tool_use" => FinishReason::ToolCalls,
        "refusal" => FinishReason::ContentFilter,
        // end_turn, stop_sequence, pause_turn
        _ => FinishReason::Stop,
    }
}

/// Translation state across one stream's events.
#[derive(Default)]
pub struct Decoder {
    /// Anthropic block index -> our tool-call index.
    tools: HashMap<u64, u32>,
    next_tool: u32,
    usage: Usage,
    finish: Option<FinishReason>,
    pub stopped: bool,
}

impl Decoder {
    /// A text block may open with text; a tool-use block opens a tool call.
    fn block_start(&mut self, v: &Value, out: &mut Vec<Chunk>) {
        let block = &v["content_block"];
        match block["type"].as_str() {
            Some("tool_use") => {
                let i = self.next_tool;
                self.next_tool += 1;
                self.tools.insert(v["index"].as_u64().unwrap_or(0), i);
                out.push(Chunk::ToolCall {
                    index: i,
                    id: block["id"].as_str().map(str::to_owned),
                    name: block["name"].as_str().map(str::to_owned),
                    arguments: String::new(),
                });
            }
            Some("text") => {
                if let Some(t) = block["text"].as_str().filter(|t| !t.is_empty()) {
                    out.push(Chunk::Text(t.to_owned()));
                }
            }
            _ => {}
        }
    }

    /// Text, or a piece of a tool call's arguments; thinking and signatures are not forwarded.
    fn block_delta(&mut self, v: &Value, out: &mut Vec<Chunk>) {
        let d = &v["delta"];
        match d["type"].as_str() {
            Some("text_delta") => {
                if let Some(t) = d["text"].as_str().filter(|t| !t.is_empty()) {
                    out.push(Chunk::Text(t.to_owned()));
                }
            }
            Some("input_json_delta") => {
                let block = v["index"].as_u64().unwrap_or(0);
                if let Some(&index) = self.tools.get(&block) {
                    out.push(Chunk::ToolCall {
                        index,
                        id: None,
                        name: None,
                        arguments: d["partial_json"].as_str().unwrap_or_default().into(),
                    });
                }
            }
            _ => {}
        }
    }

    pub fn decode(&mut self, data: &str, out: &mut Vec<Chunk>) -> Result<(), LlmError> {
        let v: Value =
            serde_json::from_str(data).map_err(|e| LlmError::Stream(format!("bad event: {e}")))?;
        match v["type"].as_str().unwrap_or_default() {
            "message_start" => {
                let u = &v["message"]["usage"];
                self.usage.prompt_tokens = u["input_tokens"].as_u64().unwrap_or(0)
                    + u["cache_read_input_tokens"].as_u64().unwrap_or(0)
                    + u["cache_creation_input_tokens"].as_u64().unwrap_or(0);
                self.usage.completion_tokens = u["output_tokens"].as_u64().unwrap_or(0);
            }
            "content_block_start" => self.block_start(&v, out),
            "content_block_delta" => self.block_delta(&v, out),
            "message_delta" => {
                if let Some(r) = v["delta"]["stop_reason"].as_str() {
                    self.finish = Some(finish_reason(r));
                }
                // Usage here is cumulative: it replaces, never adds.
                let u = &v["usage"];
                if let Some(n) = u["output_tokens"].as_u64() {
                    self.usage.completion_tokens = n;
                }
                if let Some(n) = u["input_tokens"].as_u64() {
                    self.usage.prompt_tokens = n
                        + u["cache_read_input_tokens"].as_u64().unwrap_or(0)
                        + u["cache_creation_input_tokens"].as_u64().unwrap_or(0);
                }
            }
            "message_stop" => {
                out.push(Chunk::Finish(self.finish.unwrap_or(FinishReason::Stop)));
                out.push(Chunk::Usage(self.usage));
                self.stopped = true;
            }
            "error" => {
                return Err(LlmError::Provider {
                    kind: v["error"]["type"].as_str().unwrap_or("error").to_owned(),
                    message: v["error"]["message"]
                        .as_str()
                        .unwrap_or("upstream error")
                        .to_owned(),
                })
            }
            _ => {} // ping, content_block_stop, and types added later
        }
        Ok(())
    }
}

#[async_trait]
impl Provider for Anthropic {
    async fn stream(&self, req: ChatRequest) -> Result<ChunkStream, LlmError> {
        let url = format!("{}/v1/messages", self.base_url);
        let body = body(&req);
        let events = self
            .upstream
            .open("anthropic", |c| {
                c.post(&url)
                    .header("x-api-key", &self.api_key)
                    .header("anthropic-version", API_VERSION)
                    .header("accept", "text/event-stream")
                    .json(&body)
            })
            .await?;
        Ok(Box::pin(try_stream! {
            let mut events = std::pin::pin!(events);
            let mut dec = Decoder::default();
            let mut out = Vec::new();
            while let Some(ev) = events.next().await {
                let ev = ev?;
                if ev.data.is_empty() {
                    continue;
                }
                dec.decode(&ev.data, &mut out)?;
                for c in out.drain(..) {
                    yield c;
                }
                if dec.stopped {
                    break;
                }
            }
            if !dec.stopped {
                Err(LlmError::Stream("stream ended before message_stop".into()))?;
            }
        }))
    }
}

#[cfg(test)]
#[path = "anthropic_tests.rs"]
mod tests;
