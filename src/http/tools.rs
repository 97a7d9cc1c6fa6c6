//! `GET /v1/sessions/{id}/tools`: the tool calls turns made in a session.

use crate::{
    error::{AppError, ErrorBody},
    http::authn::AuthUser,
    state::AppState,
    store::ToolRecord,
};
use axum::extract::{Path, State};
use utoipa_axum::{router::OpenApiRouter, routes};

pub fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(list_tools))
}

#[derive(serde::Deserialize, utoipa::IntoParams)]
pub struct ToolPage {
    /// Records after this id (the previous page's `next_cursor`).
    after: Option<String>,
    /// Page size, 1 to 100. Default 50.
    limit: Option<u32>,
}

#[derive(serde::Serialize, utoipa::ToSchema)]
pub struct ToolList {
    data: Vec<ToolRecord>,
    /// Pass as `after` for the next page; absent on the last page.
    next_cursor: Option<String>,
}

/// Every tool call made by the session's turns (MCP and client-side tools), oldest first: name,
/// arguments, result or error, status (`ok`, `error`, `timeout`, `cancelled`) and duration.
/// Any member may read them.
#[utoipa::path(get, path = "/v1/sessions/{id}/tools", operation_id = "listSessionTools", tag = "sessions", security(("bearer" = [])),
    params(("id" = String, Path, description = "Session id"), ToolPage),
    responses((status = 200, body = ToolList), (status = 400, body = ErrorBody), (status = 404, body = ErrorBody)))]
async fn list_tools(
    State(s): State<AppState>,
    AuthUser(p): AuthUser,
    Path(id): Path<String>,
    axum::extract::Query(q): axum::extract::Query<ToolPage>,
) -> Result<axum::Json<ToolList>, AppError> {
    let session = id
        .parse()
        .map_err(|_| AppError::validation("session_id", "session_id must be a UUID"))?;
    let (data, next_cursor) = s.chat.tool_records(&p, session, q.after, q.limit).await?;
    Ok(axum::Json(ToolList { data, next_cursor }))
}
