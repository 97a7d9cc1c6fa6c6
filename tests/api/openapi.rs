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
