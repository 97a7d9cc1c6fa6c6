//! An upload on its way in: streamed to a temporary file (memory stays bounded whatever the
//! size) while it is hashed, counted and checked for text. The file is removed when the spool
//! is dropped, so a cut or refused upload leaves nothing behind.

use bytes::Bytes;
use futures::{Stream, StreamExt};
use sha2::{Digest, Sha256};
use std::path::Path;
use tokio::io::AsyncWriteExt;

/// Bytes kept for sniffing the type.
const HEAD: usize = 8192;

#[derive(Debug, thiserror::Error)]
pub enum SpoolError {
    #[error("the file is larger than the {0}-byte limit")]
    TooLarge(u64),
    #[error("the upload sent nothing for {0} s")]
    Stalled(u64),
    #[error("the upload was cut: {0}")]
    Cut(String),
    #[error("could not spool the upload: {0}")]
    Io(#[from] std::io::Error),
}

pub struct Spooled {
    pub file: tempfile::NamedTempFile,
    pub size: u64,
    pub sha256: String,
    pub head: Vec<u8>,
    /// Valid UTF-8 throughout, with no NUL.
    pub text: bool,
}

/// Tracks UTF-8 validity across chunk boundaries.
struct Utf8 {
    ok: bool,
    carry: Vec<u8>,
}

impl Utf8 {
    fn feed(&mut self, chunk: &[u8]) {
        if !self.ok {
            return;
        }
        if chunk.contains(&0) {
            self.ok = false;
            return;
        }
        let joined;
        let buf = if self.carry.is_empty() {
            chunk
        } else {
            joined = [self.carry.as_slice(), chunk].concat();
            &joined
        };
        match std::str::from_utf8(buf) {
            Ok(_) => self.carry.clear(),
            Err(e) if e.error_len().is_none() => self.carry = buf[e.valid_up_to()..].to_vec(),
            Err(_) => self.ok = false,
        }
    }

    fn finish(&self) -> bool {
        self.ok && self.carry.is_empty()
    }
}

/// A body that sends nothing for `idle` is given up (a trickle cannot hold a slot for long).
pub async fn spool<S, E>(
    dir: &Path,
    mut body: S,
    max: u64,
    idle: std::time::Duration,
) -> Result<Spooled, SpoolError>
where
    S: Stream<Item = Result<Bytes, E>> + Unpin,
    E: std::fmt::Display,
{
    let file = tempfile::Builder::new()
        .prefix("upload-")
        .tempfile_in(dir)?;
    let mut out =
        tokio::io::BufWriter::with_capacity(64 << 10, tokio::fs::File::from_std(file.reopen()?));
    let (mut hash, mut size, mut head) = (Sha256::new(), 0u64, Vec::new());
    let mut utf8 = Utf8 {
        ok: true,
        carry: Vec::new(),
    };
    loop {
        let next = tokio::time::timeout(idle, body.next())
            .await
            .map_err(|_| SpoolError::Stalled(idle.as_secs()))?;
        let Some(chunk) = next else { break };
        let chunk = chunk.map_err(|e| SpoolError::Cut(e.to_string()))?;
        size += chunk.len() as u64;
        if size > max {
            return Err(SpoolError::TooLarge(max));
        }
        if head.len() < HEAD {
            let take = (HEAD - head.len()).min(chunk.len());
            head.extend_from_slice(&chunk[..take]);
        }
        hash.update(&chunk);
        utf8.feed(&chunk);
        out.write_all(&chunk).await?;
    }
    out.flush().await?;
    out.into_inner().sync_all().await?;
    Ok(Spooled {
        file,
        size,
        sha256: hex::encode(hash.finalize()),
        head,
        text: utf8.finish(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const IDLE: std::time::Duration = std::time::Duration::from_secs(5);

    fn chunks(parts: &[&[u8]]) -> impl Stream<Item = Result<Bytes, String>> + Unpin {
        futures::stream::iter(
            parts
                .iter()
                .map(|p| Ok(Bytes::copy_from_slice(p)))
                .collect::<Vec<_>>(),
        )
    }

    #[tokio::test]
    async fn utf8_split_across_chunks_is_still_text() {
        let dir = tempfile::tempdir().unwrap();
        let e = "é".as_bytes();
        let s = spool(dir.path(), chunks(&[b"caf", &e[..1], &e[1..]]), 100, IDLE)
            .await
            .unwrap();
        assert!(s.text);
        assert_eq!(s.size, 5);
        assert_eq!(std::fs::read(s.file.path()).unwrap(), "café".as_bytes());
        let s = spool(dir.path(), chunks(&[b"caf", &e[..1]]), 100, IDLE)
            .await
            .unwrap();
        assert!(!s.text, "a truncated character is not text");
        let s = spool(dir.path(), chunks(&[b"a\0b"]), 100, IDLE)
            .await
            .unwrap();
        assert!(!s.text, "NUL is not text");
    }

    #[tokio::test]
    async fn over_the_limit_stops_and_leaves_nothing() {
        let dir = tempfile::tempdir().unwrap();
        let r = spool(dir.path(), chunks(&[b"12345", b"678"]), 6, IDLE).await;
        assert!(matches!(r, Err(SpoolError::TooLarge(6))));
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 0);
    }
}
