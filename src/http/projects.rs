//! `/v1/projects`: a user's projects.

use super::extract::Json;
use crate::{
    error::{AppError, ErrorBody},
    http::authn::AuthUser,
    state::AppState,
    store::{Project, ProjectFields, ProjectPatch},
    sync::projects,
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
        .routes(routes!(read, update, delete))
}

#[derive(Serialize, ToSchema)]
pub struct ProjectList {
    data: Vec<Project>,
}

/// The caller's projects.
#[utoipa::path(get, path = "/v1/projects", operation_id = "listProjects", tag = "projects", security(("bearer" = [])),
    responses((status = 200, body = ProjectList), (status = 401, body = ErrorBody)))]
async fn list(
    State(s): State<AppState>,
    AuthUser(p): AuthUser,
) -> Result<axum::Json<ProjectList>, AppError> {
    Ok(axum::Json(ProjectList {
        data: projects::list(s.store.as_ref(), p.user_id).await?,
    }))
}

/// Create a project.
#[utoipa::path(post, path = "/v1/projects", operation_id = "createProject", tag = "projects", security(("bearer" = [])), request_body = ProjectFields,
    responses((status = 201, body = Project), (status = 400, body = ErrorBody), (status = 401, body = ErrorBody)))]
async fn create(
    State(s): State<AppState>,
    AuthUser(p): AuthUser,
    Json(b): Json<ProjectFields>,
) -> Result<impl IntoResponse, AppError> {
    let project = projects::create(s.store.as_ref(), s.bus.as_ref(), p.user_id, &b).await?;
    Ok((StatusCode::CREATED, axum::Json(project)))
}

/// One project.
#[utoipa::path(get, path = "/v1/projects/{id}", operation_id = "getProject", tag = "projects", security(("bearer" = [])),
    params(("id" = String, Path, description = "Project id")),
    responses((status = 200, body = Project), (status = 404, body = ErrorBody), (status = 401, body = ErrorBody)))]
async fn read(
    State(s): State<AppState>,
    AuthUser(p): AuthUser,
    Path(id): Path<String>,
) -> Result<axum::Json<Project>, AppError> {
    Ok(axum::Json(
        projects::get(s.store.as_ref(), p.user_id, projects::parse_id(&id)?).await?,
    ))
}

/// Change a project: only the fields given change (`settings`, when given, replaces the object).
#[utoipa::path(patch, path = "/v1/projects/{id}", operation_id = "updateProject", tag = "projects", security(("bearer" = [])),
    params(("id" = String, Path, description = "Project id")), request_body = ProjectPatch,
    responses((status = 200, body = Project), (status = 400, body = ErrorBody), (status = 404, body = ErrorBody)))]
async fn update(
    State(s): State<AppState>,
    AuthUser(p): AuthUser,
    Path(id): Path<String>,
    Json(b): Json<ProjectPatch>,
) -> Result<axum::Json<Project>, AppError> {
    let id = projects::parse_id(&id)?;
    Ok(axum::Json(
        projects::update(s.store.as_ref(), s.bus.as_ref(), p.user_id, id, &b).await?,
    ))
}

/// Delete a project (its sessions keep existing).
#[utoipa::path(delete, path = "/v1/projects/{id}", operation_id = "deleteProject", tag = "projects", security(("bearer" = [])),
    params(("id" = String, Path, description = "Project id")),
    responses((status = 204, description = "Deleted"), (status = 404, body = ErrorBody), (status = 401, body = ErrorBody)))]
async fn delete(
    State(s): State<AppState>,
    AuthUser(p): AuthUser,
    Path(id): Path<String>,
) -> Result<StatusCode, AppError> {
    projects::delete(
        s.store.as_ref(),
        s.bus.as_ref(),
        p.user_id,
        projects::parse_id(&id)?,
    )
    .await?;
    Ok(StatusCode::NO_CONTENT)
}
