//! What a newcomer sees from the binary: the start-up log, help text, the password prompt.

use crate::helpers::*;
use std::time::Duration;
use tokio::io::{AsyncBufReadExt, BufReader};

fn command(dir: &std::path::Path) -> tokio::process::Command {
    let mut cmd = tokio::process::Command::new(env!("CARGO_BIN_EXE_switchyard"));
    for (k, _) in std::env::vars().filter(|(k, _)| k.starts_with("SWITCHYARD_")) {
        cmd.env_remove(k);
    }
    cmd.env("SWITCHYARD_SERVER_DATA_DIR", dir)
        .env("SWITCHYARD_SERVER_BIND", "127.0.0.1:0")
        .env("SWITCHYARD_SERVER_WEB_DIR", "")
        .kill_on_drop(true);
    cmd
}

#[tokio::test]
async fn the_start_up_log_says_where_to_go_and_how_to_make_the_first_admin() {
    within(async {
        let dir = tempfile::tempdir().unwrap();
        let mut child = command(dir.path())
            .arg("serve")
            .stdout(std::process::Stdio::piped())
            .spawn()
            .unwrap();
        let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
        let mut seen = Vec::new();
        while let Ok(Some(line)) = lines.next_line().await {
            let done = line.contains("no account exists yet");
            seen.push(line);
            if done {
                break;
            }
        }
        let text = seen.join("\n");
        assert!(
            !text.contains('\u{1b}'),
            "no colour codes into a pipe: {text}"
        );
        let ready = seen
            .iter()
            .find(|l| l.contains("switchyard ready"))
            .expect(&text);
        assert!(
            ready.contains("url=http://127.0.0.1:") && ready.contains("/docs"),
            "{ready}"
        );
        assert!(ready.contains("websocket=ws://127.0.0.1:"), "{ready}");
        assert!(
            text.contains("switchyard user create --email you@example.com --admin"),
            "{text}"
        );
        child.kill().await.unwrap();

        // With an account, the hint is gone.
        let out = command(dir.path())
            .args(["user", "create", "--email", "first@example.com", "--admin"])
            .env("SWITCHYARD_USER_PASSWORD", PASSWORD)
            .output()
            .await
            .unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        assert!(String::from_utf8_lossy(&out.stdout).starts_with("created first@example.com"));
        let mut child = command(dir.path())
            .arg("serve")
            .stdout(std::process::Stdio::piped())
            .spawn()
            .unwrap();
        let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
        loop {
            let line = lines.next_line().await.unwrap().expect("ready line");
            assert!(!line.contains("no account exists yet"), "{line}");
            if line.contains("switchyard ready") {
                break;
            }
        }
        // The next line, if any comes soon, is not the hint either.
        if let Ok(Ok(Some(line))) =
            tokio::time::timeout(Duration::from_millis(300), lines.next_line()).await
        {
            assert!(!line.contains("no account exists yet"), "{line}");
        }
    })
    .await
}

#[tokio::test]
async fn a_weak_password_at_the_cli_names_the_policy_and_every_command_has_help() {
    within(async {
        let dir = tempfile::tempdir().unwrap();
        let out = command(dir.path())
            .args(["user", "create", "--email", "x@example.com"])
            .env("SWITCHYARD_USER_PASSWORD", "short")
            .output()
            .await
            .unwrap();
        assert!(!out.status.success());
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(
            err.contains("at least 10") && err.contains("not a common password"),
            "{err}"
        );
        for args in [
            &["--help"][..],
            &["user", "create", "--help"],
            &["kill-switch", "enable", "--help"],
        ] {
            let out = command(dir.path()).args(args).output().await.unwrap();
            let help = String::from_utf8_lossy(&out.stdout);
            assert!(out.status.success(), "{args:?}");
            for line in help.lines().filter(|l| l.trim_start().starts_with('-')) {
                let words = line
                    .split_whitespace()
                    .filter(|w| !w.starts_with('-') && !w.starts_with('<') && !w.starts_with('['));
                assert!(
                    words.count() > 0,
                    "{args:?}: an option without help text: {line:?}"
                );
            }
        }
        let help = command(dir.path())
            .args(["user", "create", "--help"])
            .output()
            .await
            .unwrap();
        let help = String::from_utf8_lossy(&help.stdout);
        assert!(
            help.contains("e-mail address") && help.contains("admin"),
            "{help}"
        );
    })
    .await
}
