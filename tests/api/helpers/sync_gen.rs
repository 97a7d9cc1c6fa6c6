//! Generated mutation sets for the convergence properties, and the reference model they must
//! all end equal to.

use proptest::prelude::*;
use serde_json::{json, Value};
use std::collections::BTreeMap;
use switchyard::sync::{
    hlc::Hlc,
    merge::{Doc, Limits},
    ops::{Mutation, Op},
};

/// (op kind, key, value or delete): a generated op.
pub type GenOp = (u8, u8, Option<u8>);
/// One client's mutations: (clock step, ops).
pub type GenClient = Vec<(u64, Vec<GenOp>)>;

/// Small key spaces so that writes collide.
pub fn gen_client() -> impl Strategy<Value = GenClient> {
    proptest::collection::vec(
        (
            1u64..4,
            proptest::collection::vec((0u8..3, 0u8..3, proptest::option::of(0u8..4)), 1..4),
        ),
        1..6,
    )
}

fn op(kind: u8, key: u8, value: Option<u8>) -> Op {
    match (kind, value) {
        (0, Some(v)) => serde_json::from_value(
            json!({"op": "set_field", "field": "title", "value": format!("t{v}")}),
        )
        .unwrap(),
        (0, None) => serde_json::from_value(
            json!({"op": "set_field", "field": "pinned", "value": key % 2 == 0}),
        )
        .unwrap(),
        (1, Some(v)) => Op::SetContext {
            key: format!("k{key}"),
            value: json!(v),
        },
        (1, None) => Op::DeleteContext {
            key: format!("k{key}"),
        },
        (_, Some(_)) => Op::AddTag {
            tag: format!("tag{key}"),
        },
        (_, None) => Op::RemoveTag {
            tag: format!("tag{key}"),
        },
    }
}

pub fn build(clients: &[GenClient], prefix: &str) -> Vec<Vec<Mutation>> {
    clients
        .iter()
        .enumerate()
        .map(|(c, muts)| {
            let mut ms = 1_000;
            muts.iter()
                .enumerate()
                .map(|(i, (step, ops))| {
                    ms += step;
                    Mutation {
                        client_id: format!("{prefix}c{c}"),
                        mutation_id: i as u64 + 1,
                        hlc: Hlc { ms, counter: 0 },
                        ops: ops.iter().map(|(k, key, v)| op(*k, *key, *v)).collect(),
                    }
                })
                .collect()
        })
        .collect()
}

pub fn reference(clients: &[Vec<Mutation>]) -> BTreeMap<String, Value> {
    let mut d = Doc::default();
    // Apply in clock order: the model is "largest stamp wins", which any order must reproduce.
    let mut all: Vec<&Mutation> = clients.iter().flatten().collect();
    all.sort_by(|a, b| (a.hlc, &a.client_id).cmp(&(b.hlc, &b.client_id)));
    for (v, m) in all.into_iter().enumerate() {
        d.apply(m, v as u64 + 1, &Limits::NONE).unwrap();
    }
    d.live_registers()
        .into_iter()
        .map(|(k, v)| (k.to_string(), v.clone()))
        .collect()
}
