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
    ops::{Field, MessageRole, Mutation, Op, Refusal, RefusalCode},
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

/// How big a session is, kept on its row so that no push counts its whole session.
/// Context keys and tags count their tombstones (a deleted key keeps its stamp so a stale
/// write cannot bring it back, and that stamp is stored).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Counts {
    pub context_keys: u64,
    /// Bytes of JSON of the live context values.
    pub context_bytes: u64,
    pub tags: u64,
    /// Message rows, deleted ones included.
    pub messages: u64,
    /// Bytes of content of the messages (a deleted message's content is dropped).
    pub content_bytes: u64,
}

/// The caps a client's mutation may not cross (`sync.max_*` in Config). Server writes of a
/// turn's growing answer (`stream_update`, `stream_end`) are never refused by them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    pub context_keys: u64,
    pub context_bytes: u64,
    pub tags: u64,
    pub messages: u64,
    pub content_bytes: u64,
}

impl Limits {
    pub const NONE: Limits = Limits {
        context_keys: u64::MAX,
        context_bytes: u64::MAX,
        tags: u64::MAX,
        messages: u64::MAX,
        content_bytes: u64::MAX,
    };
}

/// A session document, or the part of one a batch touches (every key and message the batch
/// names is loaded, so "absent here" means "absent in the session").
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Doc {
    pub registers: BTreeMap<String, Register>,
    pub messages: BTreeMap<String, Message>,
    pub counts: Counts,
}

/// What one mutation changed, so the store writes only that.
#[derive(Debug, Default, Clone, PartialEq)]
pub struct Touched {
    pub registers: BTreeSet<String>,
    pub messages: BTreeSet<String>,
    pub session_deleted: bool,
}

impl Touched {
    pub fn extend(&mut self, other: Touched) {
        self.registers.extend(other.registers);
        self.messages.extend(other.messages);
        self.session_deleted |= other.session_deleted;
    }
}

/// The state a key or message had before a mutation changed it, so a refusal half-way
/// through puts back exactly what it touched (no copy of the document per mutation).
enum Undo {
    Register(String, Option<Register>),
    Message(String, Option<Message>),
}

/// One mutation being applied: who writes, within which caps, and how to take it back.
struct Step<'a> {
    stamp: Stamp,
    limits: &'a Limits,
    version: u64,
    undo: Vec<Undo>,
    touched: Touched,
}

/// Bytes of a value as it is stored (JSON text).
fn json_len(v: &serde_json::Value) -> u64 {
    serde_json::to_string(v).map_or(0, |s| s.len() as u64)
}

fn refuse(code: RefusalCode, message: String) -> Refusal {
    Refusal::new(code, message)
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

    /// Applies `m`, accepted at `version`, within `limits`. All or nothing: a refusal leaves
    /// the doc unchanged. Costs what `m` touches, whatever the session's size.
    pub fn apply(
        &mut self,
        m: &Mutation,
        version: u64,
        limits: &Limits,
    ) -> Result<Touched, Refusal> {
        let counts = self.counts;
        let mut step = Step {
            stamp: Stamp {
                hlc: m.hlc,
                client_id: m.client_id.clone(),
            },
            limits,
            version,
            undo: Vec::new(),
            touched: Touched::default(),
        };
        let result = m
            .ops
            .iter()
            .enumerate()
            .try_for_each(|(seq, op)| self.apply_op(op, seq, &mut step));
        match result {
            Ok(()) => Ok(step.touched),
            Err(e) => {
                self.roll_back(step.undo);
                self.counts = counts;
                Err(e)
            }
        }
    }

    fn roll_back(&mut self, undo: Vec<Undo>) {
        for u in undo.into_iter().rev() {
            match u {
                Undo::Register(k, Some(r)) => {
                    self.registers.insert(k, r);
                }
                Undo::Register(k, None) => {
                    self.registers.remove(&k);
                }
                Undo::Message(id, Some(msg)) => {
                    self.messages.insert(id, msg);
                }
                Undo::Message(id, None) => {
                    self.messages.remove(&id);
                }
            }
        }
    }

    fn apply_op(&mut self, op: &Op, seq: usize, step: &mut Step<'_>) -> Result<(), Refusal> {
        use serde_json::Value;
        match op {
            Op::SetField { field, value } => {
                self.write(field_key(*field), Some(value.clone()), step)
            }
            Op::SetContext { key, value } => {
                self.write(context_key(key), Some(value.clone()), step)
            }
            Op::DeleteContext { key } => self.write(context_key(key), None, step),
            Op::AddTag { tag } => self.write(tag_key(tag), Some(Value::Bool(true)), step),
            Op::RemoveTag { tag } => self.write(tag_key(tag), None, step),
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
                self.append(new, seq, step)
            }
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
                self.append(new, seq, step)
            }
            Op::EditMessage {
                message_id,
                content,
            } => self.edit(message_id, content, step),
            Op::DeleteMessage { message_id } => self.delete(message_id, step),
            Op::StreamUpdate {
                message_id,
                content,
            } => self.stream(message_id, content, None, step),
            Op::StreamEnd {
                message_id,
                content,
                metadata,
            } => self.stream(message_id, content, Some(metadata), step),
            Op::CreateSession => Ok(()),
            Op::DeleteSession => {
                step.touched.session_deleted = true;
                Ok(())
            }
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

mod messages;
mod registers;
#[cfg(test)]
mod tests;
#[cfg(test)]
mod vectors;
