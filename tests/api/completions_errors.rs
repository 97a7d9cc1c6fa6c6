//! `/v1/chat/completions` failures: upstream statuses and timeouts, refused requests, per-key
//! limits, usage records, API-key revocation across instances.

use crate::helpers::completions::*;
use crate::helpers::*;
use reqwest::StatusCode;
use serde_json::{json, Value};
use std::time::Duration;

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
        // Each answer says where the key stands, as OpenAI names it.
        let header = |r: &reqwest::Response, name: &str| {
            r.headers()
                .get(name)
                .map(|v| v.to_str().unwrap().to_owned())
                .unwrap_or_else(|| panic!("no {name}"))
        };
        for (i, stream) in [false, true].into_iter().enumerate() {
            let r = complete(&app, &token, ask("echo", stream)).await;
            assert_eq!(r.status(), StatusCode::OK);
            assert_eq!(header(&r, "x-ratelimit-limit-requests"), "2");
            assert_eq!(
                header(&r, "x-ratelimit-remaining-requests"),
                (1 - i).to_string()
            );
            assert_eq!(header(&r, "x-ratelimit-limit-tokens"), "50");
            assert!(header(&r, "x-ratelimit-reset-requests").ends_with('s'));
            r.bytes().await.unwrap();
        }
        let r = complete(&app, &token, ask("echo", false)).await;
        assert_eq!(header(&r, "x-ratelimit-remaining-requests"), "0");
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
        let (app, _up, token) = setup_with(|c| {
            c.llm.idle_timeout_ms = 100;
            c.llm.answer_timeout_ms = 500;
        })
        .await;
        // Chunks every 300 ms: the second never comes within the 100 ms idle limit. Asked
        // whole, the upstream answers after 900 ms: past llm.answer_timeout_ms.
        let cs = chunks(&sse_data(complete(&app, &token, ask("oa-slow3", true)).await).await);
        assert_eq!(text_of(&cs), "w0 ");
        assert_eq!(cs.last().unwrap()["error"]["code"], "upstream_timeout");
        let e = error_of(
            complete(&app, &token, ask("oa-slow3", false)).await,
            StatusCode::GATEWAY_TIMEOUT,
        )
        .await;
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
            assert_eq!(
                complete(app, key, ask("echo", false)).await.status(),
                StatusCode::OK
            );
        }
        let r = a
            .http
            .delete(a.url(&format!("/v1/api-keys/{}", created["id"].as_str().unwrap())))
            .bearer_auth(&token)
            .send()
            .await
            .unwrap();
        assert!(r.status().is_success());
        error_of(
            complete(&a, key, ask("echo", false)).await,
            StatusCode::UNAUTHORIZED,
        )
        .await;
        // The other instance remembered the key for at most api_key_cache_secs.
        tokio::time::sleep(Duration::from_millis(1100)).await;
        error_of(
            complete(&b, key, ask("echo", false)).await,
            StatusCode::UNAUTHORIZED,
        )
        .await;
    })
    .await
}

#[tokio::test]
async fn a_whole_answer_that_is_not_json_or_too_big_is_a_502_and_streaming_is_unbounded() {
    within(async {
        let (app, _up, token) = setup_with(|c| {
            c.llm.max_answer_bytes = 300;
        })
        .await;
        // Unreadable before anything was sent to the client: a real status, streamed or not.
        for stream in [false, true] {
            let r = complete(&app, &token, ask("oa-garbage", stream)).await;
            let e = error_of(r, StatusCode::BAD_GATEWAY).await;
            assert_eq!(e["code"], "upstream_error", "stream {stream}: {e}");
        }
        // 100 words of about 4 bytes: past llm.max_answer_bytes whole, fine streamed.
        let e = error_of(
            complete(&app, &token, ask("oa-words", false)).await,
            StatusCode::BAD_GATEWAY,
        )
        .await;
        assert!(
            e["message"]
                .as_str()
                .unwrap()
                .contains("exceeded 300 bytes"),
            "{e}"
        );
        let streamed = chunks(&sse_data(complete(&app, &token, ask("oa-words", true)).await).await);
        assert!(text_of(&streamed).starts_with("w0 w1 w2 "), "{streamed:?}");
        assert!(text_of(&streamed).ends_with("w99 "));
    })
    .await
}

#[tokio::test]
async fn a_whole_answer_abandoned_before_it_came_is_charged_its_max_tokens() {
    within(async {
        let (app, _up, token) = setup_with(|c| {
            c.llm.tokens_per_minute = 1000;
        })
        .await;
        // The upstream generates the whole answer before sending a byte: a client that leaves
        // meanwhile has still spent what it allowed (600 tokens each).
        for _ in 0..2 {
            let mut body = ask("oa-hang", false);
            body["max_tokens"] = json!(600);
            let _ = tokio::time::timeout(Duration::from_millis(300), complete(&app, &token, body))
                .await;
        }
        let mut refused = None;
        for _ in 0..40 {
            let r = complete(&app, &token, ask("echo", false)).await;
            if r.status() == StatusCode::TOO_MANY_REQUESTS {
                refused = Some(r.json::<Value>().await.unwrap());
                break;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        let e = refused.expect("the abandoned answers were charged");
        assert!(
            e["error"]["message"]
                .as_str()
                .unwrap()
                .contains("token limit"),
            "{e}"
        );
    })
    .await
}

#[tokio::test]
async fn an_unknown_model_id_is_echoed_clipped_and_clean() {
    within(async {
        let app = spawn_app().await;
        let m = crate::helpers::fixtures::user(&app).await;
        let long = "m".repeat(5000);
        for (path, shown) in [
            (format!("/v1/models/{long}"), "m".repeat(100)),
            (
                "/v1/models/a%00b%1B[31m".to_string(),
                "a\u{fffd}b\u{fffd}[31m".to_string(),
            ),
            ("/v1/models/no%2Fsuch".to_string(), "no/such".to_string()),
        ] {
            let e = error_of(
                app.get_auth(&path, &m.tokens.access).await,
                StatusCode::NOT_FOUND,
            )
            .await;
            assert_eq!(e["code"], "model_not_found");
            let msg = e["message"].as_str().unwrap();
            assert!(msg.contains(&format!("`{shown}`")), "{path}: {msg}");
            assert!(msg.len() < 200, "{msg}");
        }
        let r = app
            .http
            .post(app.url("/v1/chat/completions"))
            .bearer_auth(&m.tokens.access)
            .json(&json!({"model": long, "messages": [{"role": "user", "content": "hi"}]}))
            .send()
            .await
            .unwrap();
        let e = error_of(r, StatusCode::NOT_FOUND).await;
        assert!(e["message"].as_str().unwrap().len() < 200, "{e}");
    })
    .await
}
