//! The merge rules, pure: a session document and how one mutation changes it.
//!
//! * Fields, context keys and tags are last-writer-wins registers ordered by
//!   `(hlc, client_id)`. A delete is a tombstone with its stamp, so a stale write cannot
//!   resurrect it. The same set of mutations gives the same registers in any arrival order.
//! * Messages take their position from the session version at which the server accepted the
//!   append (then their index within the mutation), so a client's own messages keep their
//!   order. Edits are last-writer-wins; a delete is final and beats any edit; an assistant
//!   message still streaming belongs to the server and refuses client edits.
//!
//! The store loads the part of the document a batch touches, applies it here, and writes back
//! what changed: these rules live in one place.

use super::{
    hlc::Hlc,
    ops::{Field, MessageRole, Mutation, Op},
};
use serde::Serialize;
use std::collections::{BTreeMap, BTreeSet};

/// Who wrote a register and when; the larger stamp wins.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Serialize)]
pub struct Stamp {
    pub hlc: Hlc,
    pub client_id: String,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Register {
    /// `None` is a tombstone.
    pub value: Option<serde_json::Value>,
    pub stamp: Stamp,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Message {
    pub id: String,
    pub role: MessageRole,
    pub content: String,
    pub metadata: serde_json::Value,
    /// Session version at which the append was accepted.
    pub position: u64,
    /// Index of the append within its mutation.
    pub seq: u32,
    pub author_client: String,
    pub edit: Stamp,
    pub deleted: bool,
    pub streaming: bool,
}

/// Register keys: `f:<field>`, `c:<context key>`, `t:<tag>`.
pub fn field_key(f: Field) -> String {
    format!("f:{}", f.as_str())
}
pub fn context_key(k: &str) -> String {
    format!("c:{k}")
}
pub fn tag_key(t: &str) -> String {
    format!("t:{t}")
}

/// The parts of an appended message that come from its op.
struct NewMessage<'a> {
    id: &'a str,
    role: MessageRole,
    content: &'a str,
    metadata: &'a serde_json::Value,
    streaming: bool,
}

/// A session document, or the part of one a batch touches.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Doc {
    pub registers: BTreeMap<String, Register>,
    pub messages: BTreeMap<String, Message>,
}

/// What one mutation changed, so the store writes only that.
#[derive(Debug, Default, Clone, PartialEq)]
pub struct Touched {
    pub registers: BTreeSet<String>,
    pub messages: BTreeSet<String>,
    pub session_deleted: bool,
}

impl Doc {
    /// Register keys and message ids `m` reads or writes (what the store must load first).
    pub fn keys_of(m: &Mutation) -> (BTreeSet<String>, BTreeSet<String>) {
        let (mut regs, mut msgs) = (BTreeSet::new(), BTreeSet::new());
        for op in &m.ops {
            match op {
                Op::SetField { field, .. } => {
                    regs.insert(field_key(*field));
                }
                Op::SetContext { key, .. } | Op::DeleteContext { key } => {
                    regs.insert(context_key(key));
                }
                Op::AddTag { tag } | Op::RemoveTag { tag } => {
                    regs.insert(tag_key(tag));
                }
                Op::AppendMessage { message_id, .. }
                | Op::EditMessage { message_id, .. }
                | Op::DeleteMessage { message_id }
                | Op::StreamStart { message_id, .. }
                | Op::StreamUpdate { message_id, .. }
                | Op::StreamEnd { message_id, .. } => {
                    msgs.insert(message_id.clone());
                }
                Op::CreateSession | Op::DeleteSession => {}
            }
        }
        (regs, msgs)
    }

    /// Applies `m`, accepted at `version`. All or nothing: a refusal leaves the doc unchanged.
    pub fn apply(&mut self, m: &Mutation, version: u64) -> Result<Touched, String> {
        let mut next = self.clone();
        let mut touched = Touched::default();
        let stamp = Stamp {
            hlc: m.hlc,
            client_id: m.client_id.clone(),
        };
        for (i, op) in m.ops.iter().enumerate() {
            match op {
                Op::SetField { field, value } => {
                    next.write(field_key(*field), Some(value.clone()), &stamp, &mut touched)
                }
                Op::SetContext { key, value } => {
                    next.write(context_key(key), Some(value.clone()), &stamp, &mut touched)
                }
                Op::DeleteContext { key } => {
                    next.write(context_key(key), None, &stamp, &mut touched)
                }
                Op::AddTag { tag } => next.write(
                    tag_key(tag),
                    Some(serde_json::Value::Bool(true)),
                    &stamp,
                    &mut touched,
                ),
                Op::RemoveTag { tag } => next.write(tag_key(tag), None, &stamp, &mut touched),
                Op::AppendMessage {
                    message_id,
                    role,
                    content,
                    metadata,
                } => {
                    let new = NewMessage {
                        id: message_id,
                        role: *role,
                        content,
                        metadata,
                        streaming: false,
                    };
                    next.append(new, m, i, version, &stamp, &mut touched)?;
                }
                Op::EditMessage {
                    message_id,
                    content,
                } => {
                    let msg = next
                        .messages
                        .get_mut(message_id)
                        .ok_or_else(|| format!("no message {message_id:?} in this session"))?;
                    if msg.streaming {
                        return Err(format!(
                            "message {message_id:?} is still streaming; it cannot be edited yet"
                        ));
                    }
                    // A delete is final: a concurrent edit loses silently.
                    if !msg.deleted && stamp > msg.edit {
                        msg.content = content.clone();
                        msg.edit = stamp.clone();
                        touched.messages.insert(message_id.clone());
                    }
                }
                Op::CreateSession => {}
                Op::DeleteSession => touched.session_deleted = true,
                Op::StreamStart {
                    message_id,
                    metadata,
                } => {
                    let new = NewMessage {
                        id: message_id,
                        role: MessageRole::Assistant,
                        content: "",
                        metadata,
                        streaming: true,
                    };
                    next.append(new, m, i, version, &stamp, &mut touched)?;
                }
                Op::StreamUpdate {
                    message_id,
                    content,
                } => {
                    let msg = next.streaming_mut(message_id)?;
                    msg.content.clone_from(content);
                    touched.messages.insert(message_id.clone());
                }
                Op::StreamEnd {
                    message_id,
                    content,
                    metadata,
                } => {
                    let msg = next.streaming_mut(message_id)?;
                    msg.content.clone_from(content);
                    msg.metadata = metadata.clone();
                    msg.streaming = false;
                    msg.edit = stamp.clone();
                    touched.messages.insert(message_id.clone());
                }
                Op::DeleteMessage { message_id } => {
                    let msg = next
                        .messages
                        .get_mut(message_id)
                        .ok_or_else(|| format!("no message {message_id:?} in this session"))?;
                    if msg.streaming {
                        return Err(format!(
                            "message {message_id:?} is still streaming; it cannot be deleted yet"
                        ));
                    }
                    if !msg.deleted {
                        msg.deleted = true;
                        touched.messages.insert(message_id.clone());
                    }
                }
            }
        }
        *self = next;
        Ok(touched)
    }

    /// Adds a message at `version` (then `seq` within the mutation); an id is used once.
    fn append(
        &mut self,
        new: NewMessage<'_>,
        m: &Mutation,
        seq: usize,
        version: u64,
        stamp: &Stamp,
        touched: &mut Touched,
    ) -> Result<(), String> {
        if self.messages.contains_key(new.id) {
            return Err(format!(
                "message id {:?} is already used in this session",
                new.id
            ));
        }
        self.messages.insert(
            new.id.to_owned(),
            Message {
                id: new.id.to_owned(),
                role: new.role,
                content: new.content.to_owned(),
                metadata: new.metadata.clone(),
                position: version,
                seq: seq as u32,
                author_client: m.client_id.clone(),
                edit: stamp.clone(),
                deleted: false,
                streaming: new.streaming,
            },
        );
        touched.messages.insert(new.id.to_owned());
        Ok(())
    }

    fn streaming_mut(&mut self, id: &str) -> Result<&mut Message, String> {
        match self.messages.get_mut(id) {
            Some(m) if m.streaming => Ok(m),
            Some(_) => Err(format!("message {id:?} is not streaming")),
            None => Err(format!("no message {id:?} in this session")),
        }
    }

    fn write(
        &mut self,
        key: String,
        value: Option<serde_json::Value>,
        stamp: &Stamp,
        touched: &mut Touched,
    ) {
        let wins = self.registers.get(&key).is_none_or(|r| *stamp > r.stamp);
        if wins {
            self.registers.insert(
                key.clone(),
                Register {
                    value,
                    stamp: stamp.clone(),
                },
            );
            touched.registers.insert(key);
        }
    }

    /// Live registers (tombstones dropped), for comparison and snapshots.
    pub fn live_registers(&self) -> BTreeMap<&str, &serde_json::Value> {
        self.registers
            .iter()
            .filter_map(|(k, r)| r.value.as_ref().map(|v| (k.as_str(), v)))
            .collect()
    }

    /// The transcript in order, deleted messages left out.
    pub fn transcript(&self) -> Vec<&Message> {
        let mut v: Vec<&Message> = self.messages.values().filter(|m| !m.deleted).collect();
        v.sort_by_key(|m| (m.position, m.seq));
        v
    }
}

#[cfg(test)]
mod tests;
