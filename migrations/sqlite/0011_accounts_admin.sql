-- Accounts an admin manages (roles beyond user/admin, disabling), profiles, the kill switch,
-- and usage kept as aggregates once its account is deleted.
--
-- `access` holds the role; `role` stays as it was (user/admin) because SQLite cannot change the
-- CHECK on it without rebuilding `users`, and both backends read the same SQL:
-- `COALESCE(NULLIF(access, ''), role)`.
ALTER TABLE users ADD COLUMN access TEXT NOT NULL DEFAULT '';
ALTER TABLE users ADD COLUMN disabled_at TEXT;
ALTER TABLE users ADD COLUMN display_name TEXT;
ALTER TABLE users ADD COLUMN username TEXT;
ALTER TABLE users ADD COLUMN preferences TEXT NOT NULL DEFAULT '{}';
-- A role change refuses access tokens claiming the old role, on every instance (restarted too).
ALTER TABLE users ADD COLUMN role_changed_at TEXT;
CREATE UNIQUE INDEX users_username_key ON users (username);
CREATE INDEX users_disabled_idx ON users (disabled_at) WHERE disabled_at IS NOT NULL;

-- Families revoked lately are loaded at start so their access tokens are refused at once.
CREATE INDEX refresh_families_revoked_idx ON refresh_families (revoked_at) WHERE revoked_at IS NOT NULL;

-- Deleted accounts, kept long enough for their access tokens to be refused until they expire.
CREATE TABLE deleted_users (
    id         BLOB PRIMARY KEY,
    deleted_at TEXT NOT NULL
);

-- At most one row: present while the server is in maintenance.
CREATE TABLE maintenance (
    id               INTEGER PRIMARY KEY CHECK (id = 1),
    reason           TEXT NOT NULL,
    retry_after_secs BIGINT NOT NULL,
    enabled_at       TEXT NOT NULL,
    enabled_by       TEXT NOT NULL
);

-- Usage of deleted accounts, per day, model, source and status: totals survive, the person
-- does not.
CREATE TABLE usage_archive (
    day               TEXT NOT NULL,
    model             TEXT NOT NULL,
    source            TEXT NOT NULL,
    status            TEXT NOT NULL,
    requests          BIGINT NOT NULL,
    prompt_tokens     BIGINT NOT NULL,
    completion_tokens BIGINT NOT NULL,
    latency_ms_total  BIGINT NOT NULL,
    PRIMARY KEY (day, model, source, status)
);

-- Analytics read usage by time range.
CREATE INDEX usage_records_created_idx ON usage_records (created_at);
CREATE INDEX usage_records_model_idx ON usage_records (model, created_at);
CREATE INDEX sessions_created_idx ON sessions (created_at);
CREATE INDEX messages_created_idx ON messages (created_at);
CREATE INDEX tool_calls_created_idx ON tool_calls (created_at);
