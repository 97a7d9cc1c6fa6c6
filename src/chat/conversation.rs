//! What a turn sends upstream, built from the session: its system prompt, then its transcript
//! (deleted, still-streaming and failed messages left out), then the new user message. An
//! earlier turn's tool calls come back as they happened, from its tool records: the calls, their
//! results, then the turn's text. A message's attached files come with it (`attachments`).

use super::attachments::{self, Attached};
use crate::{
    llm::{ChatMessage, ChatRequest, Role, ToolCall},
    sync::{merge::Doc, ops::MessageRole},
};
use serde::Deserialize;
use std::collections::HashMap;

/// What the model read for each earlier call, by (turn id, call id).
pub type PastResults = HashMap<(String, String), String>;

/// Whether any message carries tool calls (only then are the records worth reading).
pub fn has_tool_calls(doc: &Doc) -> bool {
    doc.messages
        .values()
        .any(|m| !m.deleted && m.metadata["tool_calls"].is_array())
}

/// An assistant message's calls that have results, as the model made them.
fn replayed_calls(metadata: &serde_json::Value, past: &PastResults) -> Vec<(ToolCall, String)> {
    let turn = metadata["turn_id"].as_str().unwrap_or_default();
    metadata["tool_calls"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|c| ToolCall::deserialize(c).ok())
        .filter_map(|c| {
            let text = past.get(&(turn.to_owned(), c.id.clone()))?.clone();
            Some((c, text))
        })
        .collect()
}

pub fn request(
    doc: &Doc,
    user_text: &str,
    past: &PastResults,
    attached: &Attached,
    new_files: &[uuid::Uuid],
) -> ChatRequest {
    let mut messages = Vec::new();
    let system = doc
        .registers
        .get("f:system_prompt")
        .and_then(|r| r.value.as_ref())
        .and_then(|v| v.as_str())
        .filter(|s| !s.is_empty());
    if let Some(s) = system {
        messages.push(ChatMessage::text(Role::System, s));
    }
    for m in doc.transcript() {
        if m.streaming || m.metadata["status"] == "failed" {
            continue;
        }
        if m.role == MessageRole::Assistant {
            let calls = replayed_calls(&m.metadata, past);
            if !calls.is_empty() {
                messages.push(ChatMessage {
                    role: Role::Assistant,
                    content: String::new(),
                    parts: Vec::new(),
                    tool_calls: calls.iter().map(|(c, _)| c.clone()).collect(),
                    tool_call_id: None,
                });
                for (c, text) in calls {
                    messages.push(ChatMessage {
                        role: Role::Tool,
                        content: text,
                        parts: Vec::new(),
                        tool_calls: Vec::new(),
                        tool_call_id: Some(c.id),
                    });
                }
            }
        }
        let files = attachments::ids_of(&m.metadata);
        if m.content.is_empty() && files.is_empty() {
            continue;
        }
        let role = match m.role {
            MessageRole::User => Role::User,
            MessageRole::Assistant => Role::Assistant,
            MessageRole::System => Role::System,
            // Tool results need the call they answer; without one they read as user context.
            MessageRole::Tool => Role::User,
        };
        if files.is_empty() || role == Role::Assistant {
            messages.push(ChatMessage::text(role, m.content.clone()));
        } else {
            messages.push(with_files(role, &m.content, &files, attached));
        }
    }
    messages.push(with_files(Role::User, user_text, new_files, attached));
    ChatRequest {
        messages,
        ..ChatRequest::default()
    }
}

fn with_files(role: Role, text: &str, files: &[uuid::Uuid], attached: &Attached) -> ChatMessage {
    let (content, parts) = attached.render(text, files);
    ChatMessage {
        parts,
        ..ChatMessage::text(role, content)
    }
}

/// The session's model field, if set.
pub fn session_model(doc: &Doc) -> Option<String> {
    doc.registers
        .get("f:model")
        .and_then(|r| r.value.as_ref())
        .and_then(|v| v.as_str())
        .filter(|s| !s.is_empty())
        .map(str::to_owned)
}

/// Messages left streaming by a turn whose instance died (the new turn ends them).
pub fn orphaned_streams(doc: &Doc) -> Vec<(String, String, serde_json::Value)> {
    doc.messages
        .values()
        .filter(|m| m.streaming && !m.deleted)
        .map(|m| (m.id.clone(), m.content.clone(), m.metadata.clone()))
        .collect()
}
