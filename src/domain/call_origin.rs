//! Where a tool call came from.

use serde::{Deserialize, Serialize};
use uuid::Uuid;

/// The turn a tool call belongs to, so a question its server asks the user can be shown on
/// that turn (`tool.waiting`), wherever the call runs.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct CallOrigin {
    /// The session's channel (`session:<id>`).
    pub channel: String,
    pub turn_id: Uuid,
    pub message_id: String,
    pub call_id: String,
}
