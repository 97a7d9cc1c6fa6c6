//! Attached files reaching the model: text as context within the turn's budget, images as
//! image parts in each provider's own format, and `/v1/chat/completions` passing image parts
//! through.

use crate::helpers::completions::{complete, route_upstream, setup};
use crate::helpers::files::*;
use crate::helpers::fixtures::{id_of, session, user, Member};
use crate::helpers::turns::*;
use crate::helpers::upstream::Upstream;
use crate::helpers::ws::*;
use crate::helpers::*;
use base64::Engine;
use reqwest::StatusCode;
use serde_json::{json, Value};

const SOURCE: &str = "fn main() {\n    println!(\"hi\");\n}\n";

fn png_url() -> String {
    let data = base64::engine::general_purpose::STANDARD.encode(PNG);
    format!("data:image/png;base64,{data}")
}

fn context(name: &str, body: &str) -> String {
    format!("<attachment filename=\"{name}\" content_type=\"text/plain\">\n{body}\n</attachment>")
}

/// Uploads the source file and the image; returns their ids.
async fn attach_two(app: &TestApp, me: &Member, ch: &str) -> (String, String) {
    let t = &me.tokens.access;
    let text = uploaded(upload_raw(app, t, ch, "main.rs", SOURCE.as_bytes()).await).await;
    let img = uploaded(upload_raw(app, t, ch, "shot.png", PNG).await).await;
    (
        text["id"].as_str().unwrap().into(),
        img["id"].as_str().unwrap().into(),
    )
}

async fn turn_with_files(app: &TestApp, me: &Member, ch: &str, model: &str, files: Value) -> Value {
    let mut c = connect_authed(&app.base, &me.tokens.access).await;
    c.subscribe(ch).await;
    let r = c
        .request(
            "chat.send",
            json!({"session_id": id_of(ch), "message": "what is in these?",
            "model": model, "files": files, "message_id": "u1"}),
        )
        .await;
    assert_eq!(r["type"], "ok", "{r}");
    let turn = r["result"]["turn_id"].as_str().unwrap().to_owned();
    let end = follow(&mut c, ch, &turn, Follow::END).await.end;
    assert_eq!(end["event"], "chat.done", "{end}");
    r
}

#[tokio::test]
async fn an_attached_text_file_and_image_reach_openai_and_anthropic_in_their_formats() {
    within(async {
        let up = Upstream::start().await;
        let app = spawn_with(|c| route_upstream(c, &up)).await;
        let me = user(&app).await;
        let ch = session(&app, &me).await;
        let (text, img) = attach_two(&app, &me, &ch).await;
        turn_with_files(&app, &me, &ch, "oa-text", json!([text, img])).await;
        let said = format!("what is in these?\n\n{}", context("main.rs", SOURCE));
        let body = up.last_body();
        let last = body["messages"].as_array().unwrap().last().unwrap().clone();
        assert_eq!(
            last,
            json!({"role": "user", "content": [
                {"type": "text", "text": said},
                {"type": "image_url", "image_url": {"url": png_url()}}]})
        );
        // The user message records what it attached, for every client to show.
        let m = message(&app, &me, &ch, "u1").await;
        let att = &m["metadata"]["attachments"];
        assert_eq!((att[0]["file_id"].as_str(), att[0]["filename"].as_str()), (Some(text.as_str()), Some("main.rs")));
        assert_eq!((att[1]["content_type"].as_str(), att[1]["size"].as_u64()), (Some("image/png"), Some(PNG.len() as u64)));

        // The next turn (Anthropic) sends the earlier message with its files as Anthropic blocks.
        let ch2 = session(&app, &me).await;
        let (text2, img2) = attach_two(&app, &me, &ch2).await;
        turn_with_files(&app, &me, &ch2, "an-text", json!([text2, img2])).await;
        let body = up.last_body();
        let data = base64::engine::general_purpose::STANDARD.encode(PNG);
        assert_eq!(
            body["messages"][0],
            json!({"role": "user", "content": [
                {"type": "text", "text": said},
                {"type": "image", "source": {"type": "base64", "media_type": "image/png", "data": data}}]})
        );
    })
    .await
}

#[tokio::test]
async fn attachments_stay_within_the_turn_budget_and_the_session() {
    within(async {
        let up = Upstream::start().await;
        let app = spawn_with(|c| {
            route_upstream(c, &up);
            c.files.turn_text_budget_bytes = 60;
            c.files.turn_max_images = 1;
            c.files.max_attachments_per_message = 3;
        })
        .await;
        let me = user(&app).await;
        let ch = session(&app, &me).await;
        let t = &me.tokens.access;
        let old = uploaded(upload_raw(&app, t, &ch, "old.txt", b"older context").await).await;
        let big = "é".repeat(40); // 80 bytes: the 60-byte budget cuts it between characters
        let new = uploaded(upload_raw(&app, t, &ch, "new.txt", big.as_bytes()).await).await;
        let i1 = uploaded(upload_raw(&app, t, &ch, "a.png", PNG).await).await;
        let i2 = uploaded(upload_form(&app, t, &ch, "b.png", PNG).await).await;
        // An earlier message attached a file through the sync path.
        let ops = json!([{"client_id": "c1", "mutation_id": 1, "hlc": format!("{}:0", crate::helpers::fixtures::now_ms()), "ops": [
            {"op": "append_message", "message_id": "u0", "role": "user", "content": "see this",
             "metadata": {"attachments": [{"file_id": old["id"]}]}}]}]);
        assert_eq!(crate::helpers::fixtures::push(&app, &me, &ch, ops).await.0, 200);
        turn_with_files(&app, &me, &ch, "oa-text", json!([new["id"], i1["id"], i2["id"]])).await;
        let body = up.last_body();
        let msgs = body["messages"].as_array().unwrap();
        assert_eq!(
            msgs[0]["content"],
            "see this\n\n[attached file old.txt not included: this turn's attachment budget is spent]",
            "the newest message's files come first"
        );
        let shown = "é".repeat(30);
        let cut = format!("{shown}\n[truncated: the first 60 of 80 bytes are shown]");
        let said = format!(
            "what is in these?\n\n{}\n\n[attached image b.png not sent: at most 1 images per turn]",
            context("new.txt", &cut)
        );
        assert_eq!(msgs[1]["content"][0], json!({"type": "text", "text": said}));
        assert_eq!(msgs[1]["content"].as_array().unwrap().len(), 2, "one image");

        // Files of another session, unknown ids and too many are refused before anything runs.
        let mut c = connect_authed(&app.base, t).await;
        let other = session(&app, &me).await;
        let send = |files: Value| json!({"session_id": id_of(&other), "message": "x", "model": "oa-text", "files": files});
        let r = c.request_unchecked("chat.send", send(json!([new["id"]]))).await;
        assert_eq!(r["code"], "not_found", "{r}");
        let r = c.request_unchecked("chat.send", send(json!([uuid::Uuid::now_v7(), 1, 2, 3]))).await;
        assert_eq!(r["code"], "invalid_request", "{r}");
        let four: Vec<String> = (0..4).map(|_| uuid::Uuid::now_v7().to_string()).collect();
        let r = c.request_unchecked("chat.send", send(json!(four))).await;
        assert_eq!(r["code"], "invalid_request", "{r}");
        assert!(r["message"].as_str().unwrap().contains("at most 3 files"), "{r}");
    })
    .await
}

#[tokio::test]
async fn completions_pass_image_parts_through() {
    within(async {
        let (app, up, token) = setup().await;
        let content = json!([
            {"type": "image_url", "image_url": {"url": png_url(), "detail": "low"}},
            {"type": "text", "text": "describe"}]);
        let r = complete(&app, &token, json!({"model": "oa-text",
            "messages": [{"role": "user", "content": content}]})).await;
        assert_eq!(r.status(), StatusCode::OK);
        assert_eq!(up.last_body()["messages"][0]["content"], content, "unchanged, in order");
        let r = complete(&app, &token, json!({"model": "an-text", "stream": true,
            "messages": [{"role": "user", "content": content}]})).await;
        assert_eq!(r.status(), StatusCode::OK);
        let _ = r.text().await;
        let data = base64::engine::general_purpose::STANDARD.encode(PNG);
        assert_eq!(
            up.last_body()["messages"][0]["content"],
            json!([{"type": "image", "source": {"type": "base64", "media_type": "image/png", "data": data}},
                   {"type": "text", "text": "describe"}])
        );
        for (msg, param) in [
            (json!({"role": "assistant", "content": [{"type": "image_url", "image_url": {"url": png_url()}}]}), "messages[0].content[0]"),
            (json!({"role": "user", "content": [{"type": "image_url", "image_url": {"url": "file:///etc/passwd"}}]}), "messages[0].content[0].image_url.url"),
            (json!({"role": "user", "content": [{"type": "image_url", "image_url": {"url": png_url(), "detail": "max"}}]}), "messages[0].content[0].image_url.detail"),
            (json!({"role": "user", "content": [{"type": "input_audio"}]}), "messages[0].content[0]"),
        ] {
            let r = complete(&app, &token, json!({"model": "oa-text", "messages": [msg]})).await;
            let e = error_of(r, StatusCode::BAD_REQUEST).await;
            assert_eq!(e["param"], param, "{e}");
        }
    })
    .await
}
