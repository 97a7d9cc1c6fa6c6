-- Messages still streaming are few (one per running turn) among many: the chat janitor finds
-- the ones a dead instance left behind through this partial index, never a scan of messages.
-- Not CONCURRENTLY: that waits for every other session's snapshot, including an instance
-- starting beside this one and waiting on the migration lock, and PostgreSQL ends the pair as
-- a deadlock (two instances started at once against a new database failed so). Writes to
-- messages wait while it builds, once.
CREATE INDEX IF NOT EXISTS messages_streaming_idx ON messages (created_at) WHERE streaming;
