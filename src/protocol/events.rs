//! Every event the server pushes on a channel, typed: its name and its data in one enum,
//! encoded in one place, so no name can be misspelled and no payload drift from
//! `protocol/schema/server/event.json`. Payloads a service owns (a sync change, tool results,
//! MCP statuses, usage) arrive already serialized, as `RawValue`s; the rest are built here.

use super::PresenceDiff;
use crate::domain::SessionId;
use serde::Serialize;
use serde_json::value::RawValue;
use uuid::Uuid;

/// Why a user's session list changed (`session.list_changed`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ListChange {
    Created,
    Shared,
    Revoked,
    Updated,
}

#[derive(Debug, Serialize)]
#[serde(tag = "event", content = "data")]
pub enum ServerEvent<'a> {
    /// Who joined and left the channel in the last `ws.presence_interval_ms`.
    #[serde(rename = "presence.diff")]
    PresenceDiff(&'a PresenceDiff),
    /// A committed change (`store::Change`), in version order.
    #[serde(rename = "sync.change")]
    SyncChange(&'a RawValue),
    /// Subscribe again with `since` (a gap the change log could not heal).
    #[serde(rename = "sync.resync")]
    SyncResync { version: u64 },
    /// The kill switch is on: this socket closes with 1012 in `closing_in_ms`; reconnecting
    /// is refused (503) until it is off, `retry_after_secs` is when to try.
    #[serde(rename = "server.maintenance")]
    ServerMaintenance {
        reason: &'a str,
        retry_after_secs: u64,
        closing_in_ms: u64,
    },
    /// This connection lost the channel (membership revoked).
    #[serde(rename = "session.revoked")]
    SessionRevoked { channel: &'a str },
    #[serde(rename = "session.list_changed")]
    SessionListChanged {
        session_id: SessionId,
        reason: ListChange,
    },
    #[serde(rename = "project.changed")]
    ProjectChanged { project_id: Uuid, change: &'a str },
    /// A file was attached to the session (its record, as the upload answered it).
    #[serde(rename = "file.added")]
    FileAdded(&'a RawValue),
    #[serde(rename = "file.removed")]
    FileRemoved {
        session_id: SessionId,
        file_id: Uuid,
    },
    #[serde(rename = "chat.delta")]
    ChatDelta {
        turn_id: Uuid,
        message_id: &'a str,
        index: u64,
        text: &'a str,
    },
    #[serde(rename = "chat.done")]
    ChatDone {
        turn_id: Uuid,
        message_id: &'a str,
        index: u64,
        status: &'a str,
        finish_reason: Option<&'a str>,
        usage: &'a RawValue,
    },
    #[serde(rename = "chat.error")]
    ChatError {
        turn_id: Uuid,
        message_id: &'a str,
        index: u64,
        code: &'a str,
        message: &'a str,
    },
    #[serde(rename = "tool.call")]
    ToolCall(&'a RawValue),
    #[serde(rename = "tool.result")]
    ToolResult(&'a RawValue),
    #[serde(rename = "tool.error")]
    ToolError(&'a RawValue),
    /// `{"servers": [status]}` on the user's channel.
    #[serde(rename = "mcp.status")]
    McpStatus { servers: &'a RawValue },
    /// A server asks the user something (`mcp::elicit`), on the user's channel.
    #[serde(rename = "mcp.elicitation")]
    McpElicitation(&'a RawValue),
    /// The question is answered or timed out: every connection closes its prompt.
    #[serde(rename = "mcp.elicitation.ended")]
    McpElicitationEnded {
        elicitation_id: Uuid,
        action: &'a str,
        timed_out: bool,
    },
    /// A running tool call waits for the user's answer to its server's question.
    #[serde(rename = "tool.waiting")]
    ToolWaiting(&'a RawValue),
}

#[derive(Serialize)]
struct EventFrame<'a> {
    #[serde(rename = "type")]
    kind: &'static str,
    channel: &'a str,
    #[serde(flatten)]
    event: &'a ServerEvent<'a>,
    /// Server time of publication, unix milliseconds.
    ts: u64,
}

/// A server event on `channel`, encoded once (stamped now); every server-originated push is
/// one of `ServerEvent`'s, and this is where it becomes the bytes every subscriber gets.
pub fn event_frame(channel: &str, event: &ServerEvent<'_>) -> axum::extract::ws::Utf8Bytes {
    axum::extract::ws::Utf8Bytes::from(event.encode(channel, crate::time::now_ms()))
}

impl ServerEvent<'_> {
    /// The `event` frame for `channel`, serialized once; the same bytes go to every subscriber.
    pub fn encode(&self, channel: &str, ts: u64) -> String {
        serde_json::to_string(&EventFrame {
            kind: "event",
            channel,
            event: self,
            ts,
        })
        .expect("server events always serialize")
    }
}

/// A payload a service owns, serialized once to be embedded in an event.
pub fn raw(payload: &impl Serialize) -> Box<RawValue> {
    serde_json::value::to_raw_value(payload).expect("event payloads serialize")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_event_frame_has_type_channel_event_data_ts_in_that_order() {
        let e = ServerEvent::ChatDelta {
            turn_id: Uuid::nil(),
            message_id: "m",
            index: 3,
            text: "Hel",
        };
        assert_eq!(
            e.encode("session:x", 7),
            r#"{"type":"event","channel":"session:x","event":"chat.delta","data":{"turn_id":"00000000-0000-0000-0000-000000000000","message_id":"m","index":3,"text":"Hel"},"ts":7}"#
        );
        let change = raw(&serde_json::json!({"version": 1}));
        assert_eq!(
            ServerEvent::SyncChange(&change).encode("c", 1),
            r#"{"type":"event","channel":"c","event":"sync.change","data":{"version":1},"ts":1}"#
        );
    }
}
