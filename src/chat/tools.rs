//! Tools in a turn: which are offered to the model (the user's ready MCP servers' tools, named
//! `<server>__<tool>`, and the tools the client declared in `chat.send`), and what one call
//! does: `tool.call` on the session channel, the call with its deadline (through the user's MCP
//! client, or forwarded to the client and awaited as its `tool.result` frame), the record, then
//! `tool.result` or `tool.error`. Whatever happens, the model gets an answer to every call.

use crate::{
    error::AppError,
    llm::{Tool, ToolCall},
    mcp::{calls::ToolError, status::Status},
};
use serde_json::{json, Map, Value};
use std::collections::HashMap;

/// OpenAI's limit on function names (`^[a-zA-Z0-9_-]{1,64}$`); Anthropic's is the same.
const MAX_NAME: usize = 64;

pub use crate::protocol::calls::ClientTool;

#[derive(Debug, Clone)]
pub enum Target {
    Mcp { server: String, tool: String },
    Client { tool: String },
}

impl Target {
    pub fn server(&self) -> Option<&str> {
        match self {
            Target::Mcp { server, .. } => Some(server),
            Target::Client { .. } => None,
        }
    }

    pub fn tool(&self) -> &str {
        match self {
            Target::Mcp { tool, .. } | Target::Client { tool } => tool,
        }
    }

    pub fn side(&self) -> &'static str {
        match self {
            Target::Mcp { .. } => "mcp",
            Target::Client { .. } => "client",
        }
    }
}

/// The tools of one turn, by the name the model sees.
#[derive(Default)]
pub struct Toolbox {
    pub offered: Vec<Tool>,
    targets: HashMap<String, Target>,
}

fn valid_name(n: &str) -> bool {
    !n.is_empty()
        && n.len() <= MAX_NAME
        && n.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
}

/// `<server>__<tool>`, with characters functions cannot carry replaced and the length capped.
fn function_name(server: &str, tool: &str) -> String {
    let mut n = format!("{server}__");
    n.extend(tool.chars().map(|c| {
        if c.is_ascii_alphanumeric() || c == '_' || c == '-' {
            c
        } else {
            '_'
        }
    }));
    n.truncate(MAX_NAME);
    n
}

/// Refuses client tools a model could not be offered, or that could pass for MCP tools.
pub fn check_client_tools(tools: &[ClientTool], max: usize) -> Result<(), AppError> {
    if tools.len() > max {
        return Err(AppError::validation(
            "tools",
            format!("at most {max} client tools per chat.send"),
        ));
    }
    let mut seen = std::collections::HashSet::new();
    for (i, t) in tools.iter().enumerate() {
        if !valid_name(&t.name) || t.name.contains("__") || !seen.insert(t.name.as_str()) {
            return Err(AppError::validation(
                format!("tools[{i}].name"),
                format!("tools[{i}].name: tool names are 1 to 64 characters of [A-Za-z0-9_-], without `__` (reserved for MCP tools), each once"),
            ));
        }
        if let Some(p) = &t.parameters {
            if p.get("type").and_then(Value::as_str) != Some("object") {
                return Err(AppError::validation(
                    format!("tools[{i}].parameters"),
                    format!("tools[{i}].parameters: a JSON Schema with \"type\": \"object\""),
                ));
            }
        }
    }
    Ok(())
}

impl Toolbox {
    pub fn new(statuses: &[Status], client: Vec<ClientTool>) -> Self {
        let mut b = Toolbox::default();
        for s in statuses.iter().filter(|s| s.state == "ready") {
            for t in &s.tools {
                let name = function_name(&s.name, &t.name);
                let target = Target::Mcp {
                    server: s.name.clone(),
                    tool: t.name.clone(),
                };
                b.add(name, t.description.clone(), t.input_schema.clone(), target);
            }
        }
        for t in client {
            let params = t
                .parameters
                .unwrap_or_else(|| json!({"type": "object", "properties": {}}));
            let target = Target::Client {
                tool: t.name.clone(),
            };
            b.add(t.name, t.description, params, target);
        }
        b
    }

    /// First come wins when two tools map to one name.
    fn add(&mut self, name: String, description: Option<String>, parameters: Value, t: Target) {
        if self.targets.contains_key(&name) {
            return;
        }
        self.offered.push(Tool {
            name: name.clone(),
            description,
            parameters,
        });
        self.targets.insert(name, t);
    }

    pub fn is_empty(&self) -> bool {
        self.offered.is_empty()
    }

    pub fn target(&self, name: &str) -> Option<&Target> {
        self.targets.get(name)
    }
}

/// The model's arguments as a JSON object (empty text is no arguments).
pub fn parse_arguments(call: &ToolCall) -> Result<Map<String, Value>, String> {
    if call.arguments.trim().is_empty() {
        return Ok(Map::new());
    }
    match serde_json::from_str::<Value>(&call.arguments) {
        Ok(Value::Object(m)) => Ok(m),
        Ok(_) => Err("the arguments are not a JSON object".into()),
        Err(e) => Err(format!("the arguments are not valid JSON: {e}")),
    }
}

/// How a call failed: the code clients see, the message, and the record's status.
pub struct Failure {
    pub code: &'static str,
    pub message: String,
    pub status: &'static str,
}

impl Failure {
    pub fn new(code: &'static str, message: impl Into<String>) -> Self {
        let status = match code {
            "tool_timeout" => "timeout",
            "cancelled" => "cancelled",
            _ => "error",
        };
        Self {
            code,
            message: message.into(),
            status,
        }
    }
}

impl From<ToolError> for Failure {
    fn from(e: ToolError) -> Self {
        Failure::new(e.code(), e.to_string())
    }
}

/// What the model reads for a result: an MCP result's text parts (else its structured content,
/// else the whole result), a client's string as is, anything else as JSON.
pub fn model_text(result: &Value) -> String {
    if let Some(parts) = result.get("content").and_then(Value::as_array) {
        let text: Vec<&str> = parts.iter().filter_map(|c| c["text"].as_str()).collect();
        if !text.is_empty() {
            return text.join("\n");
        }
        if let Some(s) = result.get("structuredContent") {
            return s.to_string();
        }
    }
    match result {
        Value::String(s) => s.clone(),
        v => v.to_string(),
    }
}

/// Caps a result at `max` bytes: the text is cut at a character boundary, and a result whose
/// JSON is larger is replaced by `{"truncated": true, "text": ...}`.
pub fn cap(result: Value, text: String, max: usize) -> (Value, String) {
    let text = cap_text(text, max);
    let big = serde_json::to_vec(&result).map_or(true, |b| b.len() > max);
    if big {
        (json!({"truncated": true, "text": text}), text)
    } else {
        (result, text)
    }
}

/// The model's text of a result, cut at a character boundary past `max` bytes.
pub fn cap_text(text: String, max: usize) -> String {
    if text.len() <= max {
        return text;
    }
    let mut end = max;
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}…[truncated]", &text[..end])
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::mcp::client::ToolInfo;

    fn ready(name: &str, tools: &[&str]) -> Status {
        let mut s = Status::new(uuid::Uuid::new_v4(), name, "ready");
        s.tools = tools
            .iter()
            .map(|t| ToolInfo {
                name: (*t).into(),
                description: None,
                input_schema: json!({"type": "object"}),
            })
            .collect();
        s
    }

    #[test]
    fn mcp_tools_are_namespaced_and_only_ready_servers_offer_them() {
        let mut down = ready("down", &["x"]);
        down.state = "error".into();
        let client = vec![ClientTool {
            name: "pick_file".into(),
            description: Some("asks the user".into()),
            parameters: None,
        }];
        let b = Toolbox::new(&[ready("fs", &["read.file", "ls"]), down], client);
        let names: Vec<&str> = b.offered.iter().map(|t| t.name.as_str()).collect();
        assert_eq!(names, ["fs__read_file", "fs__ls", "pick_file"]);
        assert!(
            matches!(b.target("fs__read_file"), Some(Target::Mcp { tool, .. }) if tool == "read.file")
        );
        assert_eq!(b.target("pick_file").unwrap().side(), "client");
        assert!(b.target("down__x").is_none());
        let long = function_name("s", &"t".repeat(100));
        assert_eq!(long.len(), 64);
    }

    #[test]
    fn client_tools_are_checked() {
        let t = |n: &str| ClientTool {
            name: n.into(),
            description: None,
            parameters: None,
        };
        assert!(check_client_tools(&[t("ok_1")], 4).is_ok());
        assert!(check_client_tools(&[t("a__b")], 4).is_err());
        assert!(check_client_tools(&[t("a b")], 4).is_err());
        assert!(check_client_tools(&[t("a"), t("a")], 4).is_err());
        assert!(check_client_tools(&[t("a"), t("b")], 1).is_err());
        let mut bad = t("x");
        bad.parameters = Some(json!({"type": "string"}));
        assert!(check_client_tools(&[bad], 4).is_err());
    }

    #[test]
    fn results_become_text_and_are_capped() {
        let r = json!({"content": [{"type": "text", "text": "5"}], "isError": false});
        assert_eq!(model_text(&r), "5");
        assert_eq!(model_text(&json!("plain")), "plain");
        assert_eq!(model_text(&json!({"a": 1})), r#"{"a":1}"#);
        let (v, text) = cap(json!("é".repeat(10)), "é".repeat(10), 5);
        assert_eq!(text, "éé…[truncated]");
        assert_eq!(v["truncated"], true);
        let (v, _) = cap(json!("ok"), "ok".into(), 5);
        assert_eq!(v, "ok");
    }
}
