//! The requests a service answers (`chat.*`, `tool.*`, `mcp.*`, `session.list`, `project.*`)
//! with their arguments, read when the frame is decoded: a handler gets typed ids and fields,
//! never a string to parse. REST takes the same bodies (`McpServerInput`, `ProjectFields`).
//! `protocol/schema/client/` describes each; a test decodes every example there into these.

use crate::domain::SessionId;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use utoipa::ToSchema;
use uuid::Uuid;

/// Why a call's fields were refused, and which field.
#[derive(Debug, thiserror::Error)]
#[error("{field}: {error}")]
pub struct CallError {
    /// Where in the frame (`turn_id`, `server.headers`, `.` for the frame itself).
    pub field: String,
    pub error: serde_json::Error,
}

/// A request answered by a service.
#[derive(Debug)]
pub enum Call {
    ChatSend(ChatSend),
    ChatCancel(ChatCancel),
    ToolResult(ToolResult),
    ToolList(ToolList),
    FileList(ToolList),
    McpList,
    McpCreate(McpCreate),
    McpUpdate(McpUpdate),
    McpDelete(McpDelete),
    McpElicitationResult(ElicitationAnswer),
    SessionList(Page),
    ProjectList,
    ProjectCreate(ProjectCreate),
    ProjectUpdate(ProjectUpdate),
    ProjectDelete(ProjectDelete),
}

/// The frame types of `Call`, as clients spell them.
pub const CALLS: [&str; 15] = [
    "chat.send",
    "chat.cancel",
    "tool.result",
    "tool.list",
    "file.list",
    "mcp.list",
    "mcp.create",
    "mcp.update",
    "mcp.delete",
    "mcp.elicitation.result",
    "session.list",
    "project.list",
    "project.create",
    "project.update",
    "project.delete",
];

impl Call {
    /// The frame type this call came as.
    pub fn kind(&self) -> &'static str {
        match self {
            Call::ChatSend(_) => "chat.send",
            Call::ChatCancel(_) => "chat.cancel",
            Call::ToolResult(_) => "tool.result",
            Call::ToolList(_) => "tool.list",
            Call::FileList(_) => "file.list",
            Call::McpList => "mcp.list",
            Call::McpCreate(_) => "mcp.create",
            Call::McpUpdate(_) => "mcp.update",
            Call::McpDelete(_) => "mcp.delete",
            Call::McpElicitationResult(_) => "mcp.elicitation.result",
            Call::SessionList(_) => "session.list",
            Call::ProjectList => "project.list",
            Call::ProjectCreate(_) => "project.create",
            Call::ProjectUpdate(_) => "project.update",
            Call::ProjectDelete(_) => "project.delete",
        }
    }

    /// The call a frame of type `kind` carries, read from the whole frame `text`; `None` for a
    /// type that is not a call.
    pub fn decode(kind: &str, text: &str) -> Option<Result<Self, CallError>> {
        fn read<'a, T: Deserialize<'a>>(text: &'a str) -> Result<T, CallError> {
            serde_path_to_error::deserialize(&mut serde_json::Deserializer::from_str(text)).map_err(
                |e| CallError {
                    field: e.path().to_string(),
                    error: e.into_inner(),
                },
            )
        }
        Some(match kind {
            "chat.send" => read(text).map(Call::ChatSend),
            "chat.cancel" => read(text).map(Call::ChatCancel),
            "tool.result" => read(text).map(Call::ToolResult),
            "tool.list" => read(text).map(Call::ToolList),
            "file.list" => read(text).map(Call::FileList),
            "mcp.list" => Ok(Call::McpList),
            "mcp.create" => read(text).map(Call::McpCreate),
            "mcp.update" => read(text).map(Call::McpUpdate),
            "mcp.delete" => read(text).map(Call::McpDelete),
            "mcp.elicitation.result" => read(text).map(Call::McpElicitationResult),
            "session.list" => read(text).map(Call::SessionList),
            "project.list" => Ok(Call::ProjectList),
            "project.create" => read(text).map(Call::ProjectCreate),
            "project.update" => read(text).map(Call::ProjectUpdate),
            "project.delete" => read(text).map(Call::ProjectDelete),
            _ => return None,
        })
    }
}

/// `session.list`, `tool.list`: the page after a previous page's `next_cursor`.
#[derive(Debug, Default, Deserialize)]
pub struct Page {
    #[serde(default)]
    pub after: Option<String>,
    /// 1 to 100; default 50.
    #[serde(default)]
    pub limit: Option<u32>,
}

#[derive(Debug, Deserialize)]
pub struct ChatSend {
    pub session_id: SessionId,
    /// The user's message text.
    pub message: String,
    /// Files of this session the message attaches (uploaded first with
    /// `POST /v1/sessions/{id}/files`); the model gets them as context or images.
    #[serde(default)]
    pub files: Vec<Uuid>,
    /// The id the user's message gets (so the client can show it at once); generated if absent.
    pub message_id: Option<String>,
    /// Overrides the session's model (then `chat.default_model`).
    pub model: Option<String>,
    pub max_tokens: Option<u32>,
    pub temperature: Option<f64>,
    /// Tools this client runs itself: offered to the model, and calls to them are forwarded
    /// as `tool.call` for the client to answer with `tool.result`.
    #[serde(default)]
    pub tools: Vec<ClientTool>,
}

/// A tool the client offers to run itself.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ClientTool {
    pub name: String,
    pub description: Option<String>,
    /// JSON Schema of the arguments (an object schema); default: no arguments.
    pub parameters: Option<Value>,
}

#[derive(Debug, Deserialize)]
pub struct ChatCancel {
    pub turn_id: Uuid,
}

/// A client's answer to a `tool.call` for one of its tools: `result` (any JSON) or `error`.
#[derive(Debug, Deserialize)]
pub struct ToolResult {
    pub turn_id: Uuid,
    pub call_id: String,
    pub result: Option<Value>,
    pub error: Option<String>,
}

#[derive(Debug, Deserialize)]
/// `tool.list`, `file.list`: a page of one session's records.
pub struct ToolList {
    pub session_id: SessionId,
    #[serde(flatten)]
    pub page: Page,
}

#[derive(Debug, Deserialize)]
pub struct McpCreate {
    pub server: McpServerInput,
}

#[derive(Debug, Deserialize)]
pub struct McpUpdate {
    pub server_id: Uuid,
    pub server: McpServerInput,
}

#[derive(Debug, Deserialize)]
pub struct McpDelete {
    pub server_id: Uuid,
}

/// The user's answer to an `mcp.elicitation`: `content` (the form's fields) only with
/// `accept`.
#[derive(Debug, Deserialize)]
pub struct ElicitationAnswer {
    pub elicitation_id: Uuid,
    pub action: ElicitationAction,
    #[serde(default)]
    pub content: Option<Map<String, Value>>,
}

/// Fields of a server; all optional so the same shape serves create (where `name` and
/// `transport` are required) and update (which changes only what is given).
#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct McpServerInput {
    /// `[A-Za-z0-9_-]`, unique per user.
    pub name: Option<String>,
    /// `http` (Streamable HTTP) or `stdio`.
    pub transport: Option<String>,
    /// `http` only: the server's endpoint.
    pub url: Option<String>,
    /// `stdio` only: the name of a command the operator allowlisted (`mcp.stdio_allowlist`).
    pub command: Option<String>,
    /// `http` only: sent with every request (e.g. `Authorization`); stored, never shown back.
    #[schema(value_type = Option<Object>)]
    pub headers: Option<Map<String, Value>>,
    pub enabled: Option<bool>,
}

#[derive(Debug, Deserialize)]
pub struct ProjectCreate {
    pub project: ProjectFields,
}

#[derive(Debug, Deserialize)]
pub struct ProjectUpdate {
    pub project_id: Uuid,
    pub project: ProjectPatch,
}

#[derive(Debug, Deserialize)]
pub struct ProjectDelete {
    pub project_id: Uuid,
}

/// What a client sets on a project.
#[derive(Debug, Clone, serde::Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ProjectFields {
    pub name: String,
    #[serde(default)]
    pub description: String,
    #[serde(default = "empty_object")]
    #[schema(value_type = Object)]
    pub settings: serde_json::Value,
}

fn empty_object() -> serde_json::Value {
    serde_json::json!({})
}

impl ProjectFields {
    /// Limits: name 1-100 characters, description up to 2000, settings an object up to 16 KiB.
    pub fn validate(&self) -> Result<(), (&'static str, String)> {
        check_name(&self.name)?;
        check_description(&self.description)?;
        check_settings(&self.settings)
    }
}

/// A change to a project: only the fields given change (a `PATCH`); `settings`, when given,
/// replaces the whole object. `null` is refused rather than read as "clear", so a client that
/// serializes an unset field as `null` cannot wipe it by accident.
#[derive(Debug, Clone, Default, serde::Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ProjectPatch {
    #[serde(default, deserialize_with = "present")]
    pub name: Option<String>,
    #[serde(default, deserialize_with = "present")]
    pub description: Option<String>,
    #[serde(default, deserialize_with = "present")]
    #[schema(value_type = Option<Object>)]
    pub settings: Option<serde_json::Value>,
}

/// A field that, when present, must not be `null`.
pub fn present<'de, D, T>(d: D) -> Result<Option<T>, D::Error>
where
    D: serde::Deserializer<'de>,
    T: serde::Deserialize<'de>,
{
    T::deserialize(d).map(Some)
}

impl ProjectPatch {
    /// The same limits as [`ProjectFields::validate`], for the fields given.
    pub fn validate(&self) -> Result<(), (&'static str, String)> {
        if let Some(name) = &self.name {
            check_name(name)?;
        }
        if let Some(d) = &self.description {
            check_description(d)?;
        }
        if let Some(s) = &self.settings {
            check_settings(s)?;
        }
        Ok(())
    }

    pub fn is_empty(&self) -> bool {
        self.name.is_none() && self.description.is_none() && self.settings.is_none()
    }
}

fn check_name(name: &str) -> Result<(), (&'static str, String)> {
    let name = name.trim();
    if name.is_empty() || name.chars().count() > 100 {
        return Err(("name", "name must be 1 to 100 characters".into()));
    }
    Ok(())
}

fn check_description(d: &str) -> Result<(), (&'static str, String)> {
    if d.chars().count() > 2000 {
        return Err((
            "description",
            "description must be at most 2000 characters".into(),
        ));
    }
    Ok(())
}

fn check_settings(s: &serde_json::Value) -> Result<(), (&'static str, String)> {
    if !s.is_object() || s.to_string().len() > 16 * 1024 {
        return Err((
            "settings",
            "settings must be a JSON object of at most 16 KiB".into(),
        ));
    }
    Ok(())
}

/// The user's answer, as the socket frame carries it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ElicitationAction {
    Accept,
    Decline,
    Cancel,
}

impl ElicitationAction {
    pub fn as_str(self) -> &'static str {
        match self {
            ElicitationAction::Accept => "accept",
            ElicitationAction::Decline => "decline",
            ElicitationAction::Cancel => "cancel",
        }
    }
}
