//! MCP server configuration over REST and the socket: transports, the stdio allowlist, the
//! SSRF guard, secrets never shown back, and owner-only access.

use crate::helpers::ws::*;
use crate::helpers::*;
use reqwest::StatusCode;
use serde_json::{json, Value};

async fn post(app: &TestApp, token: &str, body: Value) -> reqwest::Response {
    app.http
        .post(app.url("/v1/mcp/servers"))
        .bearer_auth(token)
        .json(&body)
        .send()
        .await
        .unwrap()
}

#[tokio::test]
async fn servers_are_validated_refused_when_internal_and_secrets_never_echoed() {
    within(async {
        let app = spawn_with(|c| {
            c.mcp.stdio_allowlist = vec!["files=python3 -m files_server".into()];
            c.mcp.max_servers_per_user = 3;
        })
        .await;
        let token = app.register(&unique_email()).await.access;
        // Internal addresses are refused, whatever the spelling.
        for url in ["http://127.0.0.1:9000/mcp", "http://localhost/mcp", "http://[::1]/", "http://169.254.169.254/latest",
                    "http://10.0.0.7/mcp", "http://192.168.1.1/", "http://[::ffff:10.0.0.1]/"] {
            let e = error_of(post(&app, &token, json!({"name": "x", "transport": "http", "url": url})).await, StatusCode::BAD_REQUEST).await;
            assert_eq!(e["param"], "url", "{url}");
            assert!(e["message"].as_str().unwrap().contains("private"), "{url}: {e}");
        }
        // A stdio command is a name from the operator's allowlist, never a command line.
        let e = error_of(post(&app, &token, json!({"name": "sh", "transport": "stdio", "command": "bash -c 'rm -rf /'"})).await, StatusCode::BAD_REQUEST).await;
        assert_eq!(e["param"], "command");
        assert!(e["message"].as_str().unwrap().contains("files"), "names what is allowed: {e}");
        let r = post(&app, &token, json!({"name": "files", "transport": "stdio", "command": "files"})).await;
        assert_eq!(r.status(), StatusCode::CREATED);
        // A public URL with a secret header: stored, shown by name only.
        let r = post(&app, &token, json!({"name": "remote", "transport": "http", "url": "https://1.1.1.1/mcp",
            "headers": {"Authorization": "Bearer s3cret-value"}})).await;
        assert_eq!(r.status(), StatusCode::CREATED);
        let text = r.text().await.unwrap();
        assert!(!text.contains("s3cret"), "{text}");
        let created: Value = serde_json::from_str(&text).unwrap();
        assert_eq!(created["header_names"], json!(["Authorization"]));
        let listed = app.get_auth("/v1/mcp/servers", &token).await.text().await.unwrap();
        assert!(!listed.contains("s3cret"));
        let listed: Value = serde_json::from_str(&listed).unwrap();
        assert_eq!(listed["data"].as_array().unwrap().len(), 2);
        // Other refusals: duplicate name, bad transport, mixed fields, bad header, the limit.
        let e = error_of(post(&app, &token, json!({"name": "files", "transport": "stdio", "command": "files"})).await, StatusCode::CONFLICT).await;
        assert_eq!(e["code"], "conflict");
        for (body, param) in [
            (json!({"name": "a", "transport": "carrier-pigeon"}), "transport"),
            (json!({"name": "a b", "transport": "stdio", "command": "files"}), "name"),
            (json!({"name": "a", "transport": "http"}), "url"),
            (json!({"name": "a", "transport": "stdio", "command": "files", "url": "https://1.1.1.1/"}), "url"),
            (json!({"name": "a", "transport": "http", "url": "https://1.1.1.1/", "headers": {"X": "a\r\nb"}}), "headers"),
            (json!({"transport": "stdio", "command": "files"}), "name"),
        ] {
            let e = error_of(post(&app, &token, body.clone()).await, StatusCode::BAD_REQUEST).await;
            assert_eq!(e["param"], param, "{body}");
        }
        assert_eq!(post(&app, &token, json!({"name": "third", "transport": "stdio", "command": "files"})).await.status(), StatusCode::CREATED);
        let e = error_of(post(&app, &token, json!({"name": "fourth", "transport": "stdio", "command": "files"})).await, StatusCode::BAD_REQUEST).await;
        assert!(e["message"].as_str().unwrap().contains("at most 3"));
        let listed: Value = app.get_auth("/v1/mcp/servers", &token).await.json().await.unwrap();
        assert_eq!(listed["data"].as_array().unwrap().len(), 3, "refusals changed nothing");
    })
    .await
}

#[tokio::test]
async fn another_users_server_is_not_found_and_owners_can_change_theirs() {
    within(async {
        let app = spawn_with(|c| c.mcp.allow_private_urls = true).await;
        let (alice, mallory) = (
            app.register(&unique_email()).await.access,
            app.register(&unique_email()).await.access,
        );
        // allow_private_urls lets an operator point at on-prem servers.
        let r = post(
            &app,
            &alice,
            json!({"name": "local", "transport": "http", "url": "http://127.0.0.1:9000/mcp"}),
        )
        .await;
        assert_eq!(r.status(), StatusCode::CREATED);
        let id = r.json::<Value>().await.unwrap()["id"]
            .as_str()
            .unwrap()
            .to_owned();
        let path = format!("/v1/mcp/servers/{id}");
        let r = app
            .http
            .patch(app.url(&path))
            .bearer_auth(&mallory)
            .json(&json!({"enabled": false}))
            .send()
            .await
            .unwrap();
        error_of(r, StatusCode::NOT_FOUND).await;
        let r = app
            .http
            .delete(app.url(&path))
            .bearer_auth(&mallory)
            .send()
            .await
            .unwrap();
        error_of(r, StatusCode::NOT_FOUND).await;
        let listed: Value = app
            .get_auth("/v1/mcp/servers", &mallory)
            .await
            .json()
            .await
            .unwrap();
        assert_eq!(listed["data"], json!([]));
        // The owner over the socket: update, list, delete.
        let mut ws = connect_authed(&app.base, &alice).await;
        let r = ws
            .request(
                "mcp.update",
                json!({"server_id": id, "server": {"enabled": false}}),
            )
            .await;
        assert_eq!(r["result"]["enabled"], false, "{r}");
        assert_eq!(r["result"]["url"], "http://127.0.0.1:9000/mcp");
        let r = ws.request("mcp.list", json!({})).await;
        assert_eq!(r["result"]["data"].as_array().unwrap().len(), 1);
        let mut m = connect_authed(&app.base, &mallory).await;
        let r = m.request("mcp.delete", json!({"server_id": id})).await;
        assert_eq!(r["code"], "not_found");
        let r = ws
            .request(
                "mcp.create",
                json!({"server": {"name": "x", "transport": "stdio", "command": "nope"}}),
            )
            .await;
        assert_eq!(r["code"], "invalid_request");
        let r = ws.request("mcp.delete", json!({"server_id": id})).await;
        assert_eq!(r["type"], "ok");
        let r = app
            .http
            .delete(app.url(&path))
            .bearer_auth(&alice)
            .send()
            .await
            .unwrap();
        error_of(r, StatusCode::NOT_FOUND).await;
    })
    .await
}
