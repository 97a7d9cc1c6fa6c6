//! Channel names, typed. Parsing is where aliases die: `session:<UUID in any spelling uuid
//! accepts>` becomes the one canonical `session:<lowercase hyphenated uuid>`, so a membership
//! check and the hub always talk about the same channel.

use crate::domain::{SessionId, UserId};
use std::{fmt, str::FromStr};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Channel {
    /// `user:<id>`: per-user pushes (MCP status, the session list).
    User(UserId),
    /// `session:<id>`: sync, chat, tools, presence and ephemeral events of one session.
    Session(SessionId),
}

impl fmt::Display for Channel {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Channel::User(u) => write!(f, "user:{u}"),
            Channel::Session(s) => write!(f, "session:{s}"),
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("channels are user:<uuid> or session:<uuid>")]
pub struct BadChannel;

impl FromStr for Channel {
    type Err = BadChannel;
    fn from_str(s: &str) -> Result<Self, BadChannel> {
        let (kind, id) = s.split_once(':').ok_or(BadChannel)?;
        let id = uuid::Uuid::parse_str(id).map_err(|_| BadChannel)?;
        match kind {
            "user" => Ok(Channel::User(UserId(id))),
            "session" => Ok(Channel::Session(SessionId(id))),
            _ => Err(BadChannel),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn aliases_parse_to_one_canonical_name() {
        let canonical = "session:67e55044-10b1-426f-9247-bb680e5fe0c8";
        for alias in [
            canonical,
            "session:67E55044-10B1-426F-9247-BB680E5FE0C8",
            "session:{67e55044-10b1-426f-9247-bb680e5fe0c8}",
            "session:67e5504410b1426f9247bb680e5fe0c8",
            "session:urn:uuid:67e55044-10b1-426f-9247-bb680e5fe0c8",
        ] {
            assert_eq!(alias.parse::<Channel>().unwrap().to_string(), canonical);
        }
        assert!("session:nope".parse::<Channel>().is_err());
        assert!("room:67e55044-10b1-426f-9247-bb680e5fe0c8"
            .parse::<Channel>()
            .is_err());
    }
}
