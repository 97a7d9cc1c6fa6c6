//! OpenAI's chat-completions request, read into our provider-neutral `ChatRequest` with each
//! refusal naming its `param`, and the response objects it expects back.

use crate::{
    error::AppError,
    llm::{ChatMessage, ChatRequest, Image, Part, Role, Tool, ToolCall, ToolChoice, Usage},
};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use utoipa::ToSchema;

/// Most `stop` sequences (OpenAI's limit).
pub const MAX_STOP: usize = 4;
/// Most tools per request (OpenAI's limit).
pub const MAX_TOOLS: usize = 128;

/// A subset of OpenAI's request: unknown fields are accepted and ignored, as OpenAI's SDKs
/// send newer fields freely.
#[derive(Debug, Deserialize, ToSchema)]
pub struct CompletionRequest {
    pub model: String,
    #[schema(value_type = Vec<Object>)]
    pub messages: Vec<WireMessage>,
    #[serde(default)]
    pub stream: Option<bool>,
    #[schema(value_type = Option<Object>)]
    pub stream_options: Option<StreamOptions>,
    #[schema(value_type = Option<Vec<Object>>)]
    pub tools: Option<Vec<WireTool>>,
    #[schema(value_type = Option<Object>)]
    pub tool_choice: Option<Value>,
    pub max_tokens: Option<u32>,
    pub max_completion_tokens: Option<u32>,
    #[schema(value_type = Option<Object>)]
    pub stop: Option<Value>,
    pub temperature: Option<f64>,
    pub top_p: Option<f64>,
    pub n: Option<u32>,
    pub user: Option<String>,
}

#[derive(Debug, Deserialize)]
pub struct StreamOptions {
    #[serde(default)]
    pub include_usage: bool,
}

#[derive(Debug, Deserialize)]
pub struct WireMessage {
    pub role: String,
    #[serde(default)]
    pub content: Option<Value>,
    #[serde(default)]
    pub tool_calls: Option<Vec<WireToolCall>>,
    #[serde(default)]
    pub tool_call_id: Option<String>,
}

#[derive(Debug, Deserialize)]
pub struct WireToolCall {
    pub id: String,
    #[serde(rename = "type", default)]
    pub kind: Option<String>,
    pub function: WireFunctionCall,
}

#[derive(Debug, Deserialize)]
pub struct WireFunctionCall {
    pub name: String,
    #[serde(default)]
    pub arguments: String,
}

#[derive(Debug, Deserialize)]
pub struct WireTool {
    #[serde(rename = "type")]
    pub kind: String,
    pub function: WireFunction,
}

#[derive(Debug, Deserialize)]
pub struct WireFunction {
    pub name: String,
    #[serde(default)]
    pub description: Option<String>,
    #[serde(default)]
    pub parameters: Option<Value>,
}

fn bad(param: impl Into<String>, msg: impl Into<String>) -> AppError {
    AppError::validation(param, msg)
}

/// Most image parts in one request (OpenAI's own limit is in this range).
pub const MAX_IMAGES: usize = 50;

/// A message's `content`: a string, or an array of parts (`text`, and `image_url` in user
/// messages). Returns its text and, when it holds an image, every part in order, so image
/// parts reach the upstream as they came.
fn content_parts(
    v: &Option<Value>,
    param: &str,
    role: Role,
) -> Result<(String, Vec<Part>), AppError> {
    match v {
        None | Some(Value::Null) => Ok((String::new(), Vec::new())),
        Some(Value::String(s)) => Ok((s.clone(), Vec::new())),
        Some(Value::Array(items)) => {
            let (mut text, mut parts, mut images) = (String::new(), Vec::new(), 0);
            for (j, p) in items.iter().enumerate() {
                let at = format!("{param}[{j}]");
                match p["type"].as_str() {
                    Some("text") => {
                        let t = p["text"]
                            .as_str()
                            .ok_or_else(|| bad(&at, "a text part needs text"))?;
                        text.push_str(t);
                        parts.push(Part::Text(t.to_owned()));
                    }
                    Some("image_url") if role == Role::User => {
                        images += 1;
                        if images > MAX_IMAGES {
                            return Err(bad(
                                &at,
                                format!("at most {MAX_IMAGES} images per request"),
                            ));
                        }
                        parts.push(Part::Image(image_part(&p["image_url"], &at)?));
                    }
                    Some("image_url") => return Err(bad(&at, "only user messages carry images")),
                    _ => return Err(bad(&at, "content parts are text or image_url")),
                }
            }
            if images == 0 {
                parts.clear();
            }
            Ok((text, parts))
        }
        Some(_) => Err(bad(param, "content must be a string or an array of parts")),
    }
}

fn image_part(v: &Value, at: &str) -> Result<Image, AppError> {
    let url = v["url"].as_str().filter(|u| {
        u.starts_with("data:image/") || u.starts_with("https://") || u.starts_with("http://")
    });
    let url = url.ok_or_else(|| {
        bad(
            format!("{at}.image_url.url"),
            "image_url.url must be an http(s) or data:image/ URL",
        )
    })?;
    let detail = match &v["detail"] {
        Value::Null => None,
        Value::String(d) if matches!(d.as_str(), "auto" | "low" | "high") => Some(d.clone()),
        _ => {
            return Err(bad(
                format!("{at}.image_url.detail"),
                "detail must be auto, low or high",
            ))
        }
    };
    Ok(Image {
        url: url.to_owned(),
        detail,
    })
}

impl CompletionRequest {
    pub fn streaming(&self) -> bool {
        self.stream.unwrap_or(false)
    }

    pub fn include_usage(&self) -> bool {
        self.stream_options
            .as_ref()
            .is_some_and(|o| o.include_usage)
    }

    /// Checks everything OpenAI would refuse, then converts.
    pub fn into_request(self) -> Result<ChatRequest, AppError> {
        self.check_scalars()?;
        let max_tokens = match (self.max_completion_tokens, self.max_tokens) {
            (Some(0), _) => return Err(bad("max_completion_tokens", "must be at least 1")),
            (None, Some(0)) => return Err(bad("max_tokens", "must be at least 1")),
            (a, b) => a.or(b),
        };
        let stop = stop_list(self.stop)?;
        let messages = self
            .messages
            .into_iter()
            .enumerate()
            .map(|(i, m)| message(i, m))
            .collect::<Result<Vec<_>, _>>()?;
        let tools = tool_list(self.tools.unwrap_or_default())?;
        let tool_choice = tool_choice(self.tool_choice, &tools)?;
        Ok(ChatRequest {
            model: self.model,
            messages,
            tools,
            tool_choice,
            max_tokens,
            stop,
            temperature: self.temperature,
            top_p: self.top_p,
            user: self.user,
        })
    }

    fn check_scalars(&self) -> Result<(), AppError> {
        if self.model.is_empty() {
            return Err(bad("model", "model is required"));
        }
        if self.n.is_some_and(|n| n != 1) {
            return Err(bad(
                "n",
                "only n=1 is supported; send separate requests for more choices",
            ));
        }
        if self.stream_options.is_some() && !self.streaming() {
            return Err(bad(
                "stream_options",
                "stream_options is only allowed when stream is true",
            ));
        }
        if self.messages.is_empty() {
            return Err(bad(
                "messages",
                "messages must contain at least one message",
            ));
        }
        if self.temperature.is_some_and(|t| !(0.0..=2.0).contains(&t)) {
            return Err(bad("temperature", "temperature must be between 0 and 2"));
        }
        if self.top_p.is_some_and(|t| !(0.0..=1.0).contains(&t)) {
            return Err(bad("top_p", "top_p must be between 0 and 1"));
        }
        Ok(())
    }
}

fn stop_list(stop: Option<Value>) -> Result<Vec<String>, AppError> {
    match stop {
        None | Some(Value::Null) => Ok(Vec::new()),
        Some(Value::String(s)) => Ok(vec![s]),
        Some(Value::Array(a)) if a.len() <= MAX_STOP && a.iter().all(Value::is_string) => Ok(a
            .into_iter()
            .filter_map(|v| v.as_str().map(str::to_owned))
            .collect()),
        Some(_) => Err(bad(
            "stop",
            format!("stop must be a string or an array of at most {MAX_STOP} strings"),
        )),
    }
}

/// `messages[i]`, its role, content and tool calls checked.
fn message(i: usize, m: WireMessage) -> Result<ChatMessage, AppError> {
    let p = format!("messages[{i}]");
    let role = match m.role.as_str() {
        "system" | "developer" => Role::System,
        "user" => Role::User,
        "assistant" => Role::Assistant,
        "tool" => Role::Tool,
        _ => {
            return Err(bad(
                format!("{p}.role"),
                "role must be system, developer, user, assistant or tool",
            ))
        }
    };
    let (content, parts) = content_parts(&m.content, &format!("{p}.content"), role)?;
    let mut tool_calls = Vec::new();
    if let Some(calls) = m.tool_calls {
        if role != Role::Assistant {
            return Err(bad(
                format!("{p}.tool_calls"),
                "only assistant messages carry tool_calls",
            ));
        }
        for (j, c) in calls.into_iter().enumerate() {
            if c.kind.as_deref().is_some_and(|k| k != "function") {
                return Err(bad(
                    format!("{p}.tool_calls[{j}].type"),
                    "tool call type must be function",
                ));
            }
            tool_calls.push(ToolCall {
                id: c.id,
                name: c.function.name,
                arguments: c.function.arguments,
            });
        }
    }
    if role == Role::Tool && m.tool_call_id.as_deref().is_none_or(str::is_empty) {
        return Err(bad(
            format!("{p}.tool_call_id"),
            "tool messages need the tool_call_id they answer",
        ));
    }
    Ok(ChatMessage {
        role,
        content,
        parts,
        tool_calls,
        tool_call_id: m.tool_call_id.filter(|_| role == Role::Tool),
    })
}

fn tool_list(tools: Vec<WireTool>) -> Result<Vec<Tool>, AppError> {
    if tools.len() > MAX_TOOLS {
        return Err(bad("tools", format!("at most {MAX_TOOLS} tools")));
    }
    let mut out = Vec::with_capacity(tools.len());
    for (i, t) in tools.into_iter().enumerate() {
        if t.kind != "function" {
            return Err(bad(
                format!("tools[{i}].type"),
                "tool type must be function",
            ));
        }
        if t.function.name.is_empty() || t.function.name.len() > 64 {
            return Err(bad(
                format!("tools[{i}].function.name"),
                "function names are 1 to 64 characters",
            ));
        }
        out.push(Tool {
            name: t.function.name,
            description: t.function.description,
            parameters: t
                .function
                .parameters
                .unwrap_or_else(|| serde_json::json!({"type": "object", "properties": {}})),
        });
    }
    Ok(out)
}

fn tool_choice(choice: Option<Value>, tools: &[Tool]) -> Result<Option<ToolChoice>, AppError> {
    Ok(match choice {
        None | Some(Value::Null) => None,
        Some(Value::String(s)) => Some(match s.as_str() {
            "auto" => ToolChoice::Auto,
            "none" => ToolChoice::None,
            "required" => ToolChoice::Required,
            _ => {
                return Err(bad(
                    "tool_choice",
                    "tool_choice must be auto, none, required or a function",
                ))
            }
        }),
        Some(v) => match v["function"]["name"].as_str() {
            Some(n) if v["type"] == "function" && tools.iter().any(|t| t.name == n) => {
                Some(ToolChoice::Function(n.to_owned()))
            }
            _ => {
                return Err(bad(
                    "tool_choice",
                    "tool_choice must name one of the request's tools",
                ))
            }
        },
    })
}

#[derive(Debug, Serialize, ToSchema)]
pub struct WireUsage {
    pub prompt_tokens: u64,
    pub completion_tokens: u64,
    pub total_tokens: u64,
}

impl From<Usage> for WireUsage {
    fn from(u: Usage) -> Self {
        Self {
            prompt_tokens: u.prompt_tokens,
            completion_tokens: u.completion_tokens,
            total_tokens: u.total(),
        }
    }
}

#[derive(Debug, Serialize, ToSchema)]
pub struct ModelObject {
    pub id: String,
    /// Always `model`.
    pub object: &'static str,
    pub created: u64,
    pub owned_by: &'static str,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct ModelList {
    /// Always `list`.
    pub object: &'static str,
    pub data: Vec<ModelObject>,
}
