//! One group commit's decisions, in plain Rust: which mutation is new, a retry, out of order
//! or refused; what each applied one changed. The store loads what this needs (the clients'
//! last ids, stored answers for retries, the registers and messages the batch names), calls
//! [`plan`], then writes what it says in one transaction. No SQL here, no I/O.

use super::{
    merge::{Doc, Limits, Touched},
    ops::{Refusal, RefusalCode},
};
use crate::{
    domain::UserId,
    store::{Change, MutationResult, Pushed},
};
use std::collections::{BTreeSet, HashMap, HashSet};

/// A client is its account plus the id it chose (ids are scoped per account).
pub type ClientKey = (UserId, String);

/// A stored answer, returned to a retry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Answer {
    Applied(u64),
    Refused(Refusal),
}

/// One row of answers to store.
#[derive(Debug, Clone)]
pub struct AnswerRow {
    pub client: ClientKey,
    pub mutation_id: u64,
    pub answer: Answer,
}

/// What the store read before planning.
#[derive(Debug, Default)]
pub struct Loaded {
    /// The last mutation id of each client in the batch (absent: none yet).
    pub last: HashMap<ClientKey, u64>,
    /// Stored answers of the batch's retries.
    pub answers: HashMap<(ClientKey, u64), Answer>,
}

/// What to write, and what to answer.
#[derive(Debug, Default)]
pub struct Plan {
    pub results: Vec<MutationResult>,
    pub applied: Vec<Change>,
    pub answers: Vec<AnswerRow>,
    /// New last ids of the clients that advanced.
    pub clients: Vec<(ClientKey, u64)>,
    /// Per client, the lowest id it pushed: it holds the answers of everything below, so
    /// those can go.
    pub horizons: Vec<(ClientKey, u64)>,
    pub touched: Touched,
    pub version: u64,
}

fn key_of(p: &Pushed<'_>) -> ClientKey {
    (p.user, p.mutation.client_id.clone())
}

/// The retries in `batch` whose stored answers the store must read.
pub fn retries(batch: &[Pushed<'_>], last: &HashMap<ClientKey, u64>) -> Vec<(ClientKey, u64)> {
    batch
        .iter()
        .filter(|p| !p.server)
        .map(|p| (key_of(p), p.mutation.mutation_id))
        .filter(|(k, id)| last.get(k).is_some_and(|l| id <= l))
        .collect()
}

/// Register keys and message ids the batch's new, valid mutations name (an invalid one is
/// refused without reading anything: its keys may not even be storable text).
pub fn keys(
    batch: &[Pushed<'_>],
    last: &HashMap<ClientKey, u64>,
) -> (BTreeSet<String>, BTreeSet<String>) {
    let (mut regs, mut msgs) = (BTreeSet::new(), BTreeSet::new());
    for p in batch
        .iter()
        .filter(|p| p.refusal.is_none() && p.mutation.validate().is_ok())
    {
        let retry = !p.server
            && last
                .get(&key_of(p))
                .is_some_and(|l| p.mutation.mutation_id <= *l);
        if !retry {
            let (r, m) = Doc::keys_of(p.mutation);
            regs.extend(r);
            msgs.extend(m);
        }
    }
    (regs, msgs)
}

/// Decides every mutation of `batch`, in order, starting at session version `start`, applying
/// the new ones to `doc` (which holds what [`keys`] named, and the session's counts).
pub fn plan(
    batch: &[Pushed<'_>],
    start: u64,
    doc: &mut Doc,
    loaded: &Loaded,
    limits: &Limits,
) -> Plan {
    let mut out = Plan {
        version: start,
        ..Plan::default()
    };
    let mut last = loaded.last.clone();
    let mut fresh: HashMap<(ClientKey, u64), Answer> = HashMap::new();
    let mut blocked: HashSet<(usize, ClientKey)> = HashSet::new();
    let mut advanced: Vec<ClientKey> = Vec::new();
    let mut horizons: HashMap<ClientKey, u64> = HashMap::new();
    for p in batch {
        let m = p.mutation;
        let (client, id) = (key_of(p), m.mutation_id);
        if !p.server {
            let prev = last.get(&client).copied().unwrap_or(0);
            horizons
                .entry(client.clone())
                .and_modify(|h| *h = (*h).min(id))
                .or_insert(id);
            if id <= prev {
                let key = (client, id);
                let answer = fresh.get(&key).or_else(|| loaded.answers.get(&key));
                out.results.push(answer_result(m, answer));
                continue;
            }
            let caller_client = (p.caller, client.clone());
            if id > prev + 1 || blocked.contains(&caller_client) {
                blocked.insert(caller_client);
                out.results.push(MutationResult::OutOfOrder {
                    client_id: m.client_id.clone(),
                    mutation_id: id,
                    expected: prev + 1,
                });
                continue;
            }
        }
        let decided = match &p.refusal {
            Some(r) => Err(r.clone()),
            None => m
                .validate()
                .map_err(|e| Refusal::new(RefusalCode::Invalid, e))
                .and_then(|()| doc.apply(m, out.version + 1, limits)),
        };
        let answer = match decided {
            Ok(touched) => {
                out.version += 1;
                out.touched.extend(touched);
                out.applied.push(Change {
                    version: out.version,
                    mutation: m.clone(),
                });
                Answer::Applied(out.version)
            }
            Err(r) => Answer::Refused(r),
        };
        out.results.push(answer_result(m, Some(&answer)));
        if p.server {
            continue;
        }
        last.insert(client.clone(), id);
        if !advanced.contains(&client) {
            advanced.push(client.clone());
        }
        out.answers.push(AnswerRow {
            client: client.clone(),
            mutation_id: id,
            answer: answer.clone(),
        });
        fresh.insert((client, id), answer);
    }
    out.clients = advanced
        .into_iter()
        .map(|c| {
            let l = last[&c];
            (c, l)
        })
        .collect();
    out.horizons = horizons.into_iter().collect();
    out
}

fn answer_result(m: &crate::sync::ops::Mutation, answer: Option<&Answer>) -> MutationResult {
    match answer {
        Some(Answer::Applied(version)) => MutationResult::Applied {
            client_id: m.client_id.clone(),
            mutation_id: m.mutation_id,
            version: *version,
        },
        Some(Answer::Refused(r)) => MutationResult::refused(m, r.clone()),
        None => MutationResult::refused(
            m,
            Refusal::new(
                RefusalCode::AlreadyProcessed,
                "this mutation was processed long ago and its answer is gone; drop it",
            ),
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sync::{hlc::Hlc, ops::Mutation, ops::Op};

    fn m(client: &str, id: u64) -> Mutation {
        Mutation {
            client_id: client.into(),
            mutation_id: id,
            hlc: Hlc { ms: id, counter: 0 },
            ops: vec![Op::AddTag {
                tag: format!("t{id}"),
            }],
        }
    }

    #[test]
    fn a_skipped_id_blocks_only_its_own_push() {
        let user = UserId(uuid::Uuid::nil());
        let (two, one) = (m("x1", 2), m("x1", 1));
        let pushed = |mutation, caller| Pushed {
            mutation,
            refusal: None,
            user,
            caller,
            server: false,
        };
        let batch = [pushed(&two, 0), pushed(&one, 1)];
        let mut doc = Doc::default();
        let p = plan(&batch, 0, &mut doc, &Loaded::default(), &Limits::NONE);
        assert!(matches!(
            p.results[0],
            MutationResult::OutOfOrder { expected: 1, .. }
        ));
        assert!(
            matches!(p.results[1], MutationResult::Applied { version: 1, .. }),
            "{:?}",
            p.results[1]
        );
    }
}
