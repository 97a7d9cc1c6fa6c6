//! Running one tool call of a turn (see `tools` for what is offered).

use super::{
    tools::{cap, model_text, parse_arguments, Failure, Target, Toolbox},
    turn::Run,
};
use crate::{
    bus::Waiter,
    llm::ToolCall,
    protocol::event_frame,
    protocol::{raw, ServerEvent},
    store::ToolRecord,
};
use serde_json::{json, Map, Value};
use std::time::{Duration, Instant};
use tokio_util::sync::CancellationToken;

/// The key a client's answer to `call_id` is awaited under.
pub fn answer_key(turn: uuid::Uuid, call_id: &str) -> String {
    format!("tool:{turn}:{call_id}")
}

/// A call's result (with the text the model gets), or why it has none.
type Outcome = Result<(Value, String), Failure>;

impl Run {
    /// Runs `call` and returns the text the model gets back. Stops early when `stop` fires.
    pub(super) async fn run_call(
        &self,
        tools: &Toolbox,
        call: &ToolCall,
        channel: &str,
        stop: &CancellationToken,
    ) -> String {
        let started = Instant::now();
        let target = tools.target(&call.name);
        let args = parse_arguments(call);
        let shown_args = match &args {
            Ok(m) => Value::Object(m.clone()),
            Err(_) => Value::String(call.arguments.clone()),
        };
        let base = json!({
            "turn_id": self.turn.turn_id,
            "message_id": self.turn.message_id,
            "call_id": call.id,
            "name": call.name,
        });
        let waiter = self
            .announce(call, target, &args, &shown_args, &base, channel)
            .await;
        let max = self.chat.config.max_tool_result_bytes;
        let outcome: Outcome = self
            .execute(call, target, args, waiter, (channel, stop))
            .await
            .map(|v| {
                let text = model_text(&v);
                cap(v, text, max)
            });
        let (status, text) = match &outcome {
            Ok((_, text)) => ("ok", text.clone()),
            Err(f) => (f.status, format!("error ({}): {}", f.code, f.message)),
        };
        let duration_ms = started.elapsed().as_millis() as u64;
        self.record(call, target, shown_args, &outcome, status, duration_ms)
            .await;
        metrics::counter!("chat_tool_calls_total", "status" => status).increment(1);
        let mut done = base;
        done["duration_ms"] = json!(duration_ms);
        let succeeded = match outcome {
            Ok((v, _)) => {
                done["result"] = v;
                true
            }
            Err(f) => {
                done["code"] = json!(f.code);
                done["message"] = json!(f.message);
                false
            }
        };
        let done = raw(&done);
        let event = if succeeded {
            ServerEvent::ToolResult(&done)
        } else {
            ServerEvent::ToolError(&done)
        };
        self.chat
            .bus
            .publish(channel, event_frame(channel, &event))
            .await;
        text
    }

    /// Publishes `tool.call`. A client may answer as soon as it sees the call, so the wait for
    /// a client tool's answer exists before the call is announced: it is returned.
    async fn announce(
        &self,
        call: &ToolCall,
        target: Option<&Target>,
        args: &Result<Map<String, Value>, String>,
        shown_args: &Value,
        base: &Value,
        channel: &str,
    ) -> Option<Waiter> {
        let mut announce = base.clone();
        announce["server"] = json!(target.and_then(Target::server));
        announce["tool"] = json!(target.map(Target::tool));
        announce["side"] = json!(target.map(Target::side));
        announce["arguments"] = shown_args.clone();
        let client_ms = self.chat.config.client_tool_timeout_ms;
        let waiter = match (target, args) {
            (Some(Target::Client { .. }), Ok(_)) => Some(
                self.chat
                    .bus
                    .expect_reply(
                        &answer_key(self.turn.turn_id, &call.id),
                        &self.user.to_string(),
                        Duration::from_millis(client_ms),
                    )
                    .await,
            ),
            _ => None,
        };
        self.chat
            .bus
            .publish(
                channel,
                event_frame(channel, &ServerEvent::ToolCall(&raw(&announce))),
            )
            .await;
        waiter
    }

    /// The call itself: through the user's MCP clients, or the client's answer awaited.
    async fn execute(
        &self,
        call: &ToolCall,
        target: Option<&Target>,
        args: Result<Map<String, Value>, String>,
        waiter: Option<Waiter>,
        (channel, stop): (&str, &CancellationToken),
    ) -> Result<Value, Failure> {
        match (target, args) {
            (None, _) => Err(Failure::new(
                "unknown_tool",
                format!("no tool named {:?} was offered", call.name),
            )),
            (_, Err(why)) => Err(Failure::new("invalid_arguments", why)),
            (Some(Target::Mcp { server, tool }), Ok(args)) => {
                let timeout = Duration::from_millis(self.chat.mcp_config.tool_timeout_ms);
                let origin = crate::mcp::elicit::CallOrigin {
                    channel: channel.to_owned(),
                    turn_id: self.turn.turn_id,
                    message_id: self.turn.message_id.clone(),
                    call_id: call.id.clone(),
                };
                let run = self
                    .chat
                    .mcp
                    .call(self.user, server, tool, args, timeout, Some(origin));
                tokio::select! {
                    r = run => r.map_err(Failure::from),
                    _ = stop.cancelled() => Err(Failure::new("cancelled", "the turn ended first")),
                }
            }
            (Some(Target::Client { .. }), Ok(_)) => {
                await_client(waiter, self.chat.config.client_tool_timeout_ms, stop).await
            }
        }
    }

    /// The call's record (`tool.list`, `/v1/sessions/{id}/tools`); a store failure is logged,
    /// never fails the turn.
    async fn record(
        &self,
        call: &ToolCall,
        target: Option<&Target>,
        arguments: Value,
        outcome: &Outcome,
        status: &str,
        duration_ms: u64,
    ) {
        let record = ToolRecord {
            id: uuid::Uuid::now_v7(),
            session_id: self.session,
            turn_id: self.turn.turn_id,
            message_id: self.turn.message_id.clone(),
            call_id: call.id.clone(),
            name: call.name.clone(),
            server: target.and_then(Target::server).map(str::to_owned),
            tool: target.map_or_else(|| call.name.clone(), |t| t.tool().to_owned()),
            arguments,
            result: outcome.as_ref().ok().map(|(v, _)| v.clone()),
            error: outcome.as_ref().err().map(|f| f.message.clone()),
            status: status.into(),
            duration_ms,
            created_at: chrono::Utc::now(),
        };
        if let Err(e) = self.chat.store.record_tool_call(&record).await {
            tracing::error!(error = %e, turn = %self.turn.turn_id, "tool call record not saved");
        }
    }
}

/// Waits for the client's `tool.result` (any connection of the turn's user, any instance).
async fn await_client(
    waiter: Option<Waiter>,
    ms: u64,
    stop: &CancellationToken,
) -> Result<Value, Failure> {
    let Some(mut waiter) = waiter else {
        return Err(Failure::new(
            "tool_unavailable",
            "the call could not be awaited",
        ));
    };
    let answer = tokio::select! {
        a = tokio::time::timeout(Duration::from_millis(ms), waiter.answer()) => a,
        _ = stop.cancelled() => return Err(Failure::new("cancelled", "the turn ended first")),
    };
    match answer {
        Ok(Some(v)) => match v.get("error") {
            Some(e) => Err(Failure::new(
                "tool_failed",
                e.as_str().map_or_else(|| e.to_string(), str::to_owned),
            )),
            None => Ok(v["result"].clone()),
        },
        _ => Err(Failure::new(
            "tool_timeout",
            format!("the client did not answer within {ms} ms"),
        )),
    }
}
