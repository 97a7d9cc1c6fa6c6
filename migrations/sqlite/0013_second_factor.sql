-- TOTP as a second factor for password sign-in, and its single-use recovery codes (SHA-256).
-- `confirmed_at` is NULL while enrollment waits for the first code; `last_step` is the last
-- time step a code was accepted for, so a code is never taken twice.
CREATE TABLE totp_factors (
    user_id      BLOB PRIMARY KEY REFERENCES users (id) ON DELETE CASCADE,
    secret       BLOB NOT NULL,
    confirmed_at TEXT,
    last_step    BIGINT NOT NULL DEFAULT 0,
    created_at   TEXT NOT NULL
);

CREATE TABLE recovery_codes (
    user_id   BLOB NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    code_hash BLOB NOT NULL,
    used_at   TEXT,
    PRIMARY KEY (user_id, code_hash)
);
