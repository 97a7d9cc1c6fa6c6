//! The protocol's JSON Schemas against themselves and the server: every example in them is a
//! valid frame, and every request the server answers has a schema.

use crate::helpers::ws::{check_schema, schemas};
use serde_json::Value;

/// The spec's examples are frames too: each must pass its own schema, and every request the
/// server answers has a schema.
#[test]
fn every_schema_example_matches_and_every_call_has_a_schema() {
    for side in ["client", "server"] {
        let dir = std::path::PathBuf::from(env!("CARGO_MANIFEST_DIR"))
            .join("protocol/schema")
            .join(side);
        for e in std::fs::read_dir(&dir).unwrap() {
            let schema: Value =
                serde_json::from_str(&std::fs::read_to_string(e.unwrap().path()).unwrap()).unwrap();
            for ex in schema["examples"].as_array().into_iter().flatten() {
                check_schema(side, ex);
            }
        }
    }
    for call in switchyard::protocol::frames::CALLS {
        assert!(schemas("client").contains_key(call), "no schema for {call}");
    }
}
