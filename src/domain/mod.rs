//! Validated value types shared by every layer. Pure: no I/O, nothing of ours imported.

mod addr;
mod call_origin;
mod email;
mod ids;
mod principal;
mod refused;
mod role;

pub use addr::client_bucket;
pub use call_origin::CallOrigin;
pub use email::{is_format, Email, EmailError};
pub use ids::{ApiKeyId, SessionId, UserId};
pub use principal::Principal;
pub use refused::Refused;
pub use role::{MemberRole, Role};
