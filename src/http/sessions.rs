//! `/v1/sessions`: create a session and manage who may see it.

use super::extract::Json;
use crate::sync::sessions::{self, parse_id as parse_session, role_of};
use crate::{
    domain::{MemberRole, UserId},
    error::{AppError, ErrorBody},
    http::authn::AuthUser,
    state::AppState,
    store::Session,
};
use axum::{
    extract::{Path, State},
    http::StatusCode,
    response::IntoResponse,
};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use utoipa_axum::{router::OpenApiRouter, routes};

/// Longest session title.
const MAX_TITLE: usize = 200;

pub fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(create_session, list_sessions))
        .routes(routes!(list_messages))
        .routes(routes!(get_session))
        .routes(routes!(push_mutations))
        .routes(routes!(list_members, share))
        .routes(routes!(revoke))
}

#[derive(Deserialize, ToSchema)]
pub struct NewSession {
    #[serde(default)]
    title: String,
}

/// Start a session; the caller owns it.
#[utoipa::path(post, path = "/v1/sessions", operation_id = "createSession", tag = "sessions", security(("bearer" = [])), request_body = NewSession,
    responses((status = 201, body = Session), (status = 400, body = ErrorBody), (status = 401, body = ErrorBody)))]
async fn create_session(
    State(s): State<AppState>,
    AuthUser(p): AuthUser,
    Json(n): Json<NewSession>,
) -> Result<impl IntoResponse, AppError> {
    if n.title.chars().count() > MAX_TITLE {
        return Err(AppError::validation(
            "title",
            format!("title must be at most {MAX_TITLE} characters"),
        ));
    }
    let session = s.sync.create_session(p.user_id, &n.title).await?;
    Ok((StatusCode::CREATED, axum::Json(session)))
}

#[derive(Serialize, ToSchema)]
pub struct MemberView {
    #[schema(value_type = String, format = Uuid)]
    user_id: UserId,
    role: MemberRole,
}

#[derive(Serialize, ToSchema)]
pub struct MemberList {
    data: Vec<MemberView>,
}

/// Who may see this session.
#[utoipa::path(get, path = "/v1/sessions/{id}/members", operation_id = "listSessionMembers", tag = "sessions", security(("bearer" = [])),
    params(("id" = String, Path, description = "Session id")),
    responses((status = 200, body = MemberList), (status = 404, body = ErrorBody), (status = 401, body = ErrorBody)))]
async fn list_members(
    State(s): State<AppState>,
    AuthUser(p): AuthUser,
    Path(id): Path<String>,
) -> Result<axum::Json<MemberList>, AppError> {
    let session = parse_session(&id)?;
    let data = sessions::members(s.store.as_ref(), p.user_id, session)
        .await?
        .into_iter()
        .map(|(user_id, role)| MemberView { user_id, role })
        .collect();
    Ok(axum::Json(MemberList { data }))
}

#[derive(Deserialize, ToSchema)]
pub struct Share {
    email: String,
    /// `editor` or `viewer`.
    role: MemberRole,
}

/// Share the session with an account by e-mail (owner only). The answer is the same whether or
/// not the address has an account (nothing happens for one that has none); the member list
/// shows who has access.
#[utoipa::path(post, path = "/v1/sessions/{id}/members", operation_id = "shareSession", tag = "sessions", security(("bearer" = [])),
    params(("id" = String, Path, description = "Session id")), request_body = Share,
    responses((status = 204, description = "Shared"), (status = 400, body = ErrorBody), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody)))]
async fn share(
    State(s): State<AppState>,
    AuthUser(p): AuthUser,
    Path(id): Path<String>,
    Json(b): Json<Share>,
) -> Result<StatusCode, AppError> {
    let session = parse_session(&id)?;
    let (store, bus) = (s.store.as_ref(), s.bus.as_ref());
    sessions::share(store, bus, p.user_id, session, &b.email, b.role).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Remove a member (owner only).
#[utoipa::path(delete, path = "/v1/sessions/{id}/members/{user_id}", operation_id = "removeSessionMember", tag = "sessions", security(("bearer" = [])),
    params(("id" = String, Path, description = "Session id"), ("user_id" = String, Path, description = "Member to remove")),
    responses((status = 204, description = "Removed"), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody)))]
async fn revoke(
    State(s): State<AppState>,
    AuthUser(p): AuthUser,
    Path((id, user_id)): Path<(String, String)>,
) -> Result<StatusCode, AppError> {
    let session = parse_session(&id)?;
    sessions::revoke(
        s.store.as_ref(),
        s.bus.as_ref(),
        p.user_id,
        session,
        &user_id,
    )
    .await?;
    Ok(StatusCode::NO_CONTENT)
}

/// The session's synced state: fields, context, tags and transcript, at its current version.
#[utoipa::path(get, path = "/v1/sessions/{id}", operation_id = "getSession", tag = "sessions", security(("bearer" = [])),
    params(("id" = String, Path, description = "Session id")),
    responses((status = 200, body = crate::sync::view::SnapshotView), (status = 404, body = ErrorBody), (status = 401, body = ErrorBody)))]
async fn get_session(
    State(s): State<AppState>,
    AuthUser(p): AuthUser,
    Path(id): Path<String>,
) -> Result<axum::Json<crate::sync::view::SnapshotView>, AppError> {
    let session = parse_session(&id)?;
    role_of(s.store.as_ref(), session, p.user_id).await?;
    let snap = s.sync.snapshot(session).await?;
    Ok(axum::Json(crate::sync::view::SnapshotView::new(
        snap.version,
        &snap.doc,
        s.sync.server_hlc(),
    )))
}

#[derive(Deserialize, ToSchema)]
pub struct PushBody {
    /// Mutations as on the socket's `session.push` (see protocol/README.md).
    #[schema(value_type = Vec<Object>)]
    mutations: Vec<crate::sync::ops::Incoming>,
}

/// Push mutations through the same write path as the socket's `session.push`.
#[utoipa::path(post, path = "/v1/sessions/{id}/mutations", operation_id = "pushSessionMutations", tag = "sessions", security(("bearer" = [])),
    params(("id" = String, Path, description = "Session id")), request_body = PushBody,
    responses((status = 200, body = crate::sync::service::PushReply), (status = 400, body = ErrorBody),
              (status = 403, description = "Viewer", body = ErrorBody), (status = 404, body = ErrorBody)))]
async fn push_mutations(
    State(s): State<AppState>,
    AuthUser(p): AuthUser,
    Path(id): Path<String>,
    Json(b): Json<PushBody, true>,
) -> Result<axum::Json<crate::sync::service::PushReply>, AppError> {
    let session = parse_session(&id)?;
    Ok(axum::Json(
        s.sync.push(p.user_id, session, &b.mutations).await?,
    ))
}

#[derive(Deserialize, utoipa::IntoParams)]
pub struct SessionPage {
    /// The previous page's `next_cursor`.
    after: Option<String>,
    /// 1 to 100. Default 50.
    limit: Option<u32>,
}

#[derive(Serialize, ToSchema)]
pub struct SessionItem {
    #[serde(flatten)]
    session: Session,
    role: MemberRole,
}

#[derive(Serialize, ToSchema)]
pub struct SessionList {
    data: Vec<SessionItem>,
    next_cursor: Option<String>,
}

/// The caller's sessions (owned and shared), oldest first.
#[utoipa::path(get, path = "/v1/sessions", operation_id = "listSessions", tag = "sessions", security(("bearer" = [])), params(SessionPage),
    responses((status = 200, body = SessionList), (status = 400, body = ErrorBody), (status = 401, body = ErrorBody)))]
async fn list_sessions(
    State(s): State<AppState>,
    AuthUser(p): AuthUser,
    axum::extract::Query(q): axum::extract::Query<SessionPage>,
) -> Result<axum::Json<SessionList>, AppError> {
    let (rows, next_cursor) =
        sessions::list(s.store.as_ref(), p.user_id, q.after.as_deref(), q.limit).await?;
    Ok(axum::Json(SessionList {
        data: rows
            .into_iter()
            .map(|(session, role)| SessionItem { session, role })
            .collect(),
        next_cursor,
    }))
}

#[derive(Deserialize, utoipa::IntoParams)]
pub struct MessagePage {
    /// The previous page's `next_cursor`.
    after: Option<String>,
    /// 1 to 100. Default 50.
    limit: Option<u32>,
    /// Only messages of this role: user, assistant, system or tool.
    role: Option<String>,
}

#[derive(Serialize, ToSchema)]
pub struct MessageList {
    data: Vec<crate::sync::view::MessageView>,
    next_cursor: Option<String>,
}

/// The transcript in order (deleted messages left out).
#[utoipa::path(get, path = "/v1/sessions/{id}/messages", operation_id = "listSessionMessages", tag = "sessions", security(("bearer" = [])),
    params(("id" = String, Path, description = "Session id"), MessagePage),
    responses((status = 200, body = MessageList), (status = 400, body = ErrorBody), (status = 404, body = ErrorBody)))]
async fn list_messages(
    State(s): State<AppState>,
    AuthUser(p): AuthUser,
    Path(id): Path<String>,
    axum::extract::Query(q): axum::extract::Query<MessagePage>,
) -> Result<axum::Json<MessageList>, AppError> {
    let session = parse_session(&id)?;
    let (msgs, next_cursor) = sessions::messages(
        s.store.as_ref(),
        p.user_id,
        session,
        q.after.as_deref(),
        q.role.as_deref(),
        q.limit,
    )
    .await?;
    Ok(axum::Json(MessageList {
        data: msgs.iter().map(Into::into).collect(),
        next_cursor,
    }))
}
