//! The body sent to an OpenAI-compatible upstream, serialized straight from the request it
//! borrows: no JSON tree is built and no string copied per completion.

use super::{ChatMessage, ChatRequest, Delivery, Part, Role, Tool, ToolCall, ToolChoice};
use serde::Serialize;

#[derive(Serialize)]
pub struct Body<'a> {
    model: &'a str,
    messages: Vec<Message<'a>>,
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    stream: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    stream_options: Option<StreamOptions>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    tools: Vec<FunctionTool<'a>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    tool_choice: Option<Choice<'a>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    max_tokens: Option<u32>,
    #[serde(skip_serializing_if = "<[_]>::is_empty")]
    stop: &'a [String],
    #[serde(skip_serializing_if = "Option::is_none")]
    temperature: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    top_p: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    user: Option<&'a str>,
}

#[derive(Serialize)]
struct StreamOptions {
    include_usage: bool,
}

#[derive(Serialize)]
struct Message<'a> {
    role: &'static str,
    /// `null` for an assistant message that only calls tools.
    content: Option<Content<'a>>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    tool_calls: Vec<Call<'a>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    tool_call_id: Option<&'a str>,
}

/// A string, or parts when the message holds images (OpenAI's `image_url` parts, as a client
/// sent them or built from an attached file).
#[derive(Serialize)]
#[serde(untagged)]
enum Content<'a> {
    Text(&'a str),
    Parts(Vec<PartOut<'a>>),
}

#[derive(Serialize)]
#[serde(tag = "type", rename_all = "snake_case")]
enum PartOut<'a> {
    Text { text: &'a str },
    ImageUrl { image_url: ImageUrl<'a> },
}

#[derive(Serialize)]
struct ImageUrl<'a> {
    url: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    detail: Option<&'a str>,
}

fn part(p: &Part) -> PartOut<'_> {
    match p {
        Part::Text(text) => PartOut::Text { text },
        Part::Image(i) => PartOut::ImageUrl {
            image_url: ImageUrl {
                url: &i.url,
                detail: i.detail.as_deref(),
            },
        },
    }
}

#[derive(Serialize)]
struct Call<'a> {
    id: &'a str,
    r#type: &'static str,
    function: CallFunction<'a>,
}

#[derive(Serialize)]
struct CallFunction<'a> {
    name: &'a str,
    arguments: &'a str,
}

#[derive(Serialize)]
struct FunctionTool<'a> {
    r#type: &'static str,
    function: ToolFunction<'a>,
}

#[derive(Serialize)]
struct ToolFunction<'a> {
    name: &'a str,
    description: Option<&'a str>,
    parameters: &'a serde_json::Value,
}

#[derive(Serialize)]
#[serde(untagged)]
enum Choice<'a> {
    Mode(&'static str),
    Function {
        r#type: &'static str,
        function: ChoiceFunction<'a>,
    },
}

#[derive(Serialize)]
struct ChoiceFunction<'a> {
    name: &'a str,
}

fn role(r: Role) -> &'static str {
    match r {
        Role::System => "system",
        Role::User => "user",
        Role::Assistant => "assistant",
        Role::Tool => "tool",
    }
}

fn message(m: &ChatMessage) -> Message<'_> {
    let calls_only = !m.tool_calls.is_empty() && m.content.is_empty();
    Message {
        role: role(m.role),
        content: (!calls_only).then(|| {
            if m.parts.is_empty() {
                Content::Text(&m.content)
            } else {
                Content::Parts(m.parts.iter().map(part).collect())
            }
        }),
        tool_calls: m.tool_calls.iter().map(call).collect(),
        tool_call_id: m.tool_call_id.as_deref(),
    }
}

fn call(c: &ToolCall) -> Call<'_> {
    Call {
        id: &c.id,
        r#type: "function",
        function: CallFunction {
            name: &c.name,
            arguments: &c.arguments,
        },
    }
}

fn tool(t: &Tool) -> FunctionTool<'_> {
    FunctionTool {
        r#type: "function",
        function: ToolFunction {
            name: &t.name,
            description: t.description.as_deref(),
            parameters: &t.parameters,
        },
    }
}

fn choice(c: &ToolChoice) -> Choice<'_> {
    match c {
        ToolChoice::Auto => Choice::Mode("auto"),
        ToolChoice::None => Choice::Mode("none"),
        ToolChoice::Required => Choice::Mode("required"),
        ToolChoice::Function(name) => Choice::Function {
            r#type: "function",
            function: ChoiceFunction { name },
        },
    }
}

pub fn body(req: &ChatRequest, delivery: Delivery) -> Body<'_> {
    let streamed = delivery == Delivery::Streamed;
    Body {
        model: &req.model,
        messages: req.messages.iter().map(message).collect(),
        stream: streamed,
        stream_options: streamed.then_some(StreamOptions {
            include_usage: true,
        }),
        tools: req.tools.iter().map(tool).collect(),
        tool_choice: req.tool_choice.as_ref().map(choice),
        max_tokens: req.max_tokens,
        stop: &req.stop,
        temperature: req.temperature,
        top_p: req.top_p,
        user: req.user.as_deref(),
    }
}

/// The body as bytes, serialized once for every attempt.
pub fn encode(req: &ChatRequest, delivery: Delivery) -> bytes::Bytes {
    serde_json::to_vec(&body(req, delivery))
        .expect("a request body of strings and numbers serializes")
        .into()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn the_body_is_openai_s_shape_with_nothing_unset() {
        let req = ChatRequest {
            model: "m".into(),
            messages: vec![
                ChatMessage::text(Role::User, "hi"),
                ChatMessage {
                    role: Role::Assistant,
                    content: String::new(),
                    parts: Vec::new(),
                    tool_calls: vec![ToolCall {
                        id: "c0".into(),
                        name: "f".into(),
                        arguments: "{}".into(),
                    }],
                    tool_call_id: None,
                },
                ChatMessage {
                    tool_call_id: Some("c0".into()),
                    ..ChatMessage::text(Role::Tool, "42")
                },
            ],
            tools: vec![Tool {
                name: "f".into(),
                description: None,
                parameters: json!({"type": "object"}),
            }],
            tool_choice: Some(ToolChoice::Function("f".into())),
            max_tokens: Some(5),
            ..Default::default()
        };
        let v: serde_json::Value =
            serde_json::from_slice(&encode(&req, Delivery::Streamed)).unwrap();
        assert_eq!(
            v,
            json!({
                "model": "m",
                "messages": [
                    {"role": "user", "content": "hi"},
                    {"role": "assistant", "content": null, "tool_calls": [
                        {"id": "c0", "type": "function", "function": {"name": "f", "arguments": "{}"}}]},
                    {"role": "tool", "content": "42", "tool_call_id": "c0"},
                ],
                "stream": true,
                "stream_options": {"include_usage": true},
                "tools": [{"type": "function", "function": {"name": "f", "description": null, "parameters": {"type": "object"}}}],
                "tool_choice": {"type": "function", "function": {"name": "f"}},
                "max_tokens": 5,
            })
        );
        let whole: serde_json::Value =
            serde_json::from_slice(&encode(&req, Delivery::Whole)).unwrap();
        assert_eq!(
            (whole.get("stream"), whole.get("stream_options")),
            (None, None)
        );
    }
}
