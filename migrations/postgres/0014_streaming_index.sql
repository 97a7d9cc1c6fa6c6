-- Messages still streaming are few (one per running turn) among many: the chat janitor finds
-- the ones a dead instance left behind through this partial index, never a scan of messages.
CREATE INDEX messages_streaming_idx ON messages (created_at) WHERE streaming;
