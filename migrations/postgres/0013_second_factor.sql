-- TOTP as a second factor for password sign-in, and its single-use recovery codes (SHA-256).
-- `confirmed_at` is NULL while enrollment waits for the first code; `last_step` is the last
-- time step a code was accepted for, so a code is never taken twice.
CREATE TABLE totp_factors (
    user_id      UUID PRIMARY KEY REFERENCES users (id) ON DELETE CASCADE,
    secret       BYTEA NOT NULL,
    confirmed_at TIMESTAMPTZ,
    last_step    BIGINT NOT NULL DEFAULT 0,
    created_at   TIMESTAMPTZ NOT NULL
);

CREATE TABLE recovery_codes (
    user_id   UUID NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    code_hash BYTEA NOT NULL,
    used_at   TIMESTAMPTZ,
    PRIMARY KEY (user_id, code_hash)
);
