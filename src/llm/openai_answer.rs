//! A whole `chat.completion` object from an OpenAI-compatible upstream, decoded into the chunks
//! a stream of it would carry. Typed, and bounded as it is read: only the first choice and at
//! most `MAX_TOOL_CALLS` calls are kept, everything else is skipped without being built, so a
//! hostile 16 MiB answer costs about its own size, not a JSON tree ten times larger.

use super::{
    openai::{finish, MAX_TOOL_CALLS},
    Chunk, LlmError, Usage,
};
use serde::{
    de::{IgnoredAny, SeqAccess, Visitor},
    Deserialize, Deserializer,
};
use serde_json::value::RawValue;
use std::{fmt, marker::PhantomData};

#[derive(Deserialize)]
struct Answer {
    #[serde(default)]
    error: Option<Box<RawValue>>,
    #[serde(default, deserialize_with = "first")]
    choices: Option<Choice>,
    #[serde(default)]
    usage: Option<UsageObject>,
}

#[derive(Deserialize)]
struct Choice {
    #[serde(default)]
    message: Option<Message>,
    #[serde(default)]
    finish_reason: Option<String>,
}

#[derive(Deserialize)]
struct Message {
    #[serde(default)]
    content: Option<String>,
    #[serde(default, deserialize_with = "bounded")]
    tool_calls: Vec<Call>,
}

#[derive(Deserialize)]
struct Call {
    #[serde(default)]
    id: Option<String>,
    #[serde(default)]
    function: Option<Function>,
}

#[derive(Deserialize)]
struct Function {
    #[serde(default)]
    name: Option<String>,
    #[serde(default)]
    arguments: Option<String>,
}

#[derive(Deserialize)]
struct UsageObject {
    #[serde(default)]
    prompt_tokens: Option<u64>,
    #[serde(default)]
    completion_tokens: Option<u64>,
}

#[derive(Deserialize)]
struct ErrorObject {
    #[serde(default, rename = "type")]
    kind: Option<String>,
    #[serde(default)]
    code: Option<Box<RawValue>>,
    #[serde(default)]
    message: Option<String>,
}

/// The chunks a whole answer carries: text, tool calls, finish reason, usage.
pub fn decode_whole(body: &[u8]) -> Result<Vec<Chunk>, LlmError> {
    let a: Answer =
        serde_json::from_slice(body).map_err(|e| LlmError::Stream(format!("bad answer: {e}")))?;
    if let Some(e) = a.error.filter(|e| e.get() != "null") {
        return Err(provider_error(&e));
    }
    let choice = a
        .choices
        .ok_or_else(|| LlmError::Stream("the answer has no choices".into()))?;
    let mut out = Vec::new();
    let message = choice.message.unwrap_or(Message {
        content: None,
        tool_calls: Vec::new(),
    });
    if let Some(t) = message.content.filter(|t| !t.is_empty()) {
        out.push(Chunk::Text(t));
    }
    for (index, c) in message.tool_calls.into_iter().enumerate() {
        let f = c.function.unwrap_or(Function {
            name: None,
            arguments: None,
        });
        out.push(Chunk::ToolCall {
            index: index as u32,
            id: c.id,
            name: f.name,
            arguments: f.arguments.unwrap_or_default(),
        });
    }
    if let Some(f) = choice.finish_reason {
        out.push(Chunk::Finish(finish(&f)));
    }
    if let Some(u) = a.usage {
        out.push(Chunk::Usage(Usage {
            prompt_tokens: u.prompt_tokens.unwrap_or(0),
            completion_tokens: u.completion_tokens.unwrap_or(0),
        }));
    }
    Ok(out)
}

/// `{"error": {...}}` (or a bare string) that came with a 200, typed by the provider.
fn provider_error(raw: &RawValue) -> LlmError {
    if let Ok(message) = serde_json::from_str::<String>(raw.get()) {
        return LlmError::Provider {
            kind: "error".into(),
            message,
        };
    }
    let e: ErrorObject = serde_json::from_str(raw.get()).unwrap_or(ErrorObject {
        kind: None,
        code: None,
        message: None,
    });
    let code = e
        .code
        .and_then(|c| serde_json::from_str::<String>(c.get()).ok());
    LlmError::Provider {
        kind: e.kind.or(code).unwrap_or_else(|| "error".into()),
        message: e.message.unwrap_or_else(|| "upstream error".into()),
    }
}

/// The first element of an array (or none for `null` or `[]`); the rest is skipped unbuilt.
fn first<'de, D: Deserializer<'de>, T: Deserialize<'de>>(d: D) -> Result<Option<T>, D::Error> {
    struct First<T>(PhantomData<T>);
    impl<'de, T: Deserialize<'de>> Visitor<'de> for First<T> {
        type Value = Option<T>;
        fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
            f.write_str("an array")
        }
        fn visit_unit<E>(self) -> Result<Self::Value, E> {
            Ok(None)
        }
        fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Self::Value, A::Error> {
            let first = seq.next_element()?;
            while seq.next_element::<IgnoredAny>()?.is_some() {}
            Ok(first)
        }
    }
    d.deserialize_any(First(PhantomData))
}

/// An array of at most `MAX_TOOL_CALLS` elements (`null` is empty); a longer one is refused
/// as it is read.
fn bounded<'de, D: Deserializer<'de>, T: Deserialize<'de>>(d: D) -> Result<Vec<T>, D::Error> {
    struct Bounded<T>(PhantomData<T>);
    impl<'de, T: Deserialize<'de>> Visitor<'de> for Bounded<T> {
        type Value = Vec<T>;
        fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
            write!(f, "an array of at most {MAX_TOOL_CALLS} tool calls")
        }
        fn visit_unit<E>(self) -> Result<Self::Value, E> {
            Ok(Vec::new())
        }
        fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Self::Value, A::Error> {
            let mut out = Vec::new();
            while let Some(v) = seq.next_element()? {
                if out.len() as u64 >= MAX_TOOL_CALLS {
                    return Err(serde::de::Error::custom(format!(
                        "more than {MAX_TOOL_CALLS} tool calls"
                    )));
                }
                out.push(v);
            }
            Ok(out)
        }
    }
    d.deserialize_any(Bounded(PhantomData))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::llm::FinishReason;

    #[test]
    fn a_whole_answer_decodes_to_the_chunks_a_stream_of_it_would_carry() {
        let body = br#"{"id":"x","object":"chat.completion","choices":[{"index":0,
            "message":{"role":"assistant","content":"Checking.","tool_calls":[
              {"id":"c0","type":"function","function":{"name":"a","arguments":"{}"}},
              {"id":"c1","type":"function","function":{"name":"b","arguments":"{\"k\":1}"}}]},
            "finish_reason":"tool_calls"}],"usage":{"prompt_tokens":3,"completion_tokens":5}}"#;
        let call = |index, id: &str, name: &str, arguments: &str| Chunk::ToolCall {
            index,
            id: Some(id.into()),
            name: Some(name.into()),
            arguments: arguments.into(),
        };
        assert_eq!(
            decode_whole(body).unwrap(),
            vec![
                Chunk::Text("Checking.".into()),
                call(0, "c0", "a", "{}"),
                call(1, "c1", "b", r#"{"k":1}"#),
                Chunk::Finish(FinishReason::ToolCalls),
                Chunk::Usage(Usage {
                    prompt_tokens: 3,
                    completion_tokens: 5
                }),
            ]
        );
    }

    #[test]
    fn a_whole_answer_with_an_error_or_no_choices_is_refused() {
        let e = decode_whole(br#"{"error":{"message":"overloaded","type":"server_error"}}"#);
        assert!(matches!(e, Err(LlmError::Provider { .. })), "{e:?}");
        let e = decode_whole(br#"{"id":"x","choices":[]}"#);
        assert!(matches!(e, Err(LlmError::Stream(_))), "{e:?}");
        let calls: Vec<String> = (0..=MAX_TOOL_CALLS)
            .map(|i| format!(r#"{{"id":"c{i}","function":{{"name":"f","arguments":""}}}}"#))
            .collect();
        let body = format!(
            r#"{{"choices":[{{"message":{{"tool_calls":[{}]}}}}]}}"#,
            calls.join(",")
        );
        let e = decode_whole(body.as_bytes());
        assert!(matches!(e, Err(LlmError::Stream(_))), "{e:?}");
    }

    #[test]
    fn only_the_first_choice_is_kept_and_a_bare_error_string_is_a_provider_error() {
        let many: Vec<String> = (0..100_000)
            .map(|i| format!(r#"{{"message":{{"content":"c{i}"}}}}"#))
            .collect();
        let body = format!(
            r#"{{"choices":[{}],"extra":{{"deep":[[[]]]}}}}"#,
            many.join(",")
        );
        assert_eq!(
            decode_whole(body.as_bytes()).unwrap(),
            vec![Chunk::Text("c0".into())]
        );
        let e = decode_whole(br#"{"error":"overloaded"}"#);
        assert_eq!(
            e,
            Err(LlmError::Provider {
                kind: "error".into(),
                message: "overloaded".into()
            })
        );
        let e = decode_whole(br#"{"error":{"code":"rate_limit","message":"slow down"}}"#);
        assert!(
            matches!(&e, Err(LlmError::Provider { kind, .. }) if kind == "rate_limit"),
            "{e:?}"
        );
        // `"error": null` next to an answer is no error.
        let ok = decode_whole(br#"{"error":null,"choices":[{"message":{"content":"hi"}}]}"#);
        assert_eq!(ok.unwrap(), vec![Chunk::Text("hi".into())]);
    }
}
