//! Model providers. Each turns a `ChatRequest` into one internal stream of `Chunk`s (text
//! deltas, tool-call deltas, finish reason, usage), whatever the upstream's wire format; the
//! REST endpoint and socket turns consume only that stream.

pub mod anthropic;
pub mod echo;
pub mod models;
pub mod openai;
pub mod openai_answer;
pub mod openai_request;
pub mod sse;
pub mod upstream;

use async_trait::async_trait;
use futures::Stream;
use serde::{Deserialize, Serialize};
use std::pin::Pin;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Role {
    System,
    User,
    Assistant,
    Tool,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ToolCall {
    pub id: String,
    pub name: String,
    /// JSON text, as the model produced it.
    pub arguments: String,
}

/// Tool calls assembled from their streamed parts (`Chunk::ToolCall`), by index.
#[derive(Debug, Default)]
pub struct ToolCalls(Vec<ToolCall>);

impl ToolCalls {
    /// Adds one part; `id` and `name` come with a call's first part, `arguments` accumulate.
    /// Indexes are bounded by the decoders, so this never grows without limit.
    pub fn add(&mut self, index: u32, id: Option<String>, name: Option<String>, arguments: &str) {
        let i = index as usize;
        if i >= self.0.len() {
            self.0.resize_with(i + 1, || ToolCall {
                id: String::new(),
                name: String::new(),
                arguments: String::new(),
            });
        }
        let call = &mut self.0[i];
        if let Some(id) = id {
            call.id = id;
        }
        if let Some(n) = name {
            call.name = n;
        }
        call.arguments.push_str(arguments);
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// Bytes of arguments held.
    pub fn bytes(&self) -> usize {
        self.0.iter().map(|c| c.arguments.len()).sum()
    }

    pub fn into_vec(self) -> Vec<ToolCall> {
        self.0
    }
}

/// An image the model is shown: a `data:` URL (attached files) or a URL a client passed.
#[derive(Debug, Clone, PartialEq)]
pub struct Image {
    pub url: String,
    /// OpenAI's `detail` (`auto`, `low`, `high`), passed through when a client gave it.
    pub detail: Option<String>,
}

/// One part of a message's content, in order.
#[derive(Debug, Clone, PartialEq)]
pub enum Part {
    Text(String),
    Image(Image),
}

#[derive(Debug, Clone, PartialEq)]
pub struct ChatMessage {
    pub role: Role,
    /// The message's text (all its text parts, joined).
    pub content: String,
    /// When not empty, the whole content in order, images included; providers send these
    /// instead of `content`. Empty for text-only messages (the common case, sent as a string).
    pub parts: Vec<Part>,
    /// Assistant messages: the calls it made.
    pub tool_calls: Vec<ToolCall>,
    /// Tool messages: which call this answers.
    pub tool_call_id: Option<String>,
}

impl ChatMessage {
    pub fn text(role: Role, content: impl Into<String>) -> Self {
        Self {
            role,
            content: content.into(),
            parts: Vec::new(),
            tool_calls: Vec::new(),
            tool_call_id: None,
        }
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct Tool {
    pub name: String,
    pub description: Option<String>,
    /// JSON Schema of the arguments.
    pub parameters: serde_json::Value,
}

/// What the model may do with tools (OpenAI's `tool_choice`).
#[derive(Debug, Clone, PartialEq)]
pub enum ToolChoice {
    Auto,
    None,
    Required,
    Function(String),
}

/// One completion request in provider-neutral form; `model` is the upstream's model name.
#[derive(Debug, Clone, Default)]
pub struct ChatRequest {
    pub model: String,
    pub messages: Vec<ChatMessage>,
    pub tools: Vec<Tool>,
    pub tool_choice: Option<ToolChoice>,
    pub max_tokens: Option<u32>,
    pub stop: Vec<String>,
    pub temperature: Option<f64>,
    pub top_p: Option<f64>,
    pub user: Option<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum FinishReason {
    Stop,
    Length,
    ToolCalls,
    ContentFilter,
}

impl FinishReason {
    pub fn as_str(self) -> &'static str {
        match self {
            FinishReason::Stop => "stop",
            FinishReason::Length => "length",
            FinishReason::ToolCalls => "tool_calls",
            FinishReason::ContentFilter => "content_filter",
        }
    }
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Usage {
    pub prompt_tokens: u64,
    pub completion_tokens: u64,
}

impl Usage {
    pub fn total(&self) -> u64 {
        self.prompt_tokens + self.completion_tokens
    }
}

#[derive(Debug, Clone, PartialEq)]
pub enum Chunk {
    Text(String),
    /// Part of a tool call. `index` is ours, counting calls from 0 in this response; `id` and
    /// `name` come with the first part, `arguments` text accumulates.
    ToolCall {
        index: u32,
        id: Option<String>,
        name: Option<String>,
        arguments: String,
    },
    Finish(FinishReason),
    Usage(Usage),
}

#[derive(Debug, Clone, thiserror::Error, PartialEq)]
pub enum LlmError {
    #[error("could not reach the model provider: {0}")]
    Connect(String),
    #[error("the model provider did not answer in time ({0})")]
    Timeout(&'static str),
    /// A non-2xx answer before any event.
    #[error("the model provider answered {status}: {message}")]
    Status {
        status: u16,
        message: String,
        retry_after_secs: Option<u64>,
    },
    /// An error event inside a stream that had started (OpenAI's `{"error":...}`, Anthropic's
    /// `event: error`), typed by the provider.
    #[error("the model provider failed ({kind}): {message}")]
    Provider { kind: String, message: String },
    /// The connection broke or sent something unreadable mid-stream.
    #[error("the model provider's stream broke: {0}")]
    Stream(String),
}

pub type ChunkStream = Pin<Box<dyn Stream<Item = Result<Chunk, LlmError>> + Send>>;

#[async_trait]
pub trait Provider: Send + Sync + 'static {
    /// Starts a completion. Returns once the upstream accepted it (retries, if any, happen
    /// before this returns); dropping the stream aborts the upstream request.
    async fn stream(&self, req: ChatRequest) -> Result<ChunkStream, LlmError>;

    /// Starts a completion whose caller wants the answer whole (a non-streaming REST
    /// request). The chunks are the same; a provider whose upstream can answer whole asks for
    /// that (one JSON body instead of an SSE parse per word); the others stream.
    async fn whole(&self, req: ChatRequest) -> Result<ChunkStream, LlmError> {
        self.stream(req).await
    }
}

/// How the caller takes the answer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Delivery {
    /// Chunk by chunk as they arrive (SSE to a REST client, deltas to a socket).
    Streamed,
    /// All at once at the end (`stream: false`).
    Whole,
}

/// Rough token count for providers that report none (the echo model): one per word.
pub fn count_words(s: &str) -> u64 {
    s.split_whitespace().count() as u64
}
