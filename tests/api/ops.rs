//! `/v1/analytics` for analysts and `/v1/debug` for developers: roles, figures, redaction.

use crate::helpers::fixtures::{api_key, session, user, Member};
use crate::helpers::ws::*;
use crate::helpers::*;
use reqwest::{Method, StatusCode};
use serde_json::{json, Value};
use std::time::Duration;

/// `m` made `role` by an admin, with a token that carries it (the next one after the change).
async fn promote(app: &TestApp, admin: &str, m: &Member, role: &str) -> String {
    let r = app
        .call(
            Method::PATCH,
            &format!("/v1/admin/users/{}", m.user_id),
            admin,
            Some(&json!({"role": role})),
        )
        .await;
    assert_eq!(r.status(), StatusCode::OK);
    let r = app
        .post(
            "/v1/auth/refresh",
            &json!({"refresh_token": m.tokens.refresh}),
        )
        .await;
    Tokens::from(&r.json::<Value>().await.unwrap()).access
}

async fn complete(app: &TestApp, token: &str, text: &str) {
    let r = app
        .call(
            Method::POST,
            "/v1/chat/completions",
            token,
            Some(&json!({"model": "echo", "messages": [{"role": "user", "content": text}]})),
        )
        .await;
    assert_eq!(r.status(), StatusCode::OK);
}

#[tokio::test]
async fn analytics_sums_usage_by_model_day_and_key_for_analysts_only() {
    within(async {
        let app = spawn_app().await;
        let admin = app.admin_token().await;
        let (analyst, dev, m) = (user(&app).await, user(&app).await, user(&app).await);
        let analyst = promote(&app, &admin, &analyst, "analyst").await;
        let dev = promote(&app, &admin, &dev, "developer").await;
        let (key_id, key) = api_key(&app, &m.tokens.access).await;
        session(&app, &m).await;
        complete(&app, &key, "one two three").await;
        complete(&app, &key, "four").await;
        complete(&app, &m.tokens.access, "five six").await;

        for t in [&m.tokens.access, &dev] {
            error_of(
                app.get_auth("/v1/analytics", t).await,
                StatusCode::FORBIDDEN,
            )
            .await;
        }
        // Usage is written in batches: wait for all three.
        let mut a = Value::Null;
        for _ in 0..100 {
            a = app.get_json("/v1/analytics", &analyst).await;
            if a["usage"]["requests"] == 3 {
                break;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        let u = &a["usage"];
        assert_eq!(
            (u["requests"].clone(), u["errors"].clone()),
            (json!(3), json!(0)),
            "{a}"
        );
        assert_eq!(
            u["completion_tokens"], 6,
            "echo answers with the words it got: {a}"
        );
        assert!(u["latency_ms_p50"].as_i64().unwrap() <= u["latency_ms_p95"].as_i64().unwrap());
        let echo = &a["by_model"][0];
        assert_eq!(
            (echo["model"].clone(), echo["requests"].clone()),
            (json!("echo"), json!(3))
        );
        assert_eq!(echo["prompt_tokens"], u["prompt_tokens"]);
        let today = chrono::Utc::now().format("%Y-%m-%d").to_string();
        assert_eq!(
            a["by_day"],
            json!([{"day": today, "requests": 3, "prompt_tokens": u["prompt_tokens"],
            "completion_tokens": 6, "errors": 0}])
        );
        let keys = a["by_api_key"].as_array().unwrap();
        assert_eq!(
            keys[0],
            json!({"api_key_id": key_id, "requests": 2, "prompt_tokens": keys[0]["prompt_tokens"],
            "completion_tokens": 4})
        );
        assert_eq!(
            (keys[1]["api_key_id"].clone(), keys[1]["requests"].clone()),
            (Value::Null, json!(1))
        );
        assert_eq!(a["active_users"], 1);
        assert_eq!(a["sessions_created"], 1);
        assert_eq!(a["deleted_accounts"]["requests"], 0);

        let past = app
            .get_json(
                "/v1/analytics?from=2000-01-01&to=2000-02-01T00:00:00Z",
                &analyst,
            )
            .await;
        assert_eq!(
            (
                past["usage"]["requests"].clone(),
                past["usage"]["latency_ms_p50"].clone()
            ),
            (json!(0), Value::Null),
            "{past}"
        );
        for bad in [
            "from=yesterday",
            "to=2020-13-01",
            "from=2030-01-01&to=2029-01-01",
        ] {
            let r = app
                .get_auth(&format!("/v1/analytics?{bad}"), &analyst)
                .await;
            error_of(r, StatusCode::BAD_REQUEST).await;
        }

        // A deleted account's usage stays only as totals.
        let r = app
            .call(
                Method::DELETE,
                "/v1/user/profile",
                &m.tokens.access,
                Some(&json!({"password": PASSWORD})),
            )
            .await;
        assert_eq!(r.status(), StatusCode::NO_CONTENT);
        let after = app.get_json("/v1/analytics", &analyst).await;
        assert_eq!(after["usage"]["requests"], 0, "{after}");
        assert_eq!(after["deleted_accounts"]["requests"], 3, "{after}");
        assert_eq!(after["deleted_accounts"]["completion_tokens"], 6);
    })
    .await
}

#[tokio::test]
async fn debug_shows_this_instance_to_developers_with_secrets_redacted() {
    within(async {
        let cluster = Cluster::new().await;
        let tweak = |c: &mut switchyard::config::Config| {
            c.llm.openai_api_key = "sk-live-do-not-show-1234".into();
            c.server.metrics_token = switchyard::config::Secret("metrics-do-not-show".into());
            c.mcp.stdio_env = vec!["gh:GITHUB_TOKEN=ghp-do-not-show".into()];
            c.llm.anthropic_base_url =
                "https://me:pw-do-not-show@llm.example.com/v1?key=qk-do-not-show".into();
        };
        let a = cluster.spawn(tweak).await;
        let b = if cluster.redis_url.is_some() {
            Some(cluster.spawn(tweak).await)
        } else {
            None
        };
        let admin = a.admin_token().await;
        let (dev, m) = (user(&a).await, user(&a).await);
        let dev = promote(&a, &admin, &dev, "developer").await;
        error_of(
            a.get_auth("/v1/debug", &m.tokens.access).await,
            StatusCode::FORBIDDEN,
        )
        .await;
        let _socket = connect_authed(&a.base, &m.tokens.access).await;
        let r = a.get_auth("/v1/debug", &dev).await;
        assert_eq!(r.status(), StatusCode::OK);
        let text = r.text().await.unwrap();
        for secret in [
            "sk-live-do-not-show-1234",
            "metrics-do-not-show",
            "ghp-do-not-show",
            "pw-do-not-show",
            "qk-do-not-show",
        ] {
            assert!(!text.contains(secret), "a secret leaked: {text}");
        }
        let v: Value = serde_json::from_str(&text).unwrap();
        let me = &v["instances"][0];
        assert_eq!(me["version"], env!("CARGO_PKG_VERSION"));
        assert_eq!(me["connections"], 1);
        assert!(me["channels"].as_u64().unwrap() >= 1);
        assert_eq!(me["config"]["llm"]["openai_api_key"], "[redacted]");
        assert_eq!(me["config"]["server"]["metrics_token"], "[redacted]");
        assert_eq!(
            me["config"]["mcp"]["stdio_env"],
            json!(["gh:GITHUB_TOKEN=[redacted]"])
        );
        assert_eq!(
            me["config"]["server"]["max_json_depth"], 32,
            "the rest is shown as set"
        );
        assert_eq!(me["bus"], if b.is_some() { "connected" } else { "local" });
        assert_eq!(me["maintenance"], false);
        let bad = a.get_auth("/v1/debug?instance=mine", &dev).await;
        error_of(bad, StatusCode::BAD_REQUEST).await;
        if let Some(b) = &b {
            let other = b.get_json("/v1/debug", &dev).await["instances"][0]["instance"].clone();
            let mut seen = Vec::new();
            for _ in 0..150 {
                let all = a.get_json("/v1/debug?instance=all", &dev).await;
                seen = all["instances"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .map(|i| i["instance"].clone())
                    .collect();
                if seen.contains(&other) {
                    break;
                }
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
            assert!(
                seen.contains(&other),
                "instance=all gathers the other instance: {seen:?}"
            );
            assert_eq!(seen[0], me["instance"], "this one first");
        }
    })
    .await
}
