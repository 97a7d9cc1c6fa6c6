//! `/v1/chat/completions` and `/v1/models` with real HTTP against the test upstream, which
//! replays recorded OpenAI and Anthropic streams over a real socket.

use crate::helpers::completions::*;
use crate::helpers::*;
use reqwest::StatusCode;
use serde_json::{json, Value};
use std::time::Duration;

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
        let streamed = up.last_body();
        assert_eq!(
            (&streamed["stream"], &streamed["stream_options"]),
            (&json!(true), &json!({"include_usage": true}))
        );
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
        // What went upstream: the upstream model name, our key, and (the client not streaming)
        // a request for the whole answer: one JSON body, no SSE.
        let (path, headers, sent) = up.requests().pop().unwrap();
        assert_eq!(path, "/v1/chat/completions");
        assert!(headers.contains(&("authorization".into(), "Bearer sk-upstream-test".into())));
        assert!(headers.contains(&("accept".into(), "application/json".into())));
        assert_eq!(sent["model"], "trace:openai_text.sse");
        assert_eq!(
            (sent.get("stream"), sent.get("stream_options")),
            (None, None),
            "{sent}"
        );
        assert_eq!(
            sent["messages"][0],
            json!({"role": "system", "content": "Be brief."})
        );
    })
    .await
}

#[tokio::test]
async fn an_upstream_that_streams_when_asked_for_a_whole_answer_still_answers_whole() {
    within(async {
        let (app, up, token) = setup().await;
        let r = complete(&app, &token, ask("oa-sse", false)).await;
        assert_eq!(r.status(), StatusCode::OK);
        let body: Value = r.json().await.unwrap();
        assert_eq!(body["object"], "chat.completion");
        assert_eq!(
            body["choices"][0]["message"]["content"],
            "Hello! How can I help — ünïcödé?"
        );
        assert_eq!(body["usage"]["total_tokens"], 29);
        assert_eq!(up.last_body().get("stream"), None);
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
        let (app, _up, token) = setup_with(|c| {
            c.llm.keepalive_ms = 100;
        })
        .await;
        let r = complete(&app, &token, ask("oa-slow3", true)).await;
        let text = r.text().await.unwrap();
        assert!(text.contains("\n\n: keepalive\n\n"), "{text}");
        assert!(text.ends_with("data: [DONE]\n\n"));
    })
    .await
}
