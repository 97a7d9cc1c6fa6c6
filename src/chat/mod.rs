//! Chat: completions (REST and socket turns share them), per-key quota, usage records, and
//! assistant turns streamed into sessions.
//!
//! A turn: `chat.send` appends the user's message and an empty streaming assistant message in
//! one sync mutation, then a task on this instance streams the provider's text as `chat.delta`
//! events (contiguous `index` from 1) on the session channel, saves the content every
//! `chat.save_interval_ms`, and ends it with a final sync op and `chat.done` or `chat.error`.
//! One turn per session at a time (claimed through the bus, so across instances); a second
//! `chat.send` meanwhile is refused with `turn_active`.

pub mod completion;
mod conversation;
pub mod quota;
pub mod tool_api;
mod tool_run;
pub mod tools;
mod turn;
pub mod usage;

use crate::{
    bus::{Bus, LiveTurn},
    config::ChatConfig,
    domain::Principal,
    domain::SessionId,
    error::AppError,
    hub::Hub,
    store::MutationResult,
    sync::{
        ops::{MessageRole, Mutation, Op},
        service::SyncService,
    },
};
use completion::Completions;
use serde::Deserialize;
use serde_json::{json, Value};
use std::sync::Arc;
use tokio_util::{sync::CancellationToken, task::TaskTracker};

/// Built once in `app.rs`.
pub struct ChatService {
    pub completions: Arc<Completions>,
    pub sync: Arc<SyncService>,
    pub bus: Arc<dyn Bus>,
    pub hub: Arc<Hub>,
    pub config: ChatConfig,
    pub tracker: TaskTracker,
    pub mcp: Arc<crate::mcp::manager::McpManager>,
    pub mcp_config: crate::config::McpConfig,
    pub store: Arc<dyn crate::store::Store>,
}

#[derive(Debug, Deserialize)]
pub struct SendArgs {
    pub session_id: String,
    /// The user's message text.
    pub message: String,
    /// The id the user's message gets (so the client can show it at once); generated if absent.
    pub message_id: Option<String>,
    /// Overrides the session's model (then `chat.default_model`).
    pub model: Option<String>,
    pub max_tokens: Option<u32>,
    pub temperature: Option<f64>,
    /// Tools this client runs itself: offered to the model, and calls to them are forwarded
    /// as `tool.call` for the client to answer with `tool.result`.
    #[serde(default)]
    pub tools: Vec<tools::ClientTool>,
}

/// The client id a turn writes its sync mutations under: `~` keeps it out of clients' reach.
fn turn_client(turn: uuid::Uuid) -> String {
    format!("~turn-{}", turn.simple())
}

impl ChatService {
    pub async fn send(self: &Arc<Self>, who: &Principal, a: SendArgs) -> Result<Value, AppError> {
        let session: SessionId = a
            .session_id
            .parse()
            .map_err(|_| AppError::validation("session_id", "session_id must be a UUID"))?;
        if a.message.is_empty() || a.message.len() > self.config.max_message_bytes {
            return Err(AppError::validation(
                "message",
                format!(
                    "message must be 1 to {} bytes",
                    self.config.max_message_bytes
                ),
            ));
        }
        if let Some(t) = a.temperature {
            if !(0.0..=2.0).contains(&t) {
                return Err(AppError::validation(
                    "temperature",
                    "temperature must be between 0 and 2",
                ));
            }
        }
        tools::check_client_tools(&a.tools, self.config.max_client_tools)?;
        let role = self.sync.role(session, who.user_id).await?;
        if !role.can_write() {
            return Err(AppError::Forbidden(
                "viewers cannot start a turn in this session".into(),
            ));
        }
        let snapshot = self.sync.snapshot(session).await?;
        let model = a
            .model
            .clone()
            .or_else(|| conversation::session_model(&snapshot.doc))
            .unwrap_or_else(|| self.config.default_model.clone());
        let past = if conversation::has_tool_calls(&snapshot.doc) {
            self.past_results(session).await?
        } else {
            conversation::PastResults::new()
        };
        let mut req = conversation::request(&snapshot.doc, &a.message, &past);
        req.max_tokens = a.max_tokens;
        req.temperature = a.temperature;
        req.user = Some(who.user_id.to_string());
        let toolbox = if self.config.max_tool_rounds == 0 {
            tools::Toolbox::default()
        } else {
            tools::Toolbox::new(&self.mcp.snapshot(who.user_id).await, a.tools)
        };
        req.tools = toolbox.offered.clone();
        let request = req.clone();
        let prepared = self.completions.prepare(who, "chat", &model, req).await?;
        let turn_id = uuid::Uuid::now_v7();
        let turn = LiveTurn {
            turn_id,
            session: session.to_string(),
            message_id: format!("msg-{}", uuid::Uuid::now_v7().simple()),
            model: model.clone(),
        };
        if !self.bus.turn_claim(&turn).await {
            let running = self.bus.turn_active(&turn.session).await;
            return Err(AppError::TurnActive(format!(
                "a turn is already running in this session{}; wait for chat.done or send chat.cancel",
                running.map_or(String::new(), |t| format!(" (turn {})", t.turn_id))
            )));
        }
        let user_message_id = a
            .message_id
            .unwrap_or_else(|| format!("msg-{}", uuid::Uuid::now_v7().simple()));
        let mut ops: Vec<Op> = conversation::orphaned_streams(&snapshot.doc)
            .into_iter()
            .map(|(message_id, content)| Op::StreamEnd {
                message_id,
                content,
                metadata: json!({"status": "failed", "error": "interrupted: the instance running this turn stopped"}),
            })
            .collect();
        ops.push(Op::AppendMessage {
            message_id: user_message_id.clone(),
            role: MessageRole::User,
            content: a.message,
            metadata: Value::Null,
        });
        ops.push(Op::StreamStart {
            message_id: turn.message_id.clone(),
            metadata: json!({"turn_id": turn_id, "model": model, "status": "streaming"}),
        });
        let first = Mutation {
            client_id: turn_client(turn_id),
            mutation_id: 1,
            hlc: self.sync.server_hlc(),
            ops,
        };
        let version = match self.sync.push_server(who.user_id, session, first).await {
            Ok((MutationResult::Applied { version, .. }, _)) => version,
            Ok((other, _)) => {
                self.bus.turn_release(&turn).await;
                let why = match other {
                    MutationResult::Refused { error, .. } => error,
                    _ => "the turn could not be recorded".into(),
                };
                return Err(AppError::validation("message_id", why));
            }
            Err(e) => {
                self.bus.turn_release(&turn).await;
                return Err(e);
            }
        };
        let cancel = CancellationToken::new();
        self.hub.register_turn(turn_id, cancel.clone());
        let run = turn::Run {
            chat: self.clone(),
            user: who.user_id,
            session,
            turn: turn.clone(),
            client_id: turn_client(turn_id),
            cancel,
            who: who.clone(),
            request,
            tools: toolbox,
            _mcp: self.mcp.hold(who.user_id),
        };
        self.tracker.spawn(run.stream(prepared));
        Ok(json!({
            "turn_id": turn_id,
            "message_id": turn.message_id,
            "user_message_id": user_message_id,
            "model": model,
            "version": version,
        }))
    }

    /// Stops a running turn from any connection of a member, on any instance.
    pub async fn cancel(&self, who: &Principal, turn: &str) -> Result<(), AppError> {
        let turn: uuid::Uuid = turn
            .parse()
            .map_err(|_| AppError::validation("turn_id", "turn_id must be a UUID"))?;
        let not_running = || AppError::NotFound("no running turn with that id".into());
        let session: SessionId = self
            .bus
            .turn_session(turn)
            .await
            .and_then(|s| s.parse().ok())
            .ok_or_else(not_running)?;
        let role = self
            .sync
            .role(session, who.user_id)
            .await
            .map_err(|_| not_running())?;
        if !role.can_write() {
            return Err(AppError::Forbidden("viewers cannot cancel a turn".into()));
        }
        self.bus.cancel_turn(turn).await;
        Ok(())
    }
}
