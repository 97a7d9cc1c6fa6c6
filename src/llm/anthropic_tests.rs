//! The Anthropic wire format: request bodies and the streamed events read back.

use super::*;

#[test]
fn past_tool_calls_become_text_when_no_tools_are_offered() {
    use crate::llm::{ChatMessage, ChatRequest, Tool, ToolCall};
    let call = ToolCall {
        id: "c1".into(),
        name: "fs__read".into(),
        arguments: r#"{"path":"a"}"#.into(),
    };
    let mut req = ChatRequest {
        messages: vec![
            ChatMessage {
                role: Role::Assistant,
                content: String::new(),
                parts: Vec::new(),
                tool_calls: vec![call],
                tool_call_id: None,
            },
            ChatMessage {
                role: Role::Tool,
                content: "hello".into(),
                parts: Vec::new(),
                tool_calls: Vec::new(),
                tool_call_id: Some("c1".into()),
            },
            ChatMessage::text(Role::User, "and now?"),
        ],
        ..ChatRequest::default()
    };
    let b = body(&req);
    assert_eq!(b["messages"][0]["content"][0]["type"], "text");
    assert_eq!(
        b["messages"][1]["content"][0]["text"],
        "[tool result c1]: hello"
    );
    assert_eq!(b["messages"][1]["content"][1]["text"], "and now?");
    req.tools = vec![Tool {
        name: "fs__read".into(),
        description: None,
        parameters: json!({"type": "object"}),
    }];
    let b = body(&req);
    assert_eq!(b["messages"][0]["content"][0]["type"], "tool_use");
    assert_eq!(b["messages"][1]["content"][0]["type"], "tool_result");
}

#[test]
fn stop_reasons_map_to_openai_finish_reasons() {
    for (s, f) in [
        ("end_turn", FinishReason::Stop),
        ("stop_sequence", FinishReason::Stop),
        ("max_tokens", FinishReason::Length),
        ("model_context_window_exceeded", FinishReason::Length),
        ("tool_use", FinishReason::ToolCalls),
        ("refusal", FinishReason::ContentFilter),
    ] {
        assert_eq!(finish_reason(s), f, "{s}");
    }
}

#[test]
fn tool_indexes_count_calls_not_blocks_and_usage_is_cumulative() {
    let mut d = Decoder::default();
    let mut out = Vec::new();
    for ev in [
        r#"{"type":"message_start","message":{"usage":{"input_tokens":10,"output_tokens":1}}}"#,
        r#"{"type":"content_block_start","index":0,"content_block":{"type":"text","text":""}}"#,
        r#"{"type":"content_block_delta","index":0,"delta":{"type":"text_delta","text":"Hi"}}"#,
        r#"{"type":"content_block_start","index":1,"content_block":{"type":"tool_use","id":"t1","name":"f","input":{}}}"#,
        r#"{"type":"content_block_delta","index":1,"delta":{"type":"input_json_delta","partial_json":"{\"a\":"}}"#,
        r#"{"type":"message_delta","delta":{"stop_reason":"tool_use"},"usage":{"output_tokens":7}}"#,
        r#"{"type":"message_delta","delta":{},"usage":{"output_tokens":9}}"#,
        r#"{"type":"message_stop"}"#,
    ] {
        d.decode(ev, &mut out).unwrap();
    }
    assert_eq!(out[0], Chunk::Text("Hi".into()));
    assert!(matches!(&out[1], Chunk::ToolCall { index: 0, id: Some(id), .. } if id == "t1"));
    assert!(
        matches!(&out[2], Chunk::ToolCall { index: 0, arguments, .. } if arguments == "{\"a\":")
    );
    assert_eq!(out[3], Chunk::Finish(FinishReason::ToolCalls));
    assert_eq!(
        out[4],
        Chunk::Usage(Usage {
            prompt_tokens: 10,
            completion_tokens: 9
        })
    );
}
