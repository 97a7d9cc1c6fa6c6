//! The client half's own suites, run by `cargo test` against the server binary this build
//! made: the TypeScript SDK (`clients/typescript`: unit tests and end-to-end tests that start
//! real servers, kill and restart them) and the web client (`clients/web`: its built files are
//! what its sources build to, and its browser tests drive Debian's Chromium through
//! playwright-core against a real server serving them). Their dependencies come from the npm
//! registry with `npm ci` (once per lockfile; `.ci/run` does it up front). PostgreSQL and Redis
//! are passed on when this pass has them, so the two-instance tests run in the services pass.

use crate::helpers::npm::npm_ci;
use std::{path::PathBuf, process::Stdio};

/// Runs `npm test` in `dir` against this build's server; the suite's own output is shown when
/// it fails.
pub async fn npm_test(dir: &PathBuf) {
    let mut cmd = tokio::process::Command::new("npm");
    cmd.arg("test")
        .current_dir(dir)
        .env("SWITCHYARD_BIN", env!("CARGO_BIN_EXE_switchyard"))
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true);
    for var in ["TEST_DATABASE_URL", "TEST_REDIS_URL"] {
        match std::env::var(var) {
            Ok(v) if !v.is_empty() => cmd.env(var, v),
            _ => cmd.env_remove(var),
        };
    }
    let out = tokio::time::timeout(std::time::Duration::from_secs(900), cmd.output())
        .await
        .expect("the suite finished within 15 minutes")
        .expect("run npm test");
    let text = format!(
        "{}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    let tail: String = {
        let lines: Vec<&str> = text.lines().collect();
        lines[lines.len().saturating_sub(60)..].join("\n")
    };
    println!("{tail}");
    assert!(
        out.status.success(),
        "npm test in {} failed:\n{text}",
        dir.display()
    );
}

#[tokio::test]
async fn the_typescript_sdk_suite_passes_against_this_server() {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("clients/typescript");
    npm_ci(&dir).await;
    npm_test(&dir).await;
}

#[tokio::test]
async fn the_web_client_is_built_from_its_sources_and_its_browser_suite_passes() {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("clients/web");
    npm_ci(&dir).await;
    let out = tokio::process::Command::new("npm")
        .args(["run", "check-dist"])
        .current_dir(&dir)
        .output()
        .await
        .expect("npm run check-dist");
    assert!(
        out.status.success(),
        "clients/web/dist is not what its sources build to (run `npm run build` there): {}",
        String::from_utf8_lossy(&out.stdout)
    );
    npm_test(&dir).await;
}
