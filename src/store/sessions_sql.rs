//! Session and membership SQL shared by both backends (see `sql.rs` for why a macro).

use super::Session;
use crate::domain::{SessionId, UserId};
use chrono::{DateTime, Utc};
use uuid::Uuid;

#[derive(sqlx::FromRow)]
pub(super) struct SessionRow {
    id: Uuid,
    owner_id: Uuid,
    title: String,
    version: i64,
    created_at: DateTime<Utc>,
    updated_at: DateTime<Utc>,
}

impl From<SessionRow> for Session {
    fn from(r: SessionRow) -> Self {
        Session {
            id: SessionId(r.id),
            owner_id: UserId(r.owner_id),
            title: r.title,
            version: r.version as u64,
            created_at: r.created_at,
            updated_at: r.updated_at,
        }
    }
}

macro_rules! impl_session_store {
    ($store:ty, $db:ty) => {
        #[async_trait::async_trait]
        impl $crate::store::SessionStore for $store {
            async fn create_session(&self, owner: UserId, title: &str) -> StoreResult<Session> {
                self.create_session_with_id(SessionId::new(), owner, title)
                    .await?
                    .ok_or_else(|| StoreError::Conflict("session id collision".into()))
            }

            async fn create_session_with_id(
                &self,
                id: SessionId,
                owner: UserId,
                title: &str,
            ) -> StoreResult<Option<Session>> {
                let now = Utc::now();
                let mut tx = self.pool.begin().await?;
                let row: Option<SessionRow> = sqlx::query_as(
                    "INSERT INTO sessions (id, owner_id, title, created_at, updated_at) \
                     VALUES ($1, $2, $3, $4, $4) ON CONFLICT (id) DO NOTHING \
                     RETURNING id, owner_id, title, version, created_at, updated_at",
                )
                .bind(id.0)
                .bind(owner.0)
                .bind(title)
                .bind(now)
                .fetch_optional(&mut *tx)
                .await?;
                let Some(row) = row else { return Ok(None) };
                sqlx::query(
                    "INSERT INTO session_members (session_id, user_id, role, created_at) \
                     VALUES ($1, $2, 'owner', $3)",
                )
                .bind(id.0)
                .bind(owner.0)
                .bind(now)
                .execute(&mut *tx)
                .await?;
                tx.commit().await?;
                Ok(Some(row.into()))
            }

            async fn session(&self, id: SessionId) -> StoreResult<Option<Session>> {
                let row: Option<SessionRow> = sqlx::query_as(
                    "SELECT id, owner_id, title, version, created_at, updated_at FROM sessions WHERE id = $1 AND deleted_at IS NULL",
                )
                .bind(id.0)
                .fetch_optional(&self.pool)
                .await?;
                Ok(row.map(Into::into))
            }

            async fn member_role(
                &self,
                session: SessionId,
                user: UserId,
            ) -> StoreResult<Option<MemberRole>> {
                let row: Option<(String,)> = sqlx::query_as(
                    "SELECT m.role FROM session_members m JOIN sessions s ON s.id = m.session_id \
                     WHERE m.session_id = $1 AND m.user_id = $2 AND s.deleted_at IS NULL",
                )
                .bind(session.0)
                .bind(user.0)
                .fetch_optional(&self.pool)
                .await?;
                row.map(|(r,)| {
                    MemberRole::parse(&r).ok_or_else(|| StoreError::Corrupt(format!("member role {r:?}")))
                })
                .transpose()
            }

            async fn member_roles(
                &self,
                session: SessionId,
                users: &[UserId],
            ) -> StoreResult<Vec<(UserId, MemberRole)>> {
                let mut roles = Vec::with_capacity(users.len());
                for chunk in users.chunks(ROWS_PER_STATEMENT) {
                    let mut q = sqlx::QueryBuilder::<$db>::new(
                        "SELECT m.user_id, m.role FROM session_members m JOIN sessions s ON s.id = m.session_id \
                         WHERE s.deleted_at IS NULL AND m.session_id = ",
                    );
                    q.push_bind(session.0);
                    q.push(" AND m.user_id IN (");
                    let mut sep = q.separated(", ");
                    for u in chunk {
                        sep.push_bind(u.0);
                    }
                    q.push(")");
                    let rows: Vec<(Uuid, String)> = q.build_query_as().fetch_all(&self.pool).await?;
                    for (u, r) in rows {
                        let role = MemberRole::parse(&r)
                            .ok_or_else(|| StoreError::Corrupt(format!("member role {r:?}")))?;
                        roles.push((UserId(u), role));
                    }
                }
                Ok(roles)
            }

            async fn set_member(
                &self,
                session: SessionId,
                user: UserId,
                role: MemberRole,
            ) -> StoreResult<()> {
                sqlx::query(
                    "INSERT INTO session_members (session_id, user_id, role, created_at) \
                     VALUES ($1, $2, $3, $4) \
                     ON CONFLICT (session_id, user_id) DO UPDATE SET role = excluded.role",
                )
                .bind(session.0)
                .bind(user.0)
                .bind(role.as_str())
                .bind(Utc::now())
                .execute(&self.pool)
                .await?;
                Ok(())
            }

            async fn remove_member(&self, session: SessionId, user: UserId) -> StoreResult<bool> {
                let done = sqlx::query(
                    "DELETE FROM session_members WHERE session_id = $1 AND user_id = $2 AND role <> 'owner'",
                )
                .bind(session.0)
                .bind(user.0)
                .execute(&self.pool)
                .await?;
                Ok(done.rows_affected() == 1)
            }

            async fn list_sessions(
                &self,
                user: UserId,
                after: Option<SessionId>,
                limit: u32,
            ) -> StoreResult<Vec<(Session, MemberRole)>> {
                let rows: Vec<(Uuid, Uuid, String, i64, DateTime<Utc>, DateTime<Utc>, String)> = sqlx::query_as(
                    "SELECT s.id, s.owner_id, s.title, s.version, s.created_at, s.updated_at, m.role \
                     FROM session_members m JOIN sessions s ON s.id = m.session_id \
                     WHERE m.user_id = $1 AND s.deleted_at IS NULL AND ($2 IS NULL OR s.id > $2) ORDER BY s.id LIMIT $3",
                )
                .bind(user.0)
                .bind(after.map(|a| a.0))
                .bind(i64::from(limit))
                .fetch_all(&self.pool)
                .await?;
                rows.into_iter()
                    .map(|(id, owner, title, version, created_at, updated_at, role)| {
                        let role = MemberRole::parse(&role).ok_or_else(|| StoreError::Corrupt(format!("member role {role:?}")))?;
                        Ok((
                            Session { id: SessionId(id), owner_id: UserId(owner), title, version: version as u64, created_at, updated_at },
                            role,
                        ))
                    })
                    .collect()
            }

            async fn members(&self, session: SessionId) -> StoreResult<Vec<(UserId, MemberRole)>> {
                let rows: Vec<(Uuid, String)> = sqlx::query_as(
                    "SELECT user_id, role FROM session_members WHERE session_id = $1 ORDER BY created_at",
                )
                .bind(session.0)
                .fetch_all(&self.pool)
                .await?;
                rows.into_iter()
                    .map(|(u, r)| {
                        MemberRole::parse(&r)
                            .map(|role| (UserId(u), role))
                            .ok_or_else(|| StoreError::Corrupt(format!("member role {r:?}")))
                    })
                    .collect()
            }
        }
    };
}

pub(super) use impl_session_store;
