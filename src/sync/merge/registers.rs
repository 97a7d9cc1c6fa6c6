//! Registers (fields, context keys, tags): last writer wins by stamp, within the session's
//! caps on context keys, context bytes and tags.

use super::{json_len, refuse, Doc, Register, Step, Undo};
use crate::sync::ops::{Refusal, RefusalCode};

impl Doc {
    /// Writes `value` (`None`: a tombstone) at `key` if the step's stamp beats the register's.
    pub(super) fn write(
        &mut self,
        key: String,
        value: Option<serde_json::Value>,
        step: &mut Step<'_>,
    ) -> Result<(), Refusal> {
        let old = self.registers.get(&key);
        if old.is_some_and(|r| step.stamp <= r.stamp) {
            return Ok(());
        }
        let is_new = old.is_none();
        let limits = step.limits;
        if key.starts_with("c:") {
            let old_len = old.and_then(|r| r.value.as_ref()).map_or(0, json_len);
            let new_len = value.as_ref().map_or(0, json_len);
            let bytes = (self.counts.context_bytes + new_len).saturating_sub(old_len);
            if is_new && self.counts.context_keys >= limits.context_keys {
                return Err(refuse(
                    RefusalCode::LimitExceeded,
                    format!(
                        "this session holds at most {} context keys (a deleted key keeps its tombstone and counts)",
                        limits.context_keys
                    ),
                ));
            }
            if new_len > old_len && bytes > limits.context_bytes {
                return Err(refuse(
                    RefusalCode::LimitExceeded,
                    format!(
                        "this session holds at most {} bytes of context values",
                        limits.context_bytes
                    ),
                ));
            }
            self.counts.context_keys += u64::from(is_new);
            self.counts.context_bytes = bytes;
        } else if key.starts_with("t:") {
            if is_new && self.counts.tags >= limits.tags {
                return Err(refuse(
                    RefusalCode::LimitExceeded,
                    format!(
                        "this session holds at most {} tags (a removed tag keeps its tombstone and counts)",
                        limits.tags
                    ),
                ));
            }
            self.counts.tags += u64::from(is_new);
        }
        let previous = self.registers.insert(
            key.clone(),
            Register {
                value,
                stamp: step.stamp.clone(),
            },
        );
        step.undo.push(Undo::Register(key.clone(), previous));
        step.touched.registers.insert(key);
        Ok(())
    }
}
