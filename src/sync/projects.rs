//! Projects: a user's own folders for sessions. Shared by REST and the socket; every change is
//! pushed to the owner's `user:` channel as `project.changed` so other devices update their
//! sidebar.

use crate::{
    bus::Bus,
    domain::UserId,
    error::AppError,
    protocol::event_frame,
    protocol::ServerEvent,
    store::{Project, ProjectFields, ProjectPatch, Store},
};
use uuid::Uuid;

async fn notify(bus: &dyn Bus, owner: UserId, project: Uuid, change: &str) {
    let channel = format!("user:{owner}");
    let event = ServerEvent::ProjectChanged {
        project_id: project,
        change,
    };
    bus.publish(&channel, event_frame(&channel, &event)).await;
}

fn checked(r: Result<(), (&'static str, String)>) -> Result<(), AppError> {
    r.map_err(|(param, msg)| AppError::validation(param, msg))
}

fn not_found() -> AppError {
    AppError::NotFound("no such project".into())
}

pub fn parse_id(id: &str) -> Result<Uuid, AppError> {
    Uuid::parse_str(id).map_err(|_| AppError::validation("id", "id must be a UUID"))
}

pub async fn list(store: &dyn Store, owner: UserId) -> Result<Vec<Project>, AppError> {
    Ok(store.list_projects(owner).await?)
}

pub async fn get(store: &dyn Store, owner: UserId, id: Uuid) -> Result<Project, AppError> {
    store.project(owner, id).await?.ok_or_else(not_found)
}

pub async fn create(
    store: &dyn Store,
    bus: &dyn Bus,
    owner: UserId,
    p: &ProjectFields,
) -> Result<Project, AppError> {
    checked(p.validate())?;
    let project = store.create_project(owner, p).await?;
    notify(bus, owner, project.id, "created").await;
    Ok(project)
}

/// Changes only the fields given; an empty change returns the project as it is.
pub async fn update(
    store: &dyn Store,
    bus: &dyn Bus,
    owner: UserId,
    id: Uuid,
    p: &ProjectPatch,
) -> Result<Project, AppError> {
    checked(p.validate())?;
    if p.is_empty() {
        return get(store, owner, id).await;
    }
    let project = store
        .update_project(owner, id, p)
        .await?
        .ok_or_else(not_found)?;
    notify(bus, owner, id, "updated").await;
    Ok(project)
}

pub async fn delete(
    store: &dyn Store,
    bus: &dyn Bus,
    owner: UserId,
    id: Uuid,
) -> Result<(), AppError> {
    if !store.delete_project(owner, id).await? {
        return Err(not_found());
    }
    notify(bus, owner, id, "deleted").await;
    Ok(())
}
