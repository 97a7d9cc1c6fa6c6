//! MCP in tests: the virtualenv's Python (the official `mcp` and `openai` packages), the
//! allowlisted FastMCP server, and reading `mcp.status` events.

use super::ws::WsClient;
use super::*;
use serde_json::{json, Value};
use std::path::PathBuf;
use switchyard::config::Config;

static VENV: tokio::sync::OnceCell<PathBuf> = tokio::sync::OnceCell::const_new();
static NODE_MODULES: tokio::sync::OnceCell<PathBuf> = tokio::sync::OnceCell::const_new();

/// tests/mcp's npm packages (MCP servers, the conformance suite, Node 22), installed once.
pub async fn node_modules() -> PathBuf {
    NODE_MODULES
        .get_or_init(|| async {
            let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/mcp");
            super::npm::npm_ci(&dir).await;
            dir.join("node_modules")
        })
        .await
        .clone()
}

/// The Python that has the pinned SDK installed.
pub async fn python() -> PathBuf {
    if let Some(p) = std::env::var_os("TEST_PYTHON") {
        return PathBuf::from(p);
    }
    VENV.get_or_init(|| async {
        let root = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
        let venv = root.join("target/test-venv");
        let py = venv.join("bin/python");
        let reqs = root.join("tests/sdk/requirements.txt");
        let stamp = venv.join("requirements.txt");
        let want = std::fs::read(&reqs).expect("requirements");
        if std::fs::read(&stamp).ok().as_ref() != Some(&want) {
            let run = |cmd: &mut std::process::Command| {
                let out = cmd.output().expect("run python");
                assert!(
                    out.status.success(),
                    "{cmd:?}: {}",
                    String::from_utf8_lossy(&out.stderr)
                );
            };
            tokio::task::spawn_blocking(move || {
                run(std::process::Command::new("python3")
                    .args(["-m", "venv"])
                    .arg(&venv));
                run(std::process::Command::new(venv.join("bin/pip"))
                    .args(["install", "-q", "-r"])
                    .arg(&reqs));
                std::fs::write(&stamp, want).expect("stamp");
            })
            .await
            .expect("venv");
        }
        py
    })
    .await
    .clone()
}

pub fn allow(c: &mut Config, py: &str, marker: &str) {
    let script = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/mcp/fastmcp_server.py");
    c.mcp.stdio_allowlist = vec![format!("fast={py} {} stdio {marker}", script.display())];
}

/// The next status of `server` on the user channel.
async fn next_status(c: &mut WsClient, ch: &str) -> Value {
    let e = c.event(ch, "mcp.status").await;
    e["data"]["servers"][0].clone()
}

/// Reads statuses until `state`; returns the states seen on the way and the last status.
pub async fn until(c: &mut WsClient, ch: &str, state: &str) -> (Vec<String>, Value) {
    let mut seen = Vec::new();
    loop {
        let s = next_status(c, ch).await;
        seen.push(s["state"].as_str().unwrap().to_owned());
        if s["state"] == state {
            return (seen, s);
        }
    }
}

/// Configures the allowlisted FastMCP server for the caller.
pub async fn add_fast(app: &TestApp, token: &str) -> reqwest::Response {
    let r = app
        .http
        .post(app.url("/v1/mcp/servers"))
        .bearer_auth(token)
        .json(&json!({"name": "fast", "transport": "stdio", "command": "fast"}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 201);
    r
}

pub async fn me(app: &TestApp, token: &str) -> String {
    let v: Value = app
        .get_auth("/v1/auth/me", token)
        .await
        .json()
        .await
        .unwrap();
    format!("user:{}", v["id"].as_str().unwrap())
}
