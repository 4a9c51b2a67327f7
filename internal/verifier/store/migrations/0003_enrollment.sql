-- TPM enrollment: registered EKs, credential activation challenges, enrolled AKs.
CREATE TABLE ek_registrations (
    id               TEXT PRIMARY KEY,
    hardware_uuid    TEXT NOT NULL,
    description      TEXT NOT NULL,
    ek_public_sha256 TEXT NOT NULL UNIQUE,
    ek_public        BYTEA NOT NULL,
    created_at       BIGINT NOT NULL
);

CREATE TABLE activation_challenges (
    id             TEXT PRIMARY KEY,
    host_id        TEXT NOT NULL,
    ak_public      BYTEA NOT NULL,
    ak_name        BYTEA NOT NULL,
    ek_public      BYTEA NOT NULL,
    ek_certificate BYTEA NOT NULL,
    secret_sha256  BYTEA NOT NULL,
    expires_at     BIGINT NOT NULL,
    created_at     BIGINT NOT NULL,
    used_at        BIGINT
);
CREATE INDEX activation_challenges_expires_at ON activation_challenges (expires_at);

CREATE TABLE ak_enrollments (
    host_id          TEXT PRIMARY KEY,
    ak_name          BYTEA NOT NULL UNIQUE,
    ak_public        BYTEA NOT NULL,
    ak_certificate   BYTEA NOT NULL,
    ek_certificate   BYTEA NOT NULL,
    ek_public_sha256 TEXT NOT NULL,
    created_at       BIGINT NOT NULL
);
