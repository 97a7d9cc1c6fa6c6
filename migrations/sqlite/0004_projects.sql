-- Projects group a user's sessions in the sidebar.
CREATE TABLE projects (
    id          BLOB PRIMARY KEY,
    owner_id    BLOB NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    name        TEXT NOT NULL,
    description TEXT NOT NULL DEFAULT '',
    settings    TEXT NOT NULL DEFAULT '{}',
    created_at  TEXT NOT NULL,
    updated_at  TEXT NOT NULL
);
CREATE INDEX projects_owner_idx ON projects (owner_id, id);
