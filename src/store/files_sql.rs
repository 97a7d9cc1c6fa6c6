//! File and blob SQL shared by both backends (see `sql.rs` for why a macro).

use super::FileRecord;
use crate::domain::{SessionId, UserId};
use chrono::{DateTime, Utc};
use uuid::Uuid;

#[derive(sqlx::FromRow)]
pub(super) struct FileRow {
    id: Uuid,
    session_id: Uuid,
    uploader_id: Uuid,
    filename: String,
    content_type: String,
    size: i64,
    sha256: String,
    created_at: DateTime<Utc>,
}

impl From<FileRow> for FileRecord {
    fn from(r: FileRow) -> Self {
        FileRecord {
            id: r.id,
            session_id: SessionId(r.session_id),
            uploader_id: UserId(r.uploader_id),
            filename: r.filename,
            content_type: r.content_type,
            size: r.size as u64,
            sha256: r.sha256,
            created_at: r.created_at,
        }
    }
}

pub(super) const FILE_COLUMNS: &str =
    "id, session_id, uploader_id, filename, content_type, size, sha256, created_at";

macro_rules! impl_file_store {
    ($store:ty, $db:ty) => {
        /// The counts the quota is judged on, in the caller's transaction or connection.
        async fn file_usage(
            c: &mut <$db as sqlx::Database>::Connection,
            session: SessionId,
            user: UserId,
        ) -> StoreResult<$crate::store::FileUsage> {
            let (count, bytes): (i64, i64) = sqlx::query_as(
                "SELECT COUNT(*), CAST(COALESCE(SUM(size), 0) AS BIGINT) FROM session_files \
                 WHERE session_id = $1",
            )
            .bind(session.0)
            .fetch_one(&mut *c)
            .await?;
            let (mine,): (i64,) = sqlx::query_as(
                "SELECT CAST(COALESCE(SUM(size), 0) AS BIGINT) FROM session_files \
                 WHERE uploader_id = $1",
            )
            .bind(user.0)
            .fetch_one(&mut *c)
            .await?;
            Ok($crate::store::FileUsage {
                session_files: count as u64,
                session_bytes: bytes as u64,
                user_bytes: mine as u64,
            })
        }

        #[async_trait::async_trait]
        impl $crate::store::FileStore for $store {
            async fn put_blob(
                &self,
                sha256: &str,
                size: u64,
                chunks: &mut (dyn $crate::store::BlobChunks + Send),
            ) -> StoreResult<bool> {
                // A concurrent collection may delete the row between the insert that found it
                // and the touch: then it is inserted again.
                for _ in 0..3 {
                    let mut tx = self.pool.begin().await?;
                    let now = Utc::now();
                    let inserted = sqlx::query(
                        "INSERT INTO blobs (sha256, size, touched_at) VALUES ($1, $2, $3) \
                         ON CONFLICT (sha256) DO NOTHING",
                    )
                    .bind(sha256)
                    .bind(size as i64)
                    .bind(now)
                    .execute(&mut *tx)
                    .await?
                    .rows_affected()
                        == 1;
                    if inserted {
                        let mut idx: i32 = 0;
                        while let Some(data) = chunks
                            .next_chunk()
                            .await
                            .map_err(|e| StoreError::Unavailable(e.into()))?
                        {
                            sqlx::query(
                                "INSERT INTO blob_chunks (sha256, idx, data) VALUES ($1, $2, $3)",
                            )
                            .bind(sha256)
                            .bind(idx)
                            .bind(data)
                            .execute(&mut *tx)
                            .await?;
                            idx += 1;
                        }
                        tx.commit().await?;
                        return Ok(true);
                    }
                    let touched = sqlx::query("UPDATE blobs SET touched_at = $2 WHERE sha256 = $1")
                        .bind(sha256)
                        .bind(now)
                        .execute(&mut *tx)
                        .await?
                        .rows_affected()
                        == 1;
                    tx.commit().await?;
                    if touched {
                        return Ok(false);
                    }
                }
                Err(StoreError::Conflict("blob kept vanishing while being stored".into()))
            }

            async fn blob_chunk(&self, sha256: &str, idx: u32) -> StoreResult<Option<Vec<u8>>> {
                Ok(
                    sqlx::query_scalar("SELECT data FROM blob_chunks WHERE sha256 = $1 AND idx = $2")
                        .bind(sha256)
                        .bind(idx as i32)
                        .fetch_optional(&self.pool)
                        .await?,
                )
            }

            async fn add_file(
                &self,
                f: &FileRecord,
                quota: &$crate::store::FileQuota,
            ) -> StoreResult<Result<(), $crate::store::AddRefused>> {
                use $crate::store::AddRefused;
                let mut tx = self.pool.begin().await?;
                // Session first, then uploader: every upload locks in this order.
                let live = sqlx::query(
                    "UPDATE sessions SET version = version WHERE id = $1 AND deleted_at IS NULL",
                )
                .bind(f.session_id.0)
                .execute(&mut *tx)
                .await?
                .rows_affected()
                    == 1;
                if !live {
                    return Ok(Err(AddRefused::NoSession));
                }
                sqlx::query("UPDATE users SET updated_at = updated_at WHERE id = $1")
                    .bind(f.uploader_id.0)
                    .execute(&mut *tx)
                    .await?;
                let usage = file_usage(&mut *tx, f.session_id, f.uploader_id).await?;
                let refused = usage.refuses(f.size, quota);
                if let Some(r) = refused {
                    return Ok(Err(r));
                }
                sqlx::query(
                    "INSERT INTO session_files (id, session_id, uploader_id, filename, \
                       content_type, size, sha256, created_at) \
                     VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
                )
                .bind(f.id)
                .bind(f.session_id.0)
                .bind(f.uploader_id.0)
                .bind(&f.filename)
                .bind(&f.content_type)
                .bind(f.size as i64)
                .bind(&f.sha256)
                .bind(f.created_at)
                .execute(&mut *tx)
                .await?;
                tx.commit().await?;
                Ok(Ok(()))
            }

            async fn file_usage(
                &self,
                session: SessionId,
                user: UserId,
            ) -> StoreResult<$crate::store::FileUsage> {
                let mut c = self.pool.acquire().await?;
                file_usage(&mut *c, session, user).await
            }

            async fn list_files(
                &self,
                session: SessionId,
                after: Option<Uuid>,
                limit: u32,
            ) -> StoreResult<Vec<FileRecord>> {
                let rows: Vec<FileRow> = sqlx::query_as(&format!(
                    "SELECT {FILE_COLUMNS} FROM session_files \
                     WHERE session_id = $1 AND ($2 IS NULL OR id > $2) ORDER BY id LIMIT $3"
                ))
                .bind(session.0)
                .bind(after)
                .bind(limit as i64)
                .fetch_all(&self.pool)
                .await?;
                Ok(rows.into_iter().map(Into::into).collect())
            }

            async fn file(&self, session: SessionId, id: Uuid) -> StoreResult<Option<FileRecord>> {
                let row: Option<FileRow> = sqlx::query_as(&format!(
                    "SELECT {FILE_COLUMNS} FROM session_files WHERE session_id = $1 AND id = $2"
                ))
                .bind(session.0)
                .bind(id)
                .fetch_optional(&self.pool)
                .await?;
                Ok(row.map(Into::into))
            }

            async fn files_by_id(
                &self,
                session: SessionId,
                ids: &[Uuid],
            ) -> StoreResult<Vec<FileRecord>> {
                if ids.is_empty() {
                    return Ok(Vec::new());
                }
                let marks: Vec<String> = (0..ids.len()).map(|i| format!("${}", i + 2)).collect();
                let sql = format!(
                    "SELECT {FILE_COLUMNS} FROM session_files WHERE session_id = $1 AND id IN ({})",
                    marks.join(", ")
                );
                let mut q = sqlx::query_as::<_, FileRow>(&sql).bind(session.0);
                for id in ids {
                    q = q.bind(*id);
                }
                Ok(q.fetch_all(&self.pool).await?.into_iter().map(Into::into).collect())
            }

            async fn delete_file(
                &self,
                session: SessionId,
                id: Uuid,
            ) -> StoreResult<Option<FileRecord>> {
                let row: Option<FileRow> = sqlx::query_as(&format!(
                    "DELETE FROM session_files WHERE session_id = $1 AND id = $2 \
                     RETURNING {FILE_COLUMNS}"
                ))
                .bind(session.0)
                .bind(id)
                .fetch_optional(&self.pool)
                .await?;
                Ok(row.map(Into::into))
            }

            async fn purge_deleted_session_files(&self) -> StoreResult<u64> {
                Ok(sqlx::query(
                    "DELETE FROM session_files WHERE session_id IN \
                       (SELECT id FROM sessions WHERE deleted_at IS NOT NULL)",
                )
                .execute(&self.pool)
                .await?
                .rows_affected())
            }

            async fn orphan_blobs(
                &self,
                before: DateTime<Utc>,
                limit: u32,
            ) -> StoreResult<Vec<String>> {
                Ok(sqlx::query_scalar(
                    "SELECT sha256 FROM blobs b WHERE touched_at < $1 AND NOT EXISTS \
                       (SELECT 1 FROM session_files f WHERE f.sha256 = b.sha256) LIMIT $2",
                )
                .bind(before)
                .bind(limit as i64)
                .fetch_all(&self.pool)
                .await?)
            }

            async fn delete_blob(&self, sha256: &str, before: DateTime<Utc>) -> StoreResult<bool> {
                Ok(sqlx::query(
                    "DELETE FROM blobs WHERE sha256 = $1 AND touched_at < $2 AND NOT EXISTS \
                       (SELECT 1 FROM session_files f WHERE f.sha256 = blobs.sha256)",
                )
                .bind(sha256)
                .bind(before)
                .execute(&self.pool)
                .await?
                .rows_affected()
                    == 1)
            }
        }
    };
}
pub(super) use impl_file_store;
