//! The control channel every instance subscribes to: evictions, turn cancels, answers awaited
//! on some instance (a client's tool result, a remote MCP call's result), and requests for the
//! instance holding a service (an MCP tool call). Awaited answers are also registered in Redis
//! (`<prefix>wait:<key>` = owner, expiring with the wait), so the instance an answer arrives on
//! can refuse an unknown or someone else's answer before publishing it.

use super::redis::Inner;
use super::replies::{Handed, Waiter};
use super::Control;
use serde_json::Value;
use std::time::Duration;

/// 1: taken (deleted); -1: awaited from someone else; 0: not awaited.
const TAKE: &str = r"
local v = redis.call('GET', KEYS[1])
if not v then return 0 end
if v ~= ARGV[1] then return -1 end
redis.call('DEL', KEYS[1])
return 1
";

impl Inner {
    fn wait_key(&self, key: &str) -> String {
        format!("{}wait:{key}", self.prefix)
    }

    pub(super) async fn publish_control(&self, msg: &Control) {
        let Ok(text) = serde_json::to_string(msg) else {
            return;
        };
        let mut cmd = redis::cmd(self.publish);
        cmd.arg(&self.control).arg(text);
        if let Err(e) = self.run::<i64>(&cmd).await {
            tracing::warn!(error = %e, "control message not published to other instances");
        }
    }

    pub(super) fn on_control(&self, payload: &[u8]) {
        match serde_json::from_slice::<Control>(payload) {
            Ok(msg) => self.inbox.take(msg, &self.hub, &self.replies),
            Err(_) => metrics::counter!("bus_bad_messages_total").increment(1),
        }
    }

    pub(super) async fn expect_reply(&self, key: &str, owner: &str, ttl: Duration) -> Waiter {
        let waiter = self.replies.wait(key.to_owned(), owner.to_owned());
        let mut cmd = redis::cmd("SET");
        cmd.arg(self.wait_key(key))
            .arg(owner)
            .arg("PX")
            .arg(ttl.as_millis().max(1) as u64);
        if let Err(e) = self.run::<()>(&cmd).await {
            tracing::warn!(error = %e, "awaited answer not registered: only this instance takes it");
            self.replies.mark_local_only(key);
        }
        waiter
    }

    /// The answer is taken in Redis first, wherever its waiter is: two answers for one wait
    /// arriving on two instances at once can then never both be delivered (taking it locally
    /// first acknowledged one that the other instance had taken already).
    pub(super) async fn reply(&self, key: &str, owner: &str, value: Value) -> Handed {
        let mut cmd = redis::cmd("EVAL");
        cmd.arg(TAKE).arg(1).arg(self.wait_key(key)).arg(owner);
        match self.run::<i64>(&cmd).await {
            Ok(1) => match self.replies.hand(key, owner, value.clone()) {
                Handed::Unknown => {
                    self.publish_control(&Control::Reply {
                        key: key.to_owned(),
                        owner: owner.to_owned(),
                        value,
                    })
                    .await;
                    Handed::Delivered
                }
                handed => handed,
            },
            Ok(-1) => Handed::NotYours,
            // Not awaited anywhere, answered already, or a wait here Redis never heard of.
            Ok(_) => self.replies.hand_local_only(key, owner, value),
            Err(e) => {
                tracing::warn!(error = %e, "answer not checked: redis unreachable; only waits here take it");
                self.replies.hand(key, owner, value)
            }
        }
    }
}
