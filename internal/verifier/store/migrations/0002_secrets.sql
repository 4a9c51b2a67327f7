-- Named secrets and blobs: CA keys and certificates, NATS operator and account
-- keys, token signing keys.
CREATE TABLE secrets (
    name       TEXT PRIMARY KEY,
    value      BYTEA NOT NULL,
    updated_at BIGINT NOT NULL
);
