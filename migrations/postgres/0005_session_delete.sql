-- A session deleted by its owner (the `delete_session` op) disappears for everyone.
ALTER TABLE sessions ADD COLUMN deleted_at TIMESTAMPTZ;
