//! One running turn: provider chunks become `chat.delta` events, the content is saved every so
//! often (a task of its own, so a slow commit never holds up the stream), and the end is a
//! final sync op, the claim released, then `chat.done` or `chat.error`. When the model calls
//! offered tools, each round's calls run (concurrently, see `tool_run`), their results go back
//! to the model, and the turn goes on, up to `chat.max_tool_rounds` rounds; its text is one
//! message across rounds.

use super::{completion::Prepared, tools::Toolbox, ChatService};
use crate::{
    bus::{event_frame, LiveTurn},
    chat::completion::upstream_error,
    domain::Principal,
    domain::{SessionId, UserId},
    llm::{
        ChatMessage, ChatRequest, Chunk, FinishReason, Role, ToolCall, ToolCalls, ToolChoice, Usage,
    },
    protocol::{raw, ServerEvent},
    sync::ops::{Mutation, Op, MAX_CONTENT},
};
use futures::StreamExt;
use serde_json::json;
use std::{sync::Arc, time::Duration};
use tokio::sync::watch;
use tokio_util::sync::CancellationToken;

pub(super) struct Run {
    pub chat: Arc<ChatService>,
    pub user: UserId,
    pub session: SessionId,
    pub turn: LiveTurn,
    pub client_id: String,
    pub cancel: CancellationToken,
    pub who: Principal,
    /// The conversation as sent upstream (before routing); tool rounds extend it.
    pub request: ChatRequest,
    pub tools: Toolbox,
    /// The user's MCP clients stay up while the turn runs (it may call them).
    pub _mcp: crate::mcp::manager::Hold,
}

/// How a turn ended.
enum End {
    Complete,
    Cancelled,
    Failed { code: &'static str, message: String },
}

/// The claim is refreshed this often (it expires after `TURN_TTL_MS` without it).
const REFRESH: Duration = Duration::from_secs(5);

impl Run {
    fn mutation(&self, id: u64, op: Op) -> Mutation {
        Mutation {
            client_id: self.client_id.clone(),
            mutation_id: id,
            hlc: self.chat.sync.server_hlc(),
            ops: vec![op],
        }
    }

    pub async fn stream(self, prepared: Prepared) {
        let channel = format!("session:{}", self.turn.session);
        let cfg = &self.chat.config;
        let mut content = String::new();
        let mut index = 0u64;
        let mut finish: Option<FinishReason> = None;
        let mut usage: Option<Usage> = None;
        let (save_tx, save_rx) = watch::channel(String::new());
        let saver = tokio::spawn(save_loop(
            self.chat.clone(),
            self.user,
            self.session,
            self.turn.message_id.clone(),
            self.client_id.clone(),
            save_rx,
        ));
        let save_every = Duration::from_millis(cfg.save_interval_ms);
        let mut last_save = tokio::time::Instant::now();
        let deadline = tokio::time::sleep(Duration::from_secs(cfg.max_turn_secs));
        tokio::pin!(deadline);
        let mut refresh = tokio::time::interval_at(tokio::time::Instant::now() + REFRESH, REFRESH);

        let mut req = self.request.clone();
        let mut all_calls: Vec<ToolCall> = Vec::new();
        let mut rounds = 0u32;
        let end = 'turn: {
            let mut prepared = Some(prepared);
            loop {
                let p = match prepared.take() {
                    Some(p) => p,
                    None => match self
                        .chat
                        .completions
                        .prepare(&self.who, "chat", &self.turn.model, req.clone())
                        .await
                    {
                        Ok(p) => p,
                        Err(e) => {
                            break 'turn End::Failed {
                                code: e.code().as_str(),
                                message: e.to_string(),
                            }
                        }
                    },
                };
                let mut stream = tokio::select! {
                    _ = self.cancel.cancelled() => break 'turn End::Cancelled,
                    opened = p.open() => match opened {
                        Ok(s) => s,
                        Err(e) => {
                            let e = upstream_error(&e);
                            break 'turn End::Failed { code: e.code().as_str(), message: e.to_string() };
                        }
                    },
                };
                let mut round_text = String::new();
                let mut round_usage: Option<Usage> = None;
                let mut calls = ToolCalls::default();
                loop {
                    let next = tokio::select! {
                        biased;
                        _ = self.cancel.cancelled() => break 'turn End::Cancelled,
                        _ = &mut deadline => break 'turn End::Failed {
                            code: "turn_timeout",
                            message: format!("the turn ran longer than {} s", cfg.max_turn_secs),
                        },
                        _ = refresh.tick() => {
                            self.chat.bus.turn_refresh(&self.turn).await;
                            continue;
                        }
                        n = stream.next() => n,
                    };
                    match next {
                        None => break,
                        Some(Ok(Chunk::Text(t))) => {
                            // No column takes NUL; the delta and the saved text stay one.
                            let t = if t.contains('\0') {
                                t.replace('\0', "\u{FFFD}")
                            } else {
                                t
                            };
                            if content.len() + t.len() > MAX_CONTENT {
                                finish = Some(FinishReason::Length);
                                break 'turn End::Complete;
                            }
                            index += 1;
                            content.push_str(&t);
                            round_text.push_str(&t);
                            let frame = event_frame(
                                &channel,
                                &ServerEvent::ChatDelta {
                                    turn_id: self.turn.turn_id,
                                    message_id: &self.turn.message_id,
                                    index,
                                    text: &t,
                                },
                            );
                            self.chat
                                .bus
                                .publish_delta(&channel, &self.turn, index, &t, frame)
                                .await;
                            if last_save.elapsed() >= save_every {
                                last_save = tokio::time::Instant::now();
                                save_tx.send_replace(content.clone());
                            }
                        }
                        Some(Ok(Chunk::ToolCall {
                            index,
                            id,
                            name,
                            arguments,
                        })) => calls.add(index, id, name, &arguments),
                        Some(Ok(Chunk::Finish(f))) => finish = Some(f),
                        Some(Ok(Chunk::Usage(u))) => round_usage = Some(u),
                        Some(Err(e)) => {
                            let e = upstream_error(&e);
                            break 'turn End::Failed {
                                code: e.code().as_str(),
                                message: e.to_string(),
                            };
                        }
                    }
                }
                drop(stream);
                if let Some(u) = round_usage {
                    let total = usage.get_or_insert_with(Usage::default);
                    total.prompt_tokens += u.prompt_tokens;
                    total.completion_tokens += u.completion_tokens;
                }
                let mut calls = calls.into_vec();
                for c in &mut calls {
                    if c.id.is_empty() {
                        c.id = format!("call_{}", uuid::Uuid::now_v7().simple());
                    }
                }
                all_calls.extend(calls.iter().cloned());
                if calls.is_empty() || self.tools.is_empty() || rounds >= cfg.max_tool_rounds {
                    break 'turn End::Complete;
                }
                rounds += 1;
                save_tx.send_replace(content.clone());
                // Deltas so far reach every instance before the tool events do.
                self.chat.bus.turn_flush(&self.turn).await;
                let stop = self.cancel.child_token();
                let running = futures::future::join_all(
                    calls
                        .iter()
                        .map(|c| self.run_call(&self.tools, c, &channel, &stop)),
                );
                tokio::pin!(running);
                let answers = loop {
                    tokio::select! {
                        biased;
                        a = &mut running => break a,
                        _ = &mut deadline => {
                            stop.cancel();
                            (&mut running).await;
                            break 'turn End::Failed {
                                code: "turn_timeout",
                                message: format!("the turn ran longer than {} s", cfg.max_turn_secs),
                            };
                        }
                        _ = refresh.tick() => self.chat.bus.turn_refresh(&self.turn).await,
                    }
                };
                if self.cancel.is_cancelled() {
                    break 'turn End::Cancelled;
                }
                req.messages.push(ChatMessage {
                    role: Role::Assistant,
                    content: round_text,
                    tool_calls: calls.clone(),
                    tool_call_id: None,
                });
                for (c, text) in calls.iter().zip(answers) {
                    req.messages.push(ChatMessage {
                        role: Role::Tool,
                        content: text,
                        tool_calls: Vec::new(),
                        tool_call_id: Some(c.id.clone()),
                    });
                }
                if rounds >= cfg.max_tool_rounds {
                    // The last round's results are in: the model answers in text now.
                    req.tool_choice = Some(ToolChoice::None);
                }
            }
        };
        // The provider stream is gone by now (dropped with the block): the upstream request is
        // closed before anything below waits. The deltas reach other instances before the
        // final message and the closing event can.
        self.chat.bus.turn_flush(&self.turn).await;
        drop(save_tx);
        let next_id = saver.await.unwrap_or(2);
        let status = match &end {
            End::Complete => "complete",
            End::Cancelled => "cancelled",
            End::Failed { .. } => "failed",
        };
        let mut metadata = json!({
            "turn_id": self.turn.turn_id,
            "model": self.turn.model,
            "status": status,
            "finish_reason": finish.map(FinishReason::as_str),
            "usage": usage,
        });
        if !all_calls.is_empty() {
            metadata["tool_calls"] = json!(all_calls);
            metadata["tool_rounds"] = json!(rounds);
        }
        if let End::Failed { code, message } = &end {
            metadata["error"] = json!({"code": code, "message": message});
        }
        let last = self.mutation(
            next_id,
            Op::StreamEnd {
                message_id: self.turn.message_id.clone(),
                content,
                metadata: metadata.clone(),
            },
        );
        let mut end = end;
        if let Err(why) = self.finalize(last).await {
            // Never `chat.done` for an answer that is not saved: say so, and try once more to
            // mark the message failed (the next turn marks it if this fails too).
            metadata["status"] = json!("failed");
            metadata["error"] = json!({"code": "save_failed", "message": why});
            let marker = self.mutation(
                next_id + 1,
                Op::StreamEnd {
                    message_id: self.turn.message_id.clone(),
                    content: String::new(),
                    metadata,
                },
            );
            if let Err(e) = self.finalize(marker).await {
                tracing::error!(turn = %self.turn.turn_id, error = %e, "turn's message not marked failed; the next turn marks it");
            }
            end = End::Failed {
                code: "save_failed",
                message: "the answer could not be saved".into(),
            };
        }
        self.chat.bus.turn_release(&self.turn).await;
        self.chat.hub.unregister_turn(self.turn.turn_id);
        let (turn_id, message_id) = (self.turn.turn_id, self.turn.message_id.as_str());
        let usage = raw(&usage);
        let frame = match &end {
            End::Failed { code, message } => event_frame(
                &channel,
                &ServerEvent::ChatError {
                    turn_id,
                    message_id,
                    index,
                    code,
                    message,
                },
            ),
            _ => event_frame(
                &channel,
                &ServerEvent::ChatDone {
                    turn_id,
                    message_id,
                    index,
                    status,
                    finish_reason: finish.map(FinishReason::as_str),
                    usage: &usage,
                },
            ),
        };
        metrics::counter!("chat_turns_total", "status" => status).increment(1);
        self.chat.bus.publish(&channel, frame).await;
    }

    /// The final op must land: retried while the store is briefly unavailable. `Err` with why
    /// when it did not (refused, or the store stayed down).
    async fn finalize(&self, last: Mutation) -> Result<(), String> {
        let mut delay = Duration::from_millis(100);
        for attempt in 0..self.chat.config.final_save_attempts.max(1) {
            match self
                .chat
                .sync
                .push_server(self.user, self.session, last.clone())
                .await
            {
                Ok((crate::store::MutationResult::Refused { error, .. }, _)) => return Err(error),
                Ok(_) => return Ok(()),
                // The session was deleted meanwhile: nothing left to finish.
                Err(crate::error::AppError::NotFound(_)) => return Ok(()),
                Err(e) => {
                    tracing::warn!(error = %e.detail(), attempt, turn = %self.turn.turn_id, "final turn op failed; retrying");
                    tokio::time::sleep(delay).await;
                    delay = (delay * 2).min(Duration::from_secs(5));
                }
            }
        }
        Err("the store did not take it".into())
    }
}

/// Saves the growing content as `stream_update` ops, newest only (older pending saves are
/// skipped). Returns the next free mutation id.
async fn save_loop(
    chat: Arc<ChatService>,
    user: UserId,
    session: SessionId,
    message_id: String,
    client_id: String,
    mut rx: watch::Receiver<String>,
) -> u64 {
    let mut next = 2;
    while rx.changed().await.is_ok() {
        let content = rx.borrow_and_update().clone();
        let m = Mutation {
            client_id: client_id.clone(),
            mutation_id: next,
            hlc: chat.sync.server_hlc(),
            ops: vec![Op::StreamUpdate {
                message_id: message_id.clone(),
                content,
            }],
        };
        match chat.sync.push_server(user, session, m).await {
            Ok(_) => next += 1,
            Err(e) => tracing::warn!(error = %e, "partial turn content not saved"),
        }
    }
    next
}
