//! Live chat turns as the bus keeps them: the claim on a session and the content so far. The
//! instance running a turn keeps its own copy here (read first, so a subscriber on the same
//! instance never depends on Redis); the Redis bus also writes it to Redis for the others.

use dashmap::DashMap;
use serde::{Deserialize, Serialize};

/// What identifies a running turn; stored as the session's claim.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LiveTurn {
    pub turn_id: uuid::Uuid,
    pub session: String,
    pub message_id: String,
    pub model: String,
}

/// A running turn as a subscriber first sees it: the content up to delta `index`.
#[derive(Debug, Clone, Serialize)]
pub struct TurnView {
    pub turn_id: uuid::Uuid,
    pub message_id: String,
    pub model: String,
    pub index: u64,
    pub content: String,
}

/// Turns running on this instance, by session.
#[derive(Default)]
pub struct LocalTurns {
    by_session: DashMap<String, (LiveTurn, String, u64)>,
}

impl LocalTurns {
    pub fn claim(&self, t: &LiveTurn) -> bool {
        match self.by_session.entry(t.session.clone()) {
            dashmap::Entry::Occupied(_) => false,
            dashmap::Entry::Vacant(v) => {
                v.insert((t.clone(), String::new(), 0));
                true
            }
        }
    }

    pub fn release(&self, t: &LiveTurn) {
        self.by_session
            .remove_if(&t.session, |_, (cur, _, _)| cur.turn_id == t.turn_id);
    }

    pub fn append(&self, t: &LiveTurn, index: u64, text: &str) {
        if let Some(mut e) = self.by_session.get_mut(&t.session) {
            if e.0.turn_id == t.turn_id {
                e.1.push_str(text);
                e.2 = index;
            }
        }
    }

    pub fn view(&self, session: &str) -> Option<TurnView> {
        self.by_session.get(session).map(|e| TurnView {
            turn_id: e.0.turn_id,
            message_id: e.0.message_id.clone(),
            model: e.0.model.clone(),
            index: e.2,
            content: e.1.clone(),
        })
    }

    pub fn session_of(&self, turn: uuid::Uuid) -> Option<String> {
        self.by_session
            .iter()
            .find(|e| e.0.turn_id == turn)
            .map(|e| e.key().clone())
    }
}
