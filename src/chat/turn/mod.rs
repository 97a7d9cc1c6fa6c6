//! One running turn: provider chunks become `chat.delta` events, the content is saved every so
//! often (a task of its own, so a slow commit never holds up the stream), and the end is a
//! final sync op, the claim released, then `chat.done` or `chat.error`. When the model calls
//! offered tools, each round's calls run (concurrently, see `tool_run`), their results go back
//! to the model, and the turn goes on, up to `chat.max_tool_rounds` rounds; its text is one
//! message across rounds.
//!
//! `stream` is the whole turn: `rounds` (this file) alternates a provider `round` (`round.rs`)
//! with a round of tool calls, then `finish` (`finish.rs`) saves and announces the end.

mod finish;
mod round;

use super::{completion::Prepared, tools::Toolbox, ChatService};
use crate::{
    chat::live::LiveTurn,
    domain::Principal,
    domain::{SessionId, UserId},
    llm::{ChatMessage, ChatRequest, FinishReason, Role, ToolCall, ToolChoice, Usage},
    protocol::ErrorCode,
    sync::ops::{Mutation, Op},
};
use std::{pin::Pin, sync::Arc, time::Duration};
use tokio::{sync::watch, time::Instant};
use tokio_util::sync::CancellationToken;

pub(super) struct Run {
    pub chat: Arc<ChatService>,
    pub user: UserId,
    pub session: SessionId,
    pub turn: LiveTurn,
    /// `session:<id>`, where the turn's events go.
    pub channel: String,
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

impl End {
    fn failed(code: ErrorCode, message: impl ToString) -> Self {
        End::Failed {
            code: code.as_str(),
            message: message.to_string(),
        }
    }

    fn timeout(max_turn_secs: u64) -> Self {
        End::Failed {
            code: "turn_timeout",
            message: format!("the turn ran longer than {max_turn_secs} s"),
        }
    }
}

/// What the turn has produced so far, across rounds.
#[derive(Default)]
struct Outcome {
    content: String,
    /// The last delta's index.
    index: u64,
    finish: Option<FinishReason>,
    usage: Option<Usage>,
    /// Every tool call of every round, for the message's metadata.
    calls: Vec<ToolCall>,
    rounds: u32,
}

/// Hands the growing content to the saver task, at most every `chat.save_interval_ms`.
struct Saving {
    tx: watch::Sender<String>,
    last: Instant,
    every: Duration,
}

impl Saving {
    /// Hands the content over now, the interval's clock untouched (before a tool round).
    fn push(&self, content: &str) {
        self.tx.send_replace(content.to_owned());
    }

    fn if_due(&mut self, content: &str) {
        if self.last.elapsed() >= self.every {
            self.last = Instant::now();
            self.push(content);
        }
    }
}

/// The turn's deadline and the claim's refresh tick, shared by every round.
struct Clock {
    deadline: Pin<Box<tokio::time::Sleep>>,
    refresh: tokio::time::Interval,
}

/// The claim is refreshed this often (it expires after `live::TURN_TTL` without it).
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
        let cfg = &self.chat.config;
        let (tx, save_rx) = watch::channel(String::new());
        let saver = tokio::spawn(finish::save_loop(
            self.chat.clone(),
            self.user,
            self.session,
            self.turn.message_id.clone(),
            self.client_id.clone(),
            save_rx,
        ));
        let mut saving = Saving {
            tx,
            last: Instant::now(),
            every: Duration::from_millis(cfg.save_interval_ms),
        };
        let mut clock = Clock {
            deadline: Box::pin(tokio::time::sleep(Duration::from_secs(cfg.max_turn_secs))),
            refresh: tokio::time::interval_at(Instant::now() + REFRESH, REFRESH),
        };
        let mut out = Outcome::default();
        let end = self
            .rounds(prepared, &mut out, &mut saving, &mut clock)
            .await;
        // The provider stream is gone by now (dropped with its round): the upstream request is
        // closed before anything below waits. The deltas reach other instances before the
        // final message and the closing event can.
        self.chat.bus.flush_deltas(self.turn.turn_id).await;
        drop(saving);
        let next_id = saver.await.unwrap_or(2);
        self.finish(end, out, next_id).await;
    }

    /// Provider rounds, each followed by a round of the tool calls it asked for, until the
    /// model answers without calls, the rounds run out, or the turn is stopped.
    async fn rounds(
        &self,
        prepared: Prepared,
        out: &mut Outcome,
        saving: &mut Saving,
        clock: &mut Clock,
    ) -> End {
        let cfg = &self.chat.config;
        let mut req = self.request.clone();
        let mut prepared = Some(prepared);
        loop {
            let p = match prepared.take() {
                Some(p) => p,
                None => {
                    let who = &self.who;
                    let next =
                        self.chat
                            .completions
                            .prepare(who, "chat", &self.turn.model, req.clone());
                    match next.await {
                        Ok(p) => p,
                        Err(e) => return End::failed(e.code(), e),
                    }
                }
            };
            let (text, mut calls) = match self.round(p, out, saving, clock).await {
                Ok(r) => r,
                Err(end) => return end,
            };
            for c in &mut calls {
                if c.id.is_empty() {
                    c.id = format!("call_{}", uuid::Uuid::now_v7().simple());
                }
            }
            out.calls.extend(calls.iter().cloned());
            if calls.is_empty() || self.tools.is_empty() || out.rounds >= cfg.max_tool_rounds {
                return End::Complete;
            }
            out.rounds += 1;
            saving.push(&out.content);
            // Deltas so far reach every instance before the tool events do.
            self.chat.bus.flush_deltas(self.turn.turn_id).await;
            let answers = match self.tool_round(&calls, clock).await {
                Ok(a) => a,
                Err(end) => return end,
            };
            if self.cancel.is_cancelled() {
                return End::Cancelled;
            }
            req.messages.push(ChatMessage {
                role: Role::Assistant,
                content: text,
                parts: Vec::new(),
                tool_calls: calls.clone(),
                tool_call_id: None,
            });
            for (c, text) in calls.iter().zip(answers) {
                req.messages.push(ChatMessage {
                    role: Role::Tool,
                    content: text,
                    parts: Vec::new(),
                    tool_calls: Vec::new(),
                    tool_call_id: Some(c.id.clone()),
                });
            }
            if out.rounds >= cfg.max_tool_rounds {
                // The last round's results are in: the model answers in text now.
                req.tool_choice = Some(ToolChoice::None);
            }
        }
    }

    /// Runs one round's calls concurrently; the model gets their texts in the calls' order.
    async fn tool_round(&self, calls: &[ToolCall], clock: &mut Clock) -> Result<Vec<String>, End> {
        let stop = self.cancel.child_token();
        let running = futures::future::join_all(
            calls
                .iter()
                .map(|c| self.run_call(&self.tools, c, &self.channel, &stop)),
        );
        tokio::pin!(running);
        loop {
            tokio::select! {
                biased;
                a = &mut running => return Ok(a),
                _ = &mut clock.deadline => {
                    stop.cancel();
                    (&mut running).await;
                    return Err(End::timeout(self.chat.config.max_turn_secs));
                }
                _ = clock.refresh.tick() => self.chat.live.refresh(&self.turn).await,
            }
        }
    }
}
