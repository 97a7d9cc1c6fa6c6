//! Model providers, routing and limits (`[llm]`), and socket chat turns (`[chat]`).

use serde::{Deserialize, Serialize};
use std::fmt;

#[derive(Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct LlmConfig {
    /// Base URL of the OpenAI-compatible upstream (anything speaking `/chat/completions`).
    /// Default `https://api.openai.com/v1`.
    pub openai_base_url: String,
    /// Key sent as `Authorization: Bearer` to that upstream. Default empty (none sent).
    pub openai_api_key: String,
    /// Base URL of the Anthropic Messages API. Default `https://api.anthropic.com`.
    pub anthropic_base_url: String,
    /// Key sent as `x-api-key` to Anthropic. Default empty.
    pub anthropic_api_key: String,
    /// Model routes, `id=provider[:upstream_model]` with provider `openai` or `anthropic`
    /// (e.g. `gpt-4o-mini=openai`, `claude=anthropic:claude-sonnet-4-5`). The built-in `echo`
    /// model is always listed. Default empty.
    pub models: Vec<String>,
    /// TCP+TLS connect timeout to an upstream. Default 5000.
    pub connect_timeout_ms: u64,
    /// From sending the request to the upstream's first event. Default 60000.
    pub first_byte_timeout_ms: u64,
    /// Longest silence between two upstream chunks. Default 60000.
    pub idle_timeout_ms: u64,
    /// Longest wait for a whole (non-streaming) answer from an upstream, which sends nothing
    /// until it has generated all of it (the official OpenAI SDKs wait 600 s). Default 600000.
    pub answer_timeout_ms: u64,
    /// Extra attempts when an upstream fails before its first byte (connect error, 5xx, 429).
    /// Default 2.
    pub retries: u32,
    /// Interval of `: keepalive` comments while a stream waits on the upstream. Default 10000.
    pub keepalive_ms: u64,
    /// Requests per minute per API key (or per user for JWTs) on `/v1/chat/completions` and
    /// `chat.send`. Default 600.
    pub requests_per_minute: u64,
    /// Prompt + completion tokens per minute per API key (or user). Default 1000000.
    pub tokens_per_minute: u64,
    /// Delay between the `echo` model's chunks, for demos and tests of slow streams. Default 0.
    pub echo_chunk_delay_ms: u64,
    /// Largest answer assembled whole: a non-streaming completion, and an upstream's body when
    /// asked for one (past it, 502; streamed answers pass through unbounded). Default 16777216.
    pub max_answer_bytes: usize,
    /// How long the usage writer gathers records after a batch's first before committing
    /// them (records show in `/v1/usage` that much later). Default 200.
    pub usage_flush_ms: u64,
}

impl Default for LlmConfig {
    fn default() -> Self {
        Self {
            openai_base_url: "https://api.openai.com/v1".into(),
            openai_api_key: String::new(),
            anthropic_base_url: "https://api.anthropic.com".into(),
            anthropic_api_key: String::new(),
            models: Vec::new(),
            connect_timeout_ms: 5_000,
            first_byte_timeout_ms: 60_000,
            idle_timeout_ms: 60_000,
            answer_timeout_ms: 600_000,
            retries: 2,
            keepalive_ms: 10_000,
            requests_per_minute: 600,
            tokens_per_minute: 1_000_000,
            echo_chunk_delay_ms: 0,
            max_answer_bytes: 16 * 1024 * 1024,
            usage_flush_ms: 200,
        }
    }
}

impl fmt::Debug for LlmConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let set = |k: &str| {
            if k.is_empty() {
                "<unset>"
            } else {
                "<redacted>"
            }
        };
        f.debug_struct("LlmConfig")
            .field("openai_base_url", &self.openai_base_url)
            .field("openai_api_key", &set(&self.openai_api_key))
            .field("anthropic_base_url", &self.anthropic_base_url)
            .field("anthropic_api_key", &set(&self.anthropic_api_key))
            .field("models", &self.models)
            .field("connect_timeout_ms", &self.connect_timeout_ms)
            .field("first_byte_timeout_ms", &self.first_byte_timeout_ms)
            .field("idle_timeout_ms", &self.idle_timeout_ms)
            .field("answer_timeout_ms", &self.answer_timeout_ms)
            .field("retries", &self.retries)
            .field("requests_per_minute", &self.requests_per_minute)
            .field("tokens_per_minute", &self.tokens_per_minute)
            .field("max_answer_bytes", &self.max_answer_bytes)
            .field("usage_flush_ms", &self.usage_flush_ms)
            .finish_non_exhaustive()
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ChatConfig {
    /// Model of a turn when neither `chat.send` nor the session names one. Default `echo`.
    pub default_model: String,
    /// How often a streaming assistant message's growing content is saved. Default 1000.
    pub save_interval_ms: u64,
    /// Longest a turn may run before it is ended as failed. Default 600.
    pub max_turn_secs: u64,
    /// Largest user message `chat.send` accepts, in bytes. Default 65536.
    pub max_message_bytes: usize,
    /// Rounds of tool calls one turn may make; after the last, the model is asked once more
    /// with `tool_choice: none` so the turn ends in text. Default 8.
    pub max_tool_rounds: u32,
    /// How long a turn waits for a client's `tool.result`. Default 60000.
    pub client_tool_timeout_ms: u64,
    /// Client-side tools one `chat.send` may declare. Default 32.
    pub max_client_tools: usize,
    /// A tool result larger than this (as JSON) is cut to this many bytes of its text, for the
    /// model, the `tool.result` event and the record. Default 65536.
    pub max_tool_result_bytes: usize,
    /// Tries to save a turn's final message while the store is failing (backing off from
    /// 100 ms to 5 s); then the turn ends in `chat.error` `save_failed`. Default 8.
    pub final_save_attempts: u32,
}

impl Default for ChatConfig {
    fn default() -> Self {
        Self {
            default_model: "echo".into(),
            save_interval_ms: 1_000,
            max_turn_secs: 600,
            max_message_bytes: 64 * 1024,
            max_tool_rounds: 8,
            client_tool_timeout_ms: 60_000,
            max_client_tools: 32,
            max_tool_result_bytes: 64 * 1024,
            final_save_attempts: 8,
        }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct McpConfig {
    /// Stdio MCP servers users may choose, `name=command arg...` (users pick a name, never a
    /// command line). Default empty.
    pub stdio_allowlist: Vec<String>,
    /// Accept HTTP MCP URLs that resolve to loopback, private or link-local addresses (on-prem,
    /// tests). Default false: such URLs are refused (SSRF).
    pub allow_private_urls: bool,
    /// MCP servers one user may configure. Default 20.
    pub max_servers_per_user: usize,
    /// Headers one server may carry, and bytes per header value. Default 16 and 4096.
    pub max_headers: usize,
    pub max_header_bytes: usize,
    /// Deadline of one MCP tool call made during a turn. Default 30000.
    pub tool_timeout_ms: u64,
    /// Variables copied from the server's environment into every stdio MCP server, which
    /// otherwise starts with an empty environment (it must never see the server's keys).
    /// `SWITCHYARD_*` names are refused. Default `PATH,HOME,LANG`.
    pub stdio_pass_env: Vec<String>,
    /// Per-server environment, `name:VAR` (copied from the server's environment) or
    /// `name:VAR=value`. Default empty.
    pub stdio_env: Vec<String>,
    /// How long a user's MCP clients outlive their last socket (unless a turn of theirs runs);
    /// then stdio servers are stopped and the instance lease released. Default 60.
    pub idle_grace_secs: u64,
    /// Pages of `tools/list` read from one server; more is an error. Default 10.
    pub max_tool_pages: usize,
    /// Tools one server may offer; more is an error. Default 128.
    pub max_tools: usize,
    /// Bytes of tool names, descriptions and input schemas (JSON) one server may offer; more is
    /// an error (they go to every connection of the user and into every turn). Default 256 KiB.
    pub max_tool_bytes: usize,
    /// The key (base64 of 32 bytes) that seals stored header values. Default: generated at
    /// `<data_dir>/mcp-secrets.key`; instances sharing a database must share this file.
    pub secrets_key_file: Option<std::path::PathBuf>,
    /// How long a server's `elicitation/create` waits for the user's answer before it is
    /// answered `cancel`; time waiting on the user does not count toward `tool_timeout_ms`.
    /// Default 120000.
    pub elicitation_timeout_ms: u64,
    /// Questions one user's servers may have waiting at once; more are answered `cancel` at
    /// once (a server cannot pile prompts on a user). Default 4.
    pub max_pending_elicitations: usize,
    /// Bytes of one question (its message and requested schema as JSON); a larger one is
    /// declined without reaching the user. Default 16384.
    pub max_elicitation_bytes: usize,
}

impl McpConfig {
    /// The longest one MCP tool call with deadline `timeout` may take, waiting on the user
    /// included: its deadline plus every question the user may have waiting, each to its own deadline. A server that
    /// keeps asking cannot hold a call (or the turn) past it.
    pub fn tool_call_limit(&self, timeout: std::time::Duration) -> std::time::Duration {
        let asking = self
            .elicitation_timeout_ms
            .saturating_mul(self.max_pending_elicitations as u64);
        timeout + std::time::Duration::from_millis(asking)
    }

    /// The environment of stdio server `name`: the pass-through variables that are set, then
    /// its own entries.
    pub fn stdio_env_of(&self, name: &str) -> Vec<(String, String)> {
        let mut env: Vec<(String, String)> = self
            .stdio_pass_env
            .iter()
            .filter_map(|k| std::env::var(k).ok().map(|v| (k.clone(), v)))
            .collect();
        for entry in &self.stdio_env {
            let Some((server, spec)) = entry.split_once(':') else {
                continue;
            };
            if server.trim() != name {
                continue;
            }
            match spec.split_once('=') {
                Some((k, v)) => env.push((k.trim().to_owned(), v.to_owned())),
                None => {
                    let k = spec.trim();
                    if let Ok(v) = std::env::var(k) {
                        env.push((k.to_owned(), v));
                    }
                }
            }
        }
        env
    }
}

impl Default for McpConfig {
    fn default() -> Self {
        Self {
            stdio_allowlist: Vec::new(),
            allow_private_urls: false,
            max_servers_per_user: 20,
            max_headers: 16,
            max_header_bytes: 4096,
            tool_timeout_ms: 30_000,
            elicitation_timeout_ms: 120_000,
            max_pending_elicitations: 4,
            max_elicitation_bytes: 16 * 1024,
            stdio_pass_env: vec!["PATH".into(), "HOME".into(), "LANG".into()],
            stdio_env: Vec::new(),
            idle_grace_secs: 60,
            max_tool_pages: 10,
            max_tools: 128,
            max_tool_bytes: 256 * 1024,
            secrets_key_file: None,
        }
    }
}
