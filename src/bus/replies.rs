//! Answers awaited by tasks on this instance, by key: a client's `tool.result` for a tool call
//! a turn here forwarded to it, or the result of an MCP tool call run by the instance that holds
//! the user's MCP clients. The answer may arrive on any instance; the bus hands it over.

use dashmap::DashMap;
use serde_json::Value;
use std::sync::Arc;
use tokio::sync::oneshot;

struct Wait {
    /// Only this user's answer is taken (someone else's is refused, not delivered).
    owner: String,
    tx: oneshot::Sender<Value>,
}

/// The answers awaited on this instance. Owned by the bus (its control messages hand answers
/// in); lives as long as the server. A wait ends when answered or when its `Waiter` drops.
#[derive(Default)]
pub struct Replies {
    waits: DashMap<String, Wait>,
}

/// What became of an answer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Handed {
    Delivered,
    /// Someone awaits it, but not from this user.
    NotYours,
    /// Nobody here awaits it (unknown, already answered, or timed out).
    Unknown,
}

/// One awaited answer; dropping it withdraws the wait.
pub struct Waiter {
    replies: Arc<Replies>,
    key: String,
    rx: Option<oneshot::Receiver<Value>>,
}

impl Waiter {
    /// The answer, or `None` if the wait was replaced.
    pub async fn answer(&mut self) -> Option<Value> {
        match self.rx.as_mut() {
            Some(rx) => rx.await.ok(),
            None => None,
        }
    }
}

impl Drop for Waiter {
    fn drop(&mut self) {
        self.replies.waits.remove(&self.key);
    }
}

impl Replies {
    pub fn wait(self: &Arc<Self>, key: String, owner: String) -> Waiter {
        let (tx, rx) = oneshot::channel();
        self.waits.insert(key.clone(), Wait { owner, tx });
        Waiter {
            replies: self.clone(),
            key,
            rx: Some(rx),
        }
    }

    pub fn hand(&self, key: &str, owner: &str, value: Value) -> Handed {
        match self.waits.remove_if(key, |_, w| w.owner == owner) {
            Some((_, w)) => {
                let _ = w.tx.send(value);
                Handed::Delivered
            }
            None if self.waits.contains_key(key) => Handed::NotYours,
            None => Handed::Unknown,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[tokio::test]
    async fn an_answer_reaches_its_waiter_once_and_only_from_its_owner() {
        let r = Arc::new(Replies::default());
        let mut w = r.wait("k".into(), "alice".into());
        assert_eq!(r.hand("k", "mallory", json!(1)), Handed::NotYours);
        assert_eq!(r.hand("other", "alice", json!(1)), Handed::Unknown);
        assert_eq!(r.hand("k", "alice", json!(2)), Handed::Delivered);
        assert_eq!(r.hand("k", "alice", json!(3)), Handed::Unknown);
        assert_eq!(w.answer().await, Some(json!(2)));
        drop(w);
        let w = r.wait("k2".into(), "alice".into());
        drop(w);
        assert_eq!(r.hand("k2", "alice", json!(1)), Handed::Unknown);
    }
}
