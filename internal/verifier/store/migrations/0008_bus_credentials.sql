-- Bus credentials (issue 11): the NATS user keys the verifier issued to
-- trust agents (kind 'agent', owner = host id) and attestation managers
-- (kind 'manager', owner = manager name), and their revocations, so that a
-- revocation outlives a restart: the verifier signs the revoked keys into
-- the account TC before its embedded server accepts a connection. A key whose
-- JWT expired is pruned (the server refuses it anyway). Times are Unix
-- microseconds; revoked_at NULL means "not revoked".
CREATE TABLE bus_credentials (
    public_key TEXT PRIMARY KEY,
    kind       TEXT NOT NULL,
    owner      TEXT NOT NULL,
    expires_at BIGINT NOT NULL,
    revoked_at BIGINT
);
CREATE INDEX bus_credentials_owner ON bus_credentials (kind, owner);
CREATE INDEX bus_credentials_expires_at ON bus_credentials (expires_at);

-- A disabled host stays registered, but its agent holds no bus credentials
-- (revoked, renewal and issue refused) and it gets no new reports until an
-- operator enables it. Deleting the host deletes the row.
CREATE TABLE disabled_hosts (
    host_id     TEXT PRIMARY KEY REFERENCES hosts (id) ON DELETE CASCADE,
    disabled_at BIGINT NOT NULL
);
