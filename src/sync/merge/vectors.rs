//! The merge vectors the TypeScript replica is tested against
//! (`clients/typescript/test/fixtures/merge-vectors.json`), replayed through these rules: the
//! two implementations cannot drift apart without one of the suites failing.

use super::{Doc, Limits};
use crate::sync::ops::Mutation;
use serde_json::{json, Map, Value};

fn replay(changes: &[&Value]) -> (Doc, Vec<u64>, bool) {
    let mut doc = Doc::default();
    let (mut refused, mut session_deleted) = (Vec::new(), false);
    for c in changes {
        let m: Mutation = serde_json::from_value(json!({"client_id": c["client_id"],
            "mutation_id": c["mutation_id"], "hlc": c["hlc"], "ops": c["ops"]}))
        .expect("a vector's change is a mutation");
        let v = c["version"].as_u64().expect("version");
        match doc.apply(&m, v, &Limits::NONE) {
            Ok(t) => session_deleted |= t.session_deleted,
            Err(_) => refused.push(v),
        }
    }
    (doc, refused, session_deleted)
}

/// What a vector's `expect` describes, read off a document.
fn observed(doc: &Doc, expect: &Value, refused: Vec<u64>, session_deleted: bool) -> Value {
    let (mut fields, mut context, mut tags) = (Map::new(), Map::new(), Vec::new());
    for (k, v) in doc.live_registers() {
        if let Some(f) = k.strip_prefix("f:") {
            fields.insert(f.into(), v.clone());
        } else if let Some(c) = k.strip_prefix("c:") {
            context.insert(c.into(), v.clone());
        } else if let Some(t) = k.strip_prefix("t:") {
            tags.push(json!(t));
        }
    }
    let transcript: Vec<Value> = doc
        .transcript()
        .iter()
        .enumerate()
        .map(|(i, m)| {
            let want = &expect["transcript"][i];
            let mut o = json!({"id": m.id, "role": m.role.as_str(), "content": m.content,
                "position": m.position, "seq": m.seq, "streaming": m.streaming});
            if want.get("metadata").is_some() {
                o["metadata"] = m.metadata.clone();
            }
            if want.get("author_client").is_some() {
                o["author_client"] = json!(m.author_client);
            }
            o
        })
        .collect();
    let mut deleted: Vec<&str> = doc
        .messages
        .values()
        .filter(|m| m.deleted)
        .map(|m| m.id.as_str())
        .collect();
    deleted.sort_unstable();
    json!({"fields": fields, "context": context, "tags": tags, "transcript": transcript,
           "deleted": deleted, "refused": refused, "session_deleted": session_deleted})
}

#[test]
fn the_shared_vectors_merge_here_as_the_typescript_replica_expects() {
    let path = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/clients/typescript/test/fixtures/merge-vectors.json"
    );
    let file: Value =
        serde_json::from_str(&std::fs::read_to_string(path).expect("vectors")).expect("json");
    let cases = file["cases"].as_array().expect("cases");
    assert!(cases.len() >= 20, "the vectors are all there");
    for case in cases {
        let name = case["name"].as_str().unwrap_or("?");
        let changes: Vec<&Value> = case["changes"]
            .as_array()
            .expect("changes")
            .iter()
            .collect();
        let (doc, refused, deleted) = replay(&changes);
        let e = &case["expect"];
        let want = json!({"fields": e["fields"], "context": e["context"], "tags": e["tags"],
            "transcript": e["transcript"], "deleted": e["deleted"], "refused": e["refused"],
            "session_deleted": e.get("session_deleted").cloned().unwrap_or(json!(false))});
        assert_eq!(observed(&doc, e, refused, deleted), want, "{name}");
        if case["any_order"] == true {
            let reversed: Vec<&Value> = changes.iter().rev().copied().collect();
            let (rev, _, _) = replay(&reversed);
            assert_eq!(
                rev.live_registers(),
                doc.live_registers(),
                "{name}: any order"
            );
        }
    }
}
