//! Project SQL shared by both backends (see `sql.rs` for why a macro).

use super::{Project, StoreError};
use crate::domain::UserId;
use chrono::{DateTime, Utc};
use uuid::Uuid;

#[derive(sqlx::FromRow)]
pub(super) struct ProjectRow {
    id: Uuid,
    owner_id: Uuid,
    name: String,
    description: String,
    settings: String,
    created_at: DateTime<Utc>,
    updated_at: DateTime<Utc>,
}

impl ProjectRow {
    pub fn into_project(self) -> Result<Project, StoreError> {
        Ok(Project {
            id: self.id,
            owner_id: UserId(self.owner_id),
            name: self.name,
            description: self.description,
            settings: serde_json::from_str(&self.settings)
                .map_err(|e| StoreError::Corrupt(e.to_string()))?,
            created_at: self.created_at,
            updated_at: self.updated_at,
        })
    }
}

pub(super) const PROJECT_COLUMNS: &str =
    "id, owner_id, name, description, settings, created_at, updated_at";

macro_rules! impl_project_store {
    ($store:ty) => {
        #[async_trait::async_trait]
        impl $crate::store::ProjectStore for $store {
            async fn create_project(&self, owner: UserId, p: &ProjectFields) -> StoreResult<Project> {
                let now = Utc::now();
                let row: ProjectRow = sqlx::query_as(&format!(
                    "INSERT INTO projects (id, owner_id, name, description, settings, created_at, updated_at) \
                     VALUES ($1, $2, $3, $4, $5, $6, $6) RETURNING {PROJECT_COLUMNS}"
                ))
                .bind(Uuid::now_v7())
                .bind(owner.0)
                .bind(&p.name)
                .bind(&p.description)
                .bind(p.settings.to_string())
                .bind(now)
                .fetch_one(&self.pool)
                .await?;
                row.into_project()
            }

            async fn project(&self, owner: UserId, id: Uuid) -> StoreResult<Option<Project>> {
                let row: Option<ProjectRow> = sqlx::query_as(&format!(
                    "SELECT {PROJECT_COLUMNS} FROM projects WHERE id = $1 AND owner_id = $2"
                ))
                .bind(id)
                .bind(owner.0)
                .fetch_optional(&self.pool)
                .await?;
                row.map(ProjectRow::into_project).transpose()
            }

            async fn list_projects(&self, owner: UserId) -> StoreResult<Vec<Project>> {
                let rows: Vec<ProjectRow> = sqlx::query_as(&format!(
                    "SELECT {PROJECT_COLUMNS} FROM projects WHERE owner_id = $1 ORDER BY id"
                ))
                .bind(owner.0)
                .fetch_all(&self.pool)
                .await?;
                rows.into_iter().map(ProjectRow::into_project).collect()
            }

            async fn update_project(&self, owner: UserId, id: Uuid, p: &ProjectPatch) -> StoreResult<Option<Project>> {
                // One statement, so two devices patching different fields at once both keep theirs.
                let row: Option<ProjectRow> = sqlx::query_as(&format!(
                    "UPDATE projects SET name = COALESCE($3, name), \
                     description = COALESCE($4, description), settings = COALESCE($5, settings), \
                     updated_at = $6 WHERE id = $1 AND owner_id = $2 RETURNING {PROJECT_COLUMNS}"
                ))
                .bind(id)
                .bind(owner.0)
                .bind(p.name.as_deref())
                .bind(p.description.as_deref())
                .bind(p.settings.as_ref().map(|s| s.to_string()))
                .bind(Utc::now())
                .fetch_optional(&self.pool)
                .await?;
                row.map(ProjectRow::into_project).transpose()
            }

            async fn delete_project(&self, owner: UserId, id: Uuid) -> StoreResult<bool> {
                let done = sqlx::query("DELETE FROM projects WHERE id = $1 AND owner_id = $2")
                    .bind(id)
                    .bind(owner.0)
                    .execute(&self.pool)
                    .await?;
                Ok(done.rows_affected() == 1)
            }
        }
    };
}

pub(super) use impl_project_store;
