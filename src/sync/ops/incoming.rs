//! Mutations as they come off the wire, parsed one op at a time.

use super::{Mutation, Op};
use crate::sync::{
    hlc::Hlc,
    refusal::{Refusal, RefusalCode},
};
use serde::Deserialize;

/// A mutation as pushed: its identity read strictly (without it there is nobody to answer),
/// its clock and ops one by one, so an op this server does not know (a newer client) or a
/// mistyped value refuses only its own mutation and the rest of the batch still applies.
#[derive(Debug, Clone, PartialEq)]
pub struct Incoming {
    pub mutation: Mutation,
    /// Decided while parsing; stored like any other refusal.
    pub refusal: Option<Refusal>,
}

/// The op names this server knows (`op` of each op).
pub const KNOWN_OPS: [&str; 13] = [
    "set_field",
    "set_context",
    "delete_context",
    "add_tag",
    "remove_tag",
    "append_message",
    "edit_message",
    "delete_message",
    "create_session",
    "delete_session",
    "stream_start",
    "stream_update",
    "stream_end",
];

#[derive(Deserialize)]
struct WireMutation {
    client_id: String,
    mutation_id: u64,
    hlc: serde_json::Value,
    ops: Vec<serde_json::Value>,
}

impl<'de> Deserialize<'de> for Incoming {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let w = WireMutation::deserialize(d)?;
        let mut refusal = None;
        let hlc = match w.hlc.as_str().map(str::parse::<Hlc>) {
            Some(Ok(h)) => h,
            Some(Err(e)) => {
                refusal = Some(Refusal::new(RefusalCode::Invalid, e));
                Hlc::default()
            }
            None => {
                refusal = Some(Refusal::new(
                    RefusalCode::Invalid,
                    "hlc must be a string \"<ms>:<counter>\"",
                ));
                Hlc::default()
            }
        };
        let mut ops = Vec::with_capacity(w.ops.len());
        for (i, raw) in w.ops.into_iter().enumerate() {
            let name = raw.get("op").and_then(|o| o.as_str()).map(str::to_owned);
            match serde_json::from_value::<Op>(raw) {
                Ok(op) => ops.push(op),
                Err(e) if refusal.is_none() => {
                    refusal = Some(match name {
                        Some(n) if !KNOWN_OPS.contains(&n.as_str()) => Refusal::new(
                            RefusalCode::UnknownOp,
                            format!(
                                "ops[{i}]: unknown op {:?}; this server does not support it",
                                n.chars().take(40).collect::<String>()
                            ),
                        ),
                        _ => Refusal::new(RefusalCode::Invalid, format!("ops[{i}]: {e}")),
                    });
                }
                Err(_) => {}
            }
        }
        if refusal.is_some() {
            ops.clear();
        }
        Ok(Incoming {
            mutation: Mutation {
                client_id: w.client_id,
                mutation_id: w.mutation_id,
                hlc,
                ops,
            },
            refusal,
        })
    }
}
