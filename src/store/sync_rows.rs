//! The rows the sync tables hold, and how they become the merge's types.

use super::StoreError;
use crate::sync::{
    batch::Answer,
    hlc::Hlc,
    merge::{Counts, Message, Register, Stamp},
    ops::{MessageRole, Refusal, RefusalCode},
};
use chrono::{DateTime, Utc};

#[derive(sqlx::FromRow)]
pub(crate) struct RegisterRow {
    pub key: String,
    pub value: Option<String>,
    pub hlc: String,
    pub client_id: String,
}

impl RegisterRow {
    pub fn into_register(self) -> Result<(String, Register), StoreError> {
        let value = self
            .value
            .map(|v| serde_json::from_str(&v))
            .transpose()
            .map_err(|e| StoreError::Corrupt(format!("register value: {e}")))?;
        let hlc: Hlc = self.hlc.parse().map_err(StoreError::Corrupt)?;
        Ok((
            self.key,
            Register {
                value,
                stamp: Stamp {
                    hlc,
                    client_id: self.client_id,
                },
            },
        ))
    }
}

#[derive(sqlx::FromRow)]
pub(crate) struct MessageRow {
    pub id: String,
    pub role: String,
    pub content: String,
    pub metadata: String,
    pub position: i64,
    pub seq: i32,
    pub author_client: String,
    pub edit_hlc: String,
    pub edit_client: String,
    pub deleted: bool,
    pub streaming: bool,
    #[allow(dead_code)]
    pub created_at: DateTime<Utc>,
}

/// A message with the session it belongs to (reads across sessions).
#[derive(sqlx::FromRow)]
pub(crate) struct SessionMessageRow {
    pub session_id: uuid::Uuid,
    #[sqlx(flatten)]
    pub message: MessageRow,
}

impl MessageRow {
    pub fn into_message(self) -> Result<Message, StoreError> {
        Ok(Message {
            role: MessageRole::parse(&self.role)
                .ok_or_else(|| StoreError::Corrupt(format!("role {:?}", self.role)))?,
            metadata: serde_json::from_str(&self.metadata)
                .map_err(|e| StoreError::Corrupt(e.to_string()))?,
            position: self.position as u64,
            seq: self.seq as u32,
            edit: Stamp {
                hlc: self.edit_hlc.parse().map_err(StoreError::Corrupt)?,
                client_id: self.edit_client,
            },
            id: self.id,
            content: self.content,
            author_client: self.author_client,
            deleted: self.deleted,
            streaming: self.streaming,
        })
    }
}

#[derive(sqlx::FromRow)]
pub(crate) struct ChangeRow {
    pub version: i64,
    pub client_id: String,
    pub mutation_id: i64,
    pub hlc: String,
    pub ops: String,
}

impl ChangeRow {
    pub fn into_change(self) -> Result<super::Change, StoreError> {
        Ok(super::Change {
            version: self.version as u64,
            mutation: crate::sync::ops::Mutation {
                client_id: self.client_id,
                mutation_id: self.mutation_id as u64,
                hlc: self.hlc.parse().map_err(StoreError::Corrupt)?,
                ops: serde_json::from_str(&self.ops)
                    .map_err(|e| StoreError::Corrupt(e.to_string()))?,
            },
        })
    }
}

pub(crate) const MESSAGE_COLUMNS: &str =
    "id, role, content, metadata, position, seq, author_client, \
    edit_hlc, edit_client, deleted, streaming, created_at";

/// The locked session row: where its versions and its sizes stand.
#[derive(sqlx::FromRow)]
pub(crate) struct SizeRow {
    pub version: i64,
    pub log_floor: i64,
    pub context_keys: i64,
    pub context_bytes: i64,
    pub tag_count: i64,
    pub message_count: i64,
    pub content_bytes: i64,
}

impl SizeRow {
    pub fn counts(&self) -> Counts {
        let n = |v: i64| v.max(0) as u64;
        Counts {
            context_keys: n(self.context_keys),
            context_bytes: n(self.context_bytes),
            tags: n(self.tag_count),
            messages: n(self.message_count),
            content_bytes: n(self.content_bytes),
        }
    }
}

/// A stored answer as its columns hold it.
pub(crate) fn answer_of(
    version: Option<i64>,
    code: Option<String>,
    error: Option<String>,
) -> Answer {
    match version {
        Some(v) => Answer::Applied(v as u64),
        None => Answer::Refused(Refusal::new(
            code.as_deref()
                .map_or(RefusalCode::Invalid, RefusalCode::parse),
            error.unwrap_or_default(),
        )),
    }
}

/// Rows per multi-row statement: far below both backends' bind limits.
pub(crate) const ROWS_PER_STATEMENT: usize = 500;
