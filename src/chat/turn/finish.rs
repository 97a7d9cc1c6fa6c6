//! The end of a turn: its final message saved (retried; a failure says so instead of
//! `chat.done`), the claim released, and the closing event published.

use super::{End, Outcome, Run};
use crate::{
    chat::ChatService,
    domain::{SessionId, UserId},
    llm::FinishReason,
    protocol::event_frame,
    protocol::{raw, ServerEvent},
    sync::ops::{Mutation, Op},
};
use serde_json::{json, Value};
use std::{sync::Arc, time::Duration};
use tokio::sync::watch;

impl End {
    fn status(&self) -> &'static str {
        match self {
            End::Complete => "complete",
            End::Cancelled => "cancelled",
            End::Failed { .. } => "failed",
        }
    }
}

impl Run {
    /// Saves the final message (`next_id` is the first mutation id the saver did not use),
    /// then releases the session and tells its subscribers how the turn ended.
    pub(super) async fn finish(&self, end: End, out: Outcome, next_id: u64) {
        let status = end.status();
        let mut metadata = json!({
            "turn_id": self.turn.turn_id,
            "model": self.turn.model,
            "status": status,
            "finish_reason": out.finish.map(FinishReason::as_str),
            "usage": out.usage,
        });
        if !out.calls.is_empty() {
            metadata["tool_calls"] = json!(out.calls);
            metadata["tool_rounds"] = json!(out.rounds);
        }
        if let End::Failed { code, message } = &end {
            metadata["error"] = json!({"code": code, "message": message});
        }
        let end = match self.save_final(next_id, out.content, metadata).await {
            Ok(()) => end,
            Err(()) => End::Failed {
                code: "save_failed",
                message: "the answer could not be saved".into(),
            },
        };
        self.chat.live.release(&self.turn).await;
        let (turn_id, message_id) = (self.turn.turn_id, self.turn.message_id.as_str());
        let index = out.index;
        let usage = raw(&out.usage);
        let frame = match &end {
            End::Failed { code, message } => event_frame(
                &self.channel,
                &ServerEvent::ChatError {
                    turn_id,
                    message_id,
                    index,
                    code,
                    message,
                },
            ),
            _ => event_frame(
                &self.channel,
                &ServerEvent::ChatDone {
                    turn_id,
                    message_id,
                    index,
                    status,
                    finish_reason: out.finish.map(FinishReason::as_str),
                    usage: &usage,
                },
            ),
        };
        metrics::counter!("chat_turns_total", "status" => status).increment(1);
        self.chat.bus.publish(&self.channel, frame).await;
    }

    /// The final `stream_end`. Never `chat.done` for an answer that is not saved: on failure
    /// the message is marked failed (one more try; the next turn marks it if this fails too).
    async fn save_final(
        &self,
        next_id: u64,
        content: String,
        mut metadata: Value,
    ) -> Result<(), ()> {
        let message_id = self.turn.message_id.clone();
        let last = self.mutation(
            next_id,
            Op::StreamEnd {
                message_id: message_id.clone(),
                content,
                metadata: metadata.clone(),
            },
        );
        let Err(why) = self.finalize(last).await else {
            return Ok(());
        };
        metadata["status"] = json!("failed");
        metadata["error"] = json!({"code": "save_failed", "message": why});
        let marker = self.mutation(
            next_id + 1,
            Op::StreamEnd {
                message_id,
                content: String::new(),
                metadata,
            },
        );
        if let Err(e) = self.finalize(marker).await {
            tracing::error!(turn = %self.turn.turn_id, error = %e, "turn's message not marked failed; the next turn marks it");
        }
        Err(())
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
pub(super) async fn save_loop(
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
