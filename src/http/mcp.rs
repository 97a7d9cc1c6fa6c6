//! `/v1/mcp/servers`: a user's MCP server configurations.

use super::extract::Json;
use crate::{
    error::{AppError, ErrorBody},
    http::authn::AuthUser,
    mcp::servers::{self, McpServerInput, McpServerView},
    state::AppState,
};
use axum::{
    extract::{Path, State},
    http::StatusCode,
    response::IntoResponse,
};
use serde::Serialize;
use utoipa::ToSchema;
use utoipa_axum::{router::OpenApiRouter, routes};

pub fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(list, create))
        .routes(routes!(update, delete))
}

#[derive(Serialize, ToSchema)]
pub struct McpServerList {
    data: Vec<McpServerView>,
}

/// The caller's MCP servers (header values are never returned).
#[utoipa::path(get, path = "/v1/mcp/servers", operation_id = "listMcpServers", tag = "mcp", security(("bearer" = [])),
    responses((status = 200, body = McpServerList), (status = 401, body = ErrorBody)))]
async fn list(
    State(s): State<AppState>,
    AuthUser(p): AuthUser,
) -> Result<axum::Json<McpServerList>, AppError> {
    Ok(axum::Json(McpServerList {
        data: s.mcp.list_servers(p.user_id).await?,
    }))
}

/// Add an MCP server: `{"name","transport":"http","url","headers"?}` or
/// `{"name","transport":"stdio","command":<allowlisted name>}`.
#[utoipa::path(post, path = "/v1/mcp/servers", operation_id = "createMcpServer", tag = "mcp", security(("bearer" = [])), request_body = McpServerInput,
    responses((status = 201, body = McpServerView), (status = 400, body = ErrorBody), (status = 401, body = ErrorBody),
        (status = 409, body = ErrorBody)))]
async fn create(
    State(s): State<AppState>,
    AuthUser(p): AuthUser,
    Json(b): Json<McpServerInput>,
) -> Result<impl IntoResponse, AppError> {
    let v = s.mcp.create_server(p.user_id, b).await?;
    Ok((StatusCode::CREATED, axum::Json(v)))
}

/// Change an MCP server (only the fields given).
#[utoipa::path(patch, path = "/v1/mcp/servers/{id}", operation_id = "updateMcpServer", tag = "mcp", security(("bearer" = [])), request_body = McpServerInput,
    params(("id" = String, Path, description = "MCP server id")),
    responses((status = 200, body = McpServerView), (status = 400, body = ErrorBody), (status = 401, body = ErrorBody),
        (status = 404, body = ErrorBody), (status = 409, body = ErrorBody)))]
async fn update(
    State(s): State<AppState>,
    AuthUser(p): AuthUser,
    Path(id): Path<String>,
    Json(b): Json<McpServerInput>,
) -> Result<axum::Json<McpServerView>, AppError> {
    let v = s
        .mcp
        .update_server(p.user_id, servers::parse_id(&id)?, b)
        .await?;
    Ok(axum::Json(v))
}

/// Remove an MCP server.
#[utoipa::path(delete, path = "/v1/mcp/servers/{id}", operation_id = "deleteMcpServer", tag = "mcp", security(("bearer" = [])),
    params(("id" = String, Path, description = "MCP server id")),
    responses((status = 204), (status = 401, body = ErrorBody), (status = 404, body = ErrorBody)))]
async fn delete(
    State(s): State<AppState>,
    AuthUser(p): AuthUser,
    Path(id): Path<String>,
) -> Result<StatusCode, AppError> {
    s.mcp
        .delete_server(p.user_id, servers::parse_id(&id)?)
        .await?;
    Ok(StatusCode::NO_CONTENT)
}
