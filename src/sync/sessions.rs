//! Sessions as their members manage them: list, members, share, revoke, and transcript pages.
//! Shared by REST and the socket (like `projects`): each call checks the caller's role,
//! changes the store and tells whoever must know (a removed member's sockets are evicted on
//! every instance; the lists of those who gained or lost a session change), so the edges only
//! parse and answer. Creating a session is the sync service's (its title is version 1).

use super::service::{channel_of, notify_list_changed};
use crate::{
    bus::Bus,
    domain::{Email, MemberRole, SessionId, UserId},
    error::{after_cursor, next_cursor, page_limit, AppError},
    protocol::ListChange,
    store::{Session, Store},
    sync::{merge::Message, ops::MessageRole},
};

/// A page of rows and the cursor of the next one (`None` on the last page).
pub type Page<T> = (Vec<T>, Option<String>);

fn bad_cursor() -> AppError {
    AppError::validation("after", "after must be a cursor from a previous page")
}

pub fn parse_id(id: &str) -> Result<SessionId, AppError> {
    id.parse()
        .map_err(|_| AppError::validation("id", "id must be a UUID"))
}

/// The caller's role, or 404 when they are not a member (existence is not revealed).
pub async fn role_of(
    store: &dyn Store,
    session: SessionId,
    user: UserId,
) -> Result<MemberRole, AppError> {
    store
        .member_role(session, user)
        .await?
        .ok_or_else(|| AppError::NotFound("no such session".into()))
}

async fn owner_only(
    store: &dyn Store,
    session: SessionId,
    user: UserId,
    what: &str,
) -> Result<(), AppError> {
    if role_of(store, session, user).await? != MemberRole::Owner {
        return Err(AppError::Forbidden(format!("only the owner can {what}")));
    }
    Ok(())
}

/// `user`'s sessions (owned and shared) with their role in each, oldest first.
pub async fn list(
    store: &dyn Store,
    user: UserId,
    after: Option<&str>,
    limit: Option<u32>,
) -> Result<Page<(Session, MemberRole)>, AppError> {
    let limit = page_limit(limit)?;
    let after = after_cursor::<SessionId>(after)?;
    let rows = store.list_sessions(user, after, limit).await?;
    let next = next_cursor(&rows, limit, |(s, _)| s.id.to_string());
    Ok((rows, next))
}

/// Who may see the session; for members only.
pub async fn members(
    store: &dyn Store,
    user: UserId,
    session: SessionId,
) -> Result<Vec<(UserId, MemberRole)>, AppError> {
    role_of(store, session, user).await?;
    Ok(store.members(session).await?)
}

/// Shares the session with the account of `email` (owner only). The same answer whether or
/// not the address has an account, so sharing cannot be used to find out who has one; an
/// address without an account is not remembered (accounts are not verified, so an invitation
/// would go to whoever registered the address first).
pub async fn share(
    store: &dyn Store,
    bus: &dyn Bus,
    owner: UserId,
    session: SessionId,
    email: &str,
    role: MemberRole,
) -> Result<(), AppError> {
    owner_only(store, session, owner, "share this session").await?;
    if role == MemberRole::Owner {
        return Err(AppError::validation(
            "role",
            "role must be editor or viewer",
        ));
    }
    let email = Email::parse(email).map_err(|e| AppError::validation("email", e.to_string()))?;
    match store.user_by_email(&email).await? {
        Some(user) if user.id == owner => Err(AppError::validation(
            "email",
            "you already own this session",
        )),
        Some(user) => {
            store.set_member(session, user.id, role).await?;
            notify_list_changed(bus, user.id, session, ListChange::Shared).await;
            Ok(())
        }
        None => {
            tracing::debug!("shared with an address that has no account; nothing to do");
            Ok(())
        }
    }
}

/// Removes a member (owner only); their live subscriptions end now, on every instance.
pub async fn revoke(
    store: &dyn Store,
    bus: &dyn Bus,
    owner: UserId,
    session: SessionId,
    user: &str,
) -> Result<(), AppError> {
    owner_only(store, session, owner, "remove members").await?;
    let user: UserId = user
        .parse()
        .map_err(|_| AppError::validation("user_id", "user_id must be a UUID"))?;
    if !store.remove_member(session, user).await? {
        return Err(AppError::NotFound("no such member".into()));
    }
    bus.evict(&channel_of(session), &user.to_string()).await;
    notify_list_changed(bus, user, session, ListChange::Revoked).await;
    Ok(())
}

/// The transcript in order (deleted messages left out), optionally of one role.
pub async fn messages(
    store: &dyn Store,
    user: UserId,
    session: SessionId,
    after: Option<&str>,
    role: Option<&str>,
    limit: Option<u32>,
) -> Result<Page<Message>, AppError> {
    role_of(store, session, user).await?;
    let limit = page_limit(limit)?;
    let after = after
        .map(|a| {
            let (p, s) = a.split_once('.').ok_or_else(bad_cursor)?;
            Ok::<_, AppError>((
                p.parse().map_err(|_| bad_cursor())?,
                s.parse().map_err(|_| bad_cursor())?,
            ))
        })
        .transpose()?;
    let role = role
        .map(|r| {
            MessageRole::parse(r).ok_or_else(|| {
                AppError::validation("role", "role must be user, assistant, system or tool")
            })
        })
        .transpose()?;
    let msgs = store.list_messages(session, after, role, limit).await?;
    let next = next_cursor(&msgs, limit, |m| format!("{}.{}", m.position, m.seq));
    Ok((msgs, next))
}
