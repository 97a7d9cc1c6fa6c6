-- Files attached to sessions. Content is stored once per SHA-256 (`blobs`), its bytes in
-- `blob_chunks` (the database backend) or in a directory; `session_files` are what members see.
-- A blob no file refers to is collected once `touched_at` is older than the grace period (an
-- upload of the same bytes touches it, so it is never collected between storing and referring).
CREATE TABLE blobs (
    sha256     TEXT PRIMARY KEY,
    size       BIGINT NOT NULL,
    touched_at TIMESTAMPTZ NOT NULL
);
CREATE INDEX blobs_touched_idx ON blobs (touched_at);

CREATE TABLE blob_chunks (
    sha256 TEXT NOT NULL REFERENCES blobs (sha256) ON DELETE CASCADE,
    idx    INTEGER NOT NULL,
    data   BYTEA NOT NULL,
    PRIMARY KEY (sha256, idx)
);

CREATE TABLE session_files (
    id           UUID PRIMARY KEY,
    session_id   UUID NOT NULL REFERENCES sessions (id) ON DELETE CASCADE,
    uploader_id  UUID NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    filename     TEXT NOT NULL,
    content_type TEXT NOT NULL,
    size         BIGINT NOT NULL,
    sha256       TEXT NOT NULL REFERENCES blobs (sha256),
    created_at   TIMESTAMPTZ NOT NULL
);
CREATE INDEX session_files_session_idx ON session_files (session_id, id);
CREATE INDEX session_files_uploader_idx ON session_files (uploader_id);
CREATE INDEX session_files_sha_idx ON session_files (sha256);
