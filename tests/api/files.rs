//! Files in sessions over HTTP and the socket: who may upload, read and delete; downloads with
//! ranges and ETags; what a file may be; and the events members see.

use crate::helpers::files::*;
use crate::helpers::fixtures::{id_of, session, share, user};
use crate::helpers::ws::*;
use crate::helpers::*;
use reqwest::{Method, StatusCode};
use serde_json::json;

#[tokio::test]
async fn members_attach_list_download_and_delete_files() {
    within(async {
        let app = spawn_app().await;
        let (owner, editor, viewer, stranger) = (
            user(&app).await,
            user(&app).await,
            user(&app).await,
            user(&app).await,
        );
        let ch = session(&app, &owner).await;
        share(&app, &owner, &ch, &editor, "editor").await;
        share(&app, &owner, &ch, &viewer, "viewer").await;
        let mut watcher = connect_authed(&app.base, &viewer.tokens.access).await;
        assert_eq!(watcher.subscribe(&ch).await["type"], "ok");

        let text = "fn main() {\n    println!(\"héllo\");\n}\n".repeat(200);
        let f = uploaded(
            upload_raw(
                &app,
                &editor.tokens.access,
                &ch,
                "src/main.rs",
                text.as_bytes(),
            )
            .await,
        )
        .await;
        assert_eq!(f["filename"], "main.rs", "path parts are dropped");
        assert_eq!(f["content_type"], "text/plain");
        assert_eq!(f["size"], text.len());
        assert_eq!(f["uploader_id"], editor.user_id.as_str());
        let added = watcher.event(&ch, "file.added").await;
        assert_eq!(
            added["data"], f,
            "members see the record as it was answered"
        );

        let img =
            uploaded(upload_form(&app, &owner.tokens.access, &ch, "shot.PNG", PNG).await).await;
        assert_eq!(
            (img["filename"].as_str(), img["content_type"].as_str()),
            (Some("shot.PNG"), Some("image/png"))
        );

        // Viewers read but cannot upload; strangers learn nothing.
        let r = upload_raw(&app, &viewer.tokens.access, &ch, "v.txt", b"hi").await;
        error_of(r, StatusCode::FORBIDDEN).await;
        let r = upload_raw(&app, &stranger.tokens.access, &ch, "s.txt", b"hi").await;
        error_of(r, StatusCode::NOT_FOUND).await;
        let list = app.get_json(&files_path(&ch), &viewer.tokens.access).await;
        let names: Vec<&str> = list["data"]
            .as_array()
            .unwrap()
            .iter()
            .map(|f| f["filename"].as_str().unwrap())
            .collect();
        assert_eq!(names, ["main.rs", "shot.PNG"]);
        let r = app
            .get_auth(&files_path(&ch), &stranger.tokens.access)
            .await;
        error_of(r, StatusCode::NOT_FOUND).await;
        let page = app
            .get_json(
                &format!("{}?limit=1", files_path(&ch)),
                &owner.tokens.access,
            )
            .await;
        let next = page["next_cursor"].as_str().expect("a second page");
        let page2 = app
            .get_json(
                &format!("{}?limit=1&after={next}", files_path(&ch)),
                &owner.tokens.access,
            )
            .await;
        assert_eq!(page2["data"][0]["id"], img["id"]);

        // The socket lists the same.
        let r = watcher
            .request("file.list", json!({"session_id": id_of(&ch)}))
            .await;
        assert_eq!(r["result"]["data"], list["data"]);

        // Download: whole, a range, the ETag.
        let path = format!("{}/{}", files_path(&ch), f["id"].as_str().unwrap());
        let r = app.get_auth(&path, &viewer.tokens.access).await;
        assert_eq!(r.status(), StatusCode::OK);
        let h = r.headers().clone();
        assert_eq!(h["content-type"], "text/plain; charset=utf-8");
        assert_eq!(
            h["content-disposition"],
            "attachment; filename=\"main.rs\"; filename*=UTF-8''main.rs"
        );
        assert_eq!(h["accept-ranges"], "bytes");
        let tag = h["etag"].to_str().unwrap().to_owned();
        assert_eq!(tag, format!("\"{}\"", f["sha256"].as_str().unwrap()));
        assert_eq!(r.bytes().await.unwrap(), text.as_bytes());
        let part = app
            .http
            .get(app.url(&path))
            .bearer_auth(&viewer.tokens.access)
            .header("range", "bytes=10-29")
            .send()
            .await
            .unwrap();
        assert_eq!(part.status(), StatusCode::PARTIAL_CONTENT);
        assert_eq!(
            part.headers()["content-range"].to_str().unwrap(),
            format!("bytes 10-29/{}", text.len())
        );
        assert_eq!(part.bytes().await.unwrap(), &text.as_bytes()[10..30]);
        let tail = app
            .http
            .get(app.url(&path))
            .bearer_auth(&viewer.tokens.access)
            .header("range", "bytes=-7")
            .send()
            .await
            .unwrap();
        assert_eq!(
            tail.bytes().await.unwrap(),
            &text.as_bytes()[text.len() - 7..]
        );
        let past = app
            .http
            .get(app.url(&path))
            .bearer_auth(&viewer.tokens.access)
            .header("range", format!("bytes={}-", text.len()))
            .send()
            .await
            .unwrap();
        assert_eq!(
            past.headers()["content-range"].to_str().unwrap(),
            format!("bytes */{}", text.len())
        );
        error_of(past, StatusCode::RANGE_NOT_SATISFIABLE).await;
        let stale = app
            .http
            .get(app.url(&path))
            .bearer_auth(&viewer.tokens.access)
            .header("range", "bytes=0-0")
            .header("if-range", "\"other\"")
            .send()
            .await
            .unwrap();
        assert_eq!(
            stale.status(),
            StatusCode::OK,
            "a changed If-Range gets the whole file"
        );
        let same = app
            .http
            .get(app.url(&path))
            .bearer_auth(&viewer.tokens.access)
            .header("if-none-match", &tag)
            .send()
            .await
            .unwrap();
        assert_eq!(same.status(), StatusCode::NOT_MODIFIED);
        let img_path = format!("{}/{}", files_path(&ch), img["id"].as_str().unwrap());
        assert_eq!(
            app.get_auth(&img_path, &editor.tokens.access)
                .await
                .bytes()
                .await
                .unwrap(),
            PNG
        );
        error_of(
            app.get_auth(&path, &stranger.tokens.access).await,
            StatusCode::NOT_FOUND,
        )
        .await;
        let unknown = format!("{}/{}", files_path(&ch), uuid::Uuid::now_v7());
        error_of(
            app.get_auth(&unknown, &owner.tokens.access).await,
            StatusCode::NOT_FOUND,
        )
        .await;
        error_of(
            app.get_auth(&format!("{}/nope", files_path(&ch)), &owner.tokens.access)
                .await,
            StatusCode::BAD_REQUEST,
        )
        .await;

        // Delete: not the viewer, not an editor for the owner's file; the uploader and the owner.
        error_of(
            app.call(Method::DELETE, &path, &viewer.tokens.access, None)
                .await,
            StatusCode::FORBIDDEN,
        )
        .await;
        error_of(
            app.call(Method::DELETE, &img_path, &editor.tokens.access, None)
                .await,
            StatusCode::FORBIDDEN,
        )
        .await;
        assert_eq!(
            app.call(Method::DELETE, &path, &editor.tokens.access, None)
                .await
                .status(),
            StatusCode::NO_CONTENT
        );
        let removed = watcher.event(&ch, "file.removed").await;
        assert_eq!(
            removed["data"],
            json!({"session_id": id_of(&ch), "file_id": f["id"]})
        );
        assert_eq!(
            app.call(Method::DELETE, &img_path, &owner.tokens.access, None)
                .await
                .status(),
            StatusCode::NO_CONTENT
        );
        error_of(
            app.call(Method::DELETE, &img_path, &owner.tokens.access, None)
                .await,
            StatusCode::NOT_FOUND,
        )
        .await;
        error_of(
            app.get_auth(&path, &owner.tokens.access).await,
            StatusCode::NOT_FOUND,
        )
        .await;
        let list = app.get_json(&files_path(&ch), &owner.tokens.access).await;
        assert_eq!(list["data"], json!([]));
    })
    .await;
}

#[tokio::test]
async fn a_file_must_be_what_its_name_says_and_named_safely() {
    within(async {
        let app = spawn_app().await;
        let me = user(&app).await;
        let ch = session(&app, &me).await;
        let t = &me.tokens.access;
        let refused = |r, want: &'static str| async move {
            let e = error_of(r, StatusCode::UNSUPPORTED_MEDIA_TYPE).await;
            let m = e["message"].as_str().unwrap().to_owned();
            assert!(m.contains(want), "{m}");
        };
        refused(
            upload_raw(&app, t, &ch, "cat.png", ELF).await,
            "this one is application/x-executable",
        )
        .await;
        refused(
            upload_form(&app, t, &ch, "notes.txt", ELF).await,
            "must be UTF-8 text",
        )
        .await;
        refused(
            upload_raw(&app, t, &ch, "notes.txt", &[0x66, 0x6f, 0xff, 0xfe]).await,
            "must be UTF-8 text",
        )
        .await;
        refused(
            upload_raw(&app, t, &ch, "zip.txt", b"PK\x03\x04\x14\0\0\0\x08\0").await,
            "application/zip",
        )
        .await;
        refused(
            upload_raw(&app, t, &ch, "tool.exe", b"MZ").await,
            "files of type .exe are not accepted",
        )
        .await;
        refused(
            upload_raw(&app, t, &ch, "README", b"hi").await,
            "files of type . are not accepted",
        )
        .await;
        refused(
            upload_raw(&app, t, &ch, "shot.png", b"hello").await,
            "must be image/png",
        )
        .await;
        // Text formats `infer` knows (HTML, shebang scripts) are text; an HTML file downloads as
        // an attachment that cannot run as this origin's page, uncompressed (one representation
        // for its ETag and ranges).
        let page = format!(
            "<!DOCTYPE html><script>alert(1)</script>{}",
            " ".repeat(4000)
        );
        let f = uploaded(upload_raw(&app, t, &ch, "page.html", page.as_bytes()).await).await;
        assert_eq!(f["content_type"], "text/html");
        uploaded(upload_raw(&app, t, &ch, "run.sh", b"#!/bin/sh\necho hi\n").await).await;
        let path = format!("{}/{}", files_path(&ch), f["id"].as_str().unwrap());
        let r = app
            .http
            .get(app.url(&path))
            .bearer_auth(t)
            .header("accept-encoding", "gzip, br")
            .send()
            .await
            .unwrap();
        let h = r.headers().clone();
        assert_eq!(h["content-security-policy"], "sandbox; default-src 'none'");
        assert!(h["content-disposition"]
            .to_str()
            .unwrap()
            .starts_with("attachment;"));
        assert_eq!(h["x-content-type-options"], "nosniff");
        assert!(h.get("content-encoding").is_none(), "{h:?}");
        assert_eq!(h["accept-ranges"], "bytes");
        assert_eq!(r.bytes().await.unwrap(), page.as_bytes());
        // Lookalike tricks are taken out of the name that is stored and echoed.
        let f =
            uploaded(upload_raw(&app, t, &ch, "..\\..\\evil\u{202E}gnp.txt", b"ok").await).await;
        assert_eq!(f["filename"], "evilgnp.txt");
        let f = uploaded(upload_raw(&app, t, &ch, "ｆｕｌｌ／ｗｉｄｔｈ.txt", b"ok").await).await;
        assert_eq!(
            f["filename"], "width.txt",
            "compatibility forms are folded, the slash included"
        );
        let e = error_of(
            upload_raw(&app, t, &ch, "/\u{200B}/", b"ok").await,
            StatusCode::BAD_REQUEST,
        )
        .await;
        assert_eq!(e["param"], "filename");
        let e = error_of(
            upload_raw(&app, t, &ch, &format!("{}.txt", "a".repeat(300)), b"ok").await,
            StatusCode::BAD_REQUEST,
        )
        .await;
        assert_eq!(e["param"], "filename");
        let r = app
            .http
            .post(app.url(&files_path(&ch)))
            .bearer_auth(t)
            .body("x")
            .send()
            .await
            .unwrap();
        assert_eq!(
            error_of(r, StatusCode::BAD_REQUEST).await["param"],
            "filename"
        );
        let r = upload_raw(&app, t, "session:not-a-uuid", "a.txt", b"x").await;
        error_of(r, StatusCode::BAD_REQUEST).await;
        let r = app
            .http
            .post(app.url(&files_path(&ch)))
            .query(&[("filename", "a.txt")])
            .body("x")
            .send()
            .await
            .unwrap();
        error_of(r, StatusCode::UNAUTHORIZED).await;
        // Nothing refused was kept.
        let list = app.get_json(&files_path(&ch), t).await;
        assert_eq!(list["data"].as_array().unwrap().len(), 4);
    })
    .await;
}
