//! A user's own profile: read, edited, and the account deleted.

use super::AuthService;
use crate::{
    domain::{Email, Principal, Role, UserId},
    error::AppError,
    protocol::calls::present,
    store::{ProfileChange, User},
};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

#[derive(Debug, Serialize, ToSchema)]
pub struct Profile {
    #[schema(value_type = String, format = Uuid)]
    pub id: UserId,
    pub email: String,
    pub role: Role,
    pub display_name: Option<String>,
    pub username: Option<String>,
    #[schema(value_type = Object)]
    pub preferences: serde_json::Value,
    pub created_at: DateTime<Utc>,
}

impl From<User> for Profile {
    fn from(u: User) -> Self {
        Profile {
            id: u.id,
            email: u.email,
            role: u.role,
            display_name: u.display_name,
            username: u.username,
            preferences: u.preferences,
            created_at: u.created_at,
        }
    }
}

/// `PATCH /v1/user/profile`: only the fields given change; `null` is refused, not read as
/// "clear". Changing `email` needs `password`.
#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ProfileEdit {
    /// 1 to 100 characters, no control characters.
    #[serde(default, deserialize_with = "present")]
    pub display_name: Option<String>,
    /// 3 to 32 of `a-z 0-9 _ . -`, starting with a letter or digit; unique (case-insensitive:
    /// stored in lower case).
    #[serde(default, deserialize_with = "present")]
    pub username: Option<String>,
    /// A JSON object of at most `auth.max_preferences_bytes`; replaces the stored one whole.
    #[serde(default, deserialize_with = "present")]
    #[schema(value_type = Option<Object>)]
    pub preferences: Option<serde_json::Value>,
    #[serde(default, deserialize_with = "present")]
    pub email: Option<String>,
    /// The current password: required with `email`.
    #[serde(default, deserialize_with = "present")]
    pub password: Option<String>,
}

fn check_display_name(n: &str) -> Result<String, AppError> {
    let n = n.trim();
    let len = n.chars().count();
    let hidden = |c: char| c.is_control() || crate::domain::is_format(c);
    if len == 0 || len > 100 || n.chars().any(hidden) {
        return Err(AppError::validation(
            "display_name",
            "display_name must be 1 to 100 characters with no control or invisible characters",
        ));
    }
    Ok(n.to_owned())
}

fn check_username(u: &str) -> Result<String, AppError> {
    let u = u.to_ascii_lowercase();
    let ok = (3..=32).contains(&u.len())
        && u.starts_with(|c: char| c.is_ascii_alphanumeric())
        && u.chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || "_.-".contains(c));
    if !ok {
        return Err(AppError::validation(
            "username",
            "username must be 3 to 32 of a-z, 0-9, '_', '.', '-', starting with a letter or digit",
        ));
    }
    Ok(u)
}

impl AuthService {
    pub async fn profile(&self, user: UserId) -> Result<Profile, AppError> {
        let u = self
            .store
            .user_by_id(user)
            .await?
            .ok_or_else(|| AppError::InvalidToken("account no longer exists".into()))?;
        Ok(u.into())
    }

    pub async fn edit_profile(
        &self,
        p: &Principal,
        edit: ProfileEdit,
        ip: Option<&str>,
    ) -> Result<Profile, AppError> {
        let mut change = ProfileChange {
            display_name: edit
                .display_name
                .as_deref()
                .map(check_display_name)
                .transpose()?,
            username: edit.username.as_deref().map(check_username).transpose()?,
            ..ProfileChange::default()
        };
        if let Some(prefs) = edit.preferences {
            let max = self.config.max_preferences_bytes;
            if !prefs.is_object() || prefs.to_string().len() > max {
                return Err(AppError::validation(
                    "preferences",
                    format!("preferences must be a JSON object of at most {max} bytes"),
                ));
            }
            change.preferences = Some(prefs);
        }
        if let Some(email) = edit.email.as_deref() {
            let email =
                Email::parse(email).map_err(|e| AppError::validation("email", e.to_string()))?;
            let Some(password) = edit.password.as_deref() else {
                return Err(AppError::validation(
                    "password",
                    "changing the email needs the current password",
                ));
            };
            let user = self.signed_in_user(p).await?;
            self.confirm_password(&user, password, "password", ip)
                .await?;
            change.email = Some(email);
        }
        let user = self
            .store
            .update_profile(p.user_id, &change)
            .await?
            .ok_or_else(|| AppError::InvalidToken("account no longer exists".into()))?;
        if change.email.is_some() {
            self.audit(Some(user.id), "email_changed", ip, serde_json::json!({}))
                .await;
        }
        Ok(user.into())
    }

    /// Deletes the caller's account after checking the password: sessions they own (with
    /// their messages, tool calls and members), their memberships elsewhere, projects, API
    /// keys, MCP servers, sign-ins and sync state go (the schema cascades from `users`); usage
    /// is folded into per-day totals with no user; audit entries stay, their user cleared.
    /// Collaborators of the deleted sessions are told (`session.revoked`) on every instance,
    /// and the account's sockets close everywhere.
    pub async fn delete_account(
        &self,
        p: &Principal,
        password: &str,
        ip: Option<&str>,
    ) -> Result<(), AppError> {
        let user = self.signed_in_user(p).await?;
        self.confirm_password(&user, password, "password", ip)
            .await?;
        let owned = self.owned_sessions(user.id).await?;
        self.audit(
            Some(user.id),
            "account_deleted",
            ip,
            serde_json::json!({"email_domain": user.email.split('@').nth(1), "sessions": owned.len()}),
        )
        .await;
        if !self.store.delete_user(user.id).await? {
            return Err(AppError::InvalidToken("account no longer exists".into()));
        }
        self.refuse(user.id, Vec::new(), Some(true)).await;
        for (session, members) in owned {
            let channel = crate::protocol::Channel::Session(session).to_string();
            for m in members {
                self.bus.evict(&channel, &m.to_string()).await;
            }
        }
        Ok(())
    }

    /// The sessions `user` owns, each with its members, read before they are deleted.
    async fn owned_sessions(
        &self,
        user: UserId,
    ) -> Result<Vec<(crate::domain::SessionId, Vec<UserId>)>, AppError> {
        let mut out = Vec::new();
        let mut after = None;
        loop {
            let page = self.store.list_sessions(user, after, 100).await?;
            let full = page.len() == 100;
            for (s, role) in &page {
                if *role == crate::domain::MemberRole::Owner {
                    let members = self.store.members(s.id).await?;
                    out.push((s.id, members.into_iter().map(|(u, _)| u).collect()));
                }
            }
            match page.last() {
                Some((s, _)) if full => after = Some(s.id),
                _ => break,
            }
        }
        Ok(out)
    }
}
