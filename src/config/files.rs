//! Files attached to sessions: where their bytes live and how much anyone may keep.

use serde::{Deserialize, Serialize};

/// Where file content is kept.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum FileBackend {
    /// In the database (SQLite or PostgreSQL): every instance sees every file, no shared disk.
    Database,
    /// In `files.dir` on this machine: for a single instance (others would not see the bytes).
    Directory,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct FilesConfig {
    /// `database` or `directory`. Default `database`.
    pub backend: FileBackend,
    /// The directory backend's root, and where uploads are spooled before they are stored
    /// (every backend). Default: `<data_dir>/files`.
    pub dir: String,
    /// Largest file. Default 10 MiB.
    pub max_file_bytes: u64,
    /// Bytes of files per session. Default 100 MiB.
    pub max_session_bytes: u64,
    /// Bytes of files one user has uploaded, across sessions. Default 500 MiB.
    pub max_user_bytes: u64,
    /// Files per session. Default 200.
    pub max_files_per_session: u64,
    /// Uploads spooling at once on this instance (each holds up to `max_file_bytes` of disk);
    /// more are answered 503 with `Retry-After`. Default 16.
    pub max_concurrent_uploads: usize,
    /// Uploads one user runs at once on this instance. Default 4.
    pub max_concurrent_uploads_per_user: usize,
    /// Seconds an upload may send nothing before it is given up (400). Default 30.
    pub upload_idle_secs: u64,
    /// Seconds an upload or download may take (longer than `server.request_timeout_secs`: a
    /// phone on a slow network). Default 300.
    pub upload_timeout_secs: u64,
    /// Extensions accepted (lower case, no dot). Each maps to a content type the server
    /// decides, and the bytes must be what the extension says (see `files::kind`).
    pub allowed_extensions: Vec<String>,
    /// Bytes of attached text files a turn sends to the model, across its messages (newest
    /// first); the rest is cut and the prompt says so. Default 65536.
    pub turn_text_budget_bytes: usize,
    /// Files one `chat.send` attaches. Default 10.
    pub max_attachments_per_message: usize,
    /// Images a turn sends to the model (newest first). Default 4.
    pub turn_max_images: usize,
    /// Largest image sent to the model (providers refuse larger ones: Anthropic's limit is
    /// 5 MB); a larger one is named in the prompt instead. Default 5000000.
    pub turn_max_image_bytes: u64,
    /// Seconds a blob no file refers to is kept before it is collected (an upload of the same
    /// bytes in that window reuses it). Default 600.
    pub orphan_grace_secs: u64,
    /// Seconds between collections of orphaned blobs. Default 300.
    pub gc_interval_secs: u64,
}

impl Default for FilesConfig {
    fn default() -> Self {
        Self {
            backend: FileBackend::Database,
            dir: String::new(),
            max_file_bytes: 10 << 20,
            max_session_bytes: 100 << 20,
            max_user_bytes: 500 << 20,
            max_files_per_session: 200,
            max_concurrent_uploads: 16,
            upload_timeout_secs: 300,
            max_concurrent_uploads_per_user: 4,
            upload_idle_secs: 30,
            allowed_extensions: [
                "txt", "md", "log", "json", "yaml", "yml", "toml", "csv", "xml", "html", "css",
                "js", "ts", "tsx", "jsx", "py", "rs", "go", "java", "kt", "swift", "c", "h", "cpp",
                "hpp", "cs", "rb", "php", "sh", "sql", "diff", "patch", "png", "jpg", "jpeg",
                "gif", "webp", "pdf",
            ]
            .map(String::from)
            .to_vec(),
            turn_text_budget_bytes: 64 << 10,
            turn_max_images: 4,
            turn_max_image_bytes: 5_000_000,
            max_attachments_per_message: 10,
            orphan_grace_secs: 600,
            gc_interval_secs: 300,
        }
    }
}
