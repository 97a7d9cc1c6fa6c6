//! Validated value types shared by every layer. Pure: no I/O, nothing of ours imported.

mod email;
mod ids;
mod role;

pub use email::{Email, EmailError};
pub use ids::{ApiKeyId, SessionId, UserId};
pub use role::{MemberRole, Role};
