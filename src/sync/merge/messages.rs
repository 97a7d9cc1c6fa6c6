//! Messages: appended at the version that accepted them, edited last writer wins, deleted for
//! good, streamed by the server; within the session's caps on message count and content bytes.

use super::{json_len, refuse, Doc, Message, NewMessage, Step, Undo};
use crate::sync::ops::{Refusal, RefusalCode};

impl Doc {
    /// Adds a message at the step's version (then `seq` within the mutation); an id is used
    /// once.
    pub(super) fn append(
        &mut self,
        new: NewMessage<'_>,
        seq: usize,
        step: &mut Step<'_>,
    ) -> Result<(), Refusal> {
        if self.messages.contains_key(new.id) {
            return Err(refuse(
                RefusalCode::Conflict,
                format!("message id {:?} is already used in this session", new.id),
            ));
        }
        let limits = step.limits;
        if self.counts.messages >= limits.messages {
            return Err(refuse(
                RefusalCode::LimitExceeded,
                format!("this session holds at most {} messages", limits.messages),
            ));
        }
        // Metadata counts with the content: both are stored and sent in every snapshot.
        let content_bytes =
            self.counts.content_bytes + new.content.len() as u64 + json_len(new.metadata);
        if content_bytes > limits.content_bytes {
            return Err(self.over_content(step));
        }
        self.counts.messages += 1;
        self.counts.content_bytes = content_bytes;
        step.undo.push(Undo::Message(new.id.to_owned(), None));
        self.messages.insert(
            new.id.to_owned(),
            Message {
                id: new.id.to_owned(),
                role: new.role,
                content: new.content.to_owned(),
                metadata: new.metadata.clone(),
                position: step.version,
                seq: seq as u32,
                author_client: step.stamp.client_id.clone(),
                edit: step.stamp.clone(),
                deleted: false,
                streaming: new.streaming,
            },
        );
        step.touched.messages.insert(new.id.to_owned());
        Ok(())
    }

    pub(super) fn edit(
        &mut self,
        id: &str,
        content: &str,
        step: &mut Step<'_>,
    ) -> Result<(), Refusal> {
        let msg = self.known(id)?;
        if msg.streaming {
            return Err(refuse(
                RefusalCode::Conflict,
                format!("message {id:?} is still streaming; it cannot be edited yet"),
            ));
        }
        // A delete is final: a concurrent edit loses silently, as does an older edit.
        if msg.deleted || step.stamp <= msg.edit {
            return Ok(());
        }
        let after = self.content_after(&msg.content, content);
        if content.len() > msg.content.len() && after > step.limits.content_bytes {
            return Err(self.over_content(step));
        }
        let stamp = step.stamp.clone();
        self.change(id, step, |msg| {
            msg.content = content.to_owned();
            msg.edit = stamp;
        });
        self.counts.content_bytes = after;
        Ok(())
    }

    /// Final, and the content goes: the transcript never shows it again.
    pub(super) fn delete(&mut self, id: &str, step: &mut Step<'_>) -> Result<(), Refusal> {
        let msg = self.known(id)?;
        if msg.streaming {
            return Err(refuse(
                RefusalCode::Conflict,
                format!("message {id:?} is still streaming; it cannot be deleted yet"),
            ));
        }
        if msg.deleted {
            return Ok(());
        }
        self.counts.content_bytes = self
            .content_after(&msg.content, "")
            .saturating_sub(json_len(&msg.metadata));
        self.change(id, step, |msg| {
            msg.deleted = true;
            msg.content = String::new();
            msg.metadata = serde_json::Value::Null;
        });
        Ok(())
    }

    /// `stream_update` (no metadata) or `stream_end` (the final metadata): never refused by
    /// the caps, so a running turn can always finish.
    pub(super) fn stream(
        &mut self,
        id: &str,
        content: &str,
        end: Option<&serde_json::Value>,
        step: &mut Step<'_>,
    ) -> Result<(), Refusal> {
        let msg = match self.messages.get(id) {
            Some(m) if m.streaming => m,
            Some(_) => {
                return Err(refuse(
                    RefusalCode::Conflict,
                    format!("message {id:?} is not streaming"),
                ))
            }
            None => return Err(self.unknown(id)),
        };
        let mut after = self.content_after(&msg.content, content);
        if let Some(metadata) = end {
            after = (after + json_len(metadata)).saturating_sub(json_len(&msg.metadata));
        }
        self.counts.content_bytes = after;
        let stamp = step.stamp.clone();
        self.change(id, step, |msg| {
            msg.content = content.to_owned();
            if let Some(metadata) = end {
                msg.metadata = metadata.clone();
                msg.streaming = false;
                msg.edit = stamp;
            }
        });
        Ok(())
    }

    fn content_after(&self, old: &str, new: &str) -> u64 {
        (self.counts.content_bytes + new.len() as u64).saturating_sub(old.len() as u64)
    }

    fn over_content(&self, step: &Step<'_>) -> Refusal {
        refuse(
            RefusalCode::LimitExceeded,
            format!(
                "this session holds at most {} bytes of message content",
                step.limits.content_bytes
            ),
        )
    }

    fn unknown(&self, id: &str) -> Refusal {
        refuse(
            RefusalCode::Conflict,
            format!("no message {id:?} in this session"),
        )
    }

    fn known(&self, id: &str) -> Result<&Message, Refusal> {
        self.messages.get(id).ok_or_else(|| self.unknown(id))
    }

    fn change(&mut self, id: &str, step: &mut Step<'_>, f: impl FnOnce(&mut Message)) {
        if let Some(msg) = self.messages.get_mut(id) {
            step.undo
                .push(Undo::Message(id.to_owned(), Some(msg.clone())));
            f(msg);
            step.touched.messages.insert(id.to_owned());
        }
    }
}
