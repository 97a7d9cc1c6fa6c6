//! Live MCP status against a real FastMCP server over stdio: connecting, ready with its tools,
//! error with the reason when the process dies, ready again after the automatic restart,
//! stopped when disabled; pushed to every connection of the user, on every instance, and given
//! whole to a new connection. Only one instance runs a user's stdio server.

use crate::helpers::mcp::python;
use crate::helpers::mcp::*;
use crate::helpers::ws::*;
use crate::helpers::*;
use serde_json::{json, Value};
use std::time::Duration;

fn processes(marker: &str) -> usize {
    let out = std::process::Command::new("pgrep")
        .args(["-f", marker])
        .output()
        .unwrap();
    String::from_utf8_lossy(&out.stdout).lines().count()
}

#[tokio::test]
async fn status_goes_connecting_ready_error_ready_stopped_live() {
    let py = python().await.display().to_string();
    within(async {
        let marker = format!("m{}", uuid::Uuid::new_v4().simple());
        let app = spawn_with(|c| allow(c, &py, &marker)).await;
        let token = app.register(&unique_email()).await.access;
        let ch = me(&app, &token).await;
        let mut c = connect_authed(&app.base, &token).await;
        let r = add_fast(&app, &token).await;
        let id = r.json::<Value>().await.unwrap()["id"]
            .as_str()
            .unwrap()
            .to_owned();
        let (seen, ready) = until(&mut c, &ch, "ready").await;
        assert_eq!(
            seen.first().map(String::as_str),
            Some("connecting"),
            "{seen:?}"
        );
        assert_eq!(ready["server_id"], id.as_str());
        assert_eq!(ready["protocol_version"], "2025-11-25");
        assert_eq!(ready["server_info"]["name"], "switchyard-test");
        assert_eq!(ready["tool_count"], 3);
        let mut names: Vec<&str> = ready["tools"]
            .as_array()
            .unwrap()
            .iter()
            .map(|t| t["name"].as_str().unwrap())
            .collect();
        names.sort();
        assert_eq!(names, ["add", "echo", "sleep"]);
        // A new connection gets the current status at once.
        let mut c2 = connect_authed(&app.base, &token).await;
        let snap = c2.event(&ch, "mcp.status").await;
        assert_eq!(snap["data"]["servers"][0]["state"], "ready", "{snap}");
        // The process dies: error with a reason and the next retry, then ready again, live on both.
        assert!(std::process::Command::new("pkill")
            .args(["-f", &marker])
            .status()
            .unwrap()
            .success());
        let (_, err) = until(&mut c, &ch, "error").await;
        assert!(err["error"].as_str().unwrap().contains("closed"), "{err}");
        assert!(err["next_retry_at"].as_u64().unwrap() > 0);
        until(&mut c, &ch, "ready").await;
        let (seen2, _) = until(&mut c2, &ch, "ready").await;
        assert!(seen2.contains(&"error".to_string()), "{seen2:?}");
        // Disabled: stopped, and the process is gone.
        let r = app
            .http
            .patch(app.url(&format!("/v1/mcp/servers/{id}")))
            .bearer_auth(&token)
            .json(&json!({"enabled": false}))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 200);
        until(&mut c, &ch, "stopped").await;
        for _ in 0..50 {
            if processes(&marker) == 0 {
                break;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        assert_eq!(processes(&marker), 0, "the stdio server was stopped");
    })
    .await
}

#[tokio::test]
async fn another_instance_sees_the_same_status_and_only_one_spawns() {
    if redis_url().is_none() {
        eprintln!("another_instance_sees_the_same_status_and_only_one_spawns: needs TEST_REDIS_URL (Redis pass)");
        return;
    }
    let py = python().await.display().to_string();
    within(async {
        let marker = format!("m{}", uuid::Uuid::new_v4().simple());
        let cluster = Cluster::new().await;
        let a = cluster.spawn(|c| allow(c, &py, &marker)).await;
        let b = cluster.spawn(|c| allow(c, &py, &marker)).await;
        let token = a.register(&unique_email()).await.access;
        let ch = me(&a, &token).await;
        let mut on_a = connect_authed(&a.base, &token).await;
        let mut on_b = connect_authed(&b.base, &token).await;
        add_fast(&a, &token).await;
        until(&mut on_a, &ch, "ready").await;
        let (_, ready_b) = until(&mut on_b, &ch, "ready").await;
        assert_eq!(ready_b["tool_count"], 3);
        // A new connection on the other instance gets the status at once.
        let mut late = connect_authed(&b.base, &token).await;
        let snap = late.event(&ch, "mcp.status").await;
        assert_eq!(snap["data"]["servers"][0]["state"], "ready", "{snap}");
        // Past a lease round (5 s), still one process for the two instances.
        tokio::time::sleep(Duration::from_secs(6)).await;
        assert_eq!(processes(&marker), 1);
    })
    .await
}

#[tokio::test]
async fn tools_are_called_through_the_ready_connection_with_a_deadline() {
    use switchyard::mcp::calls::ToolError;
    let py = python().await.display().to_string();
    within(async {
        let marker = format!("m{}", uuid::Uuid::new_v4().simple());
        let app = spawn_with(|c| allow(c, &py, &marker)).await;
        let token = app.register(&unique_email()).await.access;
        let ch = me(&app, &token).await;
        let user: switchyard::domain::UserId = ch.strip_prefix("user:").unwrap().parse().unwrap();
        let mut c = connect_authed(&app.base, &token).await;
        add_fast(&app, &token).await;
        until(&mut c, &ch, "ready").await;
        let mcp = &app.state.mcp;
        let args = |v: Value| v.as_object().unwrap().clone();
        let out = mcp
            .call_tool(
                user,
                "fast",
                "add",
                args(json!({"a": 2, "b": 3})),
                Duration::from_secs(10),
                None,
            )
            .await
            .unwrap();
        assert_eq!(out["content"][0]["text"], "5", "{out}");
        let e = mcp
            .call_tool(
                user,
                "fast",
                "sleep",
                args(json!({"seconds": 5})),
                Duration::from_millis(300),
                None,
            )
            .await
            .unwrap_err();
        assert_eq!(e, ToolError::Timeout(300));
        let e = mcp
            .call_tool(
                user,
                "fast",
                "add",
                args(json!({"a": "x"})),
                Duration::from_secs(10),
                None,
            )
            .await
            .unwrap_err();
        assert!(matches!(e, ToolError::Failed(_)), "{e:?}");
        let e = mcp
            .call_tool(
                user,
                "nope",
                "add",
                args(json!({})),
                Duration::from_secs(1),
                None,
            )
            .await
            .unwrap_err();
        assert_eq!(e, ToolError::Unavailable("nope".into()));
        // Another user cannot reach this user's server.
        let other: switchyard::domain::UserId = uuid::Uuid::new_v4().to_string().parse().unwrap();
        assert!(mcp
            .call_tool(
                other,
                "fast",
                "add",
                args(json!({"a": 1, "b": 1})),
                Duration::from_secs(1),
                None,
            )
            .await
            .is_err());
    })
    .await
}
