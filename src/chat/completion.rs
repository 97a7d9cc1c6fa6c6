//! Starting a completion, shared by `/v1/chat/completions` and socket turns: route the model,
//! check the caller's budget, open the provider stream, and meter it. The meter records usage
//! however the stream ends (done, failed, or dropped because the client left).

use super::{quota::Quota, usage::UsageRecorder};
use crate::ratelimit::Standing;
use crate::{
    domain::Principal,
    error::AppError,
    llm::{models::Models, ChatRequest, Chunk, ChunkStream, Delivery, LlmError, Usage},
    protocol::ErrorCode,
    store::UsageRecord,
};
use axum::http::StatusCode;
use futures::Stream;
use std::{
    pin::Pin,
    sync::Arc,
    task::{Context, Poll},
    time::Instant,
};

/// Models, quota and usage records: what every completion (REST or a socket turn) goes
/// through. Built once in `app.rs`, shared by the REST handler and `ChatService`; lives as long
/// as the server.
pub struct Completions {
    pub models: Models,
    pub quota: Quota,
    pub usage: UsageRecorder,
}

/// What the answer to an upstream failure is (status and code), with a message that names no
/// internal address.
pub fn upstream_error(e: &LlmError) -> AppError {
    let (status, code, retry_after_secs) = match e {
        LlmError::Connect(_) | LlmError::Stream(_) | LlmError::Provider { .. } => {
            (StatusCode::BAD_GATEWAY, ErrorCode::UpstreamError, None)
        }
        LlmError::Timeout(_) => (
            StatusCode::GATEWAY_TIMEOUT,
            ErrorCode::UpstreamTimeout,
            None,
        ),
        LlmError::Status {
            status,
            retry_after_secs,
            ..
        } => match status {
            429 => (
                StatusCode::TOO_MANY_REQUESTS,
                ErrorCode::UpstreamRateLimited,
                Some(retry_after_secs.unwrap_or(1)),
            ),
            400 | 404 | 413 | 422 => (StatusCode::BAD_REQUEST, ErrorCode::InvalidRequest, None),
            401 | 403 => {
                return AppError::Upstream {
                    status: StatusCode::BAD_GATEWAY,
                    code: ErrorCode::UpstreamAuthFailed,
                    message: "the model provider refused this server's credentials".into(),
                    retry_after_secs: None,
                }
            }
            _ => (StatusCode::BAD_GATEWAY, ErrorCode::UpstreamError, None),
        },
    };
    AppError::Upstream {
        status,
        code,
        message: e.to_string(),
        retry_after_secs,
    }
}

impl Completions {
    /// Opens a metered stream for `model`. Errors before the upstream accepted the request come
    /// back here, as a real status.
    pub async fn start(
        self: &Arc<Self>,
        who: &Principal,
        source: &'static str,
        model: &str,
        req: ChatRequest,
        delivery: Delivery,
    ) -> Result<Metered, AppError> {
        self.prepare(who, source, model, req)
            .await?
            .open(delivery)
            .await
            .map_err(|e| upstream_error(&e))
    }

    /// Routes the model and spends one request of the caller's budget; nothing is sent yet.
    pub async fn prepare(
        self: &Arc<Self>,
        who: &Principal,
        source: &'static str,
        model: &str,
        mut req: ChatRequest,
    ) -> Result<Prepared, AppError> {
        let route = self
            .models
            .get(model)
            .ok_or_else(|| AppError::model_not_found(model))?;
        let subject = super::quota::subject(who);
        let standing = self.quota.admit(&subject, req.max_tokens).await?;
        req.model.clone_from(&route.upstream_model);
        Ok(Prepared {
            provider: route.provider.clone(),
            req,
            standing,
            meter: Meter {
                owner: self.clone(),
                user: who.clone(),
                subject,
                source,
                model: model.to_owned(),
                started: Instant::now(),
                usage: None,
                words: 0,
                unanswered: 0,
                status: "cancelled",
            },
        })
    }
}

/// A request routed and admitted, not yet sent.
pub struct Prepared {
    provider: Arc<dyn crate::llm::Provider>,
    req: ChatRequest,
    standing: Standing,
    meter: Meter,
}

impl Prepared {
    /// Sends it (retrying before the first byte as configured).
    pub async fn open(self, delivery: Delivery) -> Result<Metered, LlmError> {
        let Prepared {
            provider,
            req,
            standing,
            mut meter,
        } = self;
        if delivery == Delivery::Whole {
            // The whole answer is generated before anything arrives: one abandoned or failed
            // on the way is charged what the caller allowed, not nothing.
            meter.unanswered = req.max_tokens.map_or(0, u64::from);
        }
        let opened = match delivery {
            Delivery::Streamed => provider.stream(req).await,
            Delivery::Whole => provider.whole(req).await,
        };
        match opened {
            Ok(inner) => Ok(Metered {
                inner,
                meter,
                standing,
            }),
            Err(e) => {
                meter.status = "error";
                Err(e)
            }
        }
    }
}

struct Meter {
    owner: Arc<Completions>,
    user: Principal,
    subject: String,
    source: &'static str,
    model: String,
    started: Instant,
    usage: Option<Usage>,
    /// Words of text seen, the completion count when the provider reports no usage.
    words: u64,
    /// Completion tokens charged when no text and no usage arrived at all (see `open`).
    unanswered: u64,
    status: &'static str,
}

impl Drop for Meter {
    fn drop(&mut self) {
        let usage = self.usage.unwrap_or(Usage {
            prompt_tokens: 0,
            completion_tokens: if self.words == 0 {
                self.unanswered
            } else {
                self.words
            },
        });
        let latency = self.started.elapsed();
        metrics::histogram!("llm_completion_seconds", "model" => self.model.clone(), "status" => self.status)
            .record(latency.as_secs_f64());
        self.owner.usage.record(UsageRecord {
            id: uuid::Uuid::now_v7(),
            user_id: self.user.user_id,
            api_key_id: self.user.api_key,
            source: self.source.into(),
            model: std::mem::take(&mut self.model),
            prompt_tokens: usage.prompt_tokens,
            completion_tokens: usage.completion_tokens,
            latency_ms: latency.as_millis() as u64,
            status: self.status.into(),
            created_at: chrono::Utc::now(),
        });
        let total = usage.total();
        if total > 0 {
            let owner = self.owner.clone();
            let subject = std::mem::take(&mut self.subject);
            if let Ok(rt) = tokio::runtime::Handle::try_current() {
                rt.spawn(async move { owner.quota.charge(&subject, total).await });
            }
        }
    }
}

/// A provider stream that records its usage when it ends or is dropped.
pub struct Metered {
    inner: ChunkStream,
    meter: Meter,
    standing: Standing,
}

impl Metered {
    /// The caller's budget as it stood when this request was admitted.
    pub fn standing(&self) -> &Standing {
        &self.standing
    }

    /// The usage reported so far (final once the stream ended).
    pub fn usage(&self) -> Option<Usage> {
        self.meter.usage
    }
}

impl Stream for Metered {
    type Item = Result<Chunk, LlmError>;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        let polled = self.inner.as_mut().poll_next(cx);
        match &polled {
            Poll::Ready(Some(Ok(Chunk::Usage(u)))) => self.meter.usage = Some(*u),
            Poll::Ready(Some(Ok(Chunk::Text(t)))) => {
                self.meter.words += crate::llm::count_words(t);
            }
            Poll::Ready(Some(Err(_))) => self.meter.status = "error",
            Poll::Ready(None) if self.meter.status == "cancelled" => self.meter.status = "ok",
            _ => {}
        }
        polled
    }
}
