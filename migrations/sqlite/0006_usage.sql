-- One row per completion (REST or socket turn): who, which model, tokens, latency, outcome.
CREATE TABLE usage_records (
    id                BLOB PRIMARY KEY,
    user_id           BLOB NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    api_key_id        BLOB REFERENCES api_keys (id) ON DELETE SET NULL,
    source            TEXT NOT NULL,
    model             TEXT NOT NULL,
    prompt_tokens     INTEGER NOT NULL,
    completion_tokens INTEGER NOT NULL,
    latency_ms        INTEGER NOT NULL,
    status            TEXT NOT NULL,
    created_at        TEXT NOT NULL
);
CREATE INDEX usage_records_user_idx ON usage_records (user_id, id);
CREATE INDEX usage_records_key_idx ON usage_records (api_key_id);
