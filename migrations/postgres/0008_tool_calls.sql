-- One row per tool call a turn made (an MCP server's tool or one the client declared): what was
-- asked, what came back, how long it took.
CREATE TABLE tool_calls (
    id           UUID PRIMARY KEY,
    session_id   UUID NOT NULL REFERENCES sessions (id) ON DELETE CASCADE,
    turn_id      UUID NOT NULL,
    message_id   TEXT NOT NULL,
    call_id      TEXT NOT NULL,
    name         TEXT NOT NULL,
    server       TEXT,
    tool         TEXT NOT NULL,
    arguments    TEXT NOT NULL,
    result       TEXT,
    error        TEXT,
    status       TEXT NOT NULL,
    duration_ms  BIGINT NOT NULL,
    created_at   TIMESTAMPTZ NOT NULL
);
CREATE INDEX tool_calls_session_idx ON tool_calls (session_id, id);
