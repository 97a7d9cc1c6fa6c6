-- A user's MCP servers: Streamable HTTP by URL (headers are secrets, never shown back), or
-- stdio by the name of a command the operator allowlisted.
CREATE TABLE mcp_servers (
    id          UUID PRIMARY KEY,
    user_id     UUID NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    name        TEXT NOT NULL,
    transport   TEXT NOT NULL,
    command     TEXT,
    url         TEXT,
    headers     TEXT NOT NULL DEFAULT '{}',
    enabled     BOOLEAN NOT NULL,
    created_at  TIMESTAMPTZ NOT NULL,
    updated_at  TIMESTAMPTZ NOT NULL
);
CREATE UNIQUE INDEX mcp_servers_user_name_key ON mcp_servers (user_id, name);
