//! One socket of a client that outlives its server: every failure is a value (the caller
//! reconnects), never a panic, and every frame is still checked against protocol/schema/.

use crate::helpers::ws::check_schema;
use futures::{SinkExt, StreamExt};
use serde_json::{json, Value};
use std::time::Duration;
use tokio_tungstenite::{
    connect_async,
    tungstenite::{client::IntoClientRequest, http::HeaderValue, Message},
    MaybeTlsStream, WebSocketStream,
};

type Socket = WebSocketStream<MaybeTlsStream<tokio::net::TcpStream>>;

/// Why a link ended.
#[derive(Debug, Clone)]
pub enum Down {
    /// The server closed with this code.
    Closed(u16),
    /// No close frame: the process died, a proxy cut, a reset.
    Dropped(String),
    /// Could not connect or upgrade.
    Refused(String),
}

pub struct Link {
    socket: Socket,
    next_id: u64,
}

impl Link {
    /// Connects with a bearer header and reads the welcome.
    pub async fn open(base: &str, token: &str) -> Result<Self, Down> {
        let url = format!("{}/v1/ws", base.replacen("http", "ws", 1));
        let mut req = url
            .into_client_request()
            .map_err(|e| Down::Refused(e.to_string()))?;
        req.headers_mut().insert(
            "authorization",
            HeaderValue::from_str(&format!("Bearer {token}")).expect("token is ASCII"),
        );
        let (socket, _) = tokio::time::timeout(Duration::from_secs(5), connect_async(req))
            .await
            .map_err(|_| Down::Refused("connect timed out".into()))?
            .map_err(|e| Down::Refused(e.to_string()))?;
        let mut link = Self { socket, next_id: 0 };
        let welcome = tokio::time::timeout(Duration::from_secs(5), link.next())
            .await
            .map_err(|_| Down::Refused("no welcome".into()))??;
        if welcome["type"] != "welcome" {
            return Err(Down::Refused(format!("expected welcome, got {welcome}")));
        }
        Ok(link)
    }

    /// Sends a request; returns its id.
    pub async fn request(&mut self, kind: &str, mut fields: Value) -> Result<String, Down> {
        self.next_id += 1;
        let id = self.next_id.to_string();
        fields["type"] = json!(kind);
        fields["id"] = json!(id);
        check_schema("client", &fields);
        self.socket
            .send(Message::text(fields.to_string()))
            .await
            .map_err(|e| Down::Dropped(e.to_string()))?;
        Ok(id)
    }

    /// The next frame from the server (pings are answered by the library as it reads).
    pub async fn next(&mut self) -> Result<Value, Down> {
        loop {
            match self.socket.next().await {
                Some(Ok(Message::Text(t))) => {
                    let v: Value = serde_json::from_str(&t).expect("server sends JSON");
                    check_schema("server", &v);
                    return Ok(v);
                }
                Some(Ok(Message::Close(frame))) => {
                    return Err(Down::Closed(frame.map_or(1005, |f| u16::from(f.code))))
                }
                Some(Ok(_)) => continue,
                Some(Err(e)) => return Err(Down::Dropped(e.to_string())),
                None => return Err(Down::Dropped("stream ended".into())),
            }
        }
    }

    /// Waits for the reply to `id`, handing every other frame to `other`.
    pub async fn reply(
        &mut self,
        id: &str,
        within: Duration,
        mut other: impl FnMut(Value),
    ) -> Result<Value, Down> {
        let deadline = tokio::time::Instant::now() + within;
        loop {
            let v = tokio::time::timeout_at(deadline, self.next())
                .await
                .map_err(|_| Down::Dropped(format!("no reply to {id} within {within:?}")))??;
            if v["id"] == id && (v["type"] == "ok" || v["type"] == "error") {
                return Ok(v);
            }
            other(v);
        }
    }

    pub async fn close(mut self) {
        let _ = self.socket.close(None).await;
    }
}
