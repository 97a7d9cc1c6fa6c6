-- A deleted message keeps neither its content nor its metadata (it never shows again).
UPDATE messages SET content = '', metadata = 'null' WHERE deleted;

-- Session sizes kept on the session row, so a push checks the caps without counting.
ALTER TABLE sessions ADD COLUMN context_keys  BIGINT NOT NULL DEFAULT 0;
ALTER TABLE sessions ADD COLUMN context_bytes BIGINT NOT NULL DEFAULT 0;
ALTER TABLE sessions ADD COLUMN tag_count     BIGINT NOT NULL DEFAULT 0;
ALTER TABLE sessions ADD COLUMN message_count BIGINT NOT NULL DEFAULT 0;
ALTER TABLE sessions ADD COLUMN content_bytes BIGINT NOT NULL DEFAULT 0;
UPDATE sessions SET
    context_keys  = (SELECT COUNT(*) FROM session_registers r WHERE r.session_id = sessions.id AND r.key LIKE 'c:%'),
    context_bytes = (SELECT COALESCE(SUM(length(CAST(r.value AS BLOB))), 0) FROM session_registers r
                     WHERE r.session_id = sessions.id AND r.key LIKE 'c:%' AND r.value IS NOT NULL),
    tag_count     = (SELECT COUNT(*) FROM session_registers r WHERE r.session_id = sessions.id AND r.key LIKE 't:%'),
    message_count = (SELECT COUNT(*) FROM messages m WHERE m.session_id = sessions.id),
    content_bytes = (SELECT COALESCE(SUM(length(CAST(m.content AS BLOB)) + length(CAST(m.metadata AS BLOB))), 0) FROM messages m WHERE m.session_id = sessions.id);

-- Client ids are scoped to their account (a guessed id cannot be squatted), answers carry a
-- refusal code, and the server's own writes (turns) keep no per-client rows.
CREATE TABLE sync_clients_new (
    user_id          BLOB NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    client_id        TEXT NOT NULL,
    last_mutation_id BIGINT NOT NULL,
    PRIMARY KEY (user_id, client_id)
);
INSERT INTO sync_clients_new (user_id, client_id, last_mutation_id)
    SELECT user_id, client_id, last_mutation_id FROM sync_clients WHERE client_id NOT LIKE '~%';

CREATE TABLE mutation_results_new (
    user_id     BLOB NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    client_id   TEXT NOT NULL,
    mutation_id BIGINT NOT NULL,
    session_id  BLOB NOT NULL REFERENCES sessions (id) ON DELETE CASCADE,
    version     BIGINT,         -- set when applied
    code        TEXT,           -- set when refused
    error       TEXT,           -- set when refused
    created_at  TEXT NOT NULL,
    PRIMARY KEY (user_id, client_id, mutation_id)
);
INSERT INTO mutation_results_new (user_id, client_id, mutation_id, session_id, version, error, created_at)
    SELECT c.user_id, m.client_id, m.mutation_id, m.session_id, m.version, m.error, m.created_at
    FROM mutation_results m JOIN sync_clients c ON c.client_id = m.client_id
    WHERE m.client_id NOT LIKE '~%';

DROP TABLE mutation_results;
DROP TABLE sync_clients;
ALTER TABLE sync_clients_new RENAME TO sync_clients;
ALTER TABLE mutation_results_new RENAME TO mutation_results;
CREATE INDEX mutation_results_session_idx ON mutation_results (session_id);
