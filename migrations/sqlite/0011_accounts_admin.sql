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
CREATE INDEX sessions_created_idx ON sessions (created_at);
CREATE INDEX messages_created_idx ON messages (created_at);
CREATE INDEX tool_calls_created_idx ON tool_calls (created_at);

-- Usage per hour, model, key, user, source and status, with a latency histogram (b0 < 1 ms,
-- then 1-2-5 steps up to b19 >= 600 s: `store::analytics::LATENCY_BOUNDS_MS`), written with each
-- usage batch: analytics reads whole hours from here and raw rows only for the partial hours
-- at the ends of its range. `api_key_id` is the nil UUID for requests made without a key.
CREATE TABLE usage_hourly (
    hour              TEXT NOT NULL,
    model             TEXT NOT NULL,
    api_key_id        BLOB NOT NULL,
    user_id           BLOB NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    source            TEXT NOT NULL,
    status            TEXT NOT NULL,
    requests          BIGINT NOT NULL,
    prompt_tokens     BIGINT NOT NULL,
    completion_tokens BIGINT NOT NULL,
    b0 BIGINT NOT NULL DEFAULT 0,
    b1 BIGINT NOT NULL DEFAULT 0,
    b2 BIGINT NOT NULL DEFAULT 0,
    b3 BIGINT NOT NULL DEFAULT 0,
    b4 BIGINT NOT NULL DEFAULT 0,
    b5 BIGINT NOT NULL DEFAULT 0,
    b6 BIGINT NOT NULL DEFAULT 0,
    b7 BIGINT NOT NULL DEFAULT 0,
    b8 BIGINT NOT NULL DEFAULT 0,
    b9 BIGINT NOT NULL DEFAULT 0,
    b10 BIGINT NOT NULL DEFAULT 0,
    b11 BIGINT NOT NULL DEFAULT 0,
    b12 BIGINT NOT NULL DEFAULT 0,
    b13 BIGINT NOT NULL DEFAULT 0,
    b14 BIGINT NOT NULL DEFAULT 0,
    b15 BIGINT NOT NULL DEFAULT 0,
    b16 BIGINT NOT NULL DEFAULT 0,
    b17 BIGINT NOT NULL DEFAULT 0,
    b18 BIGINT NOT NULL DEFAULT 0,
    b19 BIGINT NOT NULL DEFAULT 0,
    PRIMARY KEY (hour, model, api_key_id, user_id, source, status)
);
CREATE INDEX usage_hourly_user_idx ON usage_hourly (user_id);
INSERT INTO usage_hourly (hour, model, api_key_id, user_id, source, status, requests,
    prompt_tokens, completion_tokens, b0, b1, b2, b3, b4, b5, b6, b7, b8, b9, b10, b11, b12, b13, b14, b15, b16, b17, b18, b19)
SELECT substr(created_at, 1, 13), model, COALESCE(api_key_id, X'00000000000000000000000000000000'), user_id, source, status, COUNT(*),
       SUM(prompt_tokens), SUM(completion_tokens),
       SUM(CASE WHEN latency_ms < 1 THEN 1 ELSE 0 END),
       SUM(CASE WHEN latency_ms >= 1 AND latency_ms < 2 THEN 1 ELSE 0 END),
       SUM(CASE WHEN latency_ms >= 2 AND latency_ms < 5 THEN 1 ELSE 0 END),
       SUM(CASE WHEN latency_ms >= 5 AND latency_ms < 10 THEN 1 ELSE 0 END),
       SUM(CASE WHEN latency_ms >= 10 AND latency_ms < 20 THEN 1 ELSE 0 END),
       SUM(CASE WHEN latency_ms >= 20 AND latency_ms < 50 THEN 1 ELSE 0 END),
       SUM(CASE WHEN latency_ms >= 50 AND latency_ms < 100 THEN 1 ELSE 0 END),
       SUM(CASE WHEN latency_ms >= 100 AND latency_ms < 200 THEN 1 ELSE 0 END),
       SUM(CASE WHEN latency_ms >= 200 AND latency_ms < 500 THEN 1 ELSE 0 END),
       SUM(CASE WHEN latency_ms >= 500 AND latency_ms < 1000 THEN 1 ELSE 0 END),
       SUM(CASE WHEN latency_ms >= 1000 AND latency_ms < 2000 THEN 1 ELSE 0 END),
       SUM(CASE WHEN latency_ms >= 2000 AND latency_ms < 5000 THEN 1 ELSE 0 END),
       SUM(CASE WHEN latency_ms >= 5000 AND latency_ms < 10000 THEN 1 ELSE 0 END),
       SUM(CASE WHEN latency_ms >= 10000 AND latency_ms < 20000 THEN 1 ELSE 0 END),
       SUM(CASE WHEN latency_ms >= 20000 AND latency_ms < 30000 THEN 1 ELSE 0 END),
       SUM(CASE WHEN latency_ms >= 30000 AND latency_ms < 60000 THEN 1 ELSE 0 END),
       SUM(CASE WHEN latency_ms >= 60000 AND latency_ms < 120000 THEN 1 ELSE 0 END),
       SUM(CASE WHEN latency_ms >= 120000 AND latency_ms < 300000 THEN 1 ELSE 0 END),
       SUM(CASE WHEN latency_ms >= 300000 AND latency_ms < 600000 THEN 1 ELSE 0 END),
       SUM(CASE WHEN latency_ms >= 600000 THEN 1 ELSE 0 END)
FROM usage_records GROUP BY 1, 2, 3, 4, 5, 6;
