//! Where file bytes live, behind one trait: the database (the default: every instance sees
//! every file, no shared disk) or a directory (one instance). Both store a blob once per
//! SHA-256 and read it back in pieces, so a download holds one piece in memory at a time.

use crate::store::{BlobChunks, Elsewhere, Store, StoreError};
use async_trait::async_trait;
use bytes::Bytes;
use std::{path::PathBuf, sync::Arc};
use tokio::io::{AsyncReadExt, AsyncSeekExt};

/// Bytes per stored chunk and per piece read.
pub const CHUNK: usize = 256 << 10;

#[derive(Debug, thiserror::Error)]
pub enum StorageError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("file storage failed: {0}")]
    Io(#[from] std::io::Error),
    #[error("the file's bytes are missing from storage")]
    Missing,
}

#[async_trait]
pub trait BlobStorage: Send + Sync + 'static {
    /// Stores the spooled file under `sha256` (a no-op, but for a touch, when it is there).
    async fn put(
        &self,
        sha256: &str,
        size: u64,
        spool: tempfile::NamedTempFile,
    ) -> Result<(), StorageError>;
    /// Up to `CHUNK` bytes from `offset`, at most `len`.
    async fn read(&self, sha256: &str, offset: u64, len: usize) -> Result<Bytes, StorageError>;
    /// After the blob's row is gone: drops its bytes.
    async fn remove(&self, sha256: &str) -> Result<(), StorageError>;
}

/// Reads a spooled file back in `CHUNK`s for the database's insert.
struct FileChunks(tokio::fs::File);

#[async_trait]
impl BlobChunks for FileChunks {
    async fn next_chunk(&mut self) -> std::io::Result<Option<Vec<u8>>> {
        let mut buf = vec![0; CHUNK];
        let mut n = 0;
        while n < CHUNK {
            let r = self.0.read(&mut buf[n..]).await?;
            if r == 0 {
                break;
            }
            n += r;
        }
        buf.truncate(n);
        Ok((n > 0).then_some(buf))
    }
}

pub struct DatabaseBlobs(pub Arc<dyn Store>);

#[async_trait]
impl BlobStorage for DatabaseBlobs {
    async fn put(
        &self,
        sha256: &str,
        size: u64,
        spool: tempfile::NamedTempFile,
    ) -> Result<(), StorageError> {
        let mut chunks = FileChunks(tokio::fs::File::open(spool.path()).await?);
        self.0.put_blob(sha256, size, &mut chunks).await?;
        Ok(())
    }

    async fn read(&self, sha256: &str, offset: u64, len: usize) -> Result<Bytes, StorageError> {
        let idx = (offset / CHUNK as u64) as u32;
        let chunk = self
            .0
            .blob_chunk(sha256, idx)
            .await?
            .ok_or(StorageError::Missing)?;
        let start = (offset % CHUNK as u64) as usize;
        if start >= chunk.len() {
            return Err(StorageError::Missing);
        }
        let end = chunk.len().min(start + len);
        Ok(Bytes::from(chunk).slice(start..end))
    }

    async fn remove(&self, _sha256: &str) -> Result<(), StorageError> {
        Ok(()) // the chunks went with the row
    }
}

pub struct DirectoryBlobs {
    pub root: PathBuf,
    pub store: Arc<dyn Store>,
}

impl DirectoryBlobs {
    /// `<root>/ab/abcdef...`: two hex digits of fan-out keep directories small.
    fn path(&self, sha256: &str) -> PathBuf {
        self.root.join(&sha256[..2]).join(sha256)
    }
}

#[async_trait]
impl BlobStorage for DirectoryBlobs {
    async fn put(
        &self,
        sha256: &str,
        size: u64,
        spool: tempfile::NamedTempFile,
    ) -> Result<(), StorageError> {
        // Row first: from then on a collection leaves the blob alone (it is freshly touched).
        self.store.put_blob(sha256, size, &mut Elsewhere).await?;
        let path = self.path(sha256);
        if tokio::fs::try_exists(&path).await? {
            return Ok(());
        }
        let dir = path.parent().expect("a blob path has a parent").to_owned();
        tokio::task::spawn_blocking(move || {
            std::fs::create_dir_all(&dir)?;
            spool.persist(&path).map_err(|e| e.error)?;
            Ok::<_, std::io::Error>(())
        })
        .await
        .map_err(|e| std::io::Error::other(e.to_string()))??;
        Ok(())
    }

    async fn read(&self, sha256: &str, offset: u64, len: usize) -> Result<Bytes, StorageError> {
        let mut f = match tokio::fs::File::open(self.path(sha256)).await {
            Ok(f) => f,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                return Err(StorageError::Missing)
            }
            Err(e) => return Err(e.into()),
        };
        f.seek(std::io::SeekFrom::Start(offset)).await?;
        let mut buf = vec![0; len.min(CHUNK)];
        let mut n = 0;
        while n < buf.len() {
            let r = f.read(&mut buf[n..]).await?;
            if r == 0 {
                break;
            }
            n += r;
        }
        if n == 0 {
            return Err(StorageError::Missing);
        }
        buf.truncate(n);
        Ok(buf.into())
    }

    async fn remove(&self, sha256: &str) -> Result<(), StorageError> {
        match tokio::fs::remove_file(self.path(sha256)).await {
            Err(e) if e.kind() != std::io::ErrorKind::NotFound => Err(e.into()),
            _ => Ok(()),
        }
    }
}
