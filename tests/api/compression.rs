//! Compression: responses by `Accept-Encoding` above a threshold, the completions stream gzipped
//! event by event, compressed request bodies with the body limit on what they decompress to.

use crate::helpers::fixtures::{append, id_of, now_ms, push, session, user};
use crate::helpers::*;
use reqwest::{header, StatusCode};
use serde_json::{json, Value};
use std::io::{Read, Write};

fn gzip(bytes: &[u8]) -> Vec<u8> {
    let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    e.write_all(bytes).unwrap();
    e.finish().unwrap()
}

fn gunzip(bytes: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    flate2::read::GzDecoder::new(bytes)
        .read_to_end(&mut out)
        .unwrap();
    out
}

async fn get(app: &TestApp, path: &str, token: &str, accept: Option<&str>) -> reqwest::Response {
    let mut r = app.http.get(app.url(path)).bearer_auth(token);
    if let Some(a) = accept {
        r = r.header(header::ACCEPT_ENCODING, a);
    }
    r.send().await.unwrap()
}

#[tokio::test]
async fn a_long_snapshot_is_compressed_by_accept_encoding_and_a_small_answer_is_not() {
    within(async {
        let app = spawn_app().await;
        let m = user(&app).await;
        let ch = session(&app, &m).await;
        let base = now_ms();
        for batch in 0..5u64 {
            let muts: Vec<Value> = (0..100u64)
                .map(|i| {
                    let n = batch * 100 + i;
                    append(
                        "phone",
                        n + 1,
                        base + n,
                        &format!("m{n}"),
                        &format!(
                            "message {n}: refactor the parser so that each token carries its span"
                        ),
                    )
                })
                .collect();
            assert_eq!(push(&app, &m, &ch, json!(muts)).await.0, 200);
        }
        let path = format!("/v1/sessions/{}", id_of(&ch));
        let plain = get(&app, &path, &m.tokens.access, None).await;
        assert!(plain.headers().get(header::CONTENT_ENCODING).is_none());
        let plain = plain.bytes().await.unwrap();
        let zipped = get(&app, &path, &m.tokens.access, Some("gzip")).await;
        assert_eq!(zipped.headers()[header::CONTENT_ENCODING], "gzip");
        let zipped = zipped.bytes().await.unwrap();
        let same: Value = serde_json::from_slice(&gunzip(&zipped)).unwrap();
        let want: Value = serde_json::from_slice(&plain).unwrap();
        assert!(
            same["messages"] == want["messages"],
            "the same transcript, decoded"
        );
        assert_eq!(want["messages"].as_array().map(Vec::len), Some(500));
        assert!(
            zipped.len() * 4 < plain.len(),
            "{} -> {}",
            plain.len(),
            zipped.len()
        );
        eprintln!(
            "500-message snapshot: {} bytes, gzip {} bytes",
            plain.len(),
            zipped.len()
        );
        for (accept, encoding) in [("br", "br"), ("zstd", "zstd"), ("gzip;q=0, br", "br")] {
            let r = get(&app, &path, &m.tokens.access, Some(accept)).await;
            assert_eq!(r.headers()[header::CONTENT_ENCODING], encoding, "{accept}");
            let n = r.bytes().await.unwrap().len();
            eprintln!("  {encoding}: {n} bytes");
        }
        let small = get(&app, "/v1/auth/me", &m.tokens.access, Some("gzip")).await;
        assert!(
            small.headers().get(header::CONTENT_ENCODING).is_none(),
            "under server.compress_min_bytes"
        );
    })
    .await
}

#[tokio::test]
async fn the_completions_stream_is_gzipped_and_decodes_to_the_same_events() {
    within(async {
        let app = spawn_app().await;
        let m = user(&app).await;
        let words = "one two three four five six seven eight nine ten ".repeat(20);
        let body = json!({"model": "echo", "stream": true,
            "messages": [{"role": "user", "content": words}]});
        let send = |accept: Option<&'static str>| {
            let mut r = app
                .http
                .post(app.url("/v1/chat/completions"))
                .bearer_auth(&m.tokens.access)
                .json(&body);
            if let Some(a) = accept {
                r = r.header(header::ACCEPT_ENCODING, a);
            }
            r.send()
        };
        let plain = send(None).await.unwrap();
        assert!(plain.headers().get(header::CONTENT_ENCODING).is_none());
        let plain = String::from_utf8(plain.bytes().await.unwrap().to_vec()).unwrap();
        let zipped = send(Some("gzip, deflate")).await.unwrap();
        assert_eq!(zipped.headers()[header::CONTENT_ENCODING], "gzip");
        assert_eq!(zipped.headers()[header::CONTENT_TYPE], "text/event-stream");
        let zipped = zipped.bytes().await.unwrap();
        let text = String::from_utf8(gunzip(&zipped)).unwrap();
        // Same events but for their ids and timestamps.
        let contents = |s: &str| -> Vec<String> {
            s.split("\n\n")
                .filter_map(|e| e.strip_prefix("data: "))
                .filter(|d| *d != "[DONE]")
                .map(|d| {
                    serde_json::from_str::<Value>(d).unwrap()["choices"][0]["delta"].to_string()
                })
                .collect()
        };
        assert_eq!(contents(&text), contents(&plain));
        assert!(text.ends_with("data: [DONE]\n\n"));
        assert!(
            zipped.len() * 4 < plain.len(),
            "{} -> {}",
            plain.len(),
            zipped.len()
        );
        eprintln!(
            "completion stream ({} events): {} bytes, gzip {} bytes",
            contents(&plain).len(),
            plain.len(),
            zipped.len()
        );
    })
    .await
}

#[tokio::test]
async fn a_compressed_request_body_is_read_and_a_zip_bomb_is_refused() {
    within(async {
        let app = spawn_app().await;
        let m = user(&app).await;
        let post = |body: Vec<u8>, encoding: &'static str| {
            app.http
                .post(app.url("/v1/projects"))
                .bearer_auth(&m.tokens.access)
                .header(header::CONTENT_TYPE, "application/json")
                .header(header::CONTENT_ENCODING, encoding)
                .body(body)
                .send()
        };
        let r = post(gzip(br#"{"name": "zipped"}"#), "gzip").await.unwrap();
        assert_eq!(r.status(), StatusCode::CREATED);
        assert_eq!(r.json::<Value>().await.unwrap()["name"], "zipped");
        // 64 MiB of spaces inside valid JSON: about 64 KiB on the wire.
        let mut bomb = br#"{"name": "x", "description": ""#.to_vec();
        bomb.extend(std::iter::repeat_n(b' ', 64 << 20));
        bomb.extend_from_slice(br#""}"#);
        let bomb = gzip(&bomb);
        assert!(bomb.len() < 1 << 20, "{}", bomb.len());
        let e = error_of(
            post(bomb, "gzip").await.unwrap(),
            StatusCode::PAYLOAD_TOO_LARGE,
        )
        .await;
        assert_eq!(e["code"], "payload_too_large");
        let r = post(b"not gzip at all".to_vec(), "gzip").await.unwrap();
        assert_eq!(r.status(), StatusCode::BAD_REQUEST);
        let r = post(br#"{"name": "y"}"#.to_vec(), "compress")
            .await
            .unwrap();
        assert_eq!(r.status(), StatusCode::UNSUPPORTED_MEDIA_TYPE);
        let projects = app.get_json("/v1/projects", &m.tokens.access).await;
        assert_eq!(
            projects["data"].as_array().unwrap().len(),
            1,
            "only the good one: {projects}"
        );
    })
    .await
}
