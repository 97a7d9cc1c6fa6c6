-- Session sync: versions, last-writer-wins registers (fields, context map, tags), messages,
-- exactly-once bookkeeping per client, and the change log clients catch up from.
ALTER TABLE sessions ADD COLUMN version BIGINT NOT NULL DEFAULT 0;
-- Change-log rows at or below this version have been compacted away.
ALTER TABLE sessions ADD COLUMN log_floor BIGINT NOT NULL DEFAULT 0;

CREATE TABLE session_registers (
    session_id BLOB NOT NULL REFERENCES sessions (id) ON DELETE CASCADE,
    key        TEXT NOT NULL,
    value      TEXT,            -- JSON; NULL is a tombstone
    hlc        TEXT NOT NULL,
    client_id  TEXT NOT NULL,
    PRIMARY KEY (session_id, key)
);

CREATE TABLE messages (
    session_id    BLOB NOT NULL REFERENCES sessions (id) ON DELETE CASCADE,
    id            TEXT NOT NULL,
    role          TEXT NOT NULL,
    content       TEXT NOT NULL,
    metadata      TEXT NOT NULL DEFAULT 'null',
    position      BIGINT NOT NULL,
    seq           INTEGER NOT NULL,
    author_client TEXT NOT NULL,
    edit_hlc      TEXT NOT NULL,
    edit_client   TEXT NOT NULL,
    deleted       INTEGER NOT NULL DEFAULT 0,
    streaming     INTEGER NOT NULL DEFAULT 0,
    created_at    TEXT NOT NULL,
    updated_at    TEXT NOT NULL,
    PRIMARY KEY (session_id, id)
);
CREATE INDEX messages_order_idx ON messages (session_id, position, seq);

CREATE TABLE sync_clients (
    client_id        TEXT PRIMARY KEY,
    user_id          BLOB NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    last_mutation_id BIGINT NOT NULL
);
CREATE INDEX sync_clients_user_idx ON sync_clients (user_id);

CREATE TABLE mutation_results (
    client_id   TEXT NOT NULL,
    mutation_id BIGINT NOT NULL,
    session_id  BLOB NOT NULL REFERENCES sessions (id) ON DELETE CASCADE,
    version     BIGINT,         -- set when applied
    error       TEXT,           -- set when refused
    created_at  TEXT NOT NULL,
    PRIMARY KEY (client_id, mutation_id)
);
CREATE INDEX mutation_results_session_idx ON mutation_results (session_id);

CREATE TABLE change_log (
    session_id  BLOB NOT NULL REFERENCES sessions (id) ON DELETE CASCADE,
    version     BIGINT NOT NULL,
    client_id   TEXT NOT NULL,
    mutation_id BIGINT NOT NULL,
    hlc         TEXT NOT NULL,
    ops         TEXT NOT NULL,  -- JSON array
    created_at  TEXT NOT NULL,
    PRIMARY KEY (session_id, version)
);
