//! The kill switch: REST and CLI, stored and shared by every instance, 503 with a reason and
//! `Retry-After` everywhere but the operator's routes, sockets told and closed with 1012.

use crate::helpers::fixtures::user;
use crate::helpers::ws::*;
use crate::helpers::*;
use reqwest::{Method, StatusCode};
use serde_json::{json, Value};
use std::time::Duration;

const PATH: &str = "/v1/admin/maintenance";

/// Polls `probe` until it says true (the switch applies within a poll interval).
async fn eventually(mut probe: impl AsyncFnMut() -> bool) {
    for _ in 0..100 {
        if probe().await {
            return;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("never happened");
}

async fn sessions_status(app: &TestApp, token: &str) -> StatusCode {
    app.get_auth("/v1/sessions", token).await.status()
}

/// The CLI, run as an operator would, against the cluster's database.
async fn cli(cluster: &Cluster, args: &[&str]) -> String {
    let mut cmd = tokio::process::Command::new(env!("CARGO_BIN_EXE_switchyard"));
    cmd.arg("kill-switch").args(args);
    for (k, _) in std::env::vars().filter(|(k, _)| k.starts_with("SWITCHYARD_")) {
        cmd.env_remove(k);
    }
    let data = cluster.dir.path().join("cli");
    let out = cmd
        .env(
            "SWITCHYARD_DATABASE_URL",
            cluster.database_url.as_deref().unwrap(),
        )
        .env("SWITCHYARD_SERVER_DATA_DIR", &data)
        .output()
        .await
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

#[tokio::test]
async fn the_kill_switch_refuses_all_but_operators_and_closes_sockets() {
    within(async {
        let app = spawn_with(|c| c.server.maintenance_grace_secs = 1).await;
        let admin = app.admin_token().await;
        let m = user(&app).await;
        let mut socket = connect_authed(&app.base, &m.tokens.access).await;
        let on = json!({"reason": "database upgrade", "retry_after_secs": 30});
        let by_user = app
            .call(Method::PUT, PATH, &m.tokens.access, Some(&on))
            .await;
        error_of(by_user, StatusCode::FORBIDDEN).await;
        for bad in [
            json!({"reason": ""}),
            json!({"reason": "x".repeat(501)}),
            json!({"reason": "r", "retry_after_secs": 0}),
            json!({"retry_after_secs": 5}),
        ] {
            let r = app.call(Method::PUT, PATH, &admin, Some(&bad)).await;
            assert_eq!(r.status(), StatusCode::BAD_REQUEST, "{bad}");
        }
        assert_eq!(
            sessions_status(&app, &m.tokens.access).await,
            StatusCode::OK,
            "still off"
        );

        let r = app.call(Method::PUT, PATH, &admin, Some(&on)).await;
        assert_eq!(r.status(), StatusCode::OK);
        let body: Value = r.json().await.unwrap();
        assert_eq!(
            (
                body["enabled"].clone(),
                body["maintenance"]["reason"].clone()
            ),
            (json!(true), json!("database upgrade"))
        );

        let ev = socket
            .event(&format!("user:{}", m.user_id), "server.maintenance")
            .await;
        assert_eq!(
            ev["data"],
            json!({"reason": "database upgrade", "retry_after_secs": 30, "closing_in_ms": 1000})
        );
        let (how, _) = socket.closed().await;
        assert_eq!(code_of(&how), 1012, "{how:?}");

        let r = app.get_auth("/v1/sessions", &m.tokens.access).await;
        assert_eq!(r.headers()["retry-after"], "30");
        let e = error_of(r, StatusCode::SERVICE_UNAVAILABLE).await;
        assert_eq!(e["code"], "maintenance");
        assert!(
            e["message"].as_str().unwrap().contains("database upgrade"),
            "{e}"
        );
        let completion = app
            .call(
                Method::POST,
                "/v1/chat/completions",
                &m.tokens.access,
                Some(&json!({"model": "echo", "messages": [{"role": "user", "content": "hi"}]})),
            )
            .await;
        assert_eq!(completion.status(), StatusCode::SERVICE_UNAVAILABLE);
        assert_eq!(
            connect(&app.base, Some(&m.tokens.access), None).await.err(),
            Some(503)
        );
        // What operators need still answers.
        assert_eq!(
            app.http
                .get(app.url("/health"))
                .send()
                .await
                .unwrap()
                .status(),
            StatusCode::OK
        );
        assert_eq!(
            app.get_auth("/v1/admin/users", &admin).await.status(),
            StatusCode::OK
        );
        assert_eq!(app.login(&m.email, PASSWORD).await.status(), StatusCode::OK);
        assert_eq!(app.get_json(PATH, &admin).await["enabled"], true);
        assert_eq!(
            app.get_auth("/v1/debug", &admin).await.status(),
            StatusCode::OK
        );
        let v = app
            .post("/v1/auth/verify-token", &json!({"token": m.tokens.access}))
            .await;
        assert_eq!(
            v.json::<Value>().await.unwrap()["active"],
            true,
            "services still verify tokens"
        );

        let off = app.call(Method::DELETE, PATH, &admin, None).await;
        assert_eq!(off.status(), StatusCode::NO_CONTENT);
        assert_eq!(
            sessions_status(&app, &m.tokens.access).await,
            StatusCode::OK
        );
        assert!(connect(&app.base, Some(&m.tokens.access), None)
            .await
            .is_ok());
        let audit = app.get_json("/v1/admin/audit?limit=100", &admin).await;
        let events: Vec<&str> = audit["data"]
            .as_array()
            .unwrap()
            .iter()
            .filter_map(|e| e["event"].as_str())
            .collect();
        assert!(
            events.contains(&"maintenance_enabled") && events.contains(&"maintenance_disabled"),
            "{events:?}"
        );
    })
    .await
}

#[tokio::test]
async fn the_kill_switch_is_shared_by_every_instance_survives_a_restart_and_obeys_the_cli() {
    within(async {
        let cluster = Cluster::new().await;
        let a = cluster.spawn(|_| {}).await;
        let b = cluster.spawn(|_| {}).await;
        let admin = a.admin_token().await;
        let m = user(&a).await;
        let t = m.tokens.access.clone();
        let r = a
            .call(
                Method::PUT,
                PATH,
                &admin,
                Some(&json!({"reason": "moving racks"})),
            )
            .await;
        assert_eq!(r.status(), StatusCode::OK);
        eventually(async || sessions_status(&b, &t).await == StatusCode::SERVICE_UNAVAILABLE).await;
        let r = b.get_auth("/v1/sessions", &t).await;
        assert_eq!(r.headers()["retry-after"], "60", "the default");

        // A new instance starts in maintenance: refused from its first request.
        let c = cluster.spawn(|_| {}).await;
        assert_eq!(
            sessions_status(&c, &t).await,
            StatusCode::SERVICE_UNAVAILABLE
        );

        let status = cli(&cluster, &["status"]).await;
        assert!(
            status.contains("maintenance on") && status.contains("moving racks"),
            "{status}"
        );
        cli(&cluster, &["disable"]).await;
        for app in [&a, &b, &c] {
            eventually(async || sessions_status(app, &t).await == StatusCode::OK).await;
        }
        cli(
            &cluster,
            &["enable", "--reason", "from the shell", "--retry-after", "9"],
        )
        .await;
        for app in [&a, &b, &c] {
            eventually(async || sessions_status(app, &t).await == StatusCode::SERVICE_UNAVAILABLE)
                .await;
        }
        let e = error_of(
            c.get_auth("/v1/sessions", &t).await,
            StatusCode::SERVICE_UNAVAILABLE,
        )
        .await;
        assert!(
            e["message"].as_str().unwrap().contains("from the shell"),
            "{e}"
        );
        assert_eq!(cli(&cluster, &["disable"]).await.trim(), "maintenance off");
    })
    .await
}
