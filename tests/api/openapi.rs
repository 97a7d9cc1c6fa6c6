//! `/openapi.json` describes every route the server serves, and nothing it does not.

use crate::helpers::*;
use reqwest::StatusCode;
use serde_json::Value;
use std::collections::BTreeSet;

/// Every `#[utoipa::path(... path = "...")]` in src/.
fn annotated_paths() -> BTreeSet<String> {
    let mut out = BTreeSet::new();
    let mut stack = vec![std::path::PathBuf::from(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/src"
    ))];
    while let Some(dir) = stack.pop() {
        for entry in std::fs::read_dir(dir).unwrap() {
            let p = entry.unwrap().path();
            if p.is_dir() {
                stack.push(p);
            } else if p.extension().is_some_and(|e| e == "rs") {
                let text = std::fs::read_to_string(&p).unwrap();
                for chunk in text.split("#[utoipa::path(").skip(1) {
                    let path = chunk
                        .split("path = \"")
                        .nth(1)
                        .unwrap()
                        .split('"')
                        .next()
                        .unwrap();
                    out.insert(path.to_string());
                }
                // A route registered outside `routes!` would be served but undocumented.
                let plain = text.matches(".route(").count();
                // /openapi.json itself, and the docs pages over it: not API.
                let allowed = if p.ends_with("http/docs.rs") {
                    plain
                } else {
                    usize::from(p.ends_with("http/mod.rs"))
                };
                assert!(
                    plain <= allowed,
                    "{} registers a route outside utoipa_axum::routes!",
                    p.display()
                );
            }
        }
    }
    out
}

#[tokio::test]
async fn every_route_is_documented_and_served() {
    within(async {
        // No web client, so `/` is the API's own route (it is the web page otherwise).
        let app = spawn_with(|c| c.server.web_dir = Default::default()).await;
        let doc: Value = app
            .http
            .get(app.url("/openapi.json"))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        let documented: BTreeSet<String> =
            doc["paths"].as_object().unwrap().keys().cloned().collect();
        assert_eq!(
            documented,
            annotated_paths(),
            "documented paths = annotated handlers"
        );
        for (path, ops) in doc["paths"].as_object().unwrap() {
            for (method, op) in ops.as_object().unwrap() {
                let concrete = path.replace("{id}", "00000000-0000-0000-0000-000000000000");
                let m = reqwest::Method::from_bytes(method.to_uppercase().as_bytes()).unwrap();
                let r = app
                    .http
                    .request(m, app.url(&concrete))
                    .send()
                    .await
                    .unwrap();
                let status = r.status();
                let body = r.text().await.unwrap();
                assert!(
                    !(status == StatusCode::NOT_FOUND && body.contains("no such route"))
                        && status != StatusCode::METHOD_NOT_ALLOWED,
                    "{method} {path} is documented but not served ({status})"
                );
                assert!(
                    op["responses"].as_object().is_some_and(|r| !r.is_empty()),
                    "{method} {path} has responses"
                );
            }
        }
        assert!(doc["components"]["schemas"]["ErrorBody"].is_object());
    })
    .await
}

/// `^[a-z][a-zA-Z0-9]+$`: lowerCamelCase, what client generators turn into method names.
fn is_camel_case(id: &str) -> bool {
    let mut chars = id.chars();
    chars.next().is_some_and(|c| c.is_ascii_lowercase())
        && id.len() > 1
        && chars.all(|c| c.is_ascii_alphanumeric())
}

/// `METHOD path (file)` of every `#[utoipa::path(...)]` in src/ that does not set `operation_id`
/// (utoipa then uses the function's name, which may pass for camelCase by accident: `list`).
fn annotations_without_operation_id() -> Vec<String> {
    let mut out = Vec::new();
    let mut stack = vec![std::path::PathBuf::from(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/src"
    ))];
    while let Some(dir) = stack.pop() {
        for entry in std::fs::read_dir(dir).unwrap() {
            let p = entry.unwrap().path();
            if p.is_dir() {
                stack.push(p);
            } else if p.extension().is_some_and(|e| e == "rs") {
                let text = std::fs::read_to_string(&p).unwrap();
                for chunk in text.split("#[utoipa::path(").skip(1) {
                    let attr = chunk.split(")]\n").next().unwrap();
                    if !attr.contains("operation_id = ") {
                        let method = attr.split(',').next().unwrap().trim().to_uppercase();
                        let path = attr.split("path = \"").nth(1).unwrap().split('"').next();
                        let file = p.strip_prefix(env!("CARGO_MANIFEST_DIR")).unwrap_or(&p);
                        out.push(format!("{method} {} ({})", path.unwrap(), file.display()));
                    }
                }
            }
        }
    }
    out.sort();
    out
}

#[tokio::test]
async fn every_operation_has_a_unique_camel_case_operation_id() {
    within(async {
        // No web client, so `/` is documented too.
        let app = spawn_with(|c| c.server.web_dir = Default::default()).await;
        let doc: Value = app
            .http
            .get(app.url("/openapi.json"))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        let mut missing = Vec::new();
        let mut malformed = Vec::new();
        let mut seen = std::collections::BTreeMap::<String, String>::new();
        let mut duplicated = Vec::new();
        for (path, ops) in doc["paths"].as_object().unwrap() {
            for (method, op) in ops.as_object().unwrap() {
                let at = format!("{} {path}", method.to_uppercase());
                let Some(id) = op["operationId"].as_str() else {
                    missing.push(at);
                    continue;
                };
                if !is_camel_case(id) {
                    malformed.push(format!("{at}: {id:?}"));
                }
                if let Some(first) = seen.insert(id.to_string(), at.clone()) {
                    duplicated.push(format!("{id:?}: {first} and {at}"));
                }
            }
        }
        assert!(!seen.is_empty() || !missing.is_empty(), "no operations");
        let unset = annotations_without_operation_id();
        assert!(
            missing.is_empty() && malformed.is_empty() && duplicated.is_empty() && unset.is_empty(),
            "operations without an operationId: {missing:#?}\n\
             operationIds not matching ^[a-z][a-zA-Z0-9]+$: {malformed:#?}\n\
             operationIds used twice: {duplicated:#?}\n\
             #[utoipa::path] without operation_id (the function name is used): {unset:#?}"
        );
    })
    .await
}
