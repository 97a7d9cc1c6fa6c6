// Replays test/fixtures/merge-vectors.json through the real switchyard merge (Doc::apply with
// Limits::NONE): the Rust side of the shared vectors, until tests/api wires it in. To run it, make
// a scratch crate outside the repo with `switchyard = { path = "<repo>" }` and `serde_json = "1"`,
// this file as src/main.rs, and: cargo run -- <repo>/clients/typescript/test/fixtures/merge-vectors.json
use serde_json::{json, Value};
use switchyard::sync::merge::{Doc, Limits};
use switchyard::sync::ops::Mutation;

fn main() {
    let path = std::env::args().nth(1).expect("path to merge-vectors.json");
    let file: Value = serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
    let mut failed = 0;
    for case in file["cases"].as_array().unwrap() {
        let name = case["name"].as_str().unwrap();
        let replay = |changes: Vec<&Value>| {
            let mut doc = Doc::default();
            let mut refused = Vec::new();
            let mut deleted_session = false;
            for c in changes {
                let m: Mutation = serde_json::from_value(json!({"client_id": c["client_id"], "mutation_id": c["mutation_id"], "hlc": c["hlc"], "ops": c["ops"]})).unwrap();
                let v = c["version"].as_u64().unwrap();
                match doc.apply(&m, v, &Limits::NONE) {
                    Ok(t) => deleted_session |= t.session_deleted,
                    Err(_) => refused.push(v),
                }
            }
            (doc, refused, deleted_session)
        };
        let changes: Vec<&Value> = case["changes"].as_array().unwrap().iter().collect();
        let (doc, refused, deleted_session) = replay(changes.clone());
        let e = &case["expect"];
        let (mut fields, mut context, mut tags) = (serde_json::Map::new(), serde_json::Map::new(), Vec::new());
        for (k, v) in doc.live_registers() {
            if let Some(f) = k.strip_prefix("f:") { fields.insert(f.into(), v.clone()); }
            else if let Some(c) = k.strip_prefix("c:") { context.insert(c.into(), v.clone()); }
            else if let Some(t) = k.strip_prefix("t:") { tags.push(json!(t)); }
        }
        let transcript: Vec<Value> = doc.transcript().iter().enumerate().map(|(i, m)| {
            let want = &e["transcript"][i];
            let mut o = json!({"id": m.id, "role": m.role.as_str(), "content": m.content, "position": m.position, "seq": m.seq, "streaming": m.streaming});
            if want.get("metadata").is_some() { o["metadata"] = m.metadata.clone(); }
            if want.get("author_client").is_some() { o["author_client"] = json!(m.author_client); }
            o
        }).collect();
        let mut deleted: Vec<String> = doc.messages.values().filter(|m| m.deleted).map(|m| m.id.clone()).collect();
        deleted.sort();
        let got = json!({"fields": fields, "context": context, "tags": tags, "transcript": transcript, "deleted": deleted, "refused": refused, "session_deleted": deleted_session});
        let want = json!({"fields": e["fields"], "context": e["context"], "tags": e["tags"], "transcript": e["transcript"], "deleted": e["deleted"], "refused": e["refused"], "session_deleted": e.get("session_deleted").cloned().unwrap_or(json!(false))});
        let mut ok = got == want;
        if ok && case["any_order"] == true {
            let (rev, _, _) = replay(changes.iter().rev().copied().collect());
            ok = rev.live_registers() == doc.live_registers();
        }
        println!("{} {name}", if ok { "ok  " } else { "FAIL" });
        if !ok { failed += 1; println!("  got  {got}\n  want {want}"); }
    }
    println!("{failed} failed");
    std::process::exit(if failed == 0 { 0 } else { 1 });
}
