-- Chat sessions and who may see them. Later migrations add the synced state.
CREATE TABLE sessions (
    id         BLOB PRIMARY KEY,
    owner_id   BLOB NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    title      TEXT NOT NULL DEFAULT '',
    created_at TEXT NOT NULL,
    updated_at TEXT NOT NULL
);
CREATE INDEX sessions_owner_idx ON sessions (owner_id, id);

CREATE TABLE session_members (
    session_id BLOB NOT NULL REFERENCES sessions (id) ON DELETE CASCADE,
    user_id    BLOB NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    role       TEXT NOT NULL CHECK (role IN ('owner', 'editor', 'viewer')),
    created_at TEXT NOT NULL,
    PRIMARY KEY (session_id, user_id)
);
CREATE INDEX session_members_user_idx ON session_members (user_id, session_id);
