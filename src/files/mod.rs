//! Files attached to sessions: upload (spooled, hashed, sniffed, then stored once per content),
//! list, download in pieces, delete, and the collection of blobs nothing refers to. Any member
//! reads; editors and the owner upload; the owner or the uploader deletes. Every change is told
//! to the session's channel (`file.added`, `file.removed`).

pub mod kind;
pub mod name;
pub mod range;
pub mod spool;
pub mod storage;

use crate::{
    bus::Bus,
    config::{FileBackend, FilesConfig},
    domain::{MemberRole, SessionId, UserId},
    error::{after_cursor, next_cursor, page_limit, AppError},
    protocol::{event_frame, ServerEvent},
    store::{AddRefused, FileQuota, FileRecord, Store},
    sync::sessions::Page,
};
use bytes::Bytes;
use futures::Stream;
use spool::SpoolError;
use std::{path::PathBuf, sync::Arc, time::Duration};
use storage::{BlobStorage, StorageError};
use tokio::sync::{RwLock, Semaphore};
use uuid::Uuid;

impl From<StorageError> for AppError {
    fn from(e: StorageError) -> Self {
        match e {
            StorageError::Store(e) => e.into(),
            e => AppError::Internal(e.into()),
        }
    }
}

pub struct FileService {
    store: Arc<dyn Store>,
    bus: Arc<dyn Bus>,
    storage: Box<dyn BlobStorage>,
    config: FilesConfig,
    spool_dir: PathBuf,
    uploads: Semaphore,
    /// Uploads running per user, so one user's slow uploads cannot take every slot.
    per_user: dashmap::DashMap<UserId, usize>,
    /// Uploads store under the read side, a collection runs under the write side: a blob a
    /// directory upload just wrote is never removed by a sweep that had judged it orphaned.
    sweep: RwLock<()>,
}

/// An upload as the edge read it.
pub struct Upload<S> {
    pub filename: String,
    pub body: S,
}

/// The right to upload one file now (`FileService::admit`): the caller may write to the
/// session, the declared size fits, and a slot on this instance and one of the caller's are
/// held until it is dropped.
pub struct Admitted<'a> {
    user: UserId,
    session: SessionId,
    _slot: tokio::sync::SemaphorePermit<'a>,
    _mine: UserSlot<'a>,
}

/// One of a user's concurrent uploads (`files.max_concurrent_uploads_per_user`).
struct UserSlot<'a> {
    map: &'a dashmap::DashMap<UserId, usize>,
    user: UserId,
}

impl Drop for UserSlot<'_> {
    fn drop(&mut self) {
        self.map.remove_if_mut(&self.user, |_, n| {
            *n -= 1;
            *n == 0
        });
    }
}

impl FileService {
    pub fn new(
        config: FilesConfig,
        data_dir: &std::path::Path,
        store: Arc<dyn Store>,
        bus: Arc<dyn Bus>,
    ) -> std::io::Result<Self> {
        let root = if config.dir.is_empty() {
            data_dir.join("files")
        } else {
            PathBuf::from(&config.dir)
        };
        let spool_dir = root.join("spool");
        std::fs::create_dir_all(&spool_dir)?;
        // Spool files left by a process that was killed mid-upload.
        for e in std::fs::read_dir(&spool_dir)?.flatten() {
            let _ = std::fs::remove_file(e.path());
        }
        let storage: Box<dyn BlobStorage> = match config.backend {
            FileBackend::Database => Box::new(storage::DatabaseBlobs(store.clone())),
            FileBackend::Directory => Box::new(storage::DirectoryBlobs {
                root: root.join("blobs"),
                store: store.clone(),
            }),
        };
        Ok(Self {
            uploads: Semaphore::new(config.max_concurrent_uploads.max(1)),
            per_user: dashmap::DashMap::new(),
            store,
            bus,
            storage,
            config,
            spool_dir,
            sweep: RwLock::new(()),
        })
    }

    async fn role(&self, session: SessionId, user: UserId) -> Result<MemberRole, AppError> {
        crate::sync::sessions::role_of(self.store.as_ref(), session, user).await
    }

    fn allowed(&self, ext: &str) -> Option<kind::Kind> {
        let listed = self.config.allowed_extensions.iter().any(|e| e == ext);
        listed.then(|| kind::of_extension(ext)).flatten()
    }

    /// What can be refused before any of the body is read: the caller's role, the declared
    /// size, and a free upload slot (on this instance and among the caller's own).
    pub async fn admit(
        &self,
        user: UserId,
        session: SessionId,
        content_length: Option<u64>,
    ) -> Result<Admitted<'_>, AppError> {
        if !self.role(session, user).await?.can_write() {
            return Err(AppError::Forbidden(
                "viewers cannot upload files to this session".into(),
            ));
        }
        let max = self.config.max_file_bytes;
        if content_length.is_some_and(|n| n > max) {
            return Err(AppError::PayloadTooLarge(max as usize));
        }
        let busy = || AppError::Unavailable("too many uploads at once; retry".into());
        let slot = self.uploads.try_acquire().map_err(|_| busy())?;
        let cap = self.config.max_concurrent_uploads_per_user.max(1);
        {
            let mut n = self.per_user.entry(user).or_insert(0);
            if *n >= cap {
                return Err(busy());
            }
            *n += 1;
        }
        Ok(Admitted {
            user,
            session,
            _slot: slot,
            _mine: UserSlot {
                map: &self.per_user,
                user,
            },
        })
    }

    /// Stores an admitted upload: the name and type are checked before the bytes, then the
    /// bytes are spooled and checked, the quota is checked before anything is stored, and the
    /// file row is added under the quota's locks.
    pub async fn upload<S, E>(
        &self,
        admitted: Admitted<'_>,
        up: Upload<S>,
    ) -> Result<FileRecord, AppError>
    where
        S: Stream<Item = Result<Bytes, E>> + Unpin,
        E: std::fmt::Display,
    {
        let (user, session) = (admitted.user, admitted.session);
        let filename =
            name::clean(&up.filename).map_err(|m| AppError::validation("filename", m))?;
        let ext = name::extension(&filename).unwrap_or_default();
        let kind = self.allowed(&ext).ok_or_else(|| {
            AppError::UnsupportedMediaType(format!(
                "files of type .{ext} are not accepted; allowed: {}",
                self.config.allowed_extensions.join(", ")
            ))
        })?;
        let max = self.config.max_file_bytes;
        let idle = Duration::from_secs(self.config.upload_idle_secs.max(1));
        let spooled = spool::spool(&self.spool_dir, up.body, max, idle)
            .await
            .map_err(|e| match e {
                SpoolError::TooLarge(n) => AppError::PayloadTooLarge(n as usize),
                SpoolError::Stalled(secs) => AppError::validation(
                    "body",
                    format!("the upload sent nothing for {secs} s (files.upload_idle_secs)"),
                ),
                SpoolError::Cut(m) => {
                    AppError::validation("body", format!("the upload was cut: {m}"))
                }
                SpoolError::Io(e) => AppError::Internal(e.into()),
            })?;
        let evidence = kind::Evidence {
            head: &spooled.head,
            text: spooled.text,
        };
        kind::check(kind, &ext, &evidence).map_err(AppError::UnsupportedMediaType)?;
        let record = FileRecord {
            id: Uuid::now_v7(),
            session_id: session,
            uploader_id: user,
            filename,
            content_type: kind.content_type.to_owned(),
            size: spooled.size,
            sha256: spooled.sha256.clone(),
            created_at: chrono::Utc::now(),
        };
        let quota = FileQuota {
            session_bytes: self.config.max_session_bytes,
            user_bytes: self.config.max_user_bytes,
            session_files: self.config.max_files_per_session,
        };
        // Checked before storing too, so a caller over quota cannot fill storage with bytes
        // that would only be refused (the insert checks again under its locks).
        let usage = self.store.file_usage(session, user).await?;
        if let Some(r) = usage.refuses(record.size, &quota) {
            return Err(self.refusal(r));
        }
        {
            let _sweep = self.sweep.read().await;
            self.storage
                .put(&record.sha256, record.size, spooled.file)
                .await?;
            if let Err(r) = self.store.add_file(&record, &quota).await? {
                return Err(self.refusal(r));
            }
        }
        let added = crate::protocol::raw(&record);
        self.tell(session, &ServerEvent::FileAdded(&added)).await;
        Ok(record)
    }

    fn refusal(&self, r: AddRefused) -> AppError {
        let c = &self.config;
        AppError::FileLimit(match r {
            AddRefused::NoSession => return AppError::NotFound("no such session".into()),
            AddRefused::SessionFiles => format!(
                "this session already holds {} files (files.max_files_per_session)",
                c.max_files_per_session
            ),
            AddRefused::SessionBytes => format!(
                "this file would take the session past {} bytes of files (files.max_session_bytes)",
                c.max_session_bytes
            ),
            AddRefused::UserBytes => format!(
                "this file would take your uploads past {} bytes (files.max_user_bytes)",
                c.max_user_bytes
            ),
        })
    }

    async fn tell(&self, session: SessionId, event: &ServerEvent<'_>) {
        let channel = crate::sync::service::channel_of(session);
        self.bus
            .publish(&channel, event_frame(&channel, event))
            .await;
    }

    /// The session's files, oldest first; for members.
    pub async fn list(
        &self,
        user: UserId,
        session: SessionId,
        after: Option<&str>,
        limit: Option<u32>,
    ) -> Result<Page<FileRecord>, AppError> {
        self.role(session, user).await?;
        let limit = page_limit(limit)?;
        let after = after_cursor::<Uuid>(after)?;
        let rows = self.store.list_files(session, after, limit).await?;
        let next = next_cursor(&rows, limit, |f| f.id.to_string());
        Ok((rows, next))
    }

    /// One file's record; for members.
    pub async fn get(
        &self,
        user: UserId,
        session: SessionId,
        id: Uuid,
    ) -> Result<FileRecord, AppError> {
        self.role(session, user).await?;
        self.store
            .file(session, id)
            .await?
            .ok_or_else(|| AppError::NotFound("no such file".into()))
    }

    /// Up to `storage::CHUNK` bytes of a file from `offset`.
    pub async fn piece(&self, f: &FileRecord, offset: u64, len: usize) -> Result<Bytes, AppError> {
        Ok(self.storage.read(&f.sha256, offset, len).await?)
    }

    /// The first `max` bytes of a file, whole (a turn's context; `max` is bounded by its
    /// budget).
    pub async fn head(&self, f: &FileRecord, max: u64) -> Result<Vec<u8>, AppError> {
        let end = f.size.min(max);
        let mut out = Vec::with_capacity(end as usize);
        while (out.len() as u64) < end {
            let want = (end - out.len() as u64) as usize;
            out.extend_from_slice(&self.piece(f, out.len() as u64, want).await?);
        }
        Ok(out)
    }

    /// Removes a file: the session's owner or its uploader.
    pub async fn delete(&self, user: UserId, session: SessionId, id: Uuid) -> Result<(), AppError> {
        let role = self.role(session, user).await?;
        let f = self
            .store
            .file(session, id)
            .await?
            .ok_or_else(|| AppError::NotFound("no such file".into()))?;
        if role != MemberRole::Owner && f.uploader_id != user {
            return Err(AppError::Forbidden(
                "only the session's owner or the file's uploader can delete it".into(),
            ));
        }
        if self.store.delete_file(session, id).await?.is_none() {
            return Err(AppError::NotFound("no such file".into()));
        }
        let event = ServerEvent::FileRemoved {
            session_id: session,
            file_id: id,
        };
        self.tell(session, &event).await;
        Ok(())
    }

    /// The files of `session` among `ids` (a turn's attachments), in the order asked.
    pub async fn attached(
        &self,
        session: SessionId,
        ids: &[Uuid],
    ) -> Result<Vec<FileRecord>, AppError> {
        let found = self.store.files_by_id(session, ids).await?;
        Ok(ids
            .iter()
            .filter_map(|id| found.iter().find(|f| f.id == *id).cloned())
            .collect())
    }

    /// Drops the files of deleted sessions, then blobs nothing has referred to for the grace
    /// period; how many blobs went.
    pub async fn collect(&self) -> Result<usize, AppError> {
        self.store.purge_deleted_session_files().await?;
        let grace = chrono::Duration::seconds(self.config.orphan_grace_secs as i64);
        let before = chrono::Utc::now() - grace;
        let _sweep = self.sweep.write().await;
        let mut gone = 0;
        for sha in self.store.orphan_blobs(before, 500).await? {
            if self.store.delete_blob(&sha, before).await? {
                self.storage.remove(&sha).await?;
                gone += 1;
            }
        }
        Ok(gone)
    }

    /// Collects every `files.gc_interval_secs` until `stop`.
    pub async fn run_collector(self: Arc<Self>, stop: tokio_util::sync::CancellationToken) {
        let every = Duration::from_secs(self.config.gc_interval_secs.max(1));
        loop {
            tokio::select! {
                _ = stop.cancelled() => return,
                _ = tokio::time::sleep(every) => {}
            }
            match self.collect().await {
                Ok(0) => {}
                Ok(n) => tracing::info!(blobs = n, "collected orphaned file blobs"),
                Err(e) => tracing::warn!(error = %e, "file collection failed; will retry"),
            }
        }
    }

    pub fn config(&self) -> &FilesConfig {
        &self.config
    }
}
