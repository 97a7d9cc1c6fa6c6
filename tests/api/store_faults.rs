//! A database that cannot answer in time is backpressure, not a fault: with the pool taken by
//! a push waiting on a lock held outside the server, a subscribe and a REST read are told to
//! retry (`service_unavailable`, `Retry-After`), never `internal_error`; the waiting push is
//! acknowledged once the lock goes, and what it acknowledged is there.

use crate::helpers::fixtures::{now_ms, push, session, snapshot, tag, user};
use crate::helpers::ws::*;
use crate::helpers::*;
use std::time::Duration;

/// Takes the database's write lock from outside the server for `hold`, on whichever backend the
/// test runs; returns once the lock is held.
async fn hold_write_lock(app: &TestApp, hold: Duration) -> tokio::task::JoinHandle<()> {
    use sqlx::Connection;
    let (held, is_held) = tokio::sync::oneshot::channel();
    let url = app.config.database.url.clone();
    let file = app.dir.as_ref().map(|d| d.path().join("switchyard.db"));
    let task = tokio::spawn(async move {
        match url {
            Some(url) if url.starts_with("postgres") => {
                let mut c = sqlx::PgConnection::connect(&url).await.unwrap();
                for s in ["BEGIN", "LOCK TABLE sessions IN EXCLUSIVE MODE"] {
                    sqlx::query(s).execute(&mut c).await.unwrap();
                }
                held.send(()).unwrap();
                tokio::time::sleep(hold).await;
                sqlx::query("ROLLBACK").execute(&mut c).await.unwrap();
            }
            _ => {
                let file = file.unwrap();
                let url = format!("sqlite://{}", file.display());
                let mut c = sqlx::SqliteConnection::connect(&url).await.unwrap();
                sqlx::query("BEGIN IMMEDIATE")
                    .execute(&mut c)
                    .await
                    .unwrap();
                held.send(()).unwrap();
                tokio::time::sleep(hold).await;
                sqlx::query("ROLLBACK").execute(&mut c).await.unwrap();
            }
        }
    });
    is_held.await.unwrap();
    task
}

#[tokio::test]
async fn an_exhausted_pool_answers_retry_later_and_the_waiting_push_lands() {
    within(async {
        let app = spawn_with(|c| {
            c.database.max_connections = 1;
            c.database.acquire_timeout_secs = 1;
        })
        .await;
        let alice = user(&app).await;
        let ch = session(&app, &alice).await;
        let mut c = connect_authed(&app.base, &alice.tokens.access).await;
        let lock = hold_write_lock(&app, Duration::from_secs(4)).await;
        // This push waits for the lock on the server's only connection...
        let pushing = push(
            &app,
            &alice,
            &ch,
            serde_json::json!([tag("f1", 1, now_ms(), "kept")]),
        );
        // ...so what needs the database meanwhile is told to come back.
        let probing = async {
            tokio::time::sleep(Duration::from_millis(300)).await;
            let sub = c
                .request("subscribe", serde_json::json!({"channel": ch}))
                .await;
            let r = app.get_auth("/v1/sessions", &alice.tokens.access).await;
            let retry = r.headers().get("retry-after").cloned();
            let body = error_of(r, reqwest::StatusCode::SERVICE_UNAVAILABLE).await;
            (sub, retry, body)
        };
        let ((status, pushed), (sub, retry, body)) = tokio::join!(pushing, probing);
        assert_eq!(sub["type"], "error", "{sub}");
        assert_eq!(sub["code"], "service_unavailable", "{sub}");
        assert_eq!(body["code"], "service_unavailable", "{body}");
        assert!(
            !body["message"].as_str().unwrap().contains("error id"),
            "backpressure is not an internal error: {body}"
        );
        assert_eq!(retry.unwrap(), "1");
        assert_eq!(status, 200, "{pushed}");
        assert_eq!(pushed["results"][0]["status"], "applied", "{pushed}");
        lock.await.unwrap();
        // The lock is gone: everything answers again, and the push is in.
        let sub = c
            .request("subscribe", serde_json::json!({"channel": ch}))
            .await;
        assert_eq!(sub["type"], "ok", "{sub}");
        let snap = snapshot(&app, &alice, &ch).await;
        assert_eq!(snap["tags"], serde_json::json!(["kept"]), "{snap}");
    })
    .await;
}
