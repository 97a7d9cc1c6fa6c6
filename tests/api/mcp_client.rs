//! The MCP client (rmcp) against real MCP servers: the Python `mcp` package's FastMCP over
//! stdio and over Streamable HTTP, and `@modelcontextprotocol/server-everything` (npm, pinned
//! in tests/mcp/package.json) over stdio.

use crate::helpers::mcp::python;
use crate::helpers::*;
use std::{path::PathBuf, time::Duration};
use switchyard::mcp::client::{connect, Target};

/// The server-everything entry point.
pub async fn everything() -> String {
    crate::helpers::mcp::node_modules()
        .await
        .join("@modelcontextprotocol/server-everything/dist/index.js")
        .display()
        .to_string()
}

fn script() -> String {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/mcp/fastmcp_server.py")
        .display()
        .to_string()
}

/// The environment a stdio server gets by default (`mcp.stdio_pass_env`).
fn base_env() -> Vec<(String, String)> {
    switchyard::config::McpConfig::default().stdio_env_of("test")
}

const LIMITS: switchyard::mcp::client::ToolLimits = switchyard::mcp::client::ToolLimits {
    pages: 10,
    tools: 128,
    bytes: 256 * 1024,
};

#[tokio::test]
async fn stdio_handshake_lists_tools_and_notices_the_server_dying() {
    let py = python().await.display().to_string();
    within(async {
        let marker = format!("m{}", uuid::Uuid::new_v4().simple());
        let target = Target::Stdio {
            program: py.clone(),
            args: vec![script(), "stdio".into(), marker.clone()],
            env: base_env(),
        };
        let conn = connect(&target, None).await.expect("connects");
        println!("negotiated protocol {}", conn.protocol_version);
        assert_eq!(conn.server_name, "switchyard-test");
        assert!(
            ["2025-11-25", "2025-06-18"].contains(&conn.protocol_version.as_str()),
            "{}",
            conn.protocol_version
        );
        let mut names: Vec<String> = conn
            .tools(LIMITS)
            .await
            .unwrap()
            .into_iter()
            .map(|t| t.name)
            .collect();
        names.sort();
        assert_eq!(names, ["add", "echo", "sleep"]);
        let add = conn
            .tools(LIMITS)
            .await
            .unwrap()
            .into_iter()
            .find(|t| t.name == "add")
            .unwrap();
        assert_eq!(add.input_schema["properties"]["a"]["type"], "integer");
        // The process dies: the client notices.
        assert!(std::process::Command::new("pkill")
            .args(["-f", &marker])
            .status()
            .unwrap()
            .success());
        tokio::time::timeout(Duration::from_secs(10), conn.service.waiting())
            .await
            .expect("the client sees the server go away")
            .unwrap();
    })
    .await
}

#[tokio::test]
async fn a_server_that_fails_to_start_reports_its_stderr() {
    let py = python().await.display().to_string();
    within(async {
        let target = Target::Stdio {
            program: py,
            args: vec![script(), "fail".into()],
            env: base_env(),
        };
        let e = connect(&target, None).await.err().expect("fails");
        assert!(e.stderr.contains("API_TOKEN is not set"), "{e:?}");
        let e = connect(
            &Target::Stdio {
                program: "/nonexistent/server".into(),
                args: vec![],
                env: base_env(),
            },
            None,
        )
        .await
        .err()
        .expect("fails");
        assert!(e.reason.contains("could not start"), "{e:?}");
    })
    .await
}

#[tokio::test]
async fn streamable_http_handshake_lists_tools() {
    let py = python().await;
    within(async {
        let port = {
            let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
            l.local_addr().unwrap().port()
        };
        let mut child = tokio::process::Command::new(&py)
            .args([script(), "http".into(), port.to_string()])
            .kill_on_drop(true)
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .unwrap();
        for _ in 0..100 {
            if tokio::net::TcpStream::connect(("127.0.0.1", port))
                .await
                .is_ok()
            {
                break;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        let target = Target::Http {
            url: format!("http://127.0.0.1:{port}/mcp"),
            headers: vec![("X-Test".into(), "yes".into())],
            allow_private: true,
        };
        let conn = connect(&target, None).await.expect("connects");
        assert_eq!(conn.server_name, "switchyard-test");
        assert_eq!(conn.tools(LIMITS).await.unwrap().len(), 3);
        child.kill().await.unwrap();
    })
    .await
}

#[tokio::test]
async fn server_everything_over_stdio() {
    let entry = everything().await;
    within(async {
        let target = Target::Stdio {
            program: "node".into(),
            args: vec![entry, "stdio".into()],
            env: base_env(),
        };
        let conn = connect(&target, None).await.expect("connects");
        assert_eq!(conn.server_name, "mcp-servers/everything");
        assert_eq!(conn.protocol_version, "2025-11-25");
        let tools = conn.tools(LIMITS).await.unwrap();
        let echo = tools
            .iter()
            .find(|t| t.name == "echo")
            .expect("an echo tool");
        assert_eq!(echo.input_schema["type"], "object");
        assert!(tools.len() >= 5, "{} tools", tools.len());
    })
    .await
}

/// Servers answering `initialize` with an older (2025-06-18) or a newer (2026-07-28) revision:
/// the client takes the server's answer, lists the paged tools and calls one.
#[tokio::test]
async fn other_protocol_revisions_are_negotiated_and_tool_pages_followed() {
    let py = python().await.display().to_string();
    let raw = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/mcp/raw_server.py")
        .display()
        .to_string();
    within(async {
        for version in ["2025-06-18", "2026-07-28"] {
            let target = Target::Stdio {
                program: py.clone(),
                args: vec![raw.clone(), version.into()],
                env: base_env(),
            };
            let conn = connect(&target, None).await.expect("connects");
            assert_eq!(conn.protocol_version, version);
            assert_eq!(conn.server_name, format!("raw-{version}"));
            let names: Vec<String> = conn
                .tools(LIMITS)
                .await
                .unwrap()
                .into_iter()
                .map(|t| t.name)
                .collect();
            assert_eq!(names, ["shout", "second_page"], "both pages");
            let params = rmcp::model::CallToolRequestParams::new("shout").with_arguments(
                serde_json::json!({"text": "hi"})
                    .as_object()
                    .unwrap()
                    .clone(),
            );
            let r = conn.service.peer().call_tool(params).await.unwrap();
            let v = serde_json::to_value(&r).unwrap();
            assert_eq!(v["content"][0]["text"], "HI", "{version}");
        }
    })
    .await
}
