//! Messages between instances that are not a channel's frames: evictions, revoked keys, turn
//! cancels, awaited answers and requests for a service one instance holds. One typed enum, so
//! what travels on the control channel is written and read in one place (`serde` keeps the
//! wire form `{"<kind>": ...}`).

use super::replies::Replies;
use crate::domain::UserId;
use crate::hub::Hub;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use tokio::sync::mpsc;
use uuid::Uuid;

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Control {
    /// `chat.cancel` for a turn that runs on some instance.
    CancelTurn(Uuid),
    /// Drop `user_id`'s connections from `channel` (membership revoked).
    Evict {
        channel: String,
        user_id: String,
    },
    /// Close `user_id`'s sockets opened with API key `key_id` (revoked).
    CloseKey {
        user_id: String,
        key_id: Uuid,
    },
    /// The answer awaited under `key` from `owner` (see `replies`).
    Reply {
        key: String,
        owner: String,
        value: Value,
    },
    Request(Request),
}

/// A request for whichever instance holds the service it names; the holder answers with a
/// `Reply` under `key`.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Request {
    McpCall(McpCall),
}

/// A tool call for the instance running `user`'s MCP clients.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct McpCall {
    pub key: String,
    pub user: UserId,
    pub server: String,
    pub tool: String,
    #[serde(default)]
    pub arguments: Map<String, Value>,
    pub timeout_ms: u64,
}

/// Where control messages for services arrive, wired in `app.rs` (the bus knows no service):
/// each service owns the receiving end of its queue.
#[derive(Clone)]
pub struct Inbox {
    /// Chat's live turns cancel the ones running here.
    pub cancels: mpsc::Sender<Uuid>,
    /// The MCP manager serves the calls for users whose clients run here.
    pub requests: mpsc::Sender<Request>,
}

/// The receiving ends of an `Inbox`.
pub struct InboxRx {
    pub cancels: mpsc::Receiver<Uuid>,
    pub requests: mpsc::Receiver<Request>,
}

/// Cancels and requests waiting for their service; past this they are dropped (a cancel is
/// retried by the user, a request's deadline answers for it).
const QUEUE: usize = 256;

impl Inbox {
    pub fn new() -> (Self, InboxRx) {
        let (cancels, cancels_rx) = mpsc::channel(QUEUE);
        let (requests, requests_rx) = mpsc::channel(QUEUE);
        (
            Self { cancels, requests },
            InboxRx {
                cancels: cancels_rx,
                requests: requests_rx,
            },
        )
    }

    /// Acts on a control message that reached this instance.
    pub(super) fn take(&self, msg: Control, hub: &Hub, replies: &Replies) {
        let full = match msg {
            Control::CancelTurn(turn) => self.cancels.try_send(turn).is_err(),
            Control::Evict { channel, user_id } => {
                hub.evict(&channel, &user_id, &super::revoked_frame(&channel));
                false
            }
            Control::CloseKey { user_id, key_id } => {
                hub.close_key(&user_id, key_id, &super::key_revoked_frame());
                false
            }
            Control::Reply { key, owner, value } => {
                replies.hand(&key, &owner, value);
                false
            }
            Control::Request(r) => self.requests.try_send(r).is_err(),
        };
        if full {
            metrics::counter!("bus_requests_dropped_total").increment(1);
        }
    }
}
