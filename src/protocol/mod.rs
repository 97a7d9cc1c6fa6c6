//! The wire protocol, typed: client frames in, server frames out, close codes, and the codec
//! that turns text into frames within the size limit. Imports nothing of ours except `domain`;
//! arbitrary client payloads stay `RawValue` so they pass through without being re-parsed.
//! protocol/README.md is the human version; protocol/schema/ has a JSON Schema per frame.

pub mod calls;
pub mod channel;
pub mod close;
pub mod error_code;
pub mod events;
pub mod frames;
pub mod json_guard;
pub mod server_frames;

pub use calls::Call;
pub use channel::Channel;
pub use close::CloseCode;
pub use error_code::ErrorCode;
pub use events::{event_frame, raw, ListChange, ServerEvent};
pub use frames::*;
pub use server_frames::*;
