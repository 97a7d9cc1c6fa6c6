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
    /// Not registered where other instances check answers (Redis was unreachable): only an
    /// answer arriving here can take it.
    local_only: bool,
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
        self.waits.insert(
            key.clone(),
            Wait {
                owner,
                tx,
                local_only: false,
            },
        );
        Waiter {
            replies: self.clone(),
            key,
            rx: Some(rx),
        }
    }

    /// The wait `key` could not be registered beyond this instance.
    pub fn mark_local_only(&self, key: &str) {
        if let Some(mut w) = self.waits.get_mut(key) {
            w.local_only = true;
        }
    }

    /// Hands `value` to the wait `key` only if it is local-only (see `mark_local_only`).
    pub fn hand_local_only(&self, key: &str, owner: &str, value: Value) -> Handed {
        self.hand_if(key, owner, value, |w| w.local_only)
    }

    pub fn hand(&self, key: &str, owner: &str, value: Value) -> Handed {
        self.hand_if(key, owner, value, |_| true)
    }

    fn hand_if(
        &self,
        key: &str,
        owner: &str,
        value: Value,
        take: impl Fn(&Wait) -> bool,
    ) -> Handed {
        match self
            .waits
            .remove_if(key, |_, w| w.owner == owner && take(w))
        {
            Some((_, w)) => {
                let _ = w.tx.send(value);
                Handed::Delivered
            }
            None if self.waits.get(key).is_some_and(|w| w.owner != owner) => Handed::NotYours,
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

    #[tokio::test]
    async fn only_a_wait_marked_local_only_is_taken_by_a_local_only_hand() {
        let r = Arc::new(Replies::default());
        let mut w = r.wait("k".into(), "alice".into());
        assert_eq!(r.hand_local_only("k", "alice", json!(1)), Handed::Unknown);
        r.mark_local_only("k");
        assert_eq!(
            r.hand_local_only("k", "mallory", json!(2)),
            Handed::NotYours
        );
        assert_eq!(r.hand_local_only("k", "alice", json!(3)), Handed::Delivered);
        assert_eq!(w.answer().await, Some(json!(3)));
    }
}
