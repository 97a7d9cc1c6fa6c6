//! `/v1/chat/completions` and `/v1/models` with real HTTP against the test upstream, which
//! replays recorded OpenAI and Anthropic streams over a real socket.

use crate::helpers::*;
use crate::upstream::Upstream;
use reqwest::StatusCode;
use serde_json::{json, Value};
use std::time::Duration;
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
    let up = Upstream::start().await;
    let app = spawn_with(|c| route_upstream(c, &up)).await;
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

fn ask(model: &str, stream: bool) -> Value {
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
fn chunks(data: &[String]) -> Vec<Value> {
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

fn text_of(chunks: &[Value]) -> String {
    chunks
        .iter()
        .filter_map(|c| c["choices"][0]["delta"]["content"].as_str())
        .collect()
}

#[tokio::test]
async fn models_lists_echo_and_configured_routes_in_openai_format() {
    within(async {
        let (app, _up, token) = setup().await;
        let r = app.get_auth("/v1/models", &token).await;
        assert_eq!(r.status(), StatusCode::OK);
        let body: Value = r.json().await.unwrap();
        assert_eq!(body["object"], "list");
        let ids: Vec<&str> = body["data"]
            .as_array()
            .unwrap()
            .iter()
            .map(|m| m["id"].as_str().unwrap())
            .collect();
        assert!(
            ids.contains(&"echo") && ids.contains(&"oa-text") && ids.contains(&"an-text"),
            "{ids:?}"
        );
        let echo = &body["data"][0];
        assert_eq!(echo["object"], "model");
        assert_eq!(echo["owned_by"], "switchyard");
        assert!(echo["created"].is_u64());
        let r = app.http.get(app.url("/v1/models")).send().await.unwrap();
        error_of(r, StatusCode::UNAUTHORIZED).await;
    })
    .await
}

#[tokio::test]
async fn echo_streams_and_completes_without_any_provider() {
    within(async {
        let app = spawn_app().await;
        let token = app.register(&unique_email()).await.access;
        let r = complete(&app, &token, json!({"model": "echo", "messages": [{"role": "user", "content": "ping pong  ball"}]})).await;
        assert_eq!(r.status(), StatusCode::OK);
        let body: Value = r.json().await.unwrap();
        assert_eq!(body["object"], "chat.completion");
        assert_eq!(body["choices"][0]["message"]["content"], "ping pong  ball");
        assert_eq!(body["choices"][0]["finish_reason"], "stop");
        assert_eq!(body["usage"]["completion_tokens"], 3);
        assert_eq!(body["usage"]["total_tokens"], 6);

        let r = complete(&app, &token, json!({"model": "echo", "stream": true, "stream_options": {"include_usage": true},
            "messages": [{"role": "user", "content": "one two three"}]})).await;
        let data = sse_data(r).await;
        let cs = chunks(&data);
        assert_eq!(cs[0]["choices"][0]["delta"]["role"], "assistant");
        assert_eq!(text_of(&cs), "one two three");
        let created = &cs[0]["created"];
        assert!(cs.iter().all(|c| &c["created"] == created && c["object"] == "chat.completion.chunk"));
        // The finish chunk has an empty delta; then the usage chunk, the only one with usage.
        let fin = &cs[cs.len() - 2];
        assert_eq!(fin["choices"][0]["delta"], json!({}));
        assert_eq!(fin["choices"][0]["finish_reason"], "stop");
        let last = cs.last().unwrap();
        assert_eq!(last["choices"], json!([]));
        assert_eq!(last["usage"]["completion_tokens"], 3);
        assert!(cs[..cs.len() - 1].iter().all(|c| c.get("usage").is_none()));
        // max_tokens cuts the echo and says so.
        let r = complete(&app, &token, json!({"model": "echo", "max_completion_tokens": 1, "messages": [{"role": "user", "content": "a b c"}]})).await;
        let body: Value = r.json().await.unwrap();
        assert_eq!(body["choices"][0]["finish_reason"], "length");
        assert_eq!(body["choices"][0]["message"]["content"], "a ");
    })
    .await
}

#[tokio::test]
async fn openai_upstream_text_streams_through_split_chunks_and_crlf() {
    within(async {
        let (app, up, token) = setup().await;
        for model in ["oa-text", "oa-crlf"] {
            let cs = chunks(&sse_data(complete(&app, &token, ask(model, true)).await).await);
            assert_eq!(text_of(&cs), "Hello! How can I help — ünïcödé?", "{model}");
            assert_eq!(cs.last().unwrap()["choices"][0]["finish_reason"], "stop");
            assert_eq!(cs.last().unwrap()["model"], model);
        }
        let r = complete(&app, &token, ask("oa-text", false)).await;
        let body: Value = r.json().await.unwrap();
        assert_eq!(
            body["choices"][0]["message"]["content"],
            "Hello! How can I help — ünïcödé?"
        );
        assert_eq!(
            body["usage"],
            json!({"prompt_tokens": 19, "completion_tokens": 10, "total_tokens": 29})
        );
        // What went upstream: the upstream model name, our key, a streaming request.
        let (path, headers, sent) = up.requests().pop().unwrap();
        assert_eq!(path, "/v1/chat/completions");
        assert!(headers.contains(&("authorization".into(), "Bearer sk-upstream-test".into())));
        assert_eq!(sent["model"], "trace:openai_text.sse");
        assert_eq!(sent["stream"], true);
        assert_eq!(
            sent["messages"][0],
            json!({"role": "system", "content": "Be brief."})
        );
    })
    .await
}

#[tokio::test]
async fn tool_calls_stream_and_aggregate_from_openai_and_anthropic() {
    within(async {
        let (app, up, token) = setup().await;
        let tools = json!([{"type": "function", "function": {"name": "get_weather", "description": "Weather",
            "parameters": {"type": "object", "properties": {"location": {"type": "string"}}}}}]);
        // Non-streaming: calls assembled from their streamed parts.
        let mut body = ask("oa-tools", false);
        body["tools"] = tools.clone();
        body["tool_choice"] = json!("auto");
        let v: Value = complete(&app, &token, body).await.json().await.unwrap();
        let calls = &v["choices"][0]["message"]["tool_calls"];
        assert_eq!(v["choices"][0]["finish_reason"], "tool_calls");
        assert_eq!(v["choices"][0]["message"]["content"], Value::Null);
        assert_eq!(calls[0]["id"], "call_DdmO9pD3xa9XTPNJ32zg2hcA");
        assert_eq!(calls[0]["function"]["name"], "get_weather");
        assert_eq!(calls[0]["function"]["arguments"], r#"{"location":"Paris, France"}"#);
        assert_eq!(calls[1]["function"]["name"], "get_time");

        // Anthropic: text plus one tool_use block; our index counts calls (0), not blocks (1).
        let mut body = ask("an-tools", true);
        body["tools"] = tools;
        body["tool_choice"] = json!({"type": "function", "function": {"name": "get_weather"}});
        let cs = chunks(&sse_data(complete(&app, &token, body).await).await);
        assert_eq!(text_of(&cs), "Let me check the weather.");
        let parts: Vec<&Value> = cs.iter().filter_map(|c| c["choices"][0]["delta"]["tool_calls"].get(0)).collect();
        assert!(parts.iter().all(|p| p["index"] == 0), "{parts:?}");
        assert_eq!(parts[0]["id"], "toolu_01T1x1fJ34qAmk2tNTrN7Up6");
        assert_eq!(parts[0]["type"], "function");
        assert_eq!(parts[0]["function"]["name"], "get_weather");
        let args: String = parts.iter().filter_map(|p| p["function"]["arguments"].as_str()).collect();
        assert_eq!(serde_json::from_str::<Value>(&args).unwrap(), json!({"location": "San Francisco, CA"}));
        assert_eq!(cs.last().unwrap()["choices"][0]["finish_reason"], "tool_calls");
        // The Anthropic request: system lifted out, tools as input_schema, forced tool, headers.
        let (path, headers, sent) = up.requests().pop().unwrap();
        assert_eq!(path, "/v1/messages");
        assert!(headers.contains(&("x-api-key".into(), "ak-upstream-test".into())));
        assert!(headers.contains(&("anthropic-version".into(), "2023-06-01".into())));
        assert_eq!(sent["system"], "Be brief.");
        assert_eq!(sent["messages"], json!([{"role": "user", "content": [{"type": "text", "text": "Say hello"}]}]));
        assert_eq!(sent["max_tokens"], 4096);
        assert_eq!(sent["tools"][0]["input_schema"]["properties"]["location"]["type"], "string");
        assert_eq!(sent["tool_choice"], json!({"type": "tool", "name": "get_weather"}));
    })
    .await
}

#[tokio::test]
async fn anthropic_text_maps_usage_and_stop_reason() {
    within(async {
        let (app, _up, token) = setup().await;
        let v: Value = complete(&app, &token, ask("an-text", false))
            .await
            .json()
            .await
            .unwrap();
        assert_eq!(v["choices"][0]["message"]["content"], "Hello from Claude!");
        assert_eq!(v["choices"][0]["finish_reason"], "stop");
        assert_eq!(
            v["usage"],
            json!({"prompt_tokens": 25, "completion_tokens": 15, "total_tokens": 40})
        );
    })
    .await
}

#[tokio::test]
async fn midstream_errors_and_resets_end_with_an_error_event_then_done() {
    within(async {
        let (app, _up, token) = setup().await;
        for (model, partial) in [
            ("oa-midfail", "Partial answer"),
            ("an-error", "Partial"),
            ("oa-reset", "Hello"),
        ] {
            let data = sse_data(complete(&app, &token, ask(model, true)).await).await;
            let cs = chunks(&data);
            assert_eq!(text_of(&cs), partial, "{model}");
            let err = &cs.last().unwrap()["error"];
            assert!(
                err["message"].is_string() && err["code"].is_string(),
                "{model}: {data:?}"
            );
            // Non-streaming: the same failure is a 502 with the error body.
            let e = error_of(
                complete(&app, &token, ask(model, false)).await,
                StatusCode::BAD_GATEWAY,
            )
            .await;
            assert_eq!(e["code"], "upstream_error", "{model}");
        }
    })
    .await
}

#[tokio::test]
async fn upstream_failures_before_the_first_byte_are_real_statuses() {
    within(async {
        let (app, up, token) = setup().await;
        // 500 is retried (retries = 1), then 502; the upstream saw two attempts.
        let before = up.requests().len();
        let e = error_of(
            complete(&app, &token, ask("oa-500", true)).await,
            StatusCode::BAD_GATEWAY,
        )
        .await;
        assert_eq!(e["type"], "server_error");
        assert_eq!(up.requests().len() - before, 2);
        error_of(
            complete(&app, &token, ask("an-500", false)).await,
            StatusCode::BAD_GATEWAY,
        )
        .await;
        // 429 keeps its retry-after.
        let r = complete(&app, &token, ask("oa-429", true)).await;
        assert_eq!(r.headers()["retry-after"], "7");
        let e = error_of(r, StatusCode::TOO_MANY_REQUESTS).await;
        assert_eq!(e["type"], "rate_limit_error");
        // The upstream refusing the request is the caller's 400, with its message.
        let e = error_of(
            complete(&app, &token, ask("oa-400", false)).await,
            StatusCode::BAD_REQUEST,
        )
        .await;
        assert!(e["message"].as_str().unwrap().contains("upstream said 400"));
        // Our credentials refused upstream: 502, and the message does not blame the caller.
        let e = error_of(
            complete(&app, &token, ask("oa-401", false)).await,
            StatusCode::BAD_GATEWAY,
        )
        .await;
        assert_eq!(e["code"], "upstream_auth_failed");
        // A 503 then a good answer: the retry makes it a 200.
        let r = complete(&app, &token, ask("oa-flaky", false)).await;
        assert_eq!(r.status(), StatusCode::OK);
        // No first byte within first_byte_timeout_ms: 504.
        let e = error_of(
            complete(&app, &token, ask("oa-hang", true)).await,
            StatusCode::GATEWAY_TIMEOUT,
        )
        .await;
        assert_eq!(e["code"], "upstream_timeout");
    })
    .await
}

#[tokio::test]
async fn bad_requests_are_refused_with_param_and_nothing_goes_upstream() {
    within(async {
        let (app, up, token) = setup().await;
        let cases = [
            (json!({"model": "nope", "messages": [{"role": "user", "content": "x"}]}), StatusCode::NOT_FOUND, "model"),
            (json!({"model": "oa-text", "n": 2, "messages": [{"role": "user", "content": "x"}]}), StatusCode::BAD_REQUEST, "n"),
            (json!({"model": "oa-text", "messages": []}), StatusCode::BAD_REQUEST, "messages"),
            (json!({"model": "oa-text"}), StatusCode::BAD_REQUEST, "messages"),
            (json!({"model": "oa-text", "messages": [{"role": "wizard", "content": "x"}]}), StatusCode::BAD_REQUEST, "messages[0].role"),
            (json!({"model": "oa-text", "messages": [{"role": "tool", "content": "x"}]}), StatusCode::BAD_REQUEST, "messages[0].tool_call_id"),
            (json!({"model": "oa-text", "temperature": 3, "messages": [{"role": "user", "content": "x"}]}), StatusCode::BAD_REQUEST, "temperature"),
            (json!({"model": "oa-text", "stop": ["a","b","c","d","e"], "messages": [{"role": "user", "content": "x"}]}), StatusCode::BAD_REQUEST, "stop"),
            (json!({"model": "oa-text", "stream_options": {"include_usage": true}, "messages": [{"role": "user", "content": "x"}]}), StatusCode::BAD_REQUEST, "stream_options"),
            (json!({"model": "oa-text", "tools": [{"type": "retrieval", "function": {"name": "f"}}], "messages": [{"role": "user", "content": "x"}]}), StatusCode::BAD_REQUEST, "tools[0].type"),
            (json!({"model": "oa-text", "tool_choice": {"type": "function", "function": {"name": "missing"}}, "messages": [{"role": "user", "content": "x"}]}), StatusCode::BAD_REQUEST, "tool_choice"),
        ];
        let before = up.requests().len();
        for (body, status, param) in cases {
            let e = error_of(complete(&app, &token, body.clone()).await, status).await;
            assert_eq!(e["param"], param, "{body}");
        }
        let e = error_of(complete(&app, &token, json!({"model": "nope", "messages": [{"role": "user", "content": "x"}]})).await, StatusCode::NOT_FOUND).await;
        assert_eq!(e["code"], "model_not_found");
        let e = error_of(complete(&app, "sk-sy-not-a-real-key", ask("echo", false)).await, StatusCode::UNAUTHORIZED).await;
        assert_eq!(e["code"], "invalid_api_key");
        assert_eq!(up.requests().len(), before, "nothing reached the upstream");
    })
    .await
}

#[tokio::test]
async fn a_client_that_disconnects_cancels_the_upstream_request_within_a_second() {
    within(async {
        let (app, up, token) = setup().await;
        // Streaming: read the first event, then hang up.
        let mut r = complete(&app, &token, ask("oa-slow", true)).await;
        assert_eq!(r.status(), StatusCode::OK);
        r.chunk().await.unwrap();
        let aborted = up.seen.abort.notified();
        drop(r);
        tokio::time::timeout(Duration::from_secs(1), aborted)
            .await
            .expect("upstream saw the stream close");
        assert_eq!(up.aborted(), 1);
        // Not streaming: the request is dropped while the server still waits on the upstream.
        let aborted = up.seen.abort.notified();
        let pending = complete(&app, &token, ask("oa-slow", false));
        let _ = tokio::time::timeout(Duration::from_millis(400), pending).await;
        tokio::time::timeout(Duration::from_secs(1), aborted)
            .await
            .expect("upstream saw the request close");
        assert_eq!(up.aborted(), 2);
    })
    .await
}

#[tokio::test]
async fn keepalive_comments_flow_while_the_upstream_is_slow() {
    within(async {
        let up = Upstream::start().await;
        let app = spawn_with(|c| {
            route_upstream(c, &up);
            c.llm.keepalive_ms = 100;
        })
        .await;
        let token = app.register(&unique_email()).await.access;
        let r = complete(&app, &token, ask("oa-slow3", true)).await;
        let text = r.text().await.unwrap();
        assert!(text.contains("\n\n: keepalive\n\n"), "{text}");
        assert!(text.ends_with("data: [DONE]\n\n"));
    })
    .await
}

#[tokio::test]
async fn per_key_request_and_token_limits_and_usage_records() {
    within(async {
        let app = spawn_with(|c| {
            c.llm.requests_per_minute = 2;
            c.llm.tokens_per_minute = 50;
        })
        .await;
        let token = app.register(&unique_email()).await.access;
        // A request asking for more than the whole minute's tokens can never pass: no retry.
        let mut body = ask("echo", false);
        body["max_tokens"] = json!(51);
        let r = complete(&app, &token, body).await;
        assert_eq!(r.headers()["x-should-retry"], "false");
        let e = error_of(r, StatusCode::TOO_MANY_REQUESTS).await;
        assert_eq!(e["code"], "insufficient_quota");
        for _ in 0..2 {
            assert_eq!(
                complete(&app, &token, ask("echo", false)).await.status(),
                StatusCode::OK
            );
        }
        let r = complete(&app, &token, ask("echo", false)).await;
        let retry: u64 = r.headers()["retry-after"]
            .to_str()
            .unwrap()
            .parse()
            .unwrap();
        assert!((1..=60).contains(&retry));
        let e = error_of(r, StatusCode::TOO_MANY_REQUESTS).await;
        assert_eq!(e["code"], "rate_limit_exceeded");
        // Another user has their own budget.
        let other = app.register(&unique_email()).await.access;
        assert_eq!(
            complete(&app, &other, ask("echo", false)).await.status(),
            StatusCode::OK
        );
        // Usage: one record per completed request, with tokens, model and latency.
        let mut records = Vec::new();
        for _ in 0..100 {
            let v: Value = app
                .get_auth("/v1/usage", &token)
                .await
                .json()
                .await
                .unwrap();
            records = v["data"].as_array().unwrap().clone();
            if records.len() >= 2 {
                break;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        assert_eq!(records.len(), 2, "{records:?}");
        for r in &records {
            assert_eq!(r["model"], "echo");
            assert_eq!(r["source"], "rest");
            assert_eq!(r["status"], "ok");
            assert_eq!(r["prompt_tokens"], 4); // "Be brief." + "Say hello", in words
            assert_eq!(r["completion_tokens"], 2);
            assert!(r["latency_ms"].is_u64());
        }
    })
    .await
}

#[tokio::test]
async fn an_upstream_that_goes_quiet_times_out_mid_stream() {
    within(async {
        let up = Upstream::start().await;
        let app = spawn_with(|c| {
            route_upstream(c, &up);
            c.llm.idle_timeout_ms = 100;
        })
        .await;
        let token = app.register(&unique_email()).await.access;
        // Chunks every 300 ms: the second never comes within the 100 ms idle limit.
        let cs = chunks(&sse_data(complete(&app, &token, ask("oa-slow3", true)).await).await);
        assert_eq!(text_of(&cs), "w0 ");
        assert_eq!(cs.last().unwrap()["error"]["code"], "upstream_timeout");
        let e = error_of(complete(&app, &token, ask("oa-slow3", false)).await, StatusCode::GATEWAY_TIMEOUT).await;
        assert_eq!(e["code"], "upstream_timeout");
    })
    .await
}

#[tokio::test]
async fn a_revoked_api_key_stops_at_once_here_and_within_the_cache_time_elsewhere() {
    within(async {
        let cluster = Cluster::new().await;
        let a = cluster.spawn(|c| c.auth.api_key_cache_secs = 1).await;
        let b = cluster.spawn(|c| c.auth.api_key_cache_secs = 1).await;
        let token = a.register(&unique_email()).await.access;
        let created: Value = a
            .http
            .post(a.url("/v1/api-keys"))
            .bearer_auth(&token)
            .json(&json!({"name": "k"}))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        let key = created["secret"].as_str().unwrap();
        for app in [&a, &b] {
            assert_eq!(complete(app, key, ask("echo", false)).await.status(), StatusCode::OK);
        }
        let r = a
            .http
            .delete(a.url(&format!("/v1/api-keys/{}", created["id"].as_str().unwrap())))
            .bearer_auth(&token)
            .send()
            .await
            .unwrap();
        assert!(r.status().is_success());
        error_of(complete(&a, key, ask("echo", false)).await, StatusCode::UNAUTHORIZED).await;
        // The other instance remembered the key for at most api_key_cache_secs.
        tokio::time::sleep(Duration::from_millis(1100)).await;
        error_of(complete(&b, key, ask("echo", false)).await, StatusCode::UNAUTHORIZED).await;
    })
    .await
}
