//! What a turn sends upstream, built from the session: its system prompt, then its transcript
//! (deleted, still-streaming and failed messages left out), then the new user message.

use crate::{
    llm::{ChatMessage, ChatRequest, Role},
    sync::{merge::Doc, ops::MessageRole},
};

pub fn request(doc: &Doc, user_text: &str) -> ChatRequest {
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
        if m.streaming || m.metadata["status"] == "failed" || m.content.is_empty() {
            continue;
        }
        let role = match m.role {
            MessageRole::User => Role::User,
            MessageRole::Assistant => Role::Assistant,
            MessageRole::System => Role::System,
            // Tool results need the call they answer; without one they read as user context.
            MessageRole::Tool => Role::User,
        };
        messages.push(ChatMessage::text(role, m.content.clone()));
    }
    messages.push(ChatMessage::text(Role::User, user_text));
    ChatRequest {
        messages,
        ..ChatRequest::default()
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
pub fn orphaned_streams(doc: &Doc) -> Vec<(String, String)> {
    doc.messages
        .values()
        .filter(|m| m.streaming && !m.deleted)
        .map(|m| (m.id.clone(), m.content.clone()))
        .collect()
}
