//! Messages between instances that are not a channel's frames: evictions, revoked keys, turn
//! cancels, awaited answers and requests for a service one instance holds. One typed enum, so
//! what travels on the control channel is written and read in one place (`serde` keeps the
//! wire form `{"<kind>": ...}`).

use super::replies::Replies;
use crate::domain::Refused;
use crate::domain::UserId;
use crate::hub::Hub;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use std::sync::Arc;
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
    /// Credentials refused from now on: the sign-ins `families` (their access tokens until
    /// `until`, unix seconds) or, when `account` is `Some(true)`, every credential of `user_id`
    /// (disabled or deleted; `Some(false)`: enabled again). Matching sockets close (4001).
    Refuse {
        user_id: UserId,
        families: Vec<Uuid>,
        until: i64,
        account: Option<bool>,
        /// The account's role changed to this: access tokens claiming another are refused.
        #[serde(default)]
        role: Option<crate::domain::Role>,
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
    /// The turn's call, shown as waiting if the server asks the user something.
    #[serde(default)]
    pub origin: Option<crate::domain::CallOrigin>,
}

/// Where control messages for services arrive, wired in `app.rs` (the bus knows no service):
/// each service owns the receiving end of its queue.
#[derive(Clone)]
pub struct Inbox {
    /// Chat's live turns cancel the ones running here.
    pub cancels: mpsc::Sender<Uuid>,
    /// The MCP manager serves the calls for users whose clients run here.
    pub requests: mpsc::Sender<Request>,
    /// What authentication refuses (shared with the auth service).
    pub refused: Arc<Refused>,
}

/// The receiving ends of an `Inbox`.
pub struct InboxRx {
    pub cancels: mpsc::Receiver<Uuid>,
    pub requests: mpsc::Receiver<Request>,
    pub refused: Arc<Refused>,
}

/// Cancels and requests waiting for their service; past this they are dropped (a cancel is
/// retried by the user, a request's deadline answers for it).
const QUEUE: usize = 256;

impl Inbox {
    pub fn new() -> (Self, InboxRx) {
        let (cancels, cancels_rx) = mpsc::channel(QUEUE);
        let (requests, requests_rx) = mpsc::channel(QUEUE);
        let refused = Arc::new(Refused::new());
        (
            Self {
                cancels,
                requests,
                refused: refused.clone(),
            },
            InboxRx {
                cancels: cancels_rx,
                requests: requests_rx,
                refused,
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
            Control::Refuse {
                user_id,
                families,
                until,
                account,
                role,
            } => {
                if let Some(r) = role {
                    self.refused.set_role(user_id, r);
                }
                refuse(&self.refused, hub, user_id, &families, until, account);
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

/// Applies a `Refuse` here: remembered for authentication, and the matching sockets closed.
pub fn refuse(
    refused: &Refused,
    hub: &Hub,
    user: UserId,
    families: &[Uuid],
    until: i64,
    account: Option<bool>,
) {
    refused.revoke_families(families, until);
    if let Some(a) = account {
        refused.set_user_refused(user, a);
    }
    let user = user.to_string();
    match account {
        Some(true) => hub.close_user(
            &user,
            None,
            &super::refused_frame("this account is disabled"),
        ),
        _ if !families.is_empty() => {
            let frame = super::refused_frame("this sign-in was revoked; sign in again");
            hub.close_user(&user, Some(families), &frame)
        }
        _ => 0,
    };
}
