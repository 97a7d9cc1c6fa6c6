//! The official `openai` Python SDK as the client (tests/sdk/). The SDK comes from a
//! virtualenv: `TEST_PYTHON` when set (`.ci/run` builds one), else one this test
//! makes once under target/ from tests/sdk/requirements.txt.

use crate::helpers::completions::setup;
use crate::helpers::mcp::python;
use crate::helpers::*;
use serde_json::{json, Value};
use std::path::PathBuf;

#[tokio::test]
async fn official_openai_python_sdk_works_unchanged() {
    let py = python().await;
    within(async {
        let (app, _up, token) = setup().await;
        // The SDK authenticates with an API key, as a REST-only client would.
        let r = app
            .http
            .post(app.url("/v1/api-keys"))
            .bearer_auth(&token)
            .json(&json!({"name": "sdk"}))
            .send()
            .await
            .unwrap();
        let key: Value = r.json().await.unwrap();
        let key = key["secret"].as_str().expect("api key secret").to_owned();
        let script = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/sdk/test_openai_sdk.py");
        let out = tokio::process::Command::new(&py)
            .arg(&script)
            .env("SWITCHYARD_BASE_URL", app.url("/v1"))
            .env("SWITCHYARD_API_KEY", key)
            .output()
            .await
            .expect("run the SDK tests");
        let log = String::from_utf8_lossy(&out.stderr);
        println!("{log}");
        assert!(out.status.success(), "SDK tests failed:\n{log}");
        assert!(log.contains("Ran 8 tests"), "{log}");
    })
    .await
}
