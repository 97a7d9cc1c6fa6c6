//! A turn whose answer cannot be saved never claims it was: the store refuses its writes
//! (the change log is renamed away mid-turn, on SQLite and PostgreSQL alike), the turn ends in
//! `chat.error` `save_failed`, and the next turn marks the message failed.

use crate::helpers::fixtures::{session, user};
use crate::helpers::turns::{follow, Follow};
use crate::helpers::ws::*;
use crate::helpers::*;
use serde_json::{json, Value};

/// Runs one statement on the test's database, beside the server.
async fn sql(app: &TestApp, statement: &str) {
    use sqlx::Connection;
    match &app.config.database.url {
        Some(url) if url.starts_with("postgres") => {
            let mut c = sqlx::PgConnection::connect(url).await.unwrap();
            sqlx::query(statement).execute(&mut c).await.unwrap();
        }
        _ => {
            let path = app.dir.as_ref().unwrap().path().join("switchyard.db");
            let mut c = sqlx::SqliteConnection::connect(&format!("sqlite://{}", path.display()))
                .await
                .unwrap();
            sqlx::query(statement).execute(&mut c).await.unwrap();
        }
    }
}

#[tokio::test]
async fn a_turn_whose_final_save_fails_ends_in_chat_error_not_done() {
    within(async {
        let app = spawn_with(|c| {
            c.llm.echo_chunk_delay_ms = 40;
            c.chat.final_save_attempts = 2;
        })
        .await;
        let m = user(&app).await;
        let ch = session(&app, &m).await;
        let id = ch.strip_prefix("session:").unwrap();
        let mut c = connect_authed(&app.base, &m.tokens.access).await;
        assert_eq!(c.subscribe(&ch).await["type"], "ok");
        let words = vec!["word"; 40].join(" ");
        let r = c
            .request(
                "chat.send",
                json!({"session_id": id, "message": words, "model": "echo"}),
            )
            .await;
        let turn = r["result"]["turn_id"].as_str().unwrap().to_owned();
        let message_id = r["result"]["message_id"].as_str().unwrap().to_owned();
        c.event(&ch, "chat.delta").await;
        sql(&app, "ALTER TABLE change_log RENAME TO change_log_away").await;
        let end = follow(&mut c, &ch, &turn, Follow::END).await.end;
        sql(&app, "ALTER TABLE change_log_away RENAME TO change_log").await;
        assert_eq!(end["event"], "chat.error", "{end}");
        assert_eq!(end["data"]["code"], "save_failed", "{end}");

        // The next turn finds the message unfinished and marks it failed.
        let r = c
            .request(
                "chat.send",
                json!({"session_id": id, "message": "again", "model": "echo"}),
            )
            .await;
        assert_eq!(r["type"], "ok", "{r}");
        let next = r["result"]["turn_id"].as_str().unwrap().to_owned();
        assert_eq!(
            follow(&mut c, &ch, &next, Follow::END).await.end["event"],
            "chat.done"
        );
        let snap: Value = app
            .get_auth(&format!("/v1/sessions/{id}"), &m.tokens.access)
            .await
            .json()
            .await
            .unwrap();
        let msg = snap["messages"]
            .as_array()
            .unwrap()
            .iter()
            .find(|x| x["id"] == message_id.as_str())
            .unwrap()
            .clone();
        assert_eq!(
            (
                msg["streaming"].as_bool(),
                msg["metadata"]["status"].as_str()
            ),
            (Some(false), Some("failed")),
            "{msg}"
        );
    })
    .await
}
