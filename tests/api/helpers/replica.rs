//! A client replica built only from what the wire says: a snapshot (with its stamps) and the
//! `sync.change` events after it, merged by the same rules as the server (`sync::merge`).
//! Tests compare it with the server's own snapshot.

use serde_json::Value;
use std::collections::BTreeMap;
use switchyard::sync::{
    hlc::Hlc,
    merge::{Doc, Limits, Message, Register, Stamp},
    ops::{MessageRole, Mutation},
};

fn stamp(v: &Value) -> Stamp {
    Stamp {
        hlc: v["hlc"].as_str().unwrap().parse::<Hlc>().unwrap(),
        client_id: v["client_id"].as_str().unwrap().to_owned(),
    }
}

/// The document a snapshot (`GET /v1/sessions/{id}` or a subscribe reply's `snapshot`) describes.
pub fn doc_from_snapshot(s: &Value) -> Doc {
    let mut doc = Doc::default();
    for (key, st) in s["stamps"].as_object().expect("snapshots carry stamps") {
        let value = if let Some(f) = key.strip_prefix("f:") {
            s["fields"].get(f).cloned()
        } else if let Some(c) = key.strip_prefix("c:") {
            s["context"].get(c).cloned()
        } else if let Some(t) = key.strip_prefix("t:") {
            s["tags"]
                .as_array()
                .unwrap()
                .iter()
                .any(|x| x == t)
                .then_some(Value::Bool(true))
        } else {
            panic!("unknown register key {key}")
        };
        doc.registers.insert(
            key.clone(),
            Register {
                value,
                stamp: stamp(st),
            },
        );
    }
    for m in s["messages"].as_array().unwrap() {
        let id = m["id"].as_str().unwrap().to_owned();
        doc.messages.insert(
            id.clone(),
            Message {
                id,
                role: MessageRole::parse(m["role"].as_str().unwrap()).unwrap(),
                content: m["content"].as_str().unwrap().to_owned(),
                metadata: m["metadata"].clone(),
                position: m["position"].as_u64().unwrap(),
                seq: m["seq"].as_u64().unwrap() as u32,
                author_client: m["author_client"].as_str().unwrap().to_owned(),
                edit: stamp(&m["edit"]),
                deleted: false,
                streaming: m["streaming"].as_bool().unwrap(),
            },
        );
    }
    doc
}

/// Applies one `sync.change` payload (or a catch-up change) as a client replica would. A change
/// the server applied never fails on a replica that has everything before it; an op about a
/// message the replica never saw (deleted before its snapshot) is dropped with the server's
/// own rule (the message is gone for good).
pub fn apply_change(doc: &mut Doc, change: &Value) {
    let m: Mutation = serde_json::from_value(change.clone()).expect("a change is a mutation");
    let version = change["version"].as_u64().unwrap();
    doc.apply(&m, version, &Limits::NONE)
        .unwrap_or_else(|e| panic!("replica refused a server change {change}: {e:?}"));
}

/// What a user sees of a document: live fields/context/tags and the transcript.
pub fn visible(doc: &Doc) -> (BTreeMap<String, Value>, Vec<(String, String)>) {
    (
        doc.live_registers()
            .into_iter()
            .map(|(k, v)| (k.to_owned(), v.clone()))
            .collect(),
        doc.transcript()
            .into_iter()
            .map(|m| (m.id.clone(), m.content.clone()))
            .collect(),
    )
}
