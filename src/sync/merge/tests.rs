//! Convergence of the pure merge rules, checked by property tests against a tiny reference
//! model: any interleaving of the same mutations (each client's own order kept) yields the same
//! registers, and those equal the model's.

use super::*;
use crate::sync::ops::{Field, MessageRole, Mutation, Op, Refusal};
use proptest::prelude::*;
use serde_json::json;

/// The rules without caps, as most cases here need.
trait ApplyFree {
    fn apply_free(&mut self, m: &Mutation, version: u64) -> Result<Touched, Refusal>;
}

impl ApplyFree for Doc {
    fn apply_free(&mut self, m: &Mutation, version: u64) -> Result<Touched, Refusal> {
        self.apply(m, version, &Limits::NONE)
    }
}

fn hlc(ms: u64, counter: u32) -> Hlc {
    Hlc { ms, counter }
}

fn mutation(client: &str, id: u64, at: Hlc, ops: Vec<Op>) -> Mutation {
    Mutation {
        client_id: client.into(),
        mutation_id: id,
        hlc: at,
        ops,
    }
}

#[test]
fn a_tombstone_beats_a_stale_write() {
    let mut d = Doc::default();
    d.apply_free(
        &mutation(
            "a",
            1,
            hlc(10, 0),
            vec![Op::SetContext {
                key: "k".into(),
                value: json!(1),
            }],
        ),
        1,
    )
    .unwrap();
    d.apply_free(
        &mutation(
            "b",
            1,
            hlc(20, 0),
            vec![Op::DeleteContext { key: "k".into() }],
        ),
        2,
    )
    .unwrap();
    d.apply_free(
        &mutation(
            "a",
            2,
            hlc(15, 0),
            vec![Op::SetContext {
                key: "k".into(),
                value: json!(2),
            }],
        ),
        3,
    )
    .unwrap();
    assert!(
        d.live_registers().is_empty(),
        "a stale write does not resurrect a deleted key"
    );
}

#[test]
fn a_delete_beats_an_edit_and_a_refused_mutation_changes_nothing() {
    let mut d = Doc::default();
    let append = Op::AppendMessage {
        message_id: "m".into(),
        role: MessageRole::User,
        content: "hi".into(),
        metadata: json!(null),
    };
    d.apply_free(&mutation("a", 3, hlc(30, 0), vec![append.clone()]), 4)
        .unwrap();
    d.apply_free(
        &mutation(
            "b",
            2,
            hlc(40, 0),
            vec![Op::DeleteMessage {
                message_id: "m".into(),
            }],
        ),
        5,
    )
    .unwrap();
    d.apply_free(
        &mutation(
            "a",
            4,
            hlc(50, 0),
            vec![Op::EditMessage {
                message_id: "m".into(),
                content: "late".into(),
            }],
        ),
        6,
    )
    .unwrap();
    assert!(d.transcript().is_empty(), "a delete is final");
    let before = d.clone();
    let e = d
        .apply_free(
            &mutation(
                "a",
                5,
                hlc(60, 0),
                vec![Op::AddTag { tag: "x".into() }, append],
            ),
            7,
        )
        .unwrap_err();
    assert!(e.message.contains("already used"));
    assert_eq!(
        d, before,
        "a refused mutation changes nothing, not even its valid ops"
    );
}

#[test]
fn streaming_message_refuses_client_edits() {
    let mut d = Doc::default();
    d.apply_free(
        &mutation(
            "a",
            1,
            hlc(1, 0),
            vec![Op::AppendMessage {
                message_id: "m".into(),
                role: MessageRole::Assistant,
                content: String::new(),
                metadata: json!(null),
            }],
        ),
        1,
    )
    .unwrap();
    d.messages.get_mut("m").unwrap().streaming = true;
    let e = d
        .apply_free(
            &mutation(
                "b",
                1,
                hlc(2, 0),
                vec![Op::EditMessage {
                    message_id: "m".into(),
                    content: "x".into(),
                }],
            ),
            2,
        )
        .unwrap_err();
    assert!(e.message.contains("streaming"));
}

#[derive(Debug, Clone)]
enum Gen {
    Field(u8, u8),
    Ctx(u8, Option<u8>),
    Tag(u8, bool),
}

fn op_of(g: &Gen) -> Op {
    match g {
        Gen::Field(0, v) => Op::SetField {
            field: Field::Title,
            value: json!(format!("t{v}")),
        },
        Gen::Field(_, v) => Op::SetField {
            field: Field::Pinned,
            value: json!(v % 2 == 0),
        },
        Gen::Ctx(k, Some(v)) => Op::SetContext {
            key: format!("k{k}"),
            value: json!(v),
        },
        Gen::Ctx(k, None) => Op::DeleteContext {
            key: format!("k{k}"),
        },
        Gen::Tag(t, true) => Op::AddTag {
            tag: format!("tag{t}"),
        },
        Gen::Tag(t, false) => Op::RemoveTag {
            tag: format!("tag{t}"),
        },
    }
}

fn gen_op() -> impl Strategy<Value = Gen> {
    prop_oneof![
        (0u8..2, 0u8..4).prop_map(|(f, v)| Gen::Field(f, v)),
        (0u8..3, proptest::option::of(0u8..4)).prop_map(|(k, v)| Gen::Ctx(k, v)),
        (0u8..3, any::<bool>()).prop_map(|(t, on)| Gen::Tag(t, on)),
    ]
}

/// Per client: mutations with increasing clocks (clients' clocks overlap each other).
fn gen_clients() -> impl Strategy<Value = Vec<Vec<Mutation>>> {
    proptest::collection::vec(
        proptest::collection::vec((1u64..4, proptest::collection::vec(gen_op(), 1..4)), 1..6),
        2..6,
    )
    .prop_map(|clients| {
        clients
            .into_iter()
            .enumerate()
            .map(|(c, muts)| {
                let mut ms = 0;
                muts.into_iter()
                    .enumerate()
                    .map(|(i, (step, gens))| {
                        ms += step;
                        let mut ops: Vec<Op> = gens.iter().map(op_of).collect();
                        ops.push(Op::AppendMessage {
                            message_id: format!("c{c}-m{i}"),
                            role: MessageRole::User,
                            content: format!("from {c}"),
                            metadata: json!(null),
                        });
                        mutation(&format!("client{c}"), i as u64 + 1, hlc(ms, 0), ops)
                    })
                    .collect()
            })
            .collect()
    })
}

/// Applies the clients' mutations in the order `picks` chooses (each client's order kept).
fn interleave(clients: &[Vec<Mutation>], picks: &[usize]) -> Doc {
    let mut next = vec![0usize; clients.len()];
    let mut doc = Doc::default();
    let mut version = 0;
    let mut p = picks.iter().cycle();
    let total: usize = clients.iter().map(Vec::len).sum();
    while version < total as u64 {
        let live: Vec<usize> = (0..clients.len())
            .filter(|&c| next[c] < clients[c].len())
            .collect();
        let c = live[p.next().copied().unwrap_or(0) % live.len()];
        version += 1;
        doc.apply_free(&clients[c][next[c]], version)
            .expect("valid mutations apply");
        next[c] += 1;
    }
    doc
}

/// The model: per register key, the op with the largest (hlc, client) stamp; first in its
/// mutation on a tie.
fn reference(clients: &[Vec<Mutation>]) -> BTreeMap<String, serde_json::Value> {
    let mut best: BTreeMap<String, (Stamp, Option<serde_json::Value>)> = BTreeMap::new();
    for m in clients.iter().flatten() {
        let stamp = Stamp {
            hlc: m.hlc,
            client_id: m.client_id.clone(),
        };
        for op in &m.ops {
            let (key, value) = match op {
                Op::SetField { field, value } => (field_key(*field), Some(value.clone())),
                Op::SetContext { key, value } => (context_key(key), Some(value.clone())),
                Op::DeleteContext { key } => (context_key(key), None),
                Op::AddTag { tag } => (tag_key(tag), Some(json!(true))),
                Op::RemoveTag { tag } => (tag_key(tag), None),
                _ => continue,
            };
            if best.get(&key).is_none_or(|(s, _)| stamp > *s) {
                best.insert(key, (stamp.clone(), value));
            }
        }
    }
    best.into_iter()
        .filter_map(|(k, (_, v))| v.map(|v| (k, v)))
        .collect()
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(200))]

    #[test]
    fn any_interleaving_converges_to_the_model(
        clients in gen_clients(),
        a in proptest::collection::vec(0usize..8, 1..40),
        b in proptest::collection::vec(0usize..8, 1..40),
    ) {
        let (x, y) = (interleave(&clients, &a), interleave(&clients, &b));
        let model = reference(&clients);
        let live = |d: &Doc| d.live_registers().into_iter().map(|(k, v)| (k.to_string(), v.clone())).collect::<BTreeMap<_, _>>();
        prop_assert_eq!(live(&x), live(&y));
        prop_assert_eq!(live(&x), model);
        // Each client's own messages keep its order in the transcript.
        for doc in [&x, &y] {
            for (c, muts) in clients.iter().enumerate() {
                let mine: Vec<&str> = doc.transcript().iter().filter(|m| m.author_client == format!("client{c}")).map(|m| m.id.as_str()).collect();
                let expected: Vec<String> = (0..muts.len()).map(|i| format!("c{c}-m{i}")).collect();
                prop_assert_eq!(mine, expected.iter().map(String::as_str).collect::<Vec<_>>());
            }
        }
    }
}
