-- A user's MCP servers: Streamable HTTP by URL (headers are secrets, never shown back), or
-- stdio by the name of a command the operator allowlisted.
CREATE TABLE mcp_servers (
    id          BLOB PRIMARY KEY,
    user_id     BLOB NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    name        TEXT NOT NULL,
    transport   TEXT NOT NULL,
    command     TEXT,
    url         TEXT,
    headers     TEXT NOT NULL DEFAULT '{}',
    enabled     INTEGER NOT NULL,
    created_at  TEXT NOT NULL,
    updated_at  TEXT NOT NULL
);
CREATE UNIQUE INDEX mcp_servers_user_name_key ON mcp_servers (user_id, name);
