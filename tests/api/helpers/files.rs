//! Uploads as clients send them: a raw body with `?filename=`, or a hand-built multipart form
//! (what a browser's `FormData` sends).

use super::*;
use reqwest::Response;

pub const PNG: &[u8] = b"\x89PNG\r\n\x1a\n\0\0\0\rIHDR\0\0\0\x01\0\0\0\x01\x08\x06\0\0\0\x1f\x15\xc4\x89\0\0\0\rIDATx\x9cc\xf8\xcf\xc0\xf0\x1f\0\x05\0\x01\xff\x89\x99=\x1d\0\0\0\0IEND\xaeB`\x82";
/// The first 64 bytes of an x86-64 executable (its ELF header).
pub const ELF: &[u8] = b"\x7fELF\x02\x01\x01\0\0\0\0\0\0\0\0\0\x02\0>\0\x01\0\0\0\x40\x10\x40\0\0\0\0\0\x40\0\0\0\0\0\0\0\xe8\x19\0\0\0\0\0\0\0\0\0\0\x40\08\0\x0d\0\x40\0\x1f\0\x1e\0";

pub fn files_path(ch: &str) -> String {
    format!(
        "/v1/sessions/{}/files",
        ch.strip_prefix("session:").unwrap_or(ch)
    )
}

pub async fn upload_raw(app: &TestApp, token: &str, ch: &str, name: &str, body: &[u8]) -> Response {
    app.http
        .post(app.url(&files_path(ch)))
        .query(&[("filename", name)])
        .bearer_auth(token)
        .header("content-type", "application/octet-stream")
        .body(body.to_vec())
        .send()
        .await
        .expect("upload")
}

pub async fn upload_form(
    app: &TestApp,
    token: &str,
    ch: &str,
    name: &str,
    body: &[u8],
) -> Response {
    let boundary = "----switchyard-test-boundary";
    let mut form = Vec::new();
    form.extend_from_slice(
        format!("--{boundary}\r\nContent-Disposition: form-data; name=\"note\"\r\n\r\nhello\r\n")
            .as_bytes(),
    );
    form.extend_from_slice(
        format!(
            "--{boundary}\r\nContent-Disposition: form-data; name=\"file\"; filename=\"{name}\"\r\n\
             Content-Type: application/octet-stream\r\n\r\n"
        )
        .as_bytes(),
    );
    form.extend_from_slice(body);
    form.extend_from_slice(format!("\r\n--{boundary}--\r\n").as_bytes());
    app.http
        .post(app.url(&files_path(ch)))
        .bearer_auth(token)
        .header(
            "content-type",
            format!("multipart/form-data; boundary={boundary}"),
        )
        .body(form)
        .send()
        .await
        .expect("upload")
}

/// A 201's file record.
pub async fn uploaded(r: Response) -> Value {
    let status = r.status();
    let body = r.text().await.unwrap_or_default();
    assert_eq!(status, StatusCode::CREATED, "upload answered {body}");
    serde_json::from_str(&body).expect("a file record")
}
