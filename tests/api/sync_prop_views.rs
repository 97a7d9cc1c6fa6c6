//! The convergence property, seen the way clients see it: snapshots read while pushes race
//! them are each exactly the replay of the change log up to their version; a replica built
//! from any of those snapshots (as the wire shows it, stamps included) plus the changes after
//! it ends equal to the server; and mutations carrying an op this server does not know are
//! refused alone while the rest apply. Through the real store, SQLite and PostgreSQL.

use crate::helpers::replica::{apply_change, doc_from_snapshot, visible};
use crate::helpers::sync_gen::{build, gen_client, reference};
use crate::helpers::*;
use proptest::{strategy::Strategy, strategy::ValueTree, test_runner::TestRunner};
use serde_json::json;
use std::sync::{
    atomic::{AtomicBool, Ordering},
    Arc,
};
use switchyard::{
    domain::{Email, Role},
    store::{CatchUp, MutationResult, NewUser, PushRules, Pushed, Snapshot, Store},
    sync::{
        hlc::Hlc,
        merge::Limits,
        ops::{Incoming, Mutation, RefusalCode},
        view::SnapshotView,
    },
};

/// A mutation from a newer client: an op this server has never heard of.
fn from_the_future(client: &str, id: u64) -> Incoming {
    serde_json::from_value(json!({"client_id": client, "mutation_id": id, "hlc": "1:0",
        "ops": [{"op": "set_reaction", "message_id": "m", "emoji": "+1"}]}))
    .unwrap()
}

/// Each client's mutations as pushed: its own, with every third id taken by an unknown op.
fn with_unknown_ops(clients: &[Vec<Mutation>]) -> Vec<Vec<Incoming>> {
    clients
        .iter()
        .map(|muts| {
            let mut out = Vec::new();
            for m in muts {
                if out.len() % 3 == 2 {
                    out.push(from_the_future(&m.client_id, out.len() as u64 + 1));
                }
                let mut m = m.clone();
                m.mutation_id = out.len() as u64 + 1;
                out.push(Incoming {
                    mutation: m,
                    refusal: None,
                });
            }
            out
        })
        .collect()
}

async fn push_all(
    store: &dyn Store,
    session: switchyard::domain::SessionId,
    user: switchyard::domain::UserId,
    clients: &[Vec<Incoming>],
    picks: &[usize],
) {
    let rules = PushRules {
        limits: Limits::NONE,
        keep_versions: 0,
    };
    let mut next = vec![0usize; clients.len()];
    let mut p = picks.iter().cycle();
    while next.iter().zip(clients).any(|(n, c)| *n < c.len()) {
        let live: Vec<usize> = (0..clients.len())
            .filter(|&c| next[c] < clients[c].len())
            .collect();
        let pick = *p.next().unwrap();
        let c = live[pick % live.len()];
        let end = (next[c] + 1 + pick % 3).min(clients[c].len());
        let batch: Vec<Pushed<'_>> = clients[c][next[c]..end]
            .iter()
            .map(|i| Pushed {
                mutation: &i.mutation,
                refusal: i.refusal.clone(),
                user,
                caller: 0,
                server: false,
            })
            .collect();
        let out = store.push(session, &batch, &rules).await.unwrap().unwrap();
        for (i, r) in clients[c][next[c]..end].iter().zip(&out.results) {
            match (&i.refusal, r) {
                (Some(_), MutationResult::Refused { code, .. }) => {
                    assert_eq!(*code, RefusalCode::UnknownOp)
                }
                (None, MutationResult::Applied { .. }) => {}
                other => panic!("unexpected answer {other:?}"),
            }
        }
        next[c] = end;
    }
}

/// The snapshot as a client receives it (JSON), turned back into a replica.
fn wire(s: &Snapshot) -> serde_json::Value {
    serde_json::to_value(SnapshotView::new(s.version, &s.doc, Hlc::default())).unwrap()
}

#[tokio::test]
async fn snapshots_racing_pushes_are_log_prefixes_and_replicas_from_them_converge() {
    within(async {
        for (_dir, store) in crate::helpers::fixtures::stores().await {
            let user = store
                .create_user(&NewUser {
                    email: Email::parse("views@example.com").unwrap(),
                    password_hash: "h".into(),
                    role: Role::User,
                })
                .await
                .unwrap();
            let mut runner = TestRunner::deterministic();
            let strategy = (
                proptest::collection::vec(gen_client(), 2..6),
                proptest::collection::vec(0usize..12, 1..30),
            );
            for case in 0..8 {
                let (gen, picks) = strategy.new_tree(&mut runner).unwrap().current();
                let plain = build(&gen, &format!("v{case}"));
                let pushed = with_unknown_ops(&plain);
                let session = store.create_session(user.id, "p").await.unwrap().id;
                let done = Arc::new(AtomicBool::new(false));
                let reader = {
                    let (store, done) = (store.clone(), done.clone());
                    tokio::spawn(async move {
                        let mut seen = Vec::new();
                        while !done.load(Ordering::Relaxed) {
                            seen.push(store.snapshot(session).await.unwrap().unwrap());
                            tokio::task::yield_now().await;
                        }
                        seen
                    })
                };
                push_all(store.as_ref(), session, user.id, &pushed, &picks).await;
                done.store(true, Ordering::Relaxed);
                let snapshots = reader.await.unwrap();
                let last = store.snapshot(session).await.unwrap().unwrap();
                let total: usize = plain.iter().map(Vec::len).sum();
                assert_eq!(
                    last.version as usize,
                    total,
                    "unknown ops applied nothing ({})",
                    store.backend()
                );
                let Some(CatchUp::Changes { changes, .. }) =
                    store.catch_up(session, 0, 100_000).await.unwrap()
                else {
                    panic!("the log reaches back to 0")
                };
                let changes: Vec<serde_json::Value> = changes
                    .iter()
                    .map(|c| serde_json::to_value(c).unwrap())
                    .collect();
                let final_view = visible(&doc_from_snapshot(&wire(&last)));
                assert_eq!(
                    final_view.0,
                    reference(&plain).into_iter().collect(),
                    "equal to the model ({})",
                    store.backend()
                );
                for s in snapshots.iter().chain(std::iter::once(&last)) {
                    let v = s.version as usize;
                    let mut replay = switchyard::sync::merge::Doc::default();
                    changes[..v]
                        .iter()
                        .for_each(|c| apply_change(&mut replay, c));
                    let snap = doc_from_snapshot(&wire(s));
                    assert_eq!(
                        visible(&snap),
                        visible(&replay),
                        "snapshot {v} is the log up to {v} ({})",
                        store.backend()
                    );
                    let mut replica = snap;
                    changes[v..]
                        .iter()
                        .for_each(|c| apply_change(&mut replica, c));
                    assert_eq!(
                        visible(&replica),
                        final_view,
                        "a replica from snapshot {v} converges ({})",
                        store.backend()
                    );
                }
            }
        }
    })
    .await
}
