//! The convergence property through the real store (SQLite, and PostgreSQL when configured):
//! random mutation sets from 2-5 clients, pushed in random interleavings with offline batches
//! and retries, end identical, equal to a reference model, each mutation applied exactly once,
//! and a client replaying the change log ends with exactly the server's state.

use crate::helpers::sync_gen::*;
use crate::helpers::*;
use proptest::{prelude::*, strategy::ValueTree, test_runner::TestRunner};
use std::collections::{BTreeMap, HashSet};
use switchyard::{
    domain::{Email, Role},
    store::{CatchUp, NewUser, PushRules, Pushed, Store},
    sync::{
        merge::{Doc, Limits},
        ops::Mutation,
    },
};

/// Pushes the clients' mutations: each step picks a client and sends its next 1-3 mutations as
/// one (offline) batch, sometimes with an already-acknowledged one repeated (a retry).
async fn run(
    store: &dyn Store,
    session: switchyard::domain::SessionId,
    user: switchyard::domain::UserId,
    clients: &[Vec<Mutation>],
    picks: &[usize],
) {
    let mut next = vec![0usize; clients.len()];
    let mut p = picks.iter().cycle();
    while next.iter().zip(clients).any(|(n, c)| *n < c.len()) {
        let live: Vec<usize> = (0..clients.len())
            .filter(|&c| next[c] < clients[c].len())
            .collect();
        let pick = *p.next().unwrap();
        let c = live[pick % live.len()];
        let take = 1 + pick % 3;
        let end = (next[c] + take).min(clients[c].len());
        let mut batch: Vec<Pushed<'_>> = Vec::new();
        if next[c] > 0 && pick % 2 == 0 {
            batch.push(Pushed {
                mutation: &clients[c][next[c] - 1],
                refusal: None,
                user,
                caller: 0,
                server: false,
            });
        }
        for m in &clients[c][next[c]..end] {
            batch.push(Pushed {
                mutation: m,
                refusal: None,
                user,
                caller: 0,
                server: false,
            });
        }
        let rules = PushRules {
            limits: Limits::NONE,
            keep_versions: 0,
        };
        let out = store.push(session, &batch, &rules).await.unwrap().unwrap();
        assert!(
            out.results
                .iter()
                .all(|r| matches!(r, switchyard::store::MutationResult::Applied { .. })),
            "{:?}",
            out.results
        );
        next[c] = end;
    }
}

#[tokio::test]
async fn store_interleavings_converge_exactly_once() {
    within(async {
        for (_dir, store) in crate::helpers::fixtures::stores().await {
            let user = store
                .create_user(&NewUser {
                    email: Email::parse("prop@example.com").unwrap(),
                    password_hash: "h".into(),
                    role: Role::User,
                })
                .await
                .unwrap();
            let mut runner = TestRunner::deterministic();
            let strategy = (
                proptest::collection::vec(gen_client(), 2..6),
                proptest::collection::vec(0usize..12, 1..30),
                proptest::collection::vec(0usize..12, 1..30),
            );
            for case in 0..12 {
                let (gen, a, b) = strategy.new_tree(&mut runner).unwrap().current();
                let (x, y) = (
                    build(&gen, &format!("x{case}")),
                    build(&gen, &format!("y{case}")),
                );
                let s1 = store.create_session(user.id, "p").await.unwrap().id;
                let s2 = store.create_session(user.id, "p").await.unwrap().id;
                run(store.as_ref(), s1, user.id, &x, &a).await;
                run(store.as_ref(), s2, user.id, &y, &b).await;
                let live = |d: &Doc| {
                    d.live_registers()
                        .into_iter()
                        .map(|(k, v)| (k.to_string(), v.clone()))
                        .collect::<BTreeMap<_, _>>()
                };
                let snap1 = store.snapshot(s1).await.unwrap().unwrap();
                let snap2 = store.snapshot(s2).await.unwrap().unwrap();
                let total: usize = x.iter().map(Vec::len).sum();
                assert_eq!(
                    snap1.version as usize,
                    total,
                    "each mutation applied exactly once ({})",
                    store.backend()
                );
                assert_eq!(
                    live(&snap1.doc),
                    live(&snap2.doc),
                    "interleavings converge ({})",
                    store.backend()
                );
                assert_eq!(
                    live(&snap1.doc),
                    reference(&x),
                    "equal to the model ({})",
                    store.backend()
                );
                let Some(CatchUp::Changes { changes, .. }) =
                    store.catch_up(s1, 0, 10_000).await.unwrap()
                else {
                    panic!("log reaches back to 0")
                };
                let ids: HashSet<(String, u64)> = changes
                    .iter()
                    .map(|c| (c.mutation.client_id.clone(), c.mutation.mutation_id))
                    .collect();
                assert_eq!(ids.len(), total, "no mutation logged twice");
                let mut replica = Doc::default();
                for c in &changes {
                    replica
                        .apply(&c.mutation, c.version, &Limits::NONE)
                        .unwrap();
                }
                assert_eq!(
                    live(&replica),
                    live(&snap1.doc),
                    "a client replaying the log ends at the server's state"
                );
            }
        }
    })
    .await
}
