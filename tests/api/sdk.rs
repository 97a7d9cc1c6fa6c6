//! The official `openai` Python SDK as the client (tests/sdk/). The SDK comes from a
//! virtualenv: `TEST_PYTHON` when set (`.ci/run` builds one), else one this test
//! makes once under target/ from tests/sdk/requirements.txt.

use crate::completions::setup;
use crate::helpers::*;
use serde_json::{json, Value};
use std::path::PathBuf;

static VENV: tokio::sync::OnceCell<PathBuf> = tokio::sync::OnceCell::const_new();

/// The Python that has the pinned SDK installed.
pub async fn python() -> PathBuf {
    if let Some(p) = std::env::var_os("TEST_PYTHON") {
        return PathBuf::from(p);
    }
    VENV.get_or_init(|| async {
        let root = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
        let venv = root.join("target/test-venv");
        let py = venv.join("bin/python");
        let reqs = root.join("tests/sdk/requirements.txt");
        let stamp = venv.join("requirements.txt");
        let want = std::fs::read(&reqs).expect("requirements");
        if std::fs::read(&stamp).ok().as_ref() != Some(&want) {
            let run = |cmd: &mut std::process::Command| {
                let out = cmd.output().expect("run python");
                assert!(
                    out.status.success(),
                    "{cmd:?}: {}",
                    String::from_utf8_lossy(&out.stderr)
                );
            };
            tokio::task::spawn_blocking(move || {
                run(std::process::Command::new("python3")
                    .args(["-m", "venv"])
                    .arg(&venv));
                run(std::process::Command::new(venv.join("bin/pip"))
                    .args(["install", "-q", "-r"])
                    .arg(&reqs));
                std::fs::write(&stamp, want).expect("stamp");
            })
            .await
            .expect("venv");
        }
        py
    })
    .await
    .clone()
}

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
        assert!(log.contains("Ran 7 tests"), "{log}");
    })
    .await
}
