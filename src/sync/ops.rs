//! Mutations and their operations, with validation. A mutation is one client's atomic batch of
//! ops, ordered per client by `mutation_id` (1, 2, 3, ...).

mod incoming;

pub use super::refusal::{Refusal, RefusalCode};
pub use incoming::{Incoming, KNOWN_OPS};

use super::hlc::Hlc;
use serde::{Deserialize, Serialize};

pub const MAX_CLIENT_ID: usize = 64;
pub const MAX_TITLE: usize = 200;
pub const MAX_MODEL: usize = 100;
pub const MAX_SYSTEM_PROMPT: usize = 32 * 1024;
pub const MAX_CONTEXT_KEY: usize = 128;
pub const MAX_CONTEXT_VALUE: usize = 16 * 1024;
pub const MAX_TAG: usize = 64;
pub const MAX_MESSAGE_ID: usize = 64;
pub const MAX_CONTENT: usize = 256 * 1024;
pub const MAX_OPS: usize = 100;
/// Entries of a message's `metadata.attachments` (files it attaches, by `file_id`).
pub const MAX_ATTACHMENTS: usize = 32;
/// An HLC counter beyond this is not a clock, it is an attempt to overflow one.
pub const MAX_HLC_COUNTER: u32 = 1_000_000;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Mutation {
    pub client_id: String,
    pub mutation_id: u64,
    pub hlc: Hlc,
    pub ops: Vec<Op>,
}

/// The session fields that are plain last-writer-wins registers.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Field {
    Title,
    Model,
    SystemPrompt,
    Archived,
    Pinned,
    ProjectId,
}

impl Field {
    pub fn as_str(self) -> &'static str {
        match self {
            Field::Title => "title",
            Field::Model => "model",
            Field::SystemPrompt => "system_prompt",
            Field::Archived => "archived",
            Field::Pinned => "pinned",
            Field::ProjectId => "project_id",
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum MessageRole {
    User,
    Assistant,
    System,
    Tool,
}

impl MessageRole {
    pub fn as_str(self) -> &'static str {
        match self {
            MessageRole::User => "user",
            MessageRole::Assistant => "assistant",
            MessageRole::System => "system",
            MessageRole::Tool => "tool",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "user" => Some(MessageRole::User),
            "assistant" => Some(MessageRole::Assistant),
            "system" => Some(MessageRole::System),
            "tool" => Some(MessageRole::Tool),
            _ => None,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "op", rename_all = "snake_case")]
pub enum Op {
    SetField {
        field: Field,
        value: serde_json::Value,
    },
    SetContext {
        key: String,
        value: serde_json::Value,
    },
    DeleteContext {
        key: String,
    },
    AddTag {
        tag: String,
    },
    RemoveTag {
        tag: String,
    },
    AppendMessage {
        message_id: String,
        role: MessageRole,
        content: String,
        #[serde(default)]
        metadata: serde_json::Value,
    },
    EditMessage {
        message_id: String,
        content: String,
    },
    DeleteMessage {
        message_id: String,
    },
    /// Creates the session with the id it is pushed to (offline creation); a no-op when it
    /// exists.
    CreateSession,
    /// Deletes the session for everyone (owner only); final.
    DeleteSession,
    /// Server-only (chat turns): an assistant message that will stream, empty for now.
    StreamStart {
        message_id: String,
        #[serde(default)]
        metadata: serde_json::Value,
    },
    /// Server-only: the streaming message's content so far (saved every so often).
    StreamUpdate {
        message_id: String,
        content: String,
    },
    /// Server-only: the final content and outcome (`metadata.status`: complete, failed,
    /// cancelled); the message stops streaming and becomes an ordinary message.
    StreamEnd {
        message_id: String,
        content: String,
        #[serde(default)]
        metadata: serde_json::Value,
    },
}

fn bad(msg: impl Into<String>) -> Result<(), String> {
    Err(msg.into())
}

impl Mutation {
    /// Shape checks that need no state. A mutation failing them is refused by itself (and
    /// still advances the client's last mutation id).
    pub fn validate(&self) -> Result<(), String> {
        if self.ops.is_empty() || self.ops.len() > MAX_OPS {
            return bad(format!("a mutation has 1 to {MAX_OPS} ops"));
        }
        if self.hlc.counter > MAX_HLC_COUNTER {
            return bad(format!("hlc counter must be at most {MAX_HLC_COUNTER}"));
        }
        self.ops.iter().try_for_each(Op::validate)
    }
}

/// Text PostgreSQL cannot store and no client needs: refused the same on every backend.
fn check_text(what: &str, s: &str) -> Result<(), String> {
    if s.contains('\0') {
        return bad(format!("{what} must not contain NUL (U+0000)"));
    }
    Ok(())
}

pub fn check_client_id(id: &str) -> Result<(), String> {
    if id.is_empty()
        || id.len() > MAX_CLIENT_ID
        || !id
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
    {
        return bad(format!(
            "client_id must be 1 to {MAX_CLIENT_ID} characters of [A-Za-z0-9_-]"
        ));
    }
    Ok(())
}

impl Op {
    /// Ops only the server writes (chat turns); a client push carrying one is refused.
    pub fn is_server_only(&self) -> bool {
        matches!(
            self,
            Op::StreamStart { .. } | Op::StreamUpdate { .. } | Op::StreamEnd { .. }
        )
    }

    pub fn validate(&self) -> Result<(), String> {
        match self {
            Op::StreamStart { message_id, .. } => check_message_id(message_id),
            Op::StreamUpdate {
                message_id,
                content,
            }
            | Op::StreamEnd {
                message_id,
                content,
                ..
            } => {
                check_message_id(message_id)?;
                check_content(content)
            }
            Op::SetField { field, value } => check_field(*field, value),
            Op::SetContext { key, value } => {
                check_key(key)?;
                if value.to_string().len() > MAX_CONTEXT_VALUE {
                    return bad(format!(
                        "context values are at most {MAX_CONTEXT_VALUE} bytes of JSON"
                    ));
                }
                Ok(())
            }
            Op::DeleteContext { key } => check_key(key),
            Op::AddTag { tag } | Op::RemoveTag { tag } => {
                if tag.is_empty() || tag.chars().count() > MAX_TAG {
                    return bad(format!("tags are 1 to {MAX_TAG} characters"));
                }
                check_text("a tag", tag)
            }
            Op::AppendMessage {
                message_id,
                content,
                metadata,
                ..
            } => {
                check_message_id(message_id)?;
                check_content(content)?;
                if !(metadata.is_null() || metadata.is_object())
                    || metadata.to_string().len() > MAX_CONTEXT_VALUE
                {
                    return bad(format!(
                        "metadata must be an object of at most {MAX_CONTEXT_VALUE} bytes"
                    ));
                }
                check_attachments(&metadata["attachments"])
            }
            Op::EditMessage {
                message_id,
                content,
            } => {
                check_message_id(message_id)?;
                check_content(content)
            }
            Op::DeleteMessage { message_id } => check_message_id(message_id),
            Op::CreateSession | Op::DeleteSession => Ok(()),
        }
    }
}

/// A session field's value: its type and size.
fn check_field(field: Field, value: &serde_json::Value) -> Result<(), String> {
    let ok = match field {
        Field::Title => value
            .as_str()
            .is_some_and(|s| s.chars().count() <= MAX_TITLE),
        Field::Model => value.as_str().is_some_and(|s| s.len() <= MAX_MODEL),
        Field::SystemPrompt => value.as_str().is_some_and(|s| s.len() <= MAX_SYSTEM_PROMPT),
        Field::Archived | Field::Pinned => value.is_boolean(),
        Field::ProjectId => {
            value.is_null()
                || value
                    .as_str()
                    .is_some_and(|s| uuid::Uuid::parse_str(s).is_ok())
        }
    };
    if !ok {
        let want = match field {
            Field::Title => format!("a string of at most {MAX_TITLE} characters"),
            Field::Model => format!("a string of at most {MAX_MODEL} bytes"),
            Field::SystemPrompt => format!("a string of at most {MAX_SYSTEM_PROMPT} bytes"),
            Field::Archived | Field::Pinned => "true or false".into(),
            Field::ProjectId => "a project id (UUID) or null".into(),
        };
        return bad(format!("{} must be {want}", field.as_str()));
    }
    value
        .as_str()
        .map_or(Ok(()), |s| check_text(field.as_str(), s))
}

/// `metadata.attachments`, when present: files by id, so a turn can find them.
fn check_attachments(a: &serde_json::Value) -> Result<(), String> {
    let ok = a.is_null()
        || a.as_array().is_some_and(|list| {
            list.len() <= MAX_ATTACHMENTS
                && list.iter().all(|e| {
                    e["file_id"]
                        .as_str()
                        .is_some_and(|id| uuid::Uuid::parse_str(id).is_ok())
                })
        });
    if ok {
        Ok(())
    } else {
        bad(format!(
            "metadata.attachments must be at most {MAX_ATTACHMENTS} objects with a file_id (UUID)"
        ))
    }
}

fn check_key(key: &str) -> Result<(), String> {
    if key.is_empty() || key.len() > MAX_CONTEXT_KEY {
        return bad(format!("context keys are 1 to {MAX_CONTEXT_KEY} bytes"));
    }
    check_text("a context key", key)
}

fn check_message_id(id: &str) -> Result<(), String> {
    if id.is_empty() || id.len() > MAX_MESSAGE_ID {
        return bad(format!("message_id must be 1 to {MAX_MESSAGE_ID} bytes"));
    }
    check_text("message_id", id)
}

fn check_content(c: &str) -> Result<(), String> {
    if c.len() > MAX_CONTENT {
        return bad(format!("message content is at most {MAX_CONTENT} bytes"));
    }
    check_text("message content", c)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn append(metadata: serde_json::Value) -> Op {
        Op::AppendMessage {
            message_id: "m".into(),
            role: MessageRole::User,
            content: "hi".into(),
            metadata,
        }
    }

    #[test]
    fn attachments_in_metadata_are_file_ids_and_bounded() {
        let id = uuid::Uuid::now_v7().to_string();
        assert!(append(json!({"attachments": [{"file_id": id}]}))
            .validate()
            .is_ok());
        assert!(append(json!({"other": 1})).validate().is_ok());
        let many: Vec<_> = (0..=MAX_ATTACHMENTS)
            .map(|_| json!({"file_id": id}))
            .collect();
        for bad in [
            json!("x"),
            json!([{"file_id": "nope"}]),
            json!([id]),
            json!(many),
        ] {
            let e = append(json!({ "attachments": bad }))
                .validate()
                .unwrap_err();
            assert!(e.contains("metadata.attachments"), "{e}");
        }
    }
}
