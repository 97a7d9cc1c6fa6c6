//! Mutations and their operations, with validation. A mutation is one client's atomic batch of
//! ops, ordered per client by `mutation_id` (1, 2, 3, ...).

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
/// An HLC counter beyond this is not a clock, it is an attempt to overflow one.
pub const MAX_HLC_COUNTER: u32 = 1_000_000;

/// Why a mutation was refused, as a code a client can switch on (`refused.code` on the wire).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RefusalCode {
    /// A value failed validation (wrong type, too long, NUL in text, ...).
    Invalid,
    /// An op this server does not know (a newer client); only its own mutation is refused.
    UnknownOp,
    /// The mutation's clock runs too far ahead of the server's.
    ClockAhead,
    /// Not allowed for this caller (server-only ops, deleting someone else's session).
    NotAllowed,
    /// A per-session cap (`sync.max_*`) would be crossed.
    LimitExceeded,
    /// Inconsistent with the session's state (message id reused, unknown or streaming message).
    Conflict,
    /// A retry of a mutation whose answer was pruned (the client had moved past it).
    AlreadyProcessed,
}

impl RefusalCode {
    pub fn as_str(self) -> &'static str {
        match self {
            RefusalCode::Invalid => "invalid",
            RefusalCode::UnknownOp => "unknown_op",
            RefusalCode::ClockAhead => "clock_ahead",
            RefusalCode::NotAllowed => "not_allowed",
            RefusalCode::LimitExceeded => "limit_exceeded",
            RefusalCode::Conflict => "conflict",
            RefusalCode::AlreadyProcessed => "already_processed",
        }
    }

    pub fn parse(s: &str) -> Self {
        match s {
            "unknown_op" => RefusalCode::UnknownOp,
            "clock_ahead" => RefusalCode::ClockAhead,
            "not_allowed" => RefusalCode::NotAllowed,
            "limit_exceeded" => RefusalCode::LimitExceeded,
            "conflict" => RefusalCode::Conflict,
            "already_processed" => RefusalCode::AlreadyProcessed,
            _ => RefusalCode::Invalid,
        }
    }
}

/// A refused mutation's answer: stored, and returned to every retry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Refusal {
    pub code: RefusalCode,
    pub message: String,
}

impl Refusal {
    /// The message is stored and echoed: whatever it quotes, it never carries NUL.
    pub fn new(code: RefusalCode, message: impl Into<String>) -> Self {
        let message = message.into();
        Self {
            code,
            message: if message.contains('\0') {
                message.replace('\0', "\u{FFFD}")
            } else {
                message
            },
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Mutation {
    pub client_id: String,
    pub mutation_id: u64,
    pub hlc: Hlc,
    pub ops: Vec<Op>,
}

/// A mutation as pushed: its identity read strictly (without it there is nobody to answer),
/// its clock and ops one by one, so an op this server does not know (a newer client) or a
/// mistyped value refuses only its own mutation and the rest of the batch still applies.
#[derive(Debug, Clone, PartialEq)]
pub struct Incoming {
    pub mutation: Mutation,
    /// Decided while parsing; stored like any other refusal.
    pub refusal: Option<Refusal>,
}

/// The op names this server knows (`op` of each op).
pub const KNOWN_OPS: [&str; 13] = [
    "set_field",
    "set_context",
    "delete_context",
    "add_tag",
    "remove_tag",
    "append_message",
    "edit_message",
    "delete_message",
    "create_session",
    "delete_session",
    "stream_start",
    "stream_update",
    "stream_end",
];

#[derive(Deserialize)]
struct WireMutation {
    client_id: String,
    mutation_id: u64,
    hlc: serde_json::Value,
    ops: Vec<serde_json::Value>,
}

impl<'de> Deserialize<'de> for Incoming {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let w = WireMutation::deserialize(d)?;
        let mut refusal = None;
        let hlc = match w.hlc.as_str().map(str::parse::<Hlc>) {
            Some(Ok(h)) => h,
            Some(Err(e)) => {
                refusal = Some(Refusal::new(RefusalCode::Invalid, e));
                Hlc::default()
            }
            None => {
                refusal = Some(Refusal::new(
                    RefusalCode::Invalid,
                    "hlc must be a string \"<ms>:<counter>\"",
                ));
                Hlc::default()
            }
        };
        let mut ops = Vec::with_capacity(w.ops.len());
        for (i, raw) in w.ops.into_iter().enumerate() {
            let name = raw.get("op").and_then(|o| o.as_str()).map(str::to_owned);
            match serde_json::from_value::<Op>(raw) {
                Ok(op) => ops.push(op),
                Err(e) if refusal.is_none() => {
                    refusal = Some(match name {
                        Some(n) if !KNOWN_OPS.contains(&n.as_str()) => Refusal::new(
                            RefusalCode::UnknownOp,
                            format!(
                                "ops[{i}]: unknown op {:?}; this server does not support it",
                                n.chars().take(40).collect::<String>()
                            ),
                        ),
                        _ => Refusal::new(RefusalCode::Invalid, format!("ops[{i}]: {e}")),
                    });
                }
                Err(_) => {}
            }
        }
        if refusal.is_some() {
            ops.clear();
        }
        Ok(Incoming {
            mutation: Mutation {
                client_id: w.client_id,
                mutation_id: w.mutation_id,
                hlc,
                ops,
            },
            refusal,
        })
    }
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
            Op::SetField { field, value } => {
                let ok = match field {
                    Field::Title => value
                        .as_str()
                        .is_some_and(|s| s.chars().count() <= MAX_TITLE),
                    Field::Model => value.as_str().is_some_and(|s| s.len() <= MAX_MODEL),
                    Field::SystemPrompt => {
                        value.as_str().is_some_and(|s| s.len() <= MAX_SYSTEM_PROMPT)
                    }
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
                        Field::SystemPrompt => {
                            format!("a string of at most {MAX_SYSTEM_PROMPT} bytes")
                        }
                        Field::Archived | Field::Pinned => "true or false".into(),
                        Field::ProjectId => "a project id (UUID) or null".into(),
                    };
                    return bad(format!("{} must be {want}", field.as_str()));
                }
                value
                    .as_str()
                    .map_or(Ok(()), |s| check_text(field.as_str(), s))
            }
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
                Ok(())
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
