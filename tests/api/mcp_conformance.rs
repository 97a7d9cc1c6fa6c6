//! The official MCP conformance suite (`@modelcontextprotocol/conformance`, pinned in
//! tests/mcp/package.json with the Node 22 it needs): every client scenario runs against
//! switchyard through tests/mcp/conformance-client.mjs, which drives it as a user would (a fresh
//! account configures the scenario's server, waits for `ready`, runs a chat turn whose model
//! calls the offered tool). The suite's own verdicts decide; a scenario may fail only if
//! tests/mcp/conformance-baseline.yml lists it (each with its reason), and a listed scenario that
//! passes fails the run too, so the baseline only shrinks.

use crate::helpers::completions::route_upstream;
use crate::helpers::upstream::Upstream;
use crate::helpers::*;
use std::time::Duration;

#[tokio::test]
async fn every_client_scenario_of_the_official_suite_passes_or_is_in_the_baseline() {
    let modules = crate::helpers::mcp::node_modules().await;
    let dir = modules.parent().expect("tests/mcp").to_owned();
    let node = modules.join("node/bin/node");
    let up = Upstream::start().await;
    let app = spawn_with(|c| {
        route_upstream(c, &up);
        c.llm.models.push("conformance=openai:anytool".into());
        // The suite's servers listen on localhost.
        c.mcp.allow_private_urls = true;
        // Scenarios run in parallel, each as a new account.
        c.ratelimit.auth_requests = 10_000;
    })
    .await;
    let command = format!(
        "{} {}",
        node.display(),
        dir.join("conformance-client.mjs").display()
    );
    let run = tokio::process::Command::new(&node)
        .arg(modules.join("@modelcontextprotocol/conformance/dist/index.js"))
        .args(["client", "--suite", "all", "--timeout", "45000"])
        .arg("--command")
        .arg(&command)
        .arg("--expected-failures")
        .arg(dir.join("conformance-baseline.yml"))
        .env("SWITCHYARD_URL", &app.base)
        .env("SWITCHYARD_MODEL", "conformance")
        .kill_on_drop(true)
        .output();
    let out = tokio::time::timeout(Duration::from_secs(240), run)
        .await
        .expect("the suite finished within 240 s")
        .expect("run the conformance suite");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    // The summary (one line per scenario) shows with --nocapture.
    println!("{stdout}");
    assert!(
        out.status.success(),
        "the conformance suite failed outside its baseline:\n{stdout}\n{}",
        tail(&stderr, 200)
    );
    assert!(
        stdout.contains("tools_call"),
        "the suite ran its scenarios:\n{stdout}"
    );
}

fn tail(s: &str, lines: usize) -> String {
    let all: Vec<&str> = s.lines().collect();
    all[all.len().saturating_sub(lines)..].join("\n")
}
