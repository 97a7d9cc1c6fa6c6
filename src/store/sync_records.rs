//! What the sync half of the store takes and returns.

use crate::domain::UserId;
use crate::sync::{
    merge::{Doc, Limits},
    ops::{Mutation, Refusal, RefusalCode},
};
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
        code: RefusalCode,
        error: String,
    },
    /// Not applied: the client skipped ids. Its last id is unchanged.
    OutOfOrder {
        client_id: String,
        mutation_id: u64,
        expected: u64,
    },
}

impl MutationResult {
    pub fn refused(m: &Mutation, r: Refusal) -> Self {
        MutationResult::Refused {
            client_id: m.client_id.clone(),
            mutation_id: m.mutation_id,
            code: r.code,
            error: r.message,
        }
    }
}

/// One mutation as pushed, with a refusal already decided by the caller (a clock too far
/// ahead, say), which is recorded like any other refusal.
pub struct Pushed<'a> {
    pub mutation: &'a Mutation,
    pub refusal: Option<Refusal>,
    /// Who pushed it; a `client_id` is scoped to its account.
    pub user: UserId,
    /// Which push of the group it came from: a skipped id blocks the rest of its own push,
    /// never another push grouped with it, so an answer never depends on the grouping.
    pub caller: usize,
    /// Written by the server (a turn, a session's creation): no per-client bookkeeping.
    pub server: bool,
}

/// How a push is bounded: the session caps and how much change log to keep.
#[derive(Debug, Clone, Copy)]
pub struct PushRules {
    pub limits: Limits,
    /// Change-log versions kept per session (older rows are compacted); 0 keeps all.
    pub keep_versions: u64,
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

/// Why a catch-up answers with a snapshot instead of changes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum SnapshotReason {
    /// The client asked for one (no `since`).
    Requested,
    /// The change log was compacted past `since`.
    Compacted,
    /// More changes than `sync.catch_up_limit` since `since`.
    TooFarBehind,
    /// `since` is past the session's version: the client's state is from elsewhere (a
    /// restored backup, another deployment); it must drop its replica.
    Ahead,
}

pub enum CatchUp {
    /// The changes after `since`, in order, up to `version`.
    Changes { version: u64, changes: Vec<Change> },
    /// The log cannot answer `since`.
    Snapshot(Snapshot, SnapshotReason),
}
