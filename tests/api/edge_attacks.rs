//! The edge against an attacker: credential-less sockets hoarding slots, slowloris and slow
//! bodies, forged server events, channel aliases, deeply nested JSON, and what an
//! unauthenticated caller or a copied file can read.

use crate::helpers::fixtures::{session, share, user};
use crate::helpers::ws::*;
use crate::helpers::*;
use reqwest::StatusCode;
use serde_json::{json, Value};
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

#[tokio::test]
async fn unauthenticated_sockets_never_take_a_real_users_slot() {
    within(async {
        let app = spawn_with(|c| {
            c.ws.max_connections = 30;
            c.ws.max_pending = 12;
            c.ws.max_pending_per_ip = 5;
            c.server.trusted_proxies = 1;
        })
        .await;
        use tokio_tungstenite::tungstenite::client::IntoClientRequest;
        let open = |ip: String| {
            let url = format!("{}/v1/ws", app.base.replacen("http", "ws", 1));
            async move {
                let mut req = url.into_client_request().unwrap();
                req.headers_mut()
                    .insert("x-forwarded-for", ip.parse().unwrap());
                match tokio_tungstenite::connect_async(req).await {
                    Ok((s, _)) => Ok(s),
                    Err(tokio_tungstenite::tungstenite::Error::Http(r)) => Err(r.status().as_u16()),
                    Err(e) => panic!("{e}"),
                }
            }
        };
        let mut held = Vec::new();
        for _ in 0..5 {
            held.push(
                open("198.51.100.1".into())
                    .await
                    .expect("within the per-address cap"),
            );
        }
        assert_eq!(
            open("198.51.100.1".into()).await.err(),
            Some(429),
            "per address"
        );
        for i in 2..9 {
            held.push(
                open(format!("198.51.100.{i}"))
                    .await
                    .expect("within the total cap"),
            );
        }
        assert_eq!(
            open("198.51.100.50".into()).await.err(),
            Some(503),
            "pending in total"
        );
        // 12 sockets wait to authenticate; a real user still gets in, by header or by frame.
        let m = user(&app).await;
        let mut real = connect_authed(&app.base, &m.tokens.access).await;
        assert_eq!(real.request("ping", json!({})).await["type"], "ok");
        drop(held.pop());
        tokio::time::sleep(Duration::from_millis(100)).await;
        let mut browser = connect(&app.base, None, None)
            .await
            .expect("a pending slot is free again");
        browser
            .send(json!({"type": "auth", "id": "a", "token": m.tokens.access}))
            .await;
        assert_eq!(browser.next().await.unwrap()["type"], "ok");
        assert_eq!(browser.next().await.unwrap()["type"], "welcome");
    })
    .await
}

#[tokio::test]
async fn slowloris_connections_are_cut_and_streams_are_not() {
    within(async {
        let app = spawn_with(|c| {
            c.server.header_read_timeout_secs = 1;
            c.server.request_timeout_secs = 2;
            c.llm.echo_chunk_delay_ms = 100;
        })
        .await;
        // 50 connections trickling a request line and never finishing the headers.
        let mut slow = Vec::new();
        for _ in 0..50 {
            let mut s = tokio::net::TcpStream::connect(app.addr).await.unwrap();
            s.write_all(b"GET /health HTTP/1.1\r\nHost: x\r\n").await.unwrap();
            slow.push(s);
        }
        for mut s in slow {
            let mut buf = [0u8; 256];
            // Closed by the server (0 bytes) or answered 408, within a few deadlines.
            let n = tokio::time::timeout(Duration::from_secs(10), s.read(&mut buf))
                .await
                .expect("the server ends a slow header")
                .unwrap_or(0);
            let text = String::from_utf8_lossy(&buf[..n]);
            assert!(n == 0 || text.contains("408"), "{text}");
        }
        // A body that never comes: 408 from the request deadline.
        let m = user(&app).await;
        let mut s = tokio::net::TcpStream::connect(app.addr).await.unwrap();
        s.write_all(format!("POST /v1/projects HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {}\r\nContent-Type: application/json\r\nContent-Length: 100\r\n\r\n{{", m.tokens.access).as_bytes()).await.unwrap();
        let mut buf = vec![0u8; 4096];
        let n = tokio::time::timeout(Duration::from_secs(10), s.read(&mut buf)).await.unwrap().unwrap();
        assert!(String::from_utf8_lossy(&buf[..n]).starts_with("HTTP/1.1 408"), "{}", String::from_utf8_lossy(&buf[..n]));
        // A socket and a streamed completion outlive both deadlines.
        let mut sock = connect_authed(&app.base, &m.tokens.access).await;
        let key: Value = app.http.post(app.url("/v1/api-keys")).bearer_auth(&m.tokens.access).json(&json!({"name": "k"})).send().await.unwrap().json().await.unwrap();
        let r = app.http.post(app.url("/v1/chat/completions")).bearer_auth(key["secret"].as_str().unwrap())
            .json(&json!({"model": "echo", "stream": true, "messages": [{"role": "user", "content": vec!["w"; 40].join(" ")}]}))
            .send().await.unwrap();
        assert_eq!(r.status(), StatusCode::OK);
        let body = r.text().await.unwrap();
        assert!(body.trim_end().ends_with("data: [DONE]"), "the 4 s stream ran to its end");
        assert_eq!(sock.request("ping", json!({})).await["type"], "ok", "the socket is alive after 4 s");
    })
    .await
}

#[tokio::test]
async fn a_viewer_cannot_forge_server_events() {
    within(async {
        let app = spawn_app().await;
        let (owner, viewer) = (user(&app).await, user(&app).await);
        let ch = session(&app, &owner).await;
        share(&app, &owner, &ch, &viewer, "viewer").await;
        let mut o = connect_authed(&app.base, &owner.tokens.access).await;
        let mut v = connect_authed(&app.base, &viewer.tokens.access).await;
        assert_eq!(o.subscribe(&ch).await["type"], "ok");
        assert_eq!(v.subscribe(&ch).await["type"], "ok");
        for name in [
            "tool.call",
            "sync.change",
            "chat.delta",
            "session.revoked",
            "mcp.status",
            "presence.diff",
        ] {
            let r = v
                .request_unchecked(
                    "publish",
                    json!({"channel": ch, "event": name,
                "data": {"side": "client", "name": "run_shell", "arguments": {"cmd": "rm -rf /"}}}),
                )
                .await;
            assert_eq!(r["code"], "invalid_request", "{name}: {r}");
        }
        let r = v
            .request(
                "publish",
                json!({"channel": ch, "event": "typing", "data": {"on": true}}),
            )
            .await;
        assert_eq!(r["type"], "ok");
        let got = o.broadcast(&ch, "typing").await;
        assert_eq!(
            (got["type"].as_str(), got["from"]["user_id"].as_str()),
            (Some("broadcast"), Some(viewer.user_id.as_str()))
        );
        assert!(!o.pending_has("tool.call"), "nothing forged arrived");
    })
    .await
}

#[tokio::test]
async fn a_channel_alias_is_the_canonical_channel_and_revocation_covers_it() {
    within(async {
        let app = spawn_app().await;
        let (owner, guest) = (user(&app).await, user(&app).await);
        let ch = session(&app, &owner).await;
        share(&app, &owner, &ch, &guest, "editor").await;
        let id = ch.strip_prefix("session:").unwrap();
        let alias = format!("session:{{{}}}", id.to_uppercase());
        let mut g = connect_authed(&app.base, &guest.tokens.access).await;
        let r = g
            .request_unchecked("subscribe", json!({"channel": alias}))
            .await;
        assert_eq!(
            r["result"]["channel"],
            ch.as_str(),
            "answered with the canonical name: {r}"
        );
        let r = g
            .request_unchecked(
                "subscribe",
                json!({"channel": format!("session:{}", id.replace('-', ""))}),
            )
            .await;
        assert_eq!(
            r["type"], "ok",
            "the same channel again, not a second subscription"
        );
        let r = app
            .http
            .delete(app.url(&format!("/v1/sessions/{id}/members/{}", guest.user_id)))
            .bearer_auth(&owner.tokens.access)
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 204);
        assert_eq!(
            g.event(&ch, "session.revoked").await["data"]["channel"],
            ch.as_str()
        );
        let mut o = connect_authed(&app.base, &owner.tokens.access).await;
        o.subscribe(&ch).await;
        o.request(
            "publish",
            json!({"channel": ch, "event": "after", "data": {}}),
        )
        .await;
        g.drop_pending(); // its own join, from before the revocation
        let _ = tokio::time::timeout(Duration::from_millis(300), async {
            while let Some(f) = g.next().await {
                assert_ne!(
                    f["channel"],
                    ch.as_str(),
                    "nothing on the session after revocation: {f}"
                );
            }
        })
        .await;
    })
    .await
}

#[tokio::test]
async fn deeply_nested_json_is_refused_everywhere() {
    within(async {
        let app = spawn_app().await;
        let m = user(&app).await;
        let ch = session(&app, &m).await;
        let mut c = connect_authed(&app.base, &m.tokens.access).await;
        c.subscribe(&ch).await;
        let deep = "[".repeat(30_000) + &"]".repeat(30_000);
        c.send_raw(format!(
            r#"{{"type":"publish","id":"d","channel":"{ch}","event":"x","data":{deep}}}"#
        ))
        .await;
        // Too deep to read even its id: the error carries none.
        let r = loop {
            let f = c.next().await.unwrap();
            if f["type"] == "error" {
                break f;
            }
        };
        assert!(
            r["type"] == "error"
                && r["code"] == "bad_frame"
                && r["message"].as_str().unwrap().contains("deeper than 32"),
            "{r}"
        );
        assert!(!c.pending_has("x"), "nothing relayed");
        assert_eq!(
            c.request("ping", json!({})).await["type"],
            "ok",
            "the socket lives on"
        );
        let r = app
            .http
            .post(app.url("/v1/projects"))
            .bearer_auth(&m.tokens.access)
            .header("content-type", "application/json")
            .body(format!(
                r#"{{"name":"p","settings":{}}}"#,
                "[".repeat(100) + &"]".repeat(100)
            ))
            .send()
            .await
            .unwrap();
        assert!(error_of(r, StatusCode::BAD_REQUEST).await["message"]
            .as_str()
            .unwrap()
            .contains("deeper than 32"));
    })
    .await
}

#[tokio::test]
async fn one_address_cannot_hold_every_http_connection() {
    within(async {
        let app = spawn_with(|c| c.server.max_http_connections_per_ip = 3).await;
        let mut held = Vec::new();
        for _ in 0..3 {
            let mut s = tokio::net::TcpStream::connect(app.addr).await.unwrap();
            s.write_all(b"GET /health HTTP/1.1\r\nHost: x\r\n")
                .await
                .unwrap();
            held.push(s);
        }
        // A fourth from the same address is closed at once.
        let mut fourth = tokio::net::TcpStream::connect(app.addr).await.unwrap();
        let _ = fourth
            .write_all(b"GET /health HTTP/1.1\r\nHost: x\r\n\r\n")
            .await;
        let mut buf = [0u8; 64];
        let n = tokio::time::timeout(Duration::from_secs(5), fourth.read(&mut buf))
            .await
            .unwrap()
            .unwrap_or(0);
        assert_eq!(n, 0, "closed without an answer");
        // Another address is served meanwhile.
        let sock = tokio::net::TcpSocket::new_v4().unwrap();
        sock.bind("127.0.0.2:0".parse().unwrap()).unwrap();
        let mut other = sock.connect(app.addr).await.unwrap();
        other
            .write_all(b"GET /health HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
            .await
            .unwrap();
        let mut reply = String::new();
        other.read_to_string(&mut reply).await.unwrap();
        assert!(reply.starts_with("HTTP/1.1 200"), "{reply}");
        drop(held);
    })
    .await
}
