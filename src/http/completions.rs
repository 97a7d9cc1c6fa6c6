//! `POST /v1/chat/completions` and `GET /v1/models[/{id}]`, OpenAI's wire contract: the official SDKs
//! work unchanged. Streaming answers are plain `data:` events ending in `data: [DONE]`; the 200
//! is held until the upstream's first event, so a failure before it is a real status.

use super::{
    extract::Json,
    openai_wire::{CompletionRequest, ModelList, ModelObject, WireUsage},
};
use crate::{
    chat::completion::{upstream_error, Metered},
    error::{AppError, ErrorBody},
    http::authn::AuthUser,
    llm::{Chunk, Delivery, FinishReason, LlmError, ToolCalls},
    state::AppState,
};
use axum::{
    body::Body,
    extract::State,
    http::{header, HeaderValue, StatusCode},
    response::{IntoResponse, Response},
};
use bytes::Bytes;
use futures::StreamExt;
use serde_json::{json, Value};
use std::{convert::Infallible, time::Duration};
use utoipa_axum::{router::OpenApiRouter, routes};

pub fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(create))
        .routes(routes!(models))
        .routes(routes!(model))
        .routes(routes!(usage))
}

#[derive(serde::Deserialize, utoipa::IntoParams)]
pub struct UsagePage {
    /// Records older than this id (the previous page's `next_cursor`).
    after: Option<String>,
    /// Page size, 1 to 100. Default 50.
    limit: Option<u32>,
}

#[derive(serde::Serialize, utoipa::ToSchema)]
pub struct UsageList {
    data: Vec<crate::store::UsageRecord>,
    /// Pass as `after` for the next page; absent on the last page.
    next_cursor: Option<String>,
}

/// The caller's completion usage (REST requests and socket turns), newest first. Records are
/// written in batches, so one may appear a moment after its request ended.
#[utoipa::path(get, path = "/v1/usage", operation_id = "listUsage", tag = "completions", security(("bearer" = [])), params(UsagePage),
    responses((status = 200, body = UsageList), (status = 400, body = ErrorBody), (status = 401, body = ErrorBody)))]
async fn usage(
    State(s): State<AppState>,
    AuthUser(p): AuthUser,
    axum::extract::Query(q): axum::extract::Query<UsagePage>,
) -> Result<axum::Json<UsageList>, AppError> {
    let limit = crate::error::page_limit(q.limit)?;
    let after = crate::error::after_cursor::<uuid::Uuid>(q.after.as_deref())?;
    let data = s.store.list_usage(p.user_id, after, limit).await?;
    let next_cursor = crate::error::next_cursor(&data, limit, |u| u.id.to_string());
    Ok(axum::Json(UsageList { data, next_cursor }))
}

/// The models this server routes, in OpenAI's list format (`echo` is built in).
#[utoipa::path(get, path = "/v1/models", operation_id = "listModels", tag = "completions", security(("bearer" = [])),
    responses((status = 200, body = ModelList), (status = 401, body = ErrorBody)))]
async fn models(State(s): State<AppState>, _auth: AuthUser) -> axum::Json<ModelList> {
    let m = &s.chat.completions.models;
    axum::Json(ModelList {
        object: "list",
        data: m.all().iter().map(|r| model_object(m, r)).collect(),
    })
}

fn model_object(m: &crate::llm::models::Models, r: &crate::llm::models::Route) -> ModelObject {
    ModelObject {
        id: r.id.clone(),
        object: "model",
        created: m.created,
        owned_by: r.owned_by,
    }
}

/// One model this server routes (the SDKs' `models.retrieve`); an id with a `/` is sent
/// percent-encoded.
#[utoipa::path(get, path = "/v1/models/{id}", operation_id = "retrieveModel", tag = "completions", security(("bearer" = [])),
    params(("id" = String, Path, description = "Model id, as `GET /v1/models` lists it")),
    responses((status = 200, body = ModelObject), (status = 401, body = ErrorBody), (status = 404, body = ErrorBody)))]
async fn model(
    State(s): State<AppState>,
    _auth: AuthUser,
    axum::extract::Path(id): axum::extract::Path<String>,
) -> Result<axum::Json<ModelObject>, AppError> {
    let m = &s.chat.completions.models;
    let r = m.get(&id).ok_or_else(|| AppError::model_not_found(&id))?;
    Ok(axum::Json(model_object(m, r)))
}

/// Create a chat completion (OpenAI-compatible; `stream: true` answers with server-sent events).
#[utoipa::path(post, path = "/v1/chat/completions", operation_id = "createChatCompletion", tag = "completions", security(("bearer" = [])),
    request_body = CompletionRequest,
    responses(
        (status = 200, description = "A `chat.completion` object, or with `stream: true` a `text/event-stream` of `chat.completion.chunk` objects ending in `data: [DONE]`"),
        (status = 400, body = ErrorBody), (status = 401, body = ErrorBody), (status = 404, body = ErrorBody),
        (status = 429, body = ErrorBody), (status = 502, body = ErrorBody), (status = 504, body = ErrorBody)))]
async fn create(
    State(s): State<AppState>,
    AuthUser(p): AuthUser,
    headers: axum::http::HeaderMap,
    Json(body): Json<CompletionRequest, true>,
) -> Result<Response, AppError> {
    let (streaming, include_usage) = (body.streaming(), body.include_usage());
    let model = body.model.clone();
    let req = body.into_request()?;
    let delivery = match streaming {
        true => Delivery::Streamed,
        false => Delivery::Whole,
    };
    let mut stream = s
        .chat
        .completions
        .start(&p, "rest", &model, req, delivery)
        .await?;
    let id = format!("chatcmpl-{}", uuid::Uuid::new_v4().simple());
    let created = crate::time::now_ms() / 1000;
    if !streaming {
        let max = s.config.llm.max_answer_bytes;
        return collect(stream, &id, created, &model, max).await;
    }
    // The first event, before committing to a 200.
    let first = match stream.next().await {
        Some(Ok(c)) => Some(c),
        Some(Err(e)) => return Err(upstream_error(&e)),
        None => None,
    };
    let keepalive = Duration::from_millis(s.config.llm.keepalive_ms.max(1));
    let enc = ChunkEncoder::new(&id, created, &model);
    let standing = *stream.standing();
    let body = Box::pin(sse(stream, first, enc, include_usage, keepalive));
    let gzip = super::compress::accepts_gzip(&headers);
    let mut resp = match gzip {
        true => Response::new(Body::from_stream(super::compress::gzip_events(body))),
        false => Response::new(Body::from_stream(body)),
    };
    let h = resp.headers_mut();
    if gzip {
        super::compress::mark_gzip(h);
    }
    standing.write_headers(h);
    h.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/event-stream"),
    );
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    h.insert("x-accel-buffering", HeaderValue::from_static("no"));
    Ok(resp)
}

/// Encodes `chat.completion.chunk` events; the fixed part is formatted once per response.
struct ChunkEncoder {
    prefix: String,
}

impl ChunkEncoder {
    fn new(id: &str, created: u64, model: &str) -> Self {
        let model = Value::String(model.to_owned());
        Self {
            prefix: format!(
                r#"data: {{"id":"{id}","object":"chat.completion.chunk","created":{created},"model":{model},"system_fingerprint":null,"choices":["#
            ),
        }
    }

    fn choice(&self, delta: &Value, finish: Option<FinishReason>) -> Bytes {
        let finish = finish.map_or("null".to_owned(), |f| format!("\"{}\"", f.as_str()));
        Bytes::from(format!(
            "{}{{\"index\":0,\"delta\":{delta},\"logprobs\":null,\"finish_reason\":{finish}}}]}}\n\n",
            self.prefix
        ))
    }

    fn usage(&self, usage: WireUsage) -> Bytes {
        Bytes::from(format!("{}],\"usage\":{}}}\n\n", self.prefix, json!(usage)))
    }

    fn delta(&self, c: &Chunk) -> Option<Value> {
        match c {
            Chunk::Text(t) => Some(json!({ "content": t })),
            Chunk::ToolCall {
                index,
                id,
                name,
                arguments,
            } => {
                let mut call = json!({"index": index, "function": {"arguments": arguments}});
                if let Some(id) = id {
                    call["id"] = json!(id);
                    call["type"] = json!("function");
                }
                if let Some(n) = name {
                    call["function"]["name"] = json!(n);
                }
                Some(json!({ "tool_calls": [call] }))
            }
            _ => None,
        }
    }
}

fn error_event(e: &LlmError) -> Bytes {
    let app = upstream_error(e);
    let body = ErrorBody::new(app.status(), app.code(), app.to_string(), None);
    Bytes::from(format!("data: {}\n\n", json!(body)))
}

fn sse(
    mut stream: Metered,
    first: Option<Chunk>,
    enc: ChunkEncoder,
    include_usage: bool,
    keepalive: Duration,
) -> impl futures::Stream<Item = Result<Bytes, Infallible>> + Send + 'static {
    async_stream::stream! {
        yield Ok(enc.choice(&json!({"role": "assistant", "content": ""}), None));
        let mut finish = None;
        let mut pending = first;
        let mut tick = tokio::time::interval_at(tokio::time::Instant::now() + keepalive, keepalive);
        loop {
            let next = match pending.take() {
                Some(c) => Some(Ok(c)),
                None => tokio::select! {
                    n = stream.next() => n,
                    _ = tick.tick() => {
                        yield Ok(Bytes::from_static(b": keepalive\n\n"));
                        continue;
                    }
                },
            };
            match next {
                None => break,
                Some(Ok(Chunk::Finish(f))) => finish = Some(f),
                Some(Ok(Chunk::Usage(_))) => {}
                Some(Ok(c)) => {
                    if let Some(d) = enc.delta(&c) {
                        yield Ok(enc.choice(&d, None));
                    }
                }
                Some(Err(e)) => {
                    yield Ok(error_event(&e));
                    yield Ok(Bytes::from_static(b"data: [DONE]\n\n"));
                    return;
                }
            }
        }
        yield Ok(enc.choice(&json!({}), Some(finish.unwrap_or(FinishReason::Stop))));
        if include_usage {
            yield Ok(enc.usage(stream.usage().unwrap_or_default().into()));
        }
        yield Ok(Bytes::from_static(b"data: [DONE]\n\n"));
    }
}

/// Runs the stream to its end and answers with one `chat.completion` object.
async fn collect(
    mut stream: Metered,
    id: &str,
    created: u64,
    model: &str,
    max: usize,
) -> Result<Response, AppError> {
    let mut text = String::new();
    let mut calls = ToolCalls::default();
    let mut finish = FinishReason::Stop;
    while let Some(c) = stream.next().await {
        let c = c.map_err(|e| upstream_error(&e))?;
        if text.len() + calls.bytes() > max {
            return Err(upstream_error(&crate::llm::upstream::too_big(max)));
        }
        match c {
            Chunk::Text(t) => text.push_str(&t),
            Chunk::ToolCall {
                index,
                id,
                name,
                arguments,
            } => calls.add(index, id, name, &arguments),
            Chunk::Finish(f) => finish = f,
            Chunk::Usage(_) => {}
        }
    }
    let usage: WireUsage = stream.usage().unwrap_or_default().into();
    let mut message = json!({"role": "assistant", "content": text, "refusal": null});
    if !calls.is_empty() {
        message["tool_calls"] = calls
            .into_vec()
            .into_iter()
            .map(|c| json!({"id": c.id, "type": "function", "function": {"name": c.name, "arguments": c.arguments}}))
            .collect();
        if text.is_empty() {
            message["content"] = Value::Null;
        }
    }
    let body = json!({
        "id": id,
        "object": "chat.completion",
        "created": created,
        "model": model,
        "system_fingerprint": null,
        "choices": [{"index": 0, "message": message, "logprobs": null, "finish_reason": finish.as_str()}],
        "usage": usage,
    });
    let mut resp = (StatusCode::OK, axum::Json(body)).into_response();
    stream.standing().write_headers(resp.headers_mut());
    Ok(resp)
}
