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

/// A client's old answers are pruned when its last id crosses a multiple of this.
pub const PRUNE_EVERY: u64 = 32;

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
    /// those can go. Emitted once every [`PRUNE_EVERY`] ids, so pruning costs a statement per
    /// that many mutations, not one per push.
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
    let mut p = Planner {
        out: Plan {
            version: start,
            ..Plan::default()
        },
        loaded,
        last: loaded.last.clone(),
        fresh: HashMap::new(),
        blocked: HashSet::new(),
        advanced: Vec::new(),
        horizons: HashMap::new(),
    };
    for pushed in batch {
        if pushed.server || p.in_order(pushed) {
            p.decide(pushed, doc, limits);
        }
    }
    p.finish()
}

/// A plan being made: what each client has reached so far in this batch.
struct Planner<'a> {
    out: Plan,
    loaded: &'a Loaded,
    last: HashMap<ClientKey, u64>,
    /// Answers decided in this batch (a retry later in it gets the same).
    fresh: HashMap<(ClientKey, u64), Answer>,
    /// A caller's client that skipped an id: its later mutations in the batch wait too.
    blocked: HashSet<(usize, ClientKey)>,
    advanced: Vec<ClientKey>,
    /// The lowest id each client pushed: answers below it are no longer needed.
    horizons: HashMap<ClientKey, u64>,
}

impl Planner<'_> {
    /// A client mutation that is the client's next: true. A retry gets its stored answer, a
    /// skipped id (or one after it) `out_of_order`: false.
    fn in_order(&mut self, p: &Pushed<'_>) -> bool {
        let m = p.mutation;
        let (client, id) = (key_of(p), m.mutation_id);
        let prev = self.last.get(&client).copied().unwrap_or(0);
        self.horizons
            .entry(client.clone())
            .and_modify(|h| *h = (*h).min(id))
            .or_insert(id);
        if id <= prev {
            let key = (client, id);
            let answer = self
                .fresh
                .get(&key)
                .or_else(|| self.loaded.answers.get(&key));
            self.out.results.push(answer_result(m, answer));
            return false;
        }
        let caller_client = (p.caller, client);
        if id > prev + 1 || self.blocked.contains(&caller_client) {
            self.blocked.insert(caller_client);
            self.out.results.push(MutationResult::OutOfOrder {
                client_id: m.client_id.clone(),
                mutation_id: id,
                expected: prev + 1,
            });
            return false;
        }
        true
    }

    /// Applies or refuses `p`, and remembers a client mutation's answer.
    fn decide(&mut self, p: &Pushed<'_>, doc: &mut Doc, limits: &Limits) {
        let m = p.mutation;
        let decided = match &p.refusal {
            Some(r) => Err(r.clone()),
            None => m
                .validate()
                .map_err(|e| Refusal::new(RefusalCode::Invalid, e))
                .and_then(|()| doc.apply(m, self.out.version + 1, limits)),
        };
        let out = &mut self.out;
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
            return;
        }
        let (client, id) = (key_of(p), m.mutation_id);
        self.last.insert(client.clone(), id);
        if !self.advanced.contains(&client) {
            self.advanced.push(client.clone());
        }
        out.answers.push(AnswerRow {
            client: client.clone(),
            mutation_id: id,
            answer: answer.clone(),
        });
        self.fresh.insert((client, id), answer);
    }

    /// Clients' new last ids, and the horizons worth pruning at (once per `PRUNE_EVERY` ids).
    fn finish(self) -> Plan {
        let Planner {
            mut out,
            loaded,
            last,
            advanced,
            horizons,
            ..
        } = self;
        out.clients = advanced
            .into_iter()
            .map(|c| {
                let l = last[&c];
                (c, l)
            })
            .collect();
        out.horizons = horizons
            .into_iter()
            .filter(|(c, _)| {
                let before = loaded.last.get(c).copied().unwrap_or(0);
                last.get(c)
                    .is_some_and(|now| now / PRUNE_EVERY > before / PRUNE_EVERY)
            })
            .collect();
        out
    }
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
