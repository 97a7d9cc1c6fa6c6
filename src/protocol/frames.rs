//! Client frames (the server's are in `server_frames`). Every frame is a JSON object with a
//! `type`. Client requests carry an `id` that the one reply (`ok` or `error`) echoes. Unknown
//! fields are ignored so clients can be newer than the server.

use super::{json_guard, Call, Channel, ErrorCode};
use serde::Deserialize;
use serde_json::value::RawValue;
use std::borrow::Cow;

/// Channel names are short ASCII: `user:<uuid>`, `session:<uuid>`.
pub const MAX_CHANNEL_LEN: usize = 128;
/// Event names (`typing`, `cursor`, ...).
pub const MAX_EVENT_LEN: usize = 64;
/// Prefixes of the server's event names: a client's ephemeral event may not start with one,
/// so no receiver can mistake it for the server's (it also arrives as `broadcast`, not
/// `event`).
pub const RESERVED_EVENT_PREFIXES: [&str; 11] = [
    "presence.",
    "sync.",
    "chat.",
    "tool.",
    "session.",
    "mcp.",
    "project.",
    "file.",
    "auth.",
    "user.",
    "server.",
];
pub use super::calls::CALLS;

/// Request ids are echoed back, so they are bounded too.
pub const MAX_ID_LEN: usize = 64;

#[derive(Debug)]
pub enum ClientFrame {
    Auth {
        id: Option<String>,
        token: String,
        device: Option<String>,
    },
    AuthRefresh {
        id: String,
        token: String,
    },
    /// `since`: the session version the client has; omitted means "send a snapshot".
    Subscribe {
        id: String,
        channel: Channel,
        since: Option<u64>,
    },
    SessionPush {
        id: String,
        session_id: String,
        mutations: Box<RawValue>,
    },
    /// A request answered by a service, its arguments read and typed.
    Call {
        id: String,
        call: Call,
    },
    Unsubscribe {
        id: String,
        channel: Channel,
    },
    Publish {
        id: String,
        channel: Channel,
        event: String,
        data: Box<RawValue>,
        /// Whether the publisher's own connection gets the `broadcast` too (default true).
        echo: bool,
    },
    Presence {
        id: String,
        channel: Channel,
    },
    Ping {
        id: String,
    },
}

/// Why a text frame is not a request we can serve; answered with an `error` reply carrying the
/// request's id when it could be read.
#[derive(Debug, PartialEq, Eq)]
pub struct DecodeError {
    pub id: Option<String>,
    pub code: ErrorCode,
    pub message: String,
}

#[derive(Deserialize)]
struct Head<'a> {
    #[serde(rename = "type", borrow)]
    kind: Cow<'a, str>,
    #[serde(default)]
    id: Option<serde_json::Value>,
}

#[derive(Deserialize)]
struct AuthBody {
    token: String,
    #[serde(default)]
    device: Option<String>,
}
#[derive(Deserialize)]
struct TokenBody {
    token: String,
}
#[derive(Deserialize)]
struct ChannelBody {
    channel: String,
    #[serde(default)]
    since: Option<u64>,
}
#[derive(Deserialize)]
struct PushBody {
    session_id: String,
    mutations: Box<RawValue>,
}
#[derive(Deserialize)]
struct PublishBody {
    channel: String,
    event: String,
    data: Box<RawValue>,
    #[serde(default = "yes")]
    echo: bool,
}

fn yes() -> bool {
    true
}

impl ClientFrame {
    /// Parses one text frame; `max_depth` bounds nesting anywhere in it.
    pub fn decode(text: &str, max_depth: usize) -> Result<Self, DecodeError> {
        let scan = json_guard::scan(text.as_bytes(), max_depth).map_err(|e| DecodeError {
            id: None,
            code: ErrorCode::BadFrame,
            message: e.to_string(),
        })?;
        let (kind, id) = read_head(text)?;
        // Pushes answer NUL per mutation (`refused`, so a client's queue drains); ephemeral
        // events are relayed, never stored. Everything else may end up in a database column.
        if scan.has_nul && !matches!(kind.as_ref(), "session.push" | "publish") {
            return Err(DecodeError {
                id,
                code: ErrorCode::InvalidRequest,
                message: "text must not contain NUL (U+0000)".into(),
            });
        }
        Self::body(&kind, text, id)
    }

    /// The frame of type `kind`, its fields read from `text`.
    fn body(kind: &str, text: &str, id: Option<String>) -> Result<Self, DecodeError> {
        let bad = |id: &Option<String>, e: serde_json::Error| DecodeError {
            id: id.clone(),
            code: ErrorCode::BadRequest,
            message: format!("invalid {kind} frame: {e}"),
        };
        fn read<'a, T: Deserialize<'a>>(
            text: &'a str,
            id: &Option<String>,
            bad: impl Fn(&Option<String>, serde_json::Error) -> DecodeError,
        ) -> Result<T, DecodeError> {
            serde_json::from_str(text).map_err(|e| bad(id, e))
        }
        Ok(match kind {
            "auth" => {
                let b: AuthBody = read(text, &id, bad)?;
                ClientFrame::Auth {
                    id,
                    token: b.token,
                    device: b.device,
                }
            }
            "auth.refresh" => {
                let b: TokenBody = read(text, &id, bad)?;
                ClientFrame::AuthRefresh {
                    id: need_id(id)?,
                    token: b.token,
                }
            }
            "subscribe" | "unsubscribe" | "presence" => {
                let b: ChannelBody = read(text, &id, bad)?;
                let channel = check_channel(&b.channel, &id)?;
                let id = need_id(id)?;
                match kind {
                    "subscribe" => ClientFrame::Subscribe {
                        id,
                        channel,
                        since: b.since,
                    },
                    "unsubscribe" => ClientFrame::Unsubscribe { id, channel },
                    _ => ClientFrame::Presence { id, channel },
                }
            }
            "publish" => publish(read(text, &id, bad)?, id)?,
            "ping" => ClientFrame::Ping { id: need_id(id)? },
            "session.push" => {
                let b: PushBody = read(text, &id, bad)?;
                ClientFrame::SessionPush {
                    id: need_id(id)?,
                    session_id: b.session_id,
                    mutations: b.mutations,
                }
            }
            other => match Call::decode(other, text) {
                Some(decoded) => {
                    let id = need_id(id)?;
                    // As the services refuse a bad field: `invalid_request`, like REST's bodies.
                    let call = decoded.map_err(|e| DecodeError {
                        id: Some(id.clone()),
                        code: ErrorCode::InvalidRequest,
                        message: format!("invalid {kind} frame: {e}"),
                    })?;
                    ClientFrame::Call { id, call }
                }
                None => {
                    return Err(DecodeError {
                        id,
                        code: ErrorCode::UnknownType,
                        message: format!("unknown frame type {:?}", truncate(other, 40)),
                    })
                }
            },
        })
    }

    /// The frame type, as clients spell it.
    pub fn kind(&self) -> &'static str {
        match self {
            ClientFrame::Auth { .. } => "auth",
            ClientFrame::AuthRefresh { .. } => "auth.refresh",
            ClientFrame::Subscribe { .. } => "subscribe",
            ClientFrame::Unsubscribe { .. } => "unsubscribe",
            ClientFrame::Publish { .. } => "publish",
            ClientFrame::Presence { .. } => "presence",
            ClientFrame::SessionPush { .. } => "session.push",
            ClientFrame::Call { call, .. } => call.kind(),
            ClientFrame::Ping { .. } => "ping",
        }
    }

    pub fn id(&self) -> Option<&str> {
        match self {
            ClientFrame::Auth { id, .. } => id.as_deref(),
            ClientFrame::AuthRefresh { id, .. }
            | ClientFrame::Subscribe { id, .. }
            | ClientFrame::Unsubscribe { id, .. }
            | ClientFrame::Publish { id, .. }
            | ClientFrame::Presence { id, .. }
            | ClientFrame::SessionPush { id, .. }
            | ClientFrame::Call { id, .. }
            | ClientFrame::Ping { id } => Some(id),
        }
    }
}

/// The frame's `type`, and its `id` when it has a valid one.
fn read_head(text: &str) -> Result<(Cow<'_, str>, Option<String>), DecodeError> {
    let head: Head<'_> = serde_json::from_str(text).map_err(|e| DecodeError {
        id: None,
        code: ErrorCode::BadFrame,
        message: format!("frame must be a JSON object with a string \"type\": {e}"),
    })?;
    let id = match head.id {
        None => None,
        Some(serde_json::Value::String(s)) if !s.is_empty() && s.len() <= MAX_ID_LEN => Some(s),
        Some(_) => {
            return Err(DecodeError {
                id: None,
                code: ErrorCode::BadFrame,
                message: format!("\"id\" must be a non-empty string of at most {MAX_ID_LEN} bytes"),
            })
        }
    };
    Ok((head.kind, id))
}

fn need_id(id: Option<String>) -> Result<String, DecodeError> {
    id.ok_or_else(|| DecodeError {
        id: None,
        code: ErrorCode::BadRequest,
        message: "requests need an \"id\"".into(),
    })
}

/// A client's ephemeral event: its name bounded and outside the server's prefixes.
fn publish(b: PublishBody, id: Option<String>) -> Result<ClientFrame, DecodeError> {
    let channel = check_channel(&b.channel, &id)?;
    if b.event.is_empty() || b.event.len() > MAX_EVENT_LEN {
        return Err(DecodeError {
            id,
            code: ErrorCode::BadRequest,
            message: format!("\"event\" must be 1 to {MAX_EVENT_LEN} bytes"),
        });
    }
    if let Some(p) = RESERVED_EVENT_PREFIXES
        .iter()
        .find(|p| b.event.starts_with(**p))
    {
        return Err(DecodeError {
            id,
            code: ErrorCode::InvalidRequest,
            message: format!("event names starting with {p:?} are the server's; pick another name"),
        });
    }
    Ok(ClientFrame::Publish {
        id: need_id(id)?,
        channel,
        event: b.event,
        data: b.data,
        echo: b.echo,
    })
}

fn truncate(s: &str, n: usize) -> &str {
    match s.char_indices().nth(n) {
        Some((i, _)) => &s[..i],
        None => s,
    }
}

fn check_channel(channel: &str, id: &Option<String>) -> Result<Channel, DecodeError> {
    if channel.is_empty() || channel.len() > MAX_CHANNEL_LEN {
        return Err(DecodeError {
            id: id.clone(),
            code: ErrorCode::BadRequest,
            message: format!("\"channel\" must be 1 to {MAX_CHANNEL_LEN} bytes"),
        });
    }
    channel
        .parse()
        .map_err(|e: super::channel::BadChannel| DecodeError {
            id: id.clone(),
            code: ErrorCode::BadChannel,
            message: e.to_string(),
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decodes_requests_and_names_what_is_wrong() {
        let f = ClientFrame::decode(r#"{"type":"publish","id":"7","channel":"session:67e55044-10b1-426f-9247-bb680e5fe0c8","event":"typing","data":{"a":[1]}}"#, 32).unwrap();
        match f {
            ClientFrame::Publish { data, .. } => assert_eq!(data.get(), r#"{"a":[1]}"#),
            other => panic!("{other:?}"),
        }
        let e = ClientFrame::decode(r#"{"type":"nope","id":"1"}"#, 32).unwrap_err();
        assert_eq!(
            (e.code, e.id.as_deref()),
            (ErrorCode::UnknownType, Some("1"))
        );
        let e =
            ClientFrame::decode(r#"{"type":"subscribe","id":"2","channel":5}"#, 32).unwrap_err();
        assert_eq!(
            (e.code, e.id.as_deref()),
            (ErrorCode::BadRequest, Some("2"))
        );
        assert_eq!(
            ClientFrame::decode("not json", 32).unwrap_err().code,
            ErrorCode::BadFrame
        );
        assert_eq!(
            ClientFrame::decode(r#"{"type":"ping"}"#, 32)
                .unwrap_err()
                .code,
            ErrorCode::BadRequest
        );
    }
}
