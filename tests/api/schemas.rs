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

/// The schemas and the server's types say the same: every client example decodes, as the frame
/// type its schema names, and a call whose fields break its schema is refused by the types too.
#[test]
fn every_client_example_decodes_into_its_typed_frame() {
    use switchyard::protocol::ClientFrame;
    let dir = std::path::PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("protocol/schema/client");
    let mut decoded = 0;
    for e in std::fs::read_dir(&dir).unwrap() {
        let schema: Value =
            serde_json::from_str(&std::fs::read_to_string(e.unwrap().path()).unwrap()).unwrap();
        let title = schema["title"].as_str().unwrap();
        for ex in schema["examples"].as_array().into_iter().flatten() {
            let f = ClientFrame::decode(&ex.to_string(), 32)
                .unwrap_or_else(|e| panic!("{title} example does not decode: {e:?}\n{ex}"));
            assert_eq!(f.kind(), title, "{ex}");
            decoded += 1;
        }
    }
    assert!(
        decoded >= 21,
        "every client frame has an example ({decoded})"
    );
    for (frame, field) in [
        (
            r#"{"type":"chat.cancel","id":"1","turn_id":"not-a-uuid"}"#,
            "turn_id",
        ),
        (
            r#"{"type":"tool.list","id":"1","session_id":7}"#,
            "session_id",
        ),
        (r#"{"type":"mcp.delete","id":"1"}"#, "server_id"),
        (
            r#"{"type":"project.update","id":"1","project_id":"0193a4c2-8f1e-7c3a-9d1b-2e4f5a6b7c8d"}"#,
            "project",
        ),
        (
            r#"{"type":"chat.send","id":"1","session_id":"0193a4c2-8f1e-7c3a-9d1b-2e4f5a6b7c8d","message":"hi","tools":[{"name":"x","extra":1}]}"#,
            "extra",
        ),
    ] {
        let e = ClientFrame::decode(frame, 32).unwrap_err();
        assert_eq!(e.code.as_str(), "invalid_request", "{frame}");
        assert_eq!(e.id.as_deref(), Some("1"), "{frame}");
        assert!(e.message.contains(field), "{frame}: {}", e.message);
    }
}
