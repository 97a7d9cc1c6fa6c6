//! Chat: completions (REST and socket turns share them), per-key quota, usage records, and
//! assistant turns streamed into sessions.
//!
//! A turn: `chat.send` appends the user's message and an empty streaming assistant message in
//! one sync mutation, then a task on this instance streams the provider's text as `chat.delta`
//! events (contiguous `index` from 1) on the session channel, saves the content every
//! `chat.save_interval_ms`, and ends it with a final sync op and `chat.done` or `chat.error`.
//! One turn per session at a time (claimed through the bus, so across instances); a second
//! `chat.send` meanwhile is refused with `turn_active`.

mod attachments;
pub mod completion;
mod conversation;
pub mod live;
mod orphans;
pub mod quota;
pub mod tool_api;
mod tool_run;
pub mod tools;
mod turn;
pub mod usage;

use crate::{
    bus::Bus,
    config::ChatConfig,
    domain::Principal,
    domain::SessionId,
    error::AppError,
    store::MutationResult,
    sync::{
        ops::{MessageRole, Mutation, Op},
        service::SyncService,
    },
};
use completion::Completions;
use live::LiveTurn;
use serde_json::{json, Value};
use std::sync::Arc;
use tokio_util::{sync::CancellationToken, task::TaskTracker};

/// Built once in `app.rs`; lives as long as the server (its turns are tracked tasks that end
/// with the shutdown's grace period).
pub struct ChatService {
    pub completions: Arc<Completions>,
    pub sync: Arc<SyncService>,
    pub bus: Arc<dyn Bus>,
    /// The turns running on this instance.
    pub live: Arc<live::LiveTurns>,
    pub config: ChatConfig,
    pub tracker: TaskTracker,
    pub mcp: Arc<crate::mcp::manager::McpManager>,
    pub mcp_config: crate::config::McpConfig,
    pub store: Arc<dyn crate::store::Store>,
    pub files: Arc<crate::files::FileService>,
}

pub use crate::protocol::calls::ChatSend as SendArgs;

/// The client id a turn writes its sync mutations under: `~` keeps it out of clients' reach.
fn turn_client(turn: uuid::Uuid) -> String {
    format!("~turn-{}", turn.simple())
}

/// What `chat.send` sends upstream, worked out before the turn claims the session.
struct Plan {
    model: String,
    /// The user message's metadata: the files it attaches.
    attachments: Value,
    /// The conversation as sent upstream (before routing); tool rounds extend it.
    request: crate::llm::ChatRequest,
    prepared: completion::Prepared,
    toolbox: tools::Toolbox,
    /// Streaming messages left by a turn whose instance stopped (id, content, metadata):
    /// closed as failed.
    orphans: Vec<(String, String, Value)>,
}

impl ChatService {
    /// Starts a turn: the user's message and the streaming assistant message are recorded in
    /// one mutation, then the turn streams in a task of its own.
    pub async fn send(self: &Arc<Self>, who: &Principal, a: SendArgs) -> Result<Value, AppError> {
        let session = self.check(&a)?;
        let (message, message_id) = (a.message.clone(), a.message_id.clone());
        let plan = self.plan(who, session, a).await?;
        let turn_id = uuid::Uuid::now_v7();
        let turn = LiveTurn {
            turn_id,
            session: session.to_string(),
            message_id: format!("msg-{}", uuid::Uuid::now_v7().simple()),
            model: plan.model.clone(),
            instance: self.bus.instance(),
        };
        let cancel = CancellationToken::new();
        if !self.live.claim(&turn, cancel.clone()).await {
            let running = self.live.view(&turn.session).await;
            return Err(AppError::TurnActive(format!(
                "a turn is already running in this session{}; wait for chat.done or send chat.cancel",
                running.map_or(String::new(), |t| format!(" (turn {})", t.turn_id))
            )));
        }
        let mut plan = plan;
        if !plan.orphans.is_empty() {
            // Read before the claim: a turn that was still streaming then may have ended
            // since (its claim was what this one just took). Only those still streaming now
            // are orphans; ending one already ended would refuse the whole first mutation.
            match self.sync.snapshot(session).await {
                Ok(now) => plan.orphans = conversation::orphaned_streams(&now.doc),
                Err(e) => {
                    self.live.release(&turn).await;
                    return Err(e);
                }
            }
        }
        let user_message_id =
            message_id.unwrap_or_else(|| format!("msg-{}", uuid::Uuid::now_v7().simple()));
        let first = self.first_mutation(&turn, &plan, &user_message_id, message);
        let version = match self.sync.push_server(who.user_id, session, first).await {
            Ok((MutationResult::Applied { version, .. }, _)) => version,
            other => {
                self.live.release(&turn).await;
                return Err(match other {
                    Ok((MutationResult::Refused { error, .. }, _)) => {
                        AppError::validation("message_id", error)
                    }
                    Ok(_) => AppError::validation("message_id", "the turn could not be recorded"),
                    Err(e) => e,
                });
            }
        };
        let run = turn::Run {
            chat: self.clone(),
            user: who.user_id,
            session,
            channel: format!("session:{}", turn.session),
            turn: turn.clone(),
            client_id: turn_client(turn_id),
            cancel,
            who: who.clone(),
            request: plan.request,
            tools: plan.toolbox,
            _mcp: self.mcp.hold(who.user_id),
        };
        self.tracker.spawn(run.stream(plan.prepared));
        Ok(json!({
            "turn_id": turn_id,
            "message_id": turn.message_id,
            "user_message_id": user_message_id,
            "model": plan.model,
            "version": version,
        }))
    }

    /// What can be refused without reading anything.
    fn check(&self, a: &SendArgs) -> Result<SessionId, AppError> {
        let session = a.session_id;
        let max = self.config.max_message_bytes;
        if a.message.is_empty() || a.message.len() > max {
            return Err(AppError::validation(
                "message",
                format!("message must be 1 to {max} bytes"),
            ));
        }
        if a.temperature.is_some_and(|t| !(0.0..=2.0).contains(&t)) {
            return Err(AppError::validation(
                "temperature",
                "temperature must be between 0 and 2",
            ));
        }
        tools::check_client_tools(&a.tools, self.config.max_client_tools)?;
        Ok(session)
    }

    /// The member's right to write, then the request built from the session's conversation
    /// and prepared for its model (quota and routing checked here, before anything is kept).
    async fn plan(
        &self,
        who: &Principal,
        session: SessionId,
        a: SendArgs,
    ) -> Result<Plan, AppError> {
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
        let new_files = self.attachments(session, &a.files).await?;
        let ids: Vec<uuid::Uuid> = new_files.iter().map(|f| f.id).collect();
        let most = self.files.config().max_files_per_session as usize;
        let order = attachments::in_order(&snapshot.doc, &ids, most);
        let attached = attachments::load(&self.files, session, &order).await?;
        let mut req = conversation::request(&snapshot.doc, &a.message, &past, &attached, &ids);
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
        Ok(Plan {
            model,
            attachments: attachments::metadata_of(&new_files),
            request,
            prepared,
            toolbox,
            orphans: conversation::orphaned_streams(&snapshot.doc),
        })
    }

    /// The files `chat.send` attaches, each one of this session's (or 404 naming it).
    async fn attachments(
        &self,
        session: SessionId,
        ids: &[uuid::Uuid],
    ) -> Result<Vec<crate::store::FileRecord>, AppError> {
        let max = self.files.config().max_attachments_per_message;
        if ids.len() > max {
            return Err(AppError::validation(
                "files",
                format!("a message attaches at most {max} files"),
            ));
        }
        let mut unique = Vec::with_capacity(ids.len());
        for id in ids {
            if !unique.contains(id) {
                unique.push(*id);
            }
        }
        let ids = &unique[..];
        let found = self.files.attached(session, ids).await?;
        match ids.iter().find(|id| !found.iter().any(|f| f.id == **id)) {
            Some(missing) => Err(AppError::NotFound(format!(
                "no file {missing} in this session"
            ))),
            None => Ok(found),
        }
    }

    /// Orphaned streams closed, the user's message, and the turn's streaming message.
    fn first_mutation(
        &self,
        turn: &LiveTurn,
        plan: &Plan,
        user_message_id: &str,
        message: String,
    ) -> Mutation {
        let mut ops: Vec<Op> = plan
            .orphans
            .iter()
            .cloned()
            .map(|(message_id, content, streaming)| Op::StreamEnd {
                message_id,
                content,
                metadata: orphans::interrupted_metadata(&streaming),
            })
            .collect();
        ops.push(Op::AppendMessage {
            message_id: user_message_id.to_owned(),
            role: MessageRole::User,
            content: message,
            metadata: plan.attachments.clone(),
        });
        ops.push(Op::StreamStart {
            message_id: turn.message_id.clone(),
            metadata: json!({"turn_id": turn.turn_id, "model": plan.model, "status": "streaming"}),
        });
        Mutation {
            client_id: turn_client(turn.turn_id),
            mutation_id: 1,
            hlc: self.sync.server_hlc(),
            ops,
        }
    }

    /// Stops a running turn from any connection of a member, on any instance.
    pub async fn cancel(&self, who: &Principal, turn: uuid::Uuid) -> Result<(), AppError> {
        let not_running = || AppError::NotFound("no running turn with that id".into());
        let session: SessionId = self
            .live
            .session_of(turn)
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
        if !self.live.cancel(turn) {
            self.bus.send(crate::bus::Control::CancelTurn(turn)).await;
        }
        Ok(())
    }
}
