//! Chat: completions (REST and socket turns share them), per-key quota, usage records, and
//! assistant turns streamed into sessions.

pub mod completion;
pub mod quota;
pub mod usage;

use completion::Completions;
use std::sync::Arc;

/// Built once in `app.rs`.
pub struct ChatService {
    pub completions: Arc<Completions>,
}
