-- Failed logins are counted per (user, source) and lock the user out for
-- that source only (the AAS's source is the client's IP address, an IPv6
-- address as its /64): before, five failures from anywhere locked the account
-- for everyone, so anyone who could reach the AAS could lock the admin out.
-- The failures recorded before have the source '' and simply age out.
ALTER TABLE login_failures ADD COLUMN source TEXT NOT NULL DEFAULT '';
CREATE INDEX login_failures_user_id_source_failed_at ON login_failures (user_id, source, failed_at);
CREATE INDEX login_failures_failed_at ON login_failures (failed_at);

CREATE TABLE login_locks (
    user_id      TEXT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    source       TEXT NOT NULL,
    locked_until BIGINT NOT NULL,
    PRIMARY KEY (user_id, source)
);
CREATE INDEX login_locks_locked_until ON login_locks (locked_until);
