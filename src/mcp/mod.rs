//! MCP (Model Context Protocol) servers a user configures. This part holds their configuration:
//! validation (an allowlisted stdio name, or an HTTP URL that is not internal), storage, and
//! the views clients see (header values are secrets and never shown back).

pub mod calls;
pub mod client;
pub mod elicit;
mod handler;
mod lease;
pub mod manager;
pub mod reason;
pub mod seal;
pub mod servers;
pub mod ssrf;
pub mod status;
mod supervisor;
