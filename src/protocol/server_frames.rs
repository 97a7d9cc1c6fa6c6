//! What the server sends: replies, events, client broadcasts, the welcome; each encoded once
//! and the same bytes sent to every subscriber.

use serde::{Deserialize, Serialize};
use serde_json::value::RawValue;
use std::borrow::Cow;

/// Who sent an ephemeral event.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct Sender<'a> {
    #[serde(borrow)]
    pub user_id: Cow<'a, str>,
    #[serde(borrow)]
    pub conn_id: Cow<'a, str>,
}

/// A presence entry: one connection of a user on a session channel.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct Member {
    pub user_id: String,
    pub conn_id: String,
    pub device: Option<String>,
    /// Unix milliseconds.
    pub connected_since: u64,
}

/// A channel's joins and leaves over one interval, from one instance. Applying them to the
/// list a `subscribe` reply gave keeps it current; each connection is listed once, by where it
/// ended the interval.
#[derive(Debug, Serialize)]
pub struct PresenceDiff {
    pub joins: Vec<Member>,
    pub leaves: Vec<Member>,
    /// How many joined and left in the interval (more than listed when `truncated`).
    pub joined: usize,
    pub left: usize,
    /// More changed than `ws.presence_diff_max`: the lists are empty, only the counts tell;
    /// a client that needs the list asks with `presence`.
    pub truncated: bool,
    /// Members of the channel now, on every instance.
    pub count: usize,
}

impl PresenceDiff {
    /// The diff of these joins and leaves, lists emptied (`truncated`) past `max` changes: the
    /// one place that rule lives (the presence service and the reaper of a dead instance).
    pub fn new(joins: Vec<Member>, leaves: Vec<Member>, count: usize, max: usize) -> Self {
        let (joined, left) = (joins.len(), leaves.len());
        let truncated = joined + left > max;
        let (joins, leaves) = match truncated {
            true => (Vec::new(), Vec::new()),
            false => (joins, leaves),
        };
        Self {
            joins,
            leaves,
            joined,
            left,
            truncated,
            count,
        }
    }
}

#[derive(Debug, Serialize)]
pub struct Limits {
    pub max_frame_bytes: usize,
    pub frames_per_sec: u32,
    pub max_subscriptions: usize,
    pub heartbeat_secs: u64,
    /// Deepest nesting of a frame (`server.max_json_depth`).
    pub max_json_depth: usize,
    /// Mutations per `session.push` (`sync.max_batch`).
    pub max_batch: usize,
}

#[derive(Debug, Serialize)]
#[serde(tag = "type")]
pub enum ServerFrame<'a> {
    /// First frame after authentication.
    #[serde(rename = "welcome")]
    Welcome {
        conn_id: &'a str,
        user_id: &'a str,
        /// Access-token expiry, unix seconds (absent for API keys).
        expires_at: Option<i64>,
        limits: Limits,
    },
    #[serde(rename = "ok")]
    Ok {
        id: &'a str,
        #[serde(skip_serializing_if = "Option::is_none")]
        result: Option<serde_json::Value>,
    },
    #[serde(rename = "error")]
    Error {
        id: Option<&'a str>,
        code: super::ErrorCode,
        message: &'a str,
    },
    /// A client's ephemeral event (`publish`), relayed: never the server's own.
    #[serde(rename = "broadcast")]
    Broadcast {
        channel: &'a str,
        event: &'a str,
        data: &'a RawValue,
        from: Sender<'a>,
        /// Server time of publication, unix milliseconds.
        ts: u64,
    },
}

impl ServerFrame<'_> {
    /// Serialized once; the same bytes go to every subscriber.
    pub fn encode(&self) -> String {
        serde_json::to_string(self).expect("server frames always serialize")
    }
}
