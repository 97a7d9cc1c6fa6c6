//! Elicitation (MCP 2025-11-25 `elicitation/create`, form mode): a server asks the user for
//! input during a tool call. The question goes to every connection of the user, on every
//! instance, as `mcp.elicitation` on `user:<id>` (and `tool.waiting` on the session of each
//! call it holds up); the first `mcp.elicitation.result` from any of them reaches this instance
//! through the bus, as a client tool's answer does, and goes back to the server with the
//! schema's defaults filled in for the fields left out (SEP-1034). No answer within
//! `mcp.elicitation_timeout_ms` is `cancel`. `mcp.elicitation.ended` then tells every connection
//! the question is gone, so the others close their prompt.

use super::manager::McpManager;
use crate::{
    bus::Handed,
    domain::UserId,
    error::AppError,
    protocol::events::{event_frame, raw, ServerEvent},
    time::now_ms,
};
use rmcp::model::{ElicitResult, ElicitationAction};
use serde_json::{json, Map, Value};
use std::{
    sync::{Arc, Mutex},
    time::{Duration, Instant},
};
use tokio_util::sync::CancellationToken;
use uuid::Uuid;

pub use crate::domain::CallOrigin;

/// Time one server connection's tool calls spent waiting on the user: it does not count
/// toward `mcp.tool_timeout_ms` (a person reads and types; the tool did not hang). Counted as
/// real time during which at least one question was open, so overlapping questions do not
/// stretch a deadline faster than the clock.
#[derive(Default)]
pub struct UserWait {
    state: Mutex<WaitState>,
}

#[derive(Default)]
struct WaitState {
    open: usize,
    since: Option<Instant>,
    closed_ms: u64,
}

impl UserWait {
    fn state(&self) -> std::sync::MutexGuard<'_, WaitState> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    pub fn pending(&self) -> bool {
        self.state().open > 0
    }

    /// Milliseconds during which a question was open, up to now.
    pub fn waited_ms(&self) -> u64 {
        let s = self.state();
        s.closed_ms + s.since.map_or(0, |t| t.elapsed().as_millis() as u64)
    }

    pub(crate) fn open(&self) {
        let mut s = self.state();
        if s.open == 0 {
            s.since = Some(Instant::now());
        }
        s.open += 1;
    }

    pub(crate) fn close(&self) {
        let mut s = self.state();
        s.open = s.open.saturating_sub(1);
        if s.open == 0 {
            if let Some(t) = s.since.take() {
                s.closed_ms += t.elapsed().as_millis() as u64;
            }
        }
    }
}

pub use crate::protocol::calls::ElicitationAction as Action;

/// The key an answer to `id` is awaited under.
pub fn answer_key(id: Uuid) -> String {
    format!("elicit:{id}")
}

/// One server connection's questions to its user; lives in the connection's handler.
pub struct Elicitor {
    pub(super) manager: Arc<McpManager>,
    pub(super) user: UserId,
    pub(super) server_id: Uuid,
    pub(super) server: String,
    pub(super) waits: Arc<UserWait>,
}

/// Counts one question waiting for `user` while it lives.
struct Pending<'a> {
    manager: &'a McpManager,
    waits: &'a UserWait,
    user: UserId,
}

impl Drop for Pending<'_> {
    fn drop(&mut self) {
        self.waits.close();
        if let Some(mut n) = self.manager.elicitations.get_mut(&self.user) {
            *n = n.saturating_sub(1);
        }
        self.manager
            .elicitations
            .remove_if(&self.user, |_, n| *n == 0);
    }
}

impl Elicitor {
    /// Asks the user `message` with `schema` (the requested JSON Schema) and returns what the
    /// server gets back. `cancelled` fires when the server withdraws the question (or goes).
    pub async fn ask(
        &self,
        message: String,
        schema: Value,
        cancelled: CancellationToken,
    ) -> ElicitResult {
        let m = &self.manager;
        let size = message.len() + schema.to_string().len();
        let held = m.calls_on(self.server_id);
        // Only a question about a call the user's turn made reaches the user (no prompt out
        // of the blue), and only one of a sane size.
        if held.is_empty() || size > m.cfg.max_elicitation_bytes {
            tracing::debug!(user = %self.user, server = %self.server, size, calls = held.len(), "elicitation declined");
            return ElicitResult::new(ElicitationAction::Decline);
        }
        let admitted = {
            let mut n = m.elicitations.entry(self.user).or_insert(0);
            (*n < m.cfg.max_pending_elicitations)
                .then(|| *n += 1)
                .is_some()
        };
        if !admitted {
            tracing::debug!(user = %self.user, server = %self.server, "elicitation refused: too many waiting");
            return ElicitResult::new(ElicitationAction::Cancel);
        }
        self.waits.open();
        let _pending = Pending {
            manager: m,
            waits: &self.waits,
            user: self.user,
        };
        let id = Uuid::now_v7();
        let timeout = Duration::from_millis(m.cfg.elicitation_timeout_ms);
        let mut waiter = m
            .bus
            .expect_reply(&answer_key(id), &self.user.to_string(), timeout)
            .await;
        let channel = format!("user:{}", self.user);
        let question = json!({
            "elicitation_id": id,
            "server_id": self.server_id,
            "server": self.server,
            "message": message,
            "requested_schema": schema,
            "expires_at": now_ms() + m.cfg.elicitation_timeout_ms,
            "calls": held.iter().map(|c| json!({"turn_id": c.turn_id, "call_id": c.call_id})).collect::<Vec<_>>(),
        });
        m.bus
            .publish(
                &channel,
                event_frame(&channel, &ServerEvent::McpElicitation(&raw(&question))),
            )
            .await;
        // The session's other members see that the call waits, never the server's words
        // (they are for the user who owns the server).
        for c in &held {
            let waiting = json!({
                "turn_id": c.turn_id,
                "message_id": c.message_id,
                "call_id": c.call_id,
                "elicitation_id": id,
                "server": self.server,
            });
            m.bus
                .publish(
                    &c.channel,
                    event_frame(&c.channel, &ServerEvent::ToolWaiting(&raw(&waiting))),
                )
                .await;
        }
        let answer = tokio::select! {
            a = tokio::time::timeout(timeout, waiter.answer()) => a.ok().flatten(),
            _ = cancelled.cancelled() => None,
        };
        // Withdrawn before `ended` goes out: a late answer is not_found, not taken and lost.
        drop(waiter);
        let result = match &answer {
            Some(a) => self.result_of(a, &schema),
            None => ElicitResult::new(ElicitationAction::Cancel),
        };
        let action = match result.action {
            ElicitationAction::Accept => Action::Accept,
            ElicitationAction::Decline => Action::Decline,
            _ => Action::Cancel,
        };
        let ended = ServerEvent::McpElicitationEnded {
            elicitation_id: id,
            action: action.as_str(),
            timed_out: answer.is_none(),
        };
        m.bus.publish(&channel, event_frame(&channel, &ended)).await;
        result
    }

    /// The server's answer from the user's: defaults filled in, fields the schema does not
    /// name dropped; content that does not fit the schema is a `cancel` (the user's client
    /// should have checked it).
    fn result_of(&self, answer: &Value, schema: &Value) -> ElicitResult {
        let action = serde_json::from_value(answer["action"].clone()).unwrap_or(Action::Cancel);
        match action {
            Action::Decline => ElicitResult::new(ElicitationAction::Decline),
            Action::Cancel => ElicitResult::new(ElicitationAction::Cancel),
            Action::Accept => {
                let given = answer["content"].as_object().cloned().unwrap_or_default();
                match fill(schema, given) {
                    Ok(content) => ElicitResult::new(ElicitationAction::Accept)
                        .with_content(Value::Object(content)),
                    Err(why) => {
                        tracing::info!(user = %self.user, server = %self.server, %why, "elicitation answer does not fit its schema");
                        ElicitResult::new(ElicitationAction::Cancel)
                    }
                }
            }
        }
    }
}

impl McpManager {
    /// Hands the user's answer to the question, on whichever instance asked it. Only the user
    /// asked answers, each question once.
    pub async fn answer_elicitation(
        &self,
        user: UserId,
        a: crate::protocol::calls::ElicitationAnswer,
    ) -> Result<(), AppError> {
        if let Some(content) = &a.content {
            if a.action != Action::Accept {
                return Err(AppError::validation(
                    "content",
                    "content goes only with action accept",
                ));
            }
            // A form holds strings, numbers, booleans and lists of strings (multi-select).
            let flat = |v: &Value| match v {
                Value::Array(a) => a.iter().all(Value::is_string),
                Value::Object(_) | Value::Null => false,
                _ => true,
            };
            if let Some((k, _)) = content.iter().find(|(_, v)| !flat(v)) {
                return Err(AppError::validation(
                    "content",
                    format!("{k}: a form field is a string, number, boolean or list of strings"),
                ));
            }
        }
        let value = json!({"action": a.action, "content": a.content});
        match self
            .bus
            .reply(&answer_key(a.elicitation_id), &user.to_string(), value)
            .await
        {
            Handed::Delivered => Ok(()),
            Handed::NotYours => Err(AppError::Forbidden(
                "only the user asked answers this question".into(),
            )),
            Handed::Unknown => Err(AppError::NotFound(
                "no question awaits an answer with that elicitation_id (unknown, answered, or timed out)".into(),
            )),
        }
    }
}

/// `given` checked against the form's `schema` (an object of primitive properties): fields it
/// does not name dropped, each value of its property's type, defaults filled in for the ones
/// left out (SEP-1034), required ones present.
pub fn fill(schema: &Value, given: Map<String, Value>) -> Result<Map<String, Value>, String> {
    let props = schema["properties"]
        .as_object()
        .cloned()
        .unwrap_or_default();
    let mut out = Map::new();
    for (k, v) in given {
        let Some(p) = props.get(&k) else { continue };
        if !fits(p, &v) {
            return Err(format!("{k}: not a {}", p["type"]));
        }
        out.insert(k, v);
    }
    for (k, p) in &props {
        if let (false, Some(d)) = (out.contains_key(k), p.get("default")) {
            out.insert(k.clone(), d.clone());
        }
    }
    let required = schema["required"].as_array().cloned().unwrap_or_default();
    match required
        .iter()
        .filter_map(Value::as_str)
        .find(|r| !out.contains_key(*r))
    {
        Some(missing) => Err(format!("{missing}: required")),
        None => Ok(out),
    }
}

/// The choices a property allows, if it lists them: `enum`, or titled `oneOf`/`anyOf` consts.
fn choices(p: &Value) -> Option<Vec<&Value>> {
    if let Some(e) = p["enum"].as_array() {
        return Some(e.iter().collect());
    }
    let titled = p["oneOf"].as_array().or_else(|| p["anyOf"].as_array())?;
    Some(titled.iter().filter_map(|c| c.get("const")).collect())
}

fn fits(property: &Value, v: &Value) -> bool {
    let allowed = |p: &Value, v: &Value| choices(p).is_none_or(|c| c.contains(&v));
    match property["type"].as_str() {
        Some("string") => v.is_string() && allowed(property, v),
        Some("number") => v.is_number(),
        Some("integer") => v.is_i64() || v.is_u64(),
        Some("boolean") => v.is_boolean(),
        // Multi-select: its choices are the items' enum or consts.
        Some("array") => v.as_array().is_some_and(|a| {
            a.iter()
                .all(|x| x.is_string() && allowed(&property["items"], x))
        }),
        _ => !v.is_object(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn schema() -> Value {
        json!({"type": "object", "properties": {
            "name": {"type": "string", "default": "Ada"},
            "age": {"type": "integer", "default": 36},
            "score": {"type": "number", "default": 9.5},
            "plan": {"type": "string", "enum": ["free", "pro"], "default": "pro"},
            "tier": {"type": "string", "oneOf": [{"const": "a", "title": "A"}, {"const": "b", "title": "B"}]},
            "tags": {"type": "array", "items": {"type": "string", "enum": ["x", "y"]}},
            "news": {"type": "boolean", "default": false},
            "email": {"type": "string"}
        }, "required": ["email"]})
    }

    #[test]
    fn omitted_fields_take_their_defaults_and_given_ones_are_kept() {
        let given = json!({"email": "a@b.c", "age": 40, "extra": 1, "tier": "b", "tags": ["y"]});
        let out = fill(&schema(), given.as_object().unwrap().clone()).unwrap();
        assert_eq!(
            Value::Object(out),
            json!({"email": "a@b.c", "age": 40, "name": "Ada", "score": 9.5, "plan": "pro", "news": false, "tier": "b", "tags": ["y"]})
        );
    }

    #[test]
    fn wrong_types_values_outside_the_enum_and_missing_required_fields_are_refused() {
        for bad in [
            json!({"email": "a@b.c", "age": "forty"}),
            json!({"email": "a@b.c", "age": 4.5}),
            json!({"email": "a@b.c", "plan": "gold"}),
            json!({"email": "a@b.c", "tier": "c"}),
            json!({"email": "a@b.c", "tags": ["x", "z"]}),
            json!({"email": {"nested": true}}),
            json!({"age": 1}),
        ] {
            assert!(
                fill(&schema(), bad.as_object().unwrap().clone()).is_err(),
                "{bad}"
            );
        }
    }
}
