//! What the sync half of the store takes and returns.

use crate::sync::{merge::Doc, ops::Mutation};
use serde::Serialize;

/// The answer for one pushed mutation, kept so a retry gets the same answer back.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "status", rename_all = "snake_case")]
pub enum MutationResult {
    Applied {
        client_id: String,
        mutation_id: u64,
        version: u64,
    },
    Refused {
        client_id: String,
        mutation_id: u64,
        error: String,
    },
    /// Not applied: the client skipped ids. Its last id is unchanged.
    OutOfOrder {
        client_id: String,
        mutation_id: u64,
        expected: u64,
    },
}

/// One mutation as pushed, with a refusal already decided by the caller (a clock too far
/// ahead, say), which is recorded like any other refusal.
pub struct Pushed<'a> {
    pub mutation: &'a Mutation,
    pub refusal: Option<String>,
    /// Who pushed it (a `client_id` belongs to the account that first used it).
    pub user: crate::domain::UserId,
}

/// A committed change, in version order: what is broadcast and what the log replays.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Change {
    pub version: u64,
    #[serde(flatten)]
    pub mutation: Mutation,
}

#[derive(Debug, Default)]
pub struct PushOutcome {
    pub results: Vec<MutationResult>,
    pub applied: Vec<Change>,
    pub version: u64,
}

/// A session's full synced state at `version`.
#[derive(Debug, Clone)]
pub struct Snapshot {
    pub version: u64,
    pub doc: Doc,
}

pub enum CatchUp {
    /// The changes after `since`, in order, up to `version`.
    Changes { version: u64, changes: Vec<Change> },
    /// The log no longer reaches back to `since`.
    Snapshot(Snapshot),
}
