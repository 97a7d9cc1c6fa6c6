//! One provider round of a turn: open the stream, turn text chunks into `chat.delta` events
//! and collect the tool calls the model asks for.

use super::{Clock, End, Outcome, Run, Saving};
use crate::{
    chat::completion::{upstream_error, Prepared},
    llm::{Chunk, FinishReason, ToolCall, ToolCalls, Usage},
    protocol::event_frame,
    protocol::ServerEvent,
    sync::ops::MAX_CONTENT,
};
use futures::StreamExt;

impl Run {
    /// The round's text and its tool calls; `Err` when the turn ends inside it. The provider
    /// stream is dropped when this returns, so nothing after it keeps the upstream open.
    pub(super) async fn round(
        &self,
        p: Prepared,
        out: &mut Outcome,
        saving: &mut Saving,
        clock: &mut Clock,
    ) -> Result<(String, Vec<ToolCall>), End> {
        let cfg = &self.chat.config;
        // Opening may take minutes (first-byte timeouts and retries): the claim is kept alive
        // meanwhile, or other instances would take the turn for one whose instance died.
        let opening = p.open(crate::llm::Delivery::Streamed);
        tokio::pin!(opening);
        let mut stream = loop {
            tokio::select! {
                biased;
                _ = self.cancel.cancelled() => return Err(End::Cancelled),
                _ = &mut clock.deadline => return Err(End::timeout(cfg.max_turn_secs)),
                _ = clock.refresh.tick() => self.chat.live.refresh(&self.turn).await,
                opened = &mut opening => break opened.map_err(|e| {
                    let e = upstream_error(&e);
                    End::failed(e.code(), e)
                })?,
            }
        };
        let mut text = String::new();
        let mut usage: Option<Usage> = None;
        let mut calls = ToolCalls::default();
        loop {
            let next = tokio::select! {
                biased;
                _ = self.cancel.cancelled() => return Err(End::Cancelled),
                _ = &mut clock.deadline => return Err(End::timeout(cfg.max_turn_secs)),
                _ = clock.refresh.tick() => {
                    self.chat.live.refresh(&self.turn).await;
                    continue;
                }
                n = stream.next() => n,
            };
            match next {
                None => break,
                Some(Ok(Chunk::Text(t))) => {
                    if !self.text(t, &mut text, out, saving).await {
                        out.finish = Some(FinishReason::Length);
                        return Err(End::Complete);
                    }
                }
                Some(Ok(Chunk::ToolCall {
                    index,
                    id,
                    name,
                    arguments,
                })) => calls.add(index, id, name, &arguments),
                Some(Ok(Chunk::Finish(f))) => out.finish = Some(f),
                Some(Ok(Chunk::Usage(u))) => usage = Some(u),
                Some(Err(e)) => {
                    let e = upstream_error(&e);
                    return Err(End::failed(e.code(), e));
                }
            }
        }
        if let Some(u) = usage {
            let total = out.usage.get_or_insert_with(Usage::default);
            total.prompt_tokens += u.prompt_tokens;
            total.completion_tokens += u.completion_tokens;
        }
        Ok((text, calls.into_vec()))
    }

    /// Publishes one text chunk as the next delta; false when it would pass `MAX_CONTENT`.
    async fn text(
        &self,
        t: String,
        round_text: &mut String,
        out: &mut Outcome,
        saving: &mut Saving,
    ) -> bool {
        // No column takes NUL; the delta and the saved text stay one.
        let t = if t.contains('\0') {
            t.replace('\0', "\u{FFFD}")
        } else {
            t
        };
        if out.content.len() + t.len() > MAX_CONTENT {
            return false;
        }
        out.index += 1;
        out.content.push_str(&t);
        round_text.push_str(&t);
        let frame = event_frame(
            &self.channel,
            &ServerEvent::ChatDelta {
                turn_id: self.turn.turn_id,
                message_id: &self.turn.message_id,
                index: out.index,
                text: &t,
            },
        );
        self.chat.live.append(&self.turn, out.index, &t);
        self.chat
            .bus
            .publish_delta(&self.channel, self.turn.turn_id, out.index, &t, frame)
            .await;
        saving.if_due(&out.content);
        true
    }
}
