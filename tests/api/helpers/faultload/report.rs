//! What a fault run found, and the promises checked against it.

use super::super::replica::{doc_from_snapshot, visible};
use super::driver::{Heard, Turns};
use super::writer::Outcome;
use serde_json::{json, Value};

pub struct Report {
    pub outcomes: Vec<Outcome>,
    pub turns: Turns,
    pub heard: Heard,
    /// Each session's final state, read from the server.
    pub snapshots: Vec<(String, Value)>,
    /// Each session's owner's token (same order).
    pub owners: Vec<String>,
}

impl Report {
    /// The promises: every acknowledged mutation there exactly once and in its client's order,
    /// every replica equal to the server, no gap or duplicate any client noticed, every turn
    /// ended (none left streaming).
    pub fn check(&self) {
        for o in &self.outcomes {
            assert!(
                o.anomalies.is_empty(),
                "{} saw: {:?}",
                o.client_id,
                o.anomalies
            );
            let (_, snap) = self
                .snapshots
                .iter()
                .find(|(id, _)| *id == o.session_id)
                .expect("its session");
            let n = o.acked.len() as u64;
            assert!(n > 0, "{} had nothing acknowledged", o.client_id);
            assert_eq!(
                o.acked.keys().copied().collect::<Vec<_>>(),
                (1..=n).collect::<Vec<_>>(),
                "{}: every mutation it made was acknowledged",
                o.client_id
            );
            let versions: Vec<u64> = o.acked.values().copied().collect();
            assert!(
                versions.windows(2).all(|w| w[0] < w[1]),
                "{}: a client's mutations are committed in its order: {versions:?}",
                o.client_id
            );
            let mine: Vec<u64> = snap["messages"]
                .as_array()
                .expect("messages")
                .iter()
                .filter_map(|m| m["id"].as_str()?.strip_prefix(&format!("{}-", o.client_id)))
                .map(|mid| mid.parse().expect("mid"))
                .collect();
            assert_eq!(
                mine,
                (1..=n).collect::<Vec<_>>(),
                "{}: each acknowledged message once, in order",
                o.client_id
            );
            assert_eq!(snap["context"][&o.client_id], json!(n), "{}", o.client_id);
            assert_eq!(
                o.version,
                snap["version"].as_u64().unwrap(),
                "{}",
                o.client_id
            );
            assert!(
                visible(&o.replica) == visible(&doc_from_snapshot(snap)),
                "{}: its replica differs from the server's state",
                o.client_id
            );
        }
        assert!(
            self.turns.anomalies.is_empty(),
            "turns: {:?}",
            self.turns.anomalies
        );
        let (_, first) = &self.snapshots[0];
        for m in first["messages"].as_array().expect("messages") {
            assert_eq!(m["streaming"], false, "no message left streaming: {m}");
        }
        for (turn, (message, _)) in &self.turns.started {
            let m = first["messages"]
                .as_array()
                .expect("messages")
                .iter()
                .find(|m| m["id"] == message.as_str())
                .unwrap_or_else(|| panic!("turn {turn}'s message {message} is stored"));
            let status = m["metadata"]["status"].as_str().unwrap_or("");
            assert!(
                ["complete", "failed", "cancelled"].contains(&status),
                "turn {turn} ended: {m}"
            );
        }
    }

    /// How the turns the user started ended: their messages' final status, by status.
    pub fn turn_statuses(&self) -> Vec<(String, String)> {
        let (_, first) = &self.snapshots[0];
        self.turns
            .started
            .iter()
            .map(|(turn, (message, _))| {
                let m = first["messages"]
                    .as_array()
                    .expect("messages")
                    .iter()
                    .find(|m| m["id"] == message.as_str())
                    .cloned()
                    .unwrap_or_default();
                let why = m["metadata"]["error"]["code"]
                    .as_str()
                    .or(m["metadata"]["status"].as_str())
                    .unwrap_or("")
                    .to_owned();
                (turn.clone(), why)
            })
            .collect()
    }

    /// Counted failures (closes, refusals, error codes) over every writer, and the chat delta
    /// gaps they noticed (`delta gap`).
    pub fn failures(&self) -> std::collections::BTreeMap<String, u64> {
        let mut all = std::collections::BTreeMap::new();
        for o in &self.outcomes {
            for (k, v) in &o.failures {
                *all.entry(k.clone()).or_default() += v;
            }
            if o.delta_gaps > 0 {
                *all.entry("delta gap".to_owned()).or_default() += o.delta_gaps;
            }
        }
        all
    }
}
