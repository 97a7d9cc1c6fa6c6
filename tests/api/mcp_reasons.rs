//! What a user reads when a remote MCP server cannot be used: plain words, the status code
//! where there is one, never a Rust type name.

use crate::helpers::mcp::{me, until};
use crate::helpers::ws::*;
use crate::helpers::*;
use serde_json::json;
use switchyard::mcp::client::{connect, Target};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// An HTTP server answering every request with `answer` (a whole HTTP/1.1 response).
async fn answering(answer: &'static str) -> u16 {
    let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = l.local_addr().unwrap().port();
    tokio::spawn(async move {
        while let Ok((mut s, _)) = l.accept().await {
            tokio::spawn(async move {
                let mut buf = vec![0; 64 << 10];
                let _ = s.read(&mut buf).await;
                let _ = s.write_all(answer.as_bytes()).await;
                let _ = s.shutdown().await;
            });
        }
    });
    port
}

fn plain(reason: &str) {
    for bad in ["rmcp", "::", "<", "Transport [", "Send message error"] {
        assert!(!reason.contains(bad), "{bad:?} in {reason:?}");
    }
}

async fn reason_for(url: String) -> String {
    let target = Target::Http {
        url,
        headers: vec![],
        allow_private: true,
    };
    match connect(&target, None).await {
        Ok(_) => panic!("connected"),
        Err(f) => f.reason,
    }
}

#[tokio::test]
async fn remote_server_failures_are_said_in_plain_words() {
    within(async {
        let auth = answering("HTTP/1.1 401 Unauthorized\r\nWWW-Authenticate: Bearer resource_metadata=\"http://x/.well-known/oauth-protected-resource\"\r\ncontent-length: 0\r\nconnection: close\r\n\r\n").await;
        let busy = answering("HTTP/1.1 503 Service Unavailable\r\ncontent-length: 0\r\nconnection: close\r\n\r\n").await;
        let html = answering("HTTP/1.1 404 Not Found\r\ncontent-type: text/html\r\ncontent-length: 21\r\nconnection: close\r\n\r\n<html>nothing</html>\n").await;
        let page = answering("HTTP/1.1 200 OK\r\ncontent-type: text/html\r\ncontent-length: 21\r\nconnection: close\r\n\r\n<html>welcome</html>\n").await;
        let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
        let url = |p: u16| format!("http://127.0.0.1:{p}/mcp");
        let cases = [
            (auth, "authorization required: the server answered 401"),
            (busy, "server refused the connection: 503"),
            (html, "server refused the connection: 404"),
            (page, "the server did not answer as an MCP server (content type text/html)"),
            (closed, "could not connect: connection refused"),
        ];
        for (port, want) in cases {
            let reason = reason_for(url(port)).await;
            plain(&reason);
            assert_eq!(reason, want);
        }
    })
    .await
}

#[tokio::test]
async fn the_status_a_user_sees_says_authorization_required() {
    within(async {
        let port = answering("HTTP/1.1 401 Unauthorized\r\nWWW-Authenticate: Bearer\r\ncontent-length: 0\r\nconnection: close\r\n\r\n").await;
        let app = spawn_with(|c| c.mcp.allow_private_urls = true).await;
        let token = app.register(&unique_email()).await.access;
        let ch = me(&app, &token).await;
        let mut c = connect_authed(&app.base, &token).await;
        let r = app
            .call(reqwest::Method::POST, "/v1/mcp/servers", &token,
                Some(&json!({"name": "remote", "transport": "http", "url": format!("http://127.0.0.1:{port}/mcp")})))
            .await;
        assert_eq!(r.status(), 201);
        let (_, status) = until(&mut c, &ch, "error").await;
        let reason = status["error"].as_str().unwrap();
        plain(reason);
        assert_eq!(reason, "authorization required: the server answered 401");
    })
    .await
}
