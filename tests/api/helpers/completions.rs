//! Completions against the test upstream: routes to its scenarios, a server routed to it, and
//! readers for OpenAI's SSE.

use super::upstream::Upstream;
use super::*;
use reqwest::StatusCode;
use serde_json::{json, Value};
use switchyard::config::Config;

/// Routes used below: `id=provider:scenario` (see upstream.rs).
pub const ROUTES: &[&str] = &[
    "oa-text=openai:trace:openai_text.sse",
    "oa-crlf=openai:trace-crlf:openai_text.sse",
    "oa-tools=openai:trace:openai_tools.sse",
    "oa-midfail=openai:trace:openai_midstream_error.sse",
    "oa-reset=openai:reset",
    "oa-500=openai:status:500",
    "oa-429=openai:status:429",
    "oa-400=openai:status:400",
    "oa-401=openai:status:401",
    "oa-flaky=openai:flaky",
    "oa-hang=openai:hang",
    "oa-slow=openai:slow:100:50",
    "oa-slow3=openai:slow:3:300",
    "oa-garbage=openai:garbage",
    "oa-sse=openai:always-sse:openai_text.sse",
    "oa-words=openai:slow:100:1",
    "an-text=anthropic:trace:anthropic_text.sse",
    "an-tools=anthropic:trace:anthropic_tools.sse",
    "an-error=anthropic:trace:anthropic_error.sse",
    "an-500=anthropic:status:500",
];

pub fn route_upstream(c: &mut Config, up: &Upstream) {
    c.llm.openai_base_url = up.openai_url();
    c.llm.openai_api_key = "sk-upstream-test".into();
    c.llm.anthropic_base_url = up.anthropic_url();
    c.llm.anthropic_api_key = "ak-upstream-test".into();
    c.llm.models = ROUTES.iter().map(|s| s.to_string()).collect();
    c.llm.retries = 1;
    c.llm.first_byte_timeout_ms = 1_500;
}

pub async fn setup() -> (TestApp, Upstream, String) {
    setup_with(|_| {}).await
}

/// `setup` with more config changed after the routes.
pub async fn setup_with(tweak: impl FnOnce(&mut Config)) -> (TestApp, Upstream, String) {
    let up = Upstream::start().await;
    let app = spawn_with(|c| {
        route_upstream(c, &up);
        tweak(c);
    })
    .await;
    let token = app.register(&unique_email()).await.access;
    (app, up, token)
}

pub async fn complete(app: &TestApp, token: &str, body: Value) -> reqwest::Response {
    app.http
        .post(app.url("/v1/chat/completions"))
        .bearer_auth(token)
        .json(&body)
        .send()
        .await
        .expect("request")
}

pub fn ask(model: &str, stream: bool) -> Value {
    json!({"model": model, "stream": stream, "messages": [
        {"role": "system", "content": "Be brief."},
        {"role": "user", "content": "Say hello"}]})
}

/// The `data:` payloads of an SSE body, checking there is no `event:` line.
pub async fn sse_data(r: reqwest::Response) -> Vec<String> {
    assert_eq!(r.status(), StatusCode::OK);
    assert_eq!(r.headers()["content-type"], "text/event-stream");
    assert_eq!(r.headers()["cache-control"], "no-cache");
    assert_eq!(r.headers()["x-accel-buffering"], "no");
    let text = r.text().await.expect("body");
    assert!(
        !text.contains("\nevent:") && !text.starts_with("event:"),
        "{text}"
    );
    text.split("\n\n")
        .filter_map(|e| e.strip_prefix("data: "))
        .map(str::to_owned)
        .collect()
}

/// Chunks before `[DONE]`, asserting `[DONE]` ends the stream and id/created never change.
pub fn chunks(data: &[String]) -> Vec<Value> {
    assert_eq!(data.last().map(String::as_str), Some("[DONE]"), "{data:?}");
    let out: Vec<Value> = data[..data.len() - 1]
        .iter()
        .map(|d| serde_json::from_str(d).expect("chunk is JSON"))
        .collect();
    let ids: Vec<&Value> = out
        .iter()
        .filter(|c| c.get("error").is_none())
        .map(|c| &c["id"])
        .collect();
    assert!(ids.windows(2).all(|w| w[0] == w[1]), "one id throughout");
    out
}

pub fn text_of(chunks: &[Value]) -> String {
    chunks
        .iter()
        .filter_map(|c| c["choices"][0]["delta"]["content"].as_str())
        .collect()
}
