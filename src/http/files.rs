//! `/v1/sessions/{id}/files`: attach (raw body or multipart), list, download (with ranges and
//! ETags) and delete. The service checks roles and limits; this edge reads the request and
//! shapes the bytes into a response.

use crate::{
    error::{AppError, ErrorBody},
    files::{name, range, storage::CHUNK, Upload},
    http::authn::AuthUser,
    state::AppState,
    store::FileRecord,
    sync::sessions::parse_id as parse_session,
};
use axum::{
    body::Body,
    extract::{FromRequest, Multipart, Path, Query, Request, State},
    http::{header, HeaderMap, HeaderValue, StatusCode},
    response::{IntoResponse, Response},
};
use futures::TryStreamExt;
use serde::{Deserialize, Serialize};
use std::time::Duration;
use utoipa::ToSchema;
use utoipa_axum::{router::OpenApiRouter, routes};
use uuid::Uuid;

/// Uploads may take longer than an ordinary request (`files.upload_timeout_secs`), and their
/// bodies may be larger than `server.body_limit_bytes` (the service counts them itself; the
/// limit here bounds a multipart body's framing).
pub fn routes(state: &AppState) -> OpenApiRouter<AppState> {
    let c = &state.config.files;
    OpenApiRouter::new()
        .routes(routes!(upload_file, list_files))
        .routes(routes!(download_file, delete_file))
        .layer(axum::extract::DefaultBodyLimit::max(
            (c.max_file_bytes as usize).saturating_add(64 << 10),
        ))
        .layer(tower_http::timeout::TimeoutLayer::with_status_code(
            StatusCode::REQUEST_TIMEOUT,
            Duration::from_secs(c.upload_timeout_secs),
        ))
}

fn parse_file(id: &str) -> Result<Uuid, AppError> {
    id.parse()
        .map_err(|_| AppError::validation("file_id", "file_id must be a UUID"))
}

#[derive(Deserialize, utoipa::IntoParams)]
pub struct UploadQuery {
    /// The file's name, for a raw body (a multipart upload carries its own).
    filename: Option<String>,
}

fn is_multipart(h: &HeaderMap) -> bool {
    h.get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.to_ascii_lowercase().starts_with("multipart/form-data"))
}

/// Attach a file: the raw bytes as the body with `?filename=`, or `multipart/form-data` with a
/// `file` part. Editors and the owner may; the stored type is what the bytes are (a `.png`
/// that is not a PNG is refused).
#[utoipa::path(post, path = "/v1/sessions/{id}/files", operation_id = "uploadSessionFile", tag = "files", security(("bearer" = [])),
    params(("id" = String, Path, description = "Session id"), UploadQuery),
    request_body(content = Vec<u8>, content_type = "application/octet-stream", description = "The file's bytes (or multipart/form-data with a `file` part)"),
    responses((status = 201, body = FileRecord), (status = 400, body = ErrorBody), (status = 403, description = "Viewer", body = ErrorBody),
              (status = 404, body = ErrorBody), (status = 409, description = "Over a quota", body = ErrorBody),
              (status = 413, body = ErrorBody), (status = 415, description = "Type not accepted", body = ErrorBody)))]
async fn upload_file(
    State(s): State<AppState>,
    AuthUser(p): AuthUser,
    Path(id): Path<String>,
    Query(q): Query<UploadQuery>,
    req: Request,
) -> Result<impl IntoResponse, AppError> {
    let session = parse_session(&id)?;
    let content_length = req
        .headers()
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok()?.parse().ok());
    // Role, declared size and an upload slot first: nothing of the body is read for a caller
    // who may not upload.
    let admitted = s.files.admit(p.user_id, session, content_length).await?;
    let max = s.config.files.max_file_bytes;
    let record = if is_multipart(req.headers()) {
        let mut form = Multipart::from_request(req, &s)
            .await
            .map_err(|e| AppError::validation("body", e.body_text()))?;
        let field = loop {
            match form
                .next_field()
                .await
                .map_err(|e| multipart_error(e, max))?
            {
                Some(f) if f.name() == Some("file") => break f,
                Some(_) => continue,
                None => {
                    return Err(AppError::validation(
                        "file",
                        "a multipart upload needs a `file` part",
                    ))
                }
            }
        };
        let filename = field.file_name().map(str::to_owned).unwrap_or_default();
        let body = field.map_err(move |e| multipart_error(e, max));
        let up = Upload { filename, body };
        s.files.upload(admitted, up).await?
    } else {
        let filename = q
            .filename
            .ok_or_else(|| AppError::validation("filename", "a raw upload needs ?filename="))?;
        let body = req.into_body().into_data_stream();
        let up = Upload { filename, body };
        s.files.upload(admitted, up).await?
    };
    Ok((StatusCode::CREATED, axum::Json(record)))
}

fn multipart_error(e: axum::extract::multipart::MultipartError, max: u64) -> AppError {
    if e.status() == StatusCode::PAYLOAD_TOO_LARGE {
        AppError::PayloadTooLarge(max as usize)
    } else {
        AppError::validation("body", e.body_text())
    }
}

#[derive(Deserialize, utoipa::IntoParams)]
pub struct FilePage {
    /// The previous page's `next_cursor`.
    after: Option<String>,
    /// 1 to 100. Default 50.
    limit: Option<u32>,
}

#[derive(Serialize, ToSchema)]
pub struct FileList {
    data: Vec<FileRecord>,
    next_cursor: Option<String>,
}

/// The session's files, oldest first; any member.
#[utoipa::path(get, path = "/v1/sessions/{id}/files", operation_id = "listSessionFiles", tag = "files", security(("bearer" = [])),
    params(("id" = String, Path, description = "Session id"), FilePage),
    responses((status = 200, body = FileList), (status = 400, body = ErrorBody), (status = 404, body = ErrorBody)))]
async fn list_files(
    State(s): State<AppState>,
    AuthUser(p): AuthUser,
    Path(id): Path<String>,
    Query(q): Query<FilePage>,
) -> Result<axum::Json<FileList>, AppError> {
    let session = parse_session(&id)?;
    let (data, next_cursor) = (s.files)
        .list(p.user_id, session, q.after.as_deref(), q.limit)
        .await?;
    Ok(axum::Json(FileList { data, next_cursor }))
}

fn etag(f: &FileRecord) -> String {
    format!("\"{}\"", f.sha256)
}

fn header_str(h: &HeaderMap, name: header::HeaderName) -> Option<&str> {
    h.get(name).and_then(|v| v.to_str().ok())
}

/// Download a file (any member): `ETag` (its SHA-256) with `If-None-Match`, one `Range` (206)
/// with `If-Range`, always as an attachment.
#[utoipa::path(get, path = "/v1/sessions/{id}/files/{file_id}", operation_id = "downloadSessionFile", tag = "files", security(("bearer" = [])),
    params(("id" = String, Path, description = "Session id"), ("file_id" = String, Path, description = "File id")),
    responses((status = 200, description = "The file's bytes", content_type = "application/octet-stream"),
              (status = 206, description = "The range asked for"), (status = 304, description = "Not modified"),
              (status = 404, body = ErrorBody), (status = 416, body = ErrorBody)))]
async fn download_file(
    State(s): State<AppState>,
    AuthUser(p): AuthUser,
    Path((id, file_id)): Path<(String, String)>,
    headers: HeaderMap,
) -> Result<Response, AppError> {
    let session = parse_session(&id)?;
    let f = s
        .files
        .get(p.user_id, session, parse_file(&file_id)?)
        .await?;
    let tag = etag(&f);
    let matches = |v: &str| v.split(',').any(|t| t.trim() == tag || t.trim() == "*");
    if header_str(&headers, header::IF_NONE_MATCH).is_some_and(matches) {
        return Ok((StatusCode::NOT_MODIFIED, [(header::ETAG, tag)]).into_response());
    }
    let fresh = header_str(&headers, header::IF_RANGE).is_none_or(|v| v.trim() == tag);
    let asked = header_str(&headers, header::RANGE).filter(|_| fresh);
    let (status, span) = match range::parse(asked, f.size) {
        range::Want::Whole => (
            StatusCode::OK,
            range::Span {
                start: 0,
                end: f.size,
            },
        ),
        range::Want::Part(span) => (StatusCode::PARTIAL_CONTENT, span),
        range::Want::Unsatisfiable => return Err(AppError::RangeNotSatisfiable { size: f.size }),
    };
    let mut resp = Response::new(body(s.clone(), f.clone(), span));
    *resp.status_mut() = status;
    let h = resp.headers_mut();
    let text = f.content_type.starts_with("text/") || f.content_type.ends_with("json");
    let ct = format!(
        "{}{}",
        f.content_type,
        if text { "; charset=utf-8" } else { "" }
    );
    let set = |h: &mut HeaderMap, k: header::HeaderName, v: String| {
        if let Ok(v) = HeaderValue::from_str(&v) {
            h.insert(k, v);
        }
    };
    set(h, header::CONTENT_TYPE, ct);
    set(
        h,
        header::CONTENT_LENGTH,
        (span.end - span.start).to_string(),
    );
    set(h, header::ETAG, tag);
    let disposition = HeaderValue::from_str(&name::disposition(&f.filename))
        .unwrap_or(HeaderValue::from_static("attachment"));
    h.insert(header::CONTENT_DISPOSITION, disposition);
    // Whatever the bytes are (an .html file is text/html), they never run as this origin's page.
    h.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static("sandbox; default-src 'none'"),
    );
    h.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    h.insert(header::ACCEPT_RANGES, HeaderValue::from_static("bytes"));
    h.insert(
        header::CACHE_CONTROL,
        HeaderValue::from_static("private, no-cache"),
    );
    if status == StatusCode::PARTIAL_CONTENT {
        let r = format!("bytes {}-{}/{}", span.start, span.end - 1, f.size);
        set(h, header::CONTENT_RANGE, r);
    }
    Ok(resp)
}

/// The span's bytes, one stored piece at a time.
fn body(s: AppState, f: FileRecord, span: range::Span) -> Body {
    let stream = async_stream::try_stream! {
        let mut at = span.start;
        while at < span.end {
            let want = ((span.end - at) as usize).min(CHUNK);
            let piece = s.files.piece(&f, at, want).await.map_err(|e| {
                tracing::error!(error = %e, file = %f.id, "a file's bytes could not be read");
                std::io::Error::other("file storage failed")
            })?;
            at += piece.len() as u64;
            yield piece;
        }
    };
    Body::from_stream::<_>(
        Box::pin(stream) as futures::stream::BoxStream<'static, std::io::Result<bytes::Bytes>>
    )
}

/// Delete a file: the session's owner or the file's uploader.
#[utoipa::path(delete, path = "/v1/sessions/{id}/files/{file_id}", operation_id = "deleteSessionFile", tag = "files", security(("bearer" = [])),
    params(("id" = String, Path, description = "Session id"), ("file_id" = String, Path, description = "File id")),
    responses((status = 204, description = "Deleted"), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody)))]
async fn delete_file(
    State(s): State<AppState>,
    AuthUser(p): AuthUser,
    Path((id, file_id)): Path<(String, String)>,
) -> Result<StatusCode, AppError> {
    let session = parse_session(&id)?;
    s.files
        .delete(p.user_id, session, parse_file(&file_id)?)
        .await?;
    Ok(StatusCode::NO_CONTENT)
}
