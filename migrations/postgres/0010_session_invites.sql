-- Sharing with an address that has no account yet: the invitation becomes membership when
-- that address registers (so sharing answers the same whether or not the account exists).
CREATE TABLE session_invites (
    session_id UUID NOT NULL REFERENCES sessions (id) ON DELETE CASCADE,
    email      TEXT NOT NULL,
    role       TEXT NOT NULL CHECK (role IN ('editor', 'viewer')),
    created_at TIMESTAMPTZ NOT NULL,
    PRIMARY KEY (session_id, email)
);
CREATE INDEX session_invites_email_idx ON session_invites (email);
