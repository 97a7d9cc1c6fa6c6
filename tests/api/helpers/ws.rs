//! A real WebSocket client (tokio-tungstenite) for tests. Every frame the server sends, and
//! every well-formed frame a test sends, is validated against protocol/schema/ as it passes, so
//! the written protocol cannot drift from the code.

#![allow(dead_code)]

use futures::{SinkExt, StreamExt};
use serde_json::{json, Value};
use std::{
    collections::{HashMap, VecDeque},
    sync::OnceLock,
    time::Duration,
};
use tokio_tungstenite::{
    connect_async,
    tungstenite::{
        client::IntoClientRequest, http::HeaderValue, protocol::frame::coding::CloseCode, Message,
    },
    MaybeTlsStream, WebSocketStream,
};

type Socket = WebSocketStream<MaybeTlsStream<tokio::net::TcpStream>>;

pub fn schemas(side: &str) -> &'static HashMap<String, jsonschema::Validator> {
    static CLIENT: OnceLock<HashMap<String, jsonschema::Validator>> = OnceLock::new();
    static SERVER: OnceLock<HashMap<String, jsonschema::Validator>> = OnceLock::new();
    let cell = if side == "client" { &CLIENT } else { &SERVER };
    cell.get_or_init(|| {
        let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("protocol/schema")
            .join(side);
        std::fs::read_dir(&dir)
            .unwrap()
            .map(|e| {
                let p = e.unwrap().path();
                let schema: Value =
                    serde_json::from_str(&std::fs::read_to_string(&p).unwrap()).unwrap();
                let name = p.file_stem().unwrap().to_string_lossy().to_string();
                (
                    name,
                    jsonschema::validator_for(&schema).expect("schema compiles"),
                )
            })
            .collect()
    })
}

/// Panics unless `frame` matches the schema for its `type`.
pub fn check_schema(side: &str, frame: &Value) {
    let kind = frame["type"]
        .as_str()
        .unwrap_or_else(|| panic!("{side} frame without type: {frame}"));
    let v = schemas(side)
        .get(kind)
        .unwrap_or_else(|| panic!("no {side} schema for type {kind:?}: {frame}"));
    if let Err(e) = v.validate(frame) {
        panic!("{side} frame violates protocol/schema/{side}/{kind}.json: {e}\n{frame}");
    }
}

pub struct WsClient {
    socket: Socket,
    /// Frames read while waiting for something else.
    pending: VecDeque<Value>,
    next_id: u64,
}

#[derive(Debug)]
pub enum Closed {
    /// The server closed with this code and reason.
    Code(u16, String),
    /// The connection ended without a close frame.
    Dropped,
}

pub async fn connect(
    base: &str,
    token: Option<&str>,
    origin: Option<&str>,
) -> Result<WsClient, u16> {
    connect_path(base, "/v1/ws", token, origin).await
}

pub async fn connect_path(
    base: &str,
    path: &str,
    token: Option<&str>,
    origin: Option<&str>,
) -> Result<WsClient, u16> {
    let url = format!("{}{path}", base.replacen("http", "ws", 1));
    let mut req = url.into_client_request().unwrap();
    if let Some(t) = token {
        req.headers_mut().insert(
            "authorization",
            HeaderValue::from_str(&format!("Bearer {t}")).unwrap(),
        );
    }
    if let Some(o) = origin {
        req.headers_mut()
            .insert("origin", HeaderValue::from_str(o).unwrap());
    }
    match connect_async(req).await {
        Ok((socket, _)) => Ok(WsClient {
            socket,
            pending: VecDeque::new(),
            next_id: 0,
        }),
        Err(tokio_tungstenite::tungstenite::Error::Http(resp)) => Err(resp.status().as_u16()),
        Err(e) => panic!("ws connect failed: {e}"),
    }
}

/// Connects with a bearer header and consumes the welcome frame.
pub async fn connect_authed(base: &str, token: &str) -> WsClient {
    let mut c = connect(base, Some(token), None)
        .await
        .expect("upgrade accepted");
    let w = c.next().await.expect("welcome");
    assert_eq!(w["type"], "welcome", "{w}");
    c
}

impl WsClient {
    pub async fn send(&mut self, frame: Value) {
        check_schema("client", &frame);
        self.send_raw(frame.to_string()).await;
    }

    /// Whether an event named `event` was read while waiting for replies.
    pub fn pending_has(&self, event: &str) -> bool {
        self.pending.iter().any(|v| v["event"] == event)
    }

    /// Forgets frames read while waiting for replies.
    pub fn drop_pending(&mut self) {
        self.pending.clear();
    }

    /// A request that deliberately breaks the schema (bad-input tests): sent unchecked.
    pub async fn request_unchecked(&mut self, kind: &str, mut fields: Value) -> Value {
        self.next_id += 1;
        let id = format!("r{}", self.next_id);
        fields["type"] = json!(kind);
        fields["id"] = json!(id);
        self.send_raw(fields.to_string()).await;
        self.reply(&id).await
    }

    /// Sends text as is (for malformed-input tests).
    pub async fn send_raw(&mut self, text: String) {
        self.socket.send(Message::text(text)).await.expect("send");
    }

    pub async fn send_message(
        &mut self,
        m: Message,
    ) -> Result<(), tokio_tungstenite::tungstenite::Error> {
        self.socket.send(m).await
    }

    /// The next text frame (pending first), validated; `None` when the socket closed.
    pub async fn next(&mut self) -> Option<Value> {
        if let Some(v) = self.pending.pop_front() {
            return Some(v);
        }
        self.read().await.ok()
    }

    async fn read(&mut self) -> Result<Value, Closed> {
        loop {
            let msg = tokio::time::timeout(Duration::from_secs(10), self.socket.next())
                .await
                .expect("no frame from the server within 10 s");
            match msg {
                Some(Ok(Message::Text(t))) => {
                    let v: Value = serde_json::from_str(t.as_str()).expect("server sends JSON");
                    check_schema("server", &v);
                    return Ok(v);
                }
                Some(Ok(Message::Close(Some(f)))) => {
                    return Err(Closed::Code(f.code.into(), f.reason.to_string()))
                }
                Some(Ok(Message::Close(None))) | None | Some(Err(_)) => {
                    return Err(Closed::Dropped)
                }
                Some(Ok(_)) => continue,
            }
        }
    }

    /// Sends a request with a fresh id and returns its reply; events that arrive meanwhile are
    /// kept for `next`/`event`.
    pub async fn request(&mut self, kind: &str, mut fields: Value) -> Value {
        self.next_id += 1;
        let id = format!("r{}", self.next_id);
        fields["type"] = json!(kind);
        fields["id"] = json!(id);
        self.send(fields).await;
        self.reply(&id).await
    }

    pub async fn reply(&mut self, id: &str) -> Value {
        loop {
            let v = self
                .read()
                .await
                .unwrap_or_else(|c| panic!("closed before reply to {id}: {c:?}"));
            if (v["type"] == "ok" || v["type"] == "error") && v["id"] == id {
                return v;
            }
            self.pending.push_back(v);
        }
    }

    /// The next event named `event` on `channel`, skipping others.
    pub async fn event(&mut self, channel: &str, event: &str) -> Value {
        if let Some(i) = self
            .pending
            .iter()
            .position(|v| v["channel"] == channel && v["event"] == event)
        {
            return self.pending.remove(i).unwrap();
        }
        loop {
            let v = self
                .read()
                .await
                .unwrap_or_else(|c| panic!("closed waiting for {event}: {c:?}"));
            if v["type"] == "event" && v["channel"] == channel && v["event"] == event {
                return v;
            }
            self.pending.push_back(v);
        }
    }

    /// The `presence.diff` on `channel` that lists `user_id` among its `joins` or `leaves`
    /// (`side`); earlier diffs are consumed. Diffs batch an interval's changes, so one may
    /// carry others' too.
    pub async fn presence_diff(&mut self, channel: &str, side: &str, user_id: &str) -> Value {
        loop {
            let d = self.event(channel, "presence.diff").await;
            let listed = d["data"][side]
                .as_array()
                .is_some_and(|l| l.iter().any(|m| m["user_id"] == user_id));
            if listed {
                return d;
            }
        }
    }

    /// The next client event (`broadcast`, relayed from a `publish`) named `event`.
    pub async fn broadcast(&mut self, channel: &str, event: &str) -> Value {
        if let Some(i) = self.pending.iter().position(|v| {
            v["type"] == "broadcast" && v["channel"] == channel && v["event"] == event
        }) {
            return self.pending.remove(i).unwrap();
        }
        loop {
            let v = self
                .read()
                .await
                .unwrap_or_else(|c| panic!("closed waiting for {event}: {c:?}"));
            if v["type"] == "broadcast" && v["channel"] == channel && v["event"] == event {
                return v;
            }
            self.pending.push_back(v);
        }
    }

    /// Reads until the server closes; returns how, and the frames seen before it.
    pub async fn closed(&mut self) -> (Closed, Vec<Value>) {
        let mut seen: Vec<Value> = self.pending.drain(..).collect();
        loop {
            match self.read().await {
                Ok(v) => seen.push(v),
                Err(c) => return (c, seen),
            }
        }
    }

    pub async fn subscribe(&mut self, channel: &str) -> Value {
        self.request("subscribe", json!({ "channel": channel }))
            .await
    }

    /// True when nothing arrives within `wait` (used to check that a frame was not delivered).
    pub async fn pending_is_empty_after(&mut self, wait: Duration) -> bool {
        if !self.pending.is_empty() {
            return false;
        }
        match tokio::time::timeout(wait, self.socket.next()).await {
            Err(_) => true,
            Ok(Some(Ok(Message::Ping(_) | Message::Pong(_)))) => true,
            Ok(other) => {
                eprintln!("unexpected: {other:?}");
                false
            }
        }
    }

    pub async fn close(mut self) {
        let _ = self.socket.close(None).await;
    }
}

pub fn code_of(c: &Closed) -> u16 {
    match c {
        Closed::Code(code, _) => *code,
        Closed::Dropped => 0,
    }
}

pub fn normal() -> u16 {
    CloseCode::Normal.into()
}
