//! What clients do with tools besides watching events: answer a client-side call
//! (`tool.result`), and list a session's tool records.

use super::{
    tool_run::answer_key,
    tools::{cap_text, model_text},
    ChatService,
};
use crate::{
    bus::Handed, domain::Principal, domain::SessionId, error::AppError, store::ToolRecord,
};
use serde_json::json;

/// Records read per query when rebuilding a conversation.
const PAGE: u32 = 500;

/// Longest call id a client may send back (models' ids are far shorter).
const MAX_CALL_ID: usize = 128;

pub use crate::protocol::calls::ToolResult as ToolAnswer;

impl ChatService {
    /// Hands the answer to the waiting turn, on whichever instance it runs. Only the user who
    /// started the turn answers; each call once.
    pub async fn answer_tool(&self, who: &Principal, a: ToolAnswer) -> Result<(), AppError> {
        let turn = a.turn_id;
        if a.call_id.is_empty() || a.call_id.len() > MAX_CALL_ID {
            return Err(AppError::validation(
                "call_id",
                format!("call_id must be 1 to {MAX_CALL_ID} bytes"),
            ));
        }
        let value = match (a.result, a.error) {
            (Some(r), None) => json!({ "result": r }),
            (None, Some(e)) => json!({ "error": e }),
            _ => {
                return Err(AppError::validation(
                    "result",
                    "send exactly one of result or error",
                ))
            }
        };
        let key = answer_key(turn, &a.call_id);
        match self.bus.reply(&key, &who.user_id.to_string(), value).await {
            Handed::Delivered => Ok(()),
            Handed::NotYours => Err(AppError::Forbidden(
                "only the user who started the turn answers its tool calls".into(),
            )),
            Handed::Unknown => Err(AppError::NotFound(
                "no tool call awaits an answer with that turn_id and call_id (unknown, answered, or timed out)".into(),
            )),
        }
    }

    /// What the model read for each of the session's earlier tool calls (for the conversation).
    pub(super) async fn past_results(
        &self,
        session: SessionId,
    ) -> Result<super::conversation::PastResults, AppError> {
        let max = self.config.max_tool_result_bytes;
        let mut out = super::conversation::PastResults::new();
        let mut after = None;
        loop {
            let page = self.store.list_tool_calls(session, after, PAGE).await?;
            after = page.last().map(|r| r.id);
            let full = page.len() == PAGE as usize;
            for r in page {
                let text = match (&r.result, &r.error) {
                    (Some(v), _) => cap_text(model_text(v), max),
                    (None, e) => format!("error ({}): {}", r.status, e.as_deref().unwrap_or("")),
                };
                out.insert((r.turn_id.to_string(), r.call_id), text);
            }
            if !full {
                return Ok(out);
            }
        }
    }

    /// A session's tool records, oldest first, to any member.
    pub async fn tool_records(
        &self,
        who: &Principal,
        session: SessionId,
        after: Option<String>,
        limit: Option<u32>,
    ) -> Result<(Vec<ToolRecord>, Option<String>), AppError> {
        let limit = crate::error::page_limit(limit)?;
        let after = crate::error::after_cursor::<uuid::Uuid>(after.as_deref())?;
        self.sync.role(session, who.user_id).await?;
        let rows = self.store.list_tool_calls(session, after, limit).await?;
        let next = crate::error::next_cursor(&rows, limit, |r| r.id.to_string());
        Ok((rows, next))
    }
}
