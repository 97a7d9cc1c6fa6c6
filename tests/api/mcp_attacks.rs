//! MCP servers as an attacker uses them: a stdio server that prints its environment or its
//! stderr, one that floods its tool list, clients left running for users who left, and HTTP
//! URLs that resolve inward on a later connect.

use crate::helpers::mcp::python;
use crate::helpers::mcp::{me, until};
use crate::helpers::ws::*;
use crate::helpers::*;
use serde_json::{json, Map, Value};
use std::{path::PathBuf, time::Duration};
use switchyard::config::Config;

const UPSTREAM_KEY: &str = "sk-upstream-SECRET-4242";

fn hostile(c: &mut Config, py: &str, mode: &str, pidfile: &std::path::Path, arg: &str) {
    let script = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/mcp/hostile_server.py");
    c.mcp.stdio_allowlist = vec![format!(
        "hostile={py} {} {mode} {} {arg}",
        script.display(),
        pidfile.display()
    )];
    c.llm.openai_api_key = UPSTREAM_KEY.into();
}

async fn add(app: &TestApp, token: &str) -> Value {
    let r = app
        .http
        .post(app.url("/v1/mcp/servers"))
        .bearer_auth(token)
        .json(&json!({"name": "hostile", "transport": "stdio", "command": "hostile"}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 201);
    r.json().await.unwrap()
}

fn user_id(ch: &str) -> switchyard::domain::UserId {
    ch.strip_prefix("user:").unwrap().parse().unwrap()
}

#[tokio::test]
async fn a_stdio_server_sees_only_the_environment_the_operator_listed_and_not_the_servers_directory(
) {
    let py = python().await.display().to_string();
    within(async {
        let dir = tempfile::tempdir().unwrap();
        let pidfile = dir.path().join("pid");
        let app = spawn_with(|c| {
            hostile(c, &py, "env", &pidfile, "");
            c.mcp.stdio_env = vec!["hostile:GREETING=hello".into()];
        })
        .await;
        let token = app.register(&unique_email()).await.access;
        let ch = me(&app, &token).await;
        let mut c = connect_authed(&app.base, &token).await;
        add(&app, &token).await;
        until(&mut c, &ch, "ready").await;
        let out = app
            .state
            .mcp
            .call(
                user_id(&ch),
                "hostile",
                "env",
                Map::new(),
                Duration::from_secs(10),
                None,
            )
            .await
            .expect("the env tool answers");
        let text = out["content"][0]["text"].as_str().unwrap();
        let env: Map<String, Value> = serde_json::from_str(text).unwrap();
        assert_eq!(
            env["GREETING"], "hello",
            "a listed variable is passed: {text}"
        );
        let allowed = ["PATH", "HOME", "LANG", "LC_CTYPE", "GREETING"];
        let extra: Vec<&String> = env
            .keys()
            .filter(|k| !allowed.contains(&k.as_str()))
            .collect();
        assert!(
            extra.is_empty(),
            "the child saw more than it was given: {extra:?}"
        );
        assert!(!text.contains(UPSTREAM_KEY));
        // Nor does it start beside the server's files (the data dir holds the signing key).
        let out = app
            .state
            .mcp
            .call(
                user_id(&ch),
                "hostile",
                "cwd",
                Map::new(),
                Duration::from_secs(10),
                None,
            )
            .await
            .expect("the cwd tool answers");
        let here: Value =
            serde_json::from_str(out["content"][0]["text"].as_str().unwrap()).unwrap();
        let server_cwd = std::env::current_dir().unwrap();
        assert_ne!(
            here["cwd"].as_str().unwrap(),
            server_cwd.to_str().unwrap(),
            "{here}"
        );
        assert_eq!(
            here["files"],
            json!([]),
            "an empty directory of its own: {here}"
        );
    })
    .await
}

#[tokio::test]
async fn a_servers_stderr_reaches_the_user_as_one_scrubbed_line() {
    let py = python().await.display().to_string();
    within(async {
        let dir = tempfile::tempdir().unwrap();
        let pidfile = dir.path().join("pid");
        let app = spawn_with(|c| hostile(c, &py, "stderr", &pidfile, UPSTREAM_KEY)).await;
        let token = app.register(&unique_email()).await.access;
        let ch = me(&app, &token).await;
        let mut c = connect_authed(&app.base, &token).await;
        add(&app, &token).await;
        let (_, status) = until(&mut c, &ch, "error").await;
        let reason = status["error"].as_str().unwrap();
        assert!(
            reason.contains("fatal: upstream refused key [redacted]"),
            "{reason}"
        );
        assert!(!reason.contains(UPSTREAM_KEY), "{reason}");
        assert!(
            !reason.contains("Traceback") && !reason.contains('\n'),
            "first line only: {reason}"
        );
    })
    .await
}

#[tokio::test]
async fn a_flooded_tool_list_is_an_error_not_a_twenty_megabyte_frame() {
    let py = python().await.display().to_string();
    within(async {
        let dir = tempfile::tempdir().unwrap();
        let pidfile = dir.path().join("pid");
        let app = spawn_with(|c| hostile(c, &py, "flood", &pidfile, "100")).await;
        let token = app.register(&unique_email()).await.access;
        let ch = me(&app, &token).await;
        let mut c = connect_authed(&app.base, &token).await;
        add(&app, &token).await;
        let (seen, status) = until(&mut c, &ch, "error").await;
        assert!(!seen.contains(&"ready".to_string()), "{seen:?}");
        let reason = status["error"].as_str().unwrap();
        assert!(reason.contains("mcp.max_tool"), "{reason}");
        assert!(status.to_string().len() < 4096, "the status stays small");
    })
    .await
}

fn alive(pidfile: &std::path::Path) -> Option<bool> {
    let pid = std::fs::read_to_string(pidfile).ok()?;
    Some(PathBuf::from(format!("/proc/{}", pid.trim())).exists())
}

#[tokio::test]
async fn clients_of_a_user_who_left_stop_after_the_grace_period() {
    let py = python().await.display().to_string();
    within(async {
        let dir = tempfile::tempdir().unwrap();
        let pidfile = dir.path().join("pid");
        let app = spawn_with(|c| {
            hostile(c, &py, "env", &pidfile, "");
            c.mcp.idle_grace_secs = 1;
        })
        .await;
        let token = app.register(&unique_email()).await.access;
        let ch = me(&app, &token).await;
        let mut c = connect_authed(&app.base, &token).await;
        add(&app, &token).await;
        until(&mut c, &ch, "ready").await;
        assert_eq!(alive(&pidfile), Some(true));
        c.close().await;
        let mut gone = false;
        for _ in 0..100 {
            tokio::time::sleep(Duration::from_millis(100)).await;
            if alive(&pidfile) == Some(false) {
                gone = true;
                break;
            }
        }
        assert!(gone, "the stdio server was stopped after the user left");
        // Back again: the clients start again.
        let mut c = connect_authed(&app.base, &token).await;
        until(&mut c, &ch, "ready").await;
        assert_eq!(alive(&pidfile), Some(true));
    })
    .await
}

#[tokio::test]
async fn an_http_server_is_checked_again_on_every_connect() {
    within(async {
        // Something listening on loopback that must never be reached.
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let hits = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
        let counted = hits.clone();
        tokio::spawn(async move {
            while let Ok((s, _)) = listener.accept().await {
                counted.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                drop(s);
            }
        });
        let app = spawn_app().await;
        let token = app.register(&unique_email()).await.access;
        let ch = me(&app, &token).await;
        // As if the name resolved to a public address when it was configured and to loopback
        // now (DNS rebinding): the stored URL points inward.
        let now = chrono::Utc::now();
        app.state
            .store
            .create_mcp_server(&switchyard::store::McpServer {
                id: uuid::Uuid::now_v7(),
                user_id: user_id(&ch),
                name: "rebound".into(),
                transport: "http".into(),
                command: None,
                url: Some(format!("http://127.0.0.1:{port}/mcp")),
                headers: Map::new(),
                enabled: true,
                created_at: now,
                updated_at: now,
            })
            .await
            .unwrap();
        let mut c = connect_authed(&app.base, &token).await;
        let (_, status) = until(&mut c, &ch, "error").await;
        let reason = status["error"].as_str().unwrap();
        assert!(
            reason.contains("loopback, private or link-local"),
            "{reason}"
        );
        assert!(
            !reason.contains("127.0.0.1"),
            "the refusal does not name the address: {reason}"
        );
        assert_eq!(
            hits.load(std::sync::atomic::Ordering::SeqCst),
            0,
            "nothing connected inward"
        );
        // Literal forms that embed an internal IPv4 address are refused at configuration.
        for url in [
            "http://[::127.0.0.1]/mcp",
            "http://[2002:a00:1::1]/mcp",
            "http://[fec0::1]/mcp",
            "http://[100::1]/mcp",
        ] {
            let r = app
                .http
                .post(app.url("/v1/mcp/servers"))
                .bearer_auth(&token)
                .json(&json!({"name": "x", "transport": "http", "url": url}))
                .send()
                .await
                .unwrap();
            assert_eq!(r.status(), 400, "{url}");
        }
    })
    .await
}
