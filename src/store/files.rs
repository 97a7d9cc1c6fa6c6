//! Files attached to sessions (their rows) and the blobs they point to (content addressed).

use super::StoreResult;
use crate::domain::{SessionId, UserId};
use async_trait::async_trait;
use chrono::{DateTime, Utc};
use serde::Serialize;
use uuid::Uuid;

/// A file as members see it. `sha256` (hex) names its blob: the same bytes attached twice are
/// stored once.
#[derive(Debug, Clone, PartialEq, Serialize, utoipa::ToSchema)]
pub struct FileRecord {
    pub id: Uuid,
    #[schema(value_type = String, format = Uuid)]
    pub session_id: SessionId,
    #[schema(value_type = String, format = Uuid)]
    pub uploader_id: UserId,
    pub filename: String,
    /// The type the server found in the bytes, not the one the client declared.
    pub content_type: String,
    pub size: u64,
    pub sha256: String,
    pub created_at: DateTime<Utc>,
}

/// What one session and one uploader may hold (`files.max_*`).
#[derive(Debug, Clone, Copy)]
pub struct FileQuota {
    pub session_bytes: u64,
    pub user_bytes: u64,
    pub session_files: u64,
}

/// Why a file was not added.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AddRefused {
    /// The session was deleted meanwhile.
    NoSession,
    SessionBytes,
    UserBytes,
    SessionFiles,
}

/// What a session and an uploader hold now.
#[derive(Debug, Clone, Copy, Default)]
pub struct FileUsage {
    pub session_files: u64,
    pub session_bytes: u64,
    pub user_bytes: u64,
}

impl FileUsage {
    /// Why a file of `size` more would not fit, if it would not.
    pub fn refuses(&self, size: u64, quota: &FileQuota) -> Option<AddRefused> {
        if self.session_files >= quota.session_files {
            Some(AddRefused::SessionFiles)
        } else if self.session_bytes + size > quota.session_bytes {
            Some(AddRefused::SessionBytes)
        } else if self.user_bytes + size > quota.user_bytes {
            Some(AddRefused::UserBytes)
        } else {
            None
        }
    }
}

#[async_trait]
pub trait FileStore: Send + Sync + 'static {
    /// Records the blob `sha256` (or marks an existing one as just used, so it is not collected
    /// before a file refers to it). True when it was new: its bytes must then be stored.
    /// `chunks` are written in the same transaction when given (the database backend).
    async fn put_blob(
        &self,
        sha256: &str,
        size: u64,
        chunks: &mut (dyn BlobChunks + Send),
    ) -> StoreResult<bool>;
    /// Bytes `idx` of a blob stored in the database.
    async fn blob_chunk(&self, sha256: &str, idx: u32) -> StoreResult<Option<Vec<u8>>>;
    /// Adds the file if the session is live and the quota allows it, checked under the
    /// session's and the uploader's row locks so two uploads at once cannot both squeeze in.
    async fn add_file(
        &self,
        f: &FileRecord,
        quota: &FileQuota,
    ) -> StoreResult<Result<(), AddRefused>>;
    /// What the session and the uploader hold (read without locks: a pre-check).
    async fn file_usage(&self, session: SessionId, user: UserId) -> StoreResult<FileUsage>;
    /// Oldest first after `after`.
    async fn list_files(
        &self,
        session: SessionId,
        after: Option<Uuid>,
        limit: u32,
    ) -> StoreResult<Vec<FileRecord>>;
    async fn file(&self, session: SessionId, id: Uuid) -> StoreResult<Option<FileRecord>>;
    /// The session's files among `ids` (a turn's attachments).
    async fn files_by_id(&self, session: SessionId, ids: &[Uuid]) -> StoreResult<Vec<FileRecord>>;
    async fn delete_file(&self, session: SessionId, id: Uuid) -> StoreResult<Option<FileRecord>>;
    /// Drops the file rows of deleted sessions; how many.
    async fn purge_deleted_session_files(&self) -> StoreResult<u64>;
    /// Blobs no file refers to, untouched since `before`.
    async fn orphan_blobs(&self, before: DateTime<Utc>, limit: u32) -> StoreResult<Vec<String>>;
    /// Deletes the blob row (and chunks) if it is still an orphan untouched since `before`.
    async fn delete_blob(&self, sha256: &str, before: DateTime<Utc>) -> StoreResult<bool>;
}

/// A blob's bytes, chunk by chunk, for the database backend (`None` for the others).
#[async_trait]
pub trait BlobChunks {
    /// The next chunk, `None` at the end or when the bytes live elsewhere.
    async fn next_chunk(&mut self) -> std::io::Result<Option<Vec<u8>>>;
}

/// No chunks: the bytes are kept outside the database.
pub struct Elsewhere;

#[async_trait]
impl BlobChunks for Elsewhere {
    async fn next_chunk(&mut self) -> std::io::Result<Option<Vec<u8>>> {
        Ok(None)
    }
}
