-- One row per completion (REST or socket turn): who, which model, tokens, latency, outcome.
CREATE TABLE usage_records (
    id                UUID PRIMARY KEY,
    user_id           UUID NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    api_key_id        UUID REFERENCES api_keys (id) ON DELETE SET NULL,
    source            TEXT NOT NULL,
    model             TEXT NOT NULL,
    prompt_tokens     BIGINT NOT NULL,
    completion_tokens BIGINT NOT NULL,
    latency_ms        BIGINT NOT NULL,
    status            TEXT NOT NULL,
    created_at        TIMESTAMPTZ NOT NULL
);
CREATE INDEX usage_records_user_idx ON usage_records (user_id, id);
CREATE INDEX usage_records_key_idx ON usage_records (api_key_id);
