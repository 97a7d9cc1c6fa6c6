-- no-transaction
-- Messages still streaming are few (one per running turn) among many: the chat janitor finds
-- the ones a dead instance left behind through this partial index, never a scan of messages.
-- Built concurrently, so a large messages table keeps taking writes while it builds.
CREATE INDEX CONCURRENTLY IF NOT EXISTS messages_streaming_idx ON messages (created_at) WHERE streaming;
