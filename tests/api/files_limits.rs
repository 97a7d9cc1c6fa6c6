//! File limits and storage over HTTP: every quota and slot, stalled and cut uploads, and both
//! backends storing once and collecting what nothing uses.

use crate::helpers::files::*;
use crate::helpers::fixtures::{session, user};
use crate::helpers::*;
use reqwest::{Method, StatusCode};
use serde_json::{json, Value};

#[tokio::test]
async fn every_file_limit_is_enforced() {
    within(async {
        let app = spawn_with(|c| {
            c.files.max_file_bytes = 1000;
            c.files.max_session_bytes = 2500;
            c.files.max_user_bytes = 3500;
            c.files.max_files_per_session = 4;
            c.files.backend = switchyard::config::FileBackend::Directory;
        })
        .await;
        let blobs = app.config.server.data_dir.join("files").join("blobs");
        let me = user(&app).await;
        let (a, b) = (session(&app, &me).await, session(&app, &me).await);
        let t = &me.tokens.access;
        let kb = |n: usize| "x".repeat(n);
        let e = error_of(
            upload_raw(&app, t, &a, "big.txt", kb(1001).as_bytes()).await,
            StatusCode::PAYLOAD_TOO_LARGE,
        )
        .await;
        assert_eq!(e["code"], "payload_too_large");
        // Streamed with no length: refused once the count passes the limit.
        let body = reqwest::Body::wrap_stream(futures::stream::iter(
            (0..20).map(|_| Ok::<_, std::io::Error>(bytes::Bytes::from("x".repeat(100)))),
        ));
        let r = app
            .http
            .post(app.url(&files_path(&a)))
            .query(&[("filename", "s.txt")])
            .bearer_auth(t)
            .body(body)
            .send()
            .await
            .unwrap();
        error_of(r, StatusCode::PAYLOAD_TOO_LARGE).await;
        let e = error_of(
            upload_form(&app, t, &a, "big.txt", kb(1001).as_bytes()).await,
            StatusCode::PAYLOAD_TOO_LARGE,
        )
        .await;
        assert_eq!(e["code"], "payload_too_large");

        uploaded(upload_raw(&app, t, &a, "1.txt", kb(1000).as_bytes()).await).await;
        uploaded(upload_raw(&app, t, &a, "2.txt", kb(1000).as_bytes()).await).await;
        let e = error_of(
            upload_raw(&app, t, &a, "3.txt", kb(501).as_bytes()).await,
            StatusCode::CONFLICT,
        )
        .await;
        assert_eq!(e["code"], "file_limit_exceeded");
        assert!(
            e["message"]
                .as_str()
                .unwrap()
                .contains("files.max_session_bytes"),
            "{e}"
        );
        uploaded(upload_raw(&app, t, &a, "3.txt", kb(10).as_bytes()).await).await;
        uploaded(upload_raw(&app, t, &a, "4.txt", kb(10).as_bytes()).await).await;
        let e = error_of(
            upload_raw(&app, t, &a, "5.txt", b"y").await,
            StatusCode::CONFLICT,
        )
        .await;
        assert!(
            e["message"]
                .as_str()
                .unwrap()
                .contains("files.max_files_per_session"),
            "{e}"
        );
        uploaded(upload_raw(&app, t, &b, "6.txt", kb(1000).as_bytes()).await).await;
        let e = error_of(
            upload_raw(&app, t, &b, "7.txt", kb(600).as_bytes()).await,
            StatusCode::CONFLICT,
        )
        .await;
        assert!(
            e["message"]
                .as_str()
                .unwrap()
                .contains("files.max_user_bytes"),
            "{e}"
        );
        // What a quota refuses is not stored: the 501-, 1- and 600-byte bodies left no blob;
        // the accepted ones are two distinct bodies (1000 and 10 bytes), each stored once.
        assert_eq!(walk(&blobs), 2);

        // Two uploads at once cannot both squeeze into what is left for one.
        let other = user(&app).await;
        let c = session(&app, &other).await;
        let big = kb(1000);
        let (x, y, z) = tokio::join!(
            upload_raw(&app, &other.tokens.access, &c, "x.txt", big.as_bytes()),
            upload_raw(&app, &other.tokens.access, &c, "y.txt", big.as_bytes()),
            upload_raw(&app, &other.tokens.access, &c, "z.txt", big.as_bytes()),
        );
        let ok = [x.status(), y.status(), z.status()]
            .iter()
            .filter(|s| **s == StatusCode::CREATED)
            .count();
        assert_eq!(ok, 2, "2500 bytes hold two 1000-byte files, never three");
    })
    .await;
}

#[tokio::test]
async fn a_stalled_upload_is_given_up_and_one_user_cannot_take_every_slot() {
    within(async {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let app = spawn_with(|c| {
            c.files.max_concurrent_uploads_per_user = 1;
            c.files.upload_idle_secs = 1;
        })
        .await;
        let (me, other) = (user(&app).await, user(&app).await);
        let (ch, theirs) = (session(&app, &me).await, session(&app, &other).await);
        let mut s = tokio::net::TcpStream::connect(app.addr).await.unwrap();
        let head = format!(
            "POST {}?filename=slow.txt HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {}\r\n\
             Content-Type: application/octet-stream\r\nContent-Length: 1000\r\n\r\nfirst bytes",
            files_path(&ch),
            me.tokens.access
        );
        s.write_all(head.as_bytes()).await.unwrap();
        tokio::time::sleep(std::time::Duration::from_millis(300)).await;
        // The stalled upload holds this user's one slot; another user's upload goes through.
        let busy = upload_raw(&app, &me.tokens.access, &ch, "b.txt", b"b").await;
        let e = error_of(busy, StatusCode::SERVICE_UNAVAILABLE).await;
        assert_eq!(e["code"], "service_unavailable");
        uploaded(upload_raw(&app, &other.tokens.access, &theirs, "c.txt", b"c").await).await;
        // Then it is given up with a reason, and the slot is free again.
        let mut answer = vec![0; 4096];
        let n = s.read(&mut answer).await.unwrap();
        let answer = String::from_utf8_lossy(&answer[..n]).into_owned();
        assert!(answer.starts_with("HTTP/1.1 400"), "{answer}");
        assert!(answer.contains("files.upload_idle_secs"), "{answer}");
        uploaded(upload_raw(&app, &me.tokens.access, &ch, "b.txt", b"b").await).await;
    })
    .await;
}

#[tokio::test]
async fn a_cut_upload_leaves_nothing_behind() {
    within(async {
        use tokio::io::AsyncWriteExt;
        let app = spawn_app().await;
        let me = user(&app).await;
        let ch = session(&app, &me).await;
        let mut s = tokio::net::TcpStream::connect(app.addr).await.unwrap();
        let head = format!(
            "POST {}?filename=cut.txt HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {}\r\n\
             Content-Type: application/octet-stream\r\nContent-Length: 500000\r\n\r\n",
            files_path(&ch),
            me.tokens.access
        );
        s.write_all(head.as_bytes()).await.unwrap();
        s.write_all(&vec![b'a'; 200_000]).await.unwrap();
        s.flush().await.unwrap();
        tokio::time::sleep(std::time::Duration::from_millis(300)).await;
        drop(s);
        let spool = app.config.server.data_dir.join("files").join("spool");
        let mut empty = false;
        for _ in 0..50 {
            empty = std::fs::read_dir(&spool).unwrap().count() == 0;
            if empty {
                break;
            }
            tokio::time::sleep(std::time::Duration::from_millis(100)).await;
        }
        assert!(empty, "the spooled part was removed");
        let list = app.get_json(&files_path(&ch), &me.tokens.access).await;
        assert_eq!(list["data"], json!([]));
    })
    .await;
}

#[tokio::test]
async fn the_directory_backend_stores_once_and_collects_what_nothing_uses() {
    within(async {
        let app = spawn_with(|c| {
            c.files.backend = switchyard::config::FileBackend::Directory;
            c.files.orphan_grace_secs = 0;
        })
        .await;
        let (me, other) = (user(&app).await, user(&app).await);
        let (a, b) = (session(&app, &me).await, session(&app, &me).await);
        let t = &me.tokens.access;
        let body = "same bytes\n".repeat(50_000); // 550 KB: several pieces
        let f1 = uploaded(upload_raw(&app, t, &a, "one.txt", body.as_bytes()).await).await;
        let f2 = uploaded(upload_raw(&app, t, &b, "two.txt", body.as_bytes()).await).await;
        assert_eq!(f1["sha256"], f2["sha256"]);
        let blobs = app.config.server.data_dir.join("files").join("blobs");
        let count = || walk(&blobs);
        assert_eq!(count(), 1, "the same bytes are stored once");
        let path = format!("{}/{}", files_path(&b), f2["id"].as_str().unwrap());
        let part = app.http.get(app.url(&path)).bearer_auth(t).header("range", "bytes=262140-262149").send().await.unwrap();
        assert_eq!(part.bytes().await.unwrap(), &body.as_bytes()[262_140..262_150], "a range across pieces");
        assert_eq!(app.get_auth(&path, t).await.bytes().await.unwrap(), body.as_bytes());

        // One file gone: the blob stays for the other.
        let p1 = format!("{}/{}", files_path(&a), f1["id"].as_str().unwrap());
        assert_eq!(app.call(Method::DELETE, &p1, t, None).await.status(), StatusCode::NO_CONTENT);
        assert_eq!(app.state.files.collect().await.unwrap(), 0);
        assert_eq!(count(), 1);
        // The session deleted: its files go, then the blob.
        let del = json!([{"client_id": "c", "mutation_id": 1, "hlc": format!("{}:0", crate::helpers::fixtures::now_ms()), "ops": [{"op": "delete_session"}]}]);
        let (status, _) = crate::helpers::fixtures::push(&app, &me, &b, del).await;
        assert_eq!(status, 200);
        assert_eq!(app.state.files.collect().await.unwrap(), 1);
        assert_eq!(count(), 0);
        // An account deleted takes its uploads with it.
        let c = session(&app, &other).await;
        let f = uploaded(upload_raw(&app, &other.tokens.access, &c, "mine.txt", b"mine").await).await;
        let r = app.call(Method::DELETE, "/v1/user/profile", &other.tokens.access, Some(&json!({"password": PASSWORD}))).await;
        assert!(r.status().is_success(), "{}", r.status());
        assert!(app.state.store.file(c.strip_prefix("session:").unwrap().parse().unwrap(), f["id"].as_str().unwrap().parse().unwrap()).await.unwrap().is_none());
        assert_eq!(app.state.files.collect().await.unwrap(), 1);
        assert_eq!(count(), 0);
    })
    .await;
}

fn walk(dir: &std::path::Path) -> usize {
    std::fs::read_dir(dir)
        .map(|rd| {
            rd.flatten()
                .map(|e| {
                    if e.path().is_dir() {
                        walk(&e.path())
                    } else {
                        1
                    }
                })
                .sum()
        })
        .unwrap_or(0)
}

#[tokio::test]
async fn the_database_backend_collects_a_blob_only_once_nothing_refers_to_it() {
    within(async {
        let app = spawn_with(|c| c.files.orphan_grace_secs = 0).await;
        let me = user(&app).await;
        let ch = session(&app, &me).await;
        let t = &me.tokens.access;
        let body = "x".repeat(600_000);
        let f1 = uploaded(upload_raw(&app, t, &ch, "a.txt", body.as_bytes()).await).await;
        let f2 = uploaded(upload_raw(&app, t, &ch, "b.txt", body.as_bytes()).await).await;
        let p = |f: &Value| format!("{}/{}", files_path(&ch), f["id"].as_str().unwrap());
        assert_eq!(
            app.call(Method::DELETE, &p(&f1), t, None).await.status(),
            StatusCode::NO_CONTENT
        );
        assert_eq!(
            app.state.files.collect().await.unwrap(),
            0,
            "b.txt still uses the blob"
        );
        assert_eq!(
            app.get_auth(&p(&f2), t).await.bytes().await.unwrap().len(),
            600_000
        );
        assert_eq!(
            app.call(Method::DELETE, &p(&f2), t, None).await.status(),
            StatusCode::NO_CONTENT
        );
        assert_eq!(app.state.files.collect().await.unwrap(), 1);
        // The same bytes again are stored anew and read whole.
        let f3 = uploaded(upload_raw(&app, t, &ch, "c.txt", body.as_bytes()).await).await;
        assert_eq!(
            app.get_auth(&p(&f3), t).await.bytes().await.unwrap(),
            body.as_bytes()
        );
    })
    .await;
}
