//! How a session document is shown to clients: a snapshot with fields, context, tags and the
//! transcript.

use super::merge::{Doc, Message};
use serde::Serialize;
use std::collections::BTreeMap;
use utoipa::ToSchema;

#[derive(Debug, Serialize, ToSchema)]
pub struct SnapshotView {
    pub version: u64,
    /// title, model, system_prompt, archived, pinned, project_id (absent when never set).
    #[schema(value_type = Object)]
    pub fields: BTreeMap<String, serde_json::Value>,
    #[schema(value_type = Object)]
    pub context: BTreeMap<String, serde_json::Value>,
    pub tags: Vec<String>,
    pub messages: Vec<MessageView>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct MessageView {
    pub id: String,
    pub role: String,
    pub content: String,
    #[schema(value_type = Object)]
    pub metadata: serde_json::Value,
    /// Session version at which the message was appended.
    pub position: u64,
    pub streaming: bool,
}

impl From<&Message> for MessageView {
    fn from(m: &Message) -> Self {
        Self {
            id: m.id.clone(),
            role: m.role.as_str().into(),
            content: m.content.clone(),
            metadata: m.metadata.clone(),
            position: m.position,
            streaming: m.streaming,
        }
    }
}

impl SnapshotView {
    pub fn new(version: u64, doc: &Doc) -> Self {
        let (mut fields, mut context, mut tags) = (BTreeMap::new(), BTreeMap::new(), Vec::new());
        for (k, v) in doc.live_registers() {
            if let Some(f) = k.strip_prefix("f:") {
                fields.insert(f.to_string(), v.clone());
            } else if let Some(c) = k.strip_prefix("c:") {
                context.insert(c.to_string(), v.clone());
            } else if let Some(t) = k.strip_prefix("t:") {
                tags.push(t.to_string());
            }
        }
        Self {
            version,
            fields,
            context,
            tags,
            messages: doc.transcript().into_iter().map(Into::into).collect(),
        }
    }
}
