//! How a session document is shown to clients: a snapshot with fields, context, tags, the
//! transcript, and every register's stamp, so a replica built from it merges later changes
//! exactly as the server does.

use super::{
    hlc::Hlc,
    merge::{Doc, Message, Stamp},
};
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
    /// Every register's last write, keyed `f:<field>`, `c:<context key>`, `t:<tag>`, deleted
    /// ones included (a key here but not in fields/context/tags is a tombstone, and its stamp
    /// still beats older writes).
    #[schema(value_type = Object)]
    pub stamps: BTreeMap<String, StampView>,
    /// The server's clock; a client moves its own past it.
    #[schema(value_type = String)]
    pub server_hlc: Hlc,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct StampView {
    #[schema(value_type = String)]
    pub hlc: Hlc,
    pub client_id: String,
}

impl From<&Stamp> for StampView {
    fn from(s: &Stamp) -> Self {
        Self {
            hlc: s.hlc,
            client_id: s.client_id.clone(),
        }
    }
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
    /// Index of the append within its mutation (transcript order is `(position, seq)`).
    pub seq: u32,
    /// The client whose mutation appended it.
    pub author_client: String,
    /// The last content write (edits are last-writer-wins by this stamp).
    pub edit: StampView,
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
            seq: m.seq,
            author_client: m.author_client.clone(),
            edit: (&m.edit).into(),
            streaming: m.streaming,
        }
    }
}

impl SnapshotView {
    pub fn new(version: u64, doc: &Doc, server_hlc: Hlc) -> Self {
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
            stamps: doc
                .registers
                .iter()
                .map(|(k, r)| (k.clone(), (&r.stamp).into()))
                .collect(),
            server_hlc,
        }
    }
}
