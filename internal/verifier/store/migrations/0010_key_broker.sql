-- Key broker (issue 17): secrets released only to Verified hosts, sealed to
-- the host's TPM. A row is the secret's name, release policy and version;
-- its value is the secrets row named 'key-broker/<id>/v<version>', sealed
-- under the key-encryption key like every other secret. The policy is the
-- key broker's JSON (package keybroker); the store does not read it. The
-- version counts rotations: a new value gets the next version. Times are
-- Unix microseconds.
CREATE TABLE key_broker_secrets (
    id         TEXT PRIMARY KEY,
    name       TEXT NOT NULL UNIQUE,
    version    BIGINT NOT NULL,
    policy     TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    updated_at BIGINT NOT NULL
);
