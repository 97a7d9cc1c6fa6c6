//! Model providers (the chat issue builds on this). For now: the streaming wire format they all
//! share, server-sent events, parsed incrementally.

pub mod sse;
