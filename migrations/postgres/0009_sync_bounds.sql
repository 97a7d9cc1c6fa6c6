-- A deleted message keeps neither its content nor its metadata (it never shows again).
UPDATE messages SET content = '', metadata = 'null' WHERE deleted;

-- Session sizes kept on the session row, so a push checks the caps without counting.
ALTER TABLE sessions
    ADD COLUMN context_keys  BIGINT NOT NULL DEFAULT 0,
    ADD COLUMN context_bytes BIGINT NOT NULL DEFAULT 0,
    ADD COLUMN tag_count     BIGINT NOT NULL DEFAULT 0,
    ADD COLUMN message_count BIGINT NOT NULL DEFAULT 0,
    ADD COLUMN content_bytes BIGINT NOT NULL DEFAULT 0;
UPDATE sessions s SET
    context_keys  = (SELECT COUNT(*) FROM session_registers r WHERE r.session_id = s.id AND r.key LIKE 'c:%'),
    context_bytes = (SELECT COALESCE(SUM(octet_length(r.value)), 0) FROM session_registers r
                     WHERE r.session_id = s.id AND r.key LIKE 'c:%' AND r.value IS NOT NULL),
    tag_count     = (SELECT COUNT(*) FROM session_registers r WHERE r.session_id = s.id AND r.key LIKE 't:%'),
    message_count = (SELECT COUNT(*) FROM messages m WHERE m.session_id = s.id),
    content_bytes = (SELECT COALESCE(SUM(octet_length(m.content) + octet_length(m.metadata)), 0) FROM messages m WHERE m.session_id = s.id);

-- Client ids are scoped to their account (a guessed id cannot be squatted), answers carry a
-- refusal code, and the server's own writes (turns) keep no per-client rows.
DELETE FROM mutation_results WHERE client_id LIKE '~%';
DELETE FROM sync_clients WHERE client_id LIKE '~%';
ALTER TABLE mutation_results ADD COLUMN user_id UUID REFERENCES users (id) ON DELETE CASCADE;
ALTER TABLE mutation_results ADD COLUMN code TEXT;
UPDATE mutation_results m SET user_id = c.user_id FROM sync_clients c WHERE c.client_id = m.client_id;
DELETE FROM mutation_results WHERE user_id IS NULL;
ALTER TABLE mutation_results ALTER COLUMN user_id SET NOT NULL;
ALTER TABLE mutation_results DROP CONSTRAINT mutation_results_pkey;
ALTER TABLE mutation_results ADD PRIMARY KEY (user_id, client_id, mutation_id);
ALTER TABLE sync_clients DROP CONSTRAINT sync_clients_pkey;
ALTER TABLE sync_clients ADD PRIMARY KEY (user_id, client_id);
DROP INDEX IF EXISTS sync_clients_user_idx;
