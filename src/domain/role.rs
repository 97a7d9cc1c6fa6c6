//! Account roles, one per account. `user` sees only their own; `analyst` also reads usage
//! analytics, `developer` the instance's debug state; `admin` does everything (each of the
//! others included). What a member may do in one session is `MemberRole`, not this.

use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    User,
    Analyst,
    Developer,
    Admin,
}

impl Role {
    pub fn as_str(self) -> &'static str {
        match self {
            Role::User => "user",
            Role::Analyst => "analyst",
            Role::Developer => "developer",
            Role::Admin => "admin",
        }
    }

    pub fn is_admin(self) -> bool {
        self == Role::Admin
    }

    /// `GET /v1/analytics`.
    pub fn reads_analytics(self) -> bool {
        matches!(self, Role::Analyst | Role::Admin)
    }

    /// `GET /v1/debug`.
    pub fn reads_debug(self) -> bool {
        matches!(self, Role::Developer | Role::Admin)
    }

    /// What the legacy `role` column holds (see migration 0011).
    pub fn legacy(self) -> &'static str {
        if self.is_admin() {
            "admin"
        } else {
            "user"
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "user" => Some(Role::User),
            "analyst" => Some(Role::Analyst),
            "developer" => Some(Role::Developer),
            "admin" => Some(Role::Admin),
            _ => None,
        }
    }
}

/// A user's standing in one session: owners share and revoke, editors push, viewers watch.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum MemberRole {
    Owner,
    Editor,
    Viewer,
}

impl MemberRole {
    pub fn as_str(self) -> &'static str {
        match self {
            MemberRole::Owner => "owner",
            MemberRole::Editor => "editor",
            MemberRole::Viewer => "viewer",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "owner" => Some(MemberRole::Owner),
            "editor" => Some(MemberRole::Editor),
            "viewer" => Some(MemberRole::Viewer),
            _ => None,
        }
    }

    pub fn can_write(self) -> bool {
        !matches!(self, MemberRole::Viewer)
    }
}
